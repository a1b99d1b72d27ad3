//! `pull --debian VERSION` and `pull --list-debian`: any published version
//! of Debian's linux-source-X.Y, fetched through apt (needs the Debian
//! archive, as the rest of the real-kernel tier does).

use xc_tests::{shared_cache, xc};

/// The version of linux-source-6.1 dpkg has installed (the suite installs it).
fn installed_6_1() -> String {
    let out = std::process::Command::new("dpkg-query").args(["-W", "-f=${Version}", "linux-source-6.1"]).output().expect("dpkg-query");
    assert!(out.status.success(), "linux-source-6.1 is not installed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn list_debian_names_the_installed_version_among_the_published_ones() {
    let cache = tempfile::tempdir().unwrap();
    let v = xc(cache.path(), &["--json", "pull", "--list-debian", "6.1"]).expect_code(0).json();
    let published: Vec<String> = v["published"]["6.1"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect();
    assert!(published.contains(&installed_6_1()), "{published:?}");
    assert!(published.iter().all(|p| p.starts_with("6.1.")), "{published:?}");
}

#[test]
fn an_unpublished_version_is_refused_naming_the_published_ones() {
    let cache = tempfile::tempdir().unwrap();
    let r = xc(cache.path(), &["pull", "--debian", "6.1.999-1"]).expect_code(2);
    assert!(r.stderr.contains("6.1.999-1 is not published"), "{}", r.stderr);
    assert!(r.stderr.contains(&installed_6_1()), "the published versions must be listed: {}", r.stderr);
    assert!(!cache.path().join("sources").exists(), "nothing may be created for a refused version");
}

#[test]
fn the_installed_version_by_number_is_the_same_tree_as_pull_kernel() {
    // apt downloads the very package dpkg installed: the tarball inside it
    // has the same bytes, so both requests are one cache entry.
    let cache = shared_cache();
    let by_series = xc(&cache, &["--json", "pull", "--kernel", "6.1"]).expect_code(0).json();
    let version = installed_6_1();
    let by_version = xc(&cache, &["--json", "pull", "--debian", &version]).expect_code(0).json();
    assert_eq!(by_version["tree"]["source_hash"], by_series["tree"]["source_hash"]);
    assert!(by_version["tree"]["origin"].as_str().unwrap().contains(&version), "{by_version}");
    let tarball = cache.join("downloads/debian").join(format!("linux-source-6.1_{version}.tar.xz"));
    assert!(tarball.is_file(), "the fetched tarball is kept for the next pull: {}", tarball.display());
    // Pulled again: no download, the same entry.
    let again = xc(&cache, &["--json", "pull", "--debian", &version]).expect_code(0);
    assert!(!again.stderr.contains("downloading"), "{}", again.stderr);
    assert_eq!(again.json()["cache_hit"], true);
}
