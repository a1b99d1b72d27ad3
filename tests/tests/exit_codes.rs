//! The documented exit codes (0 ok, 1 checks failed, 2 bad request, 3 stage
//! failed, 4 host problem), one row per kind of failure, on the fake tree
//! so the table runs in seconds. (1, a boot whose checks failed, needs a
//! real kernel: tests/tests/user_errors.rs.)

use xc_tests::{fake_image_args, fake_tree, xc, xc_env};

fn fake(profile: &str, extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = vec!["--json".into(), "build".into()];
    v.extend(fake_image_args(&fake_tree(), profile));
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

/// (what, arguments, environment, expected exit code)
type Row<'a> = (&'a str, Vec<String>, Vec<(&'a str, &'a str)>, i32);

#[test]
fn every_kind_of_failure_has_its_documented_exit_code() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("c");
    let ok = fake("fake", &[]);
    let full = tmp.path().join("full");
    std::fs::create_dir(&full).unwrap();
    std::fs::write(full.join("series"), "someone else's\n").unwrap();
    let export_into_full: Vec<String> =
        ["--json", "patch", "--dir", fake_tree().to_str().unwrap(), "--export", full.to_str().unwrap()].iter().map(|s| s.to_string()).collect();
    let rows: Vec<Row> = vec![
        ("a good build", ok.clone(), vec![], 0),
        ("boot of a path that is not an image", vec!["--json".into(), "boot".into(), "/not/an/image".into()], vec![], 2),
        ("an unknown profile", fake("no-such-profile", &[]), vec![], 2),
        ("a --dir that is not a kernel tree", vec!["--json".into(), "pull".into(), "--dir".into(), tmp.path().display().to_string()], vec![], 2),
        ("a misspelt option", fake("fake-typo", &[]), vec![], 2),
        ("patch --export into a non-empty directory", export_into_full, vec![], 2),
        ("an option lost in olddefconfig", fake("fake-lost", &[]), vec![], 3),
        ("a conversion whose anchors are missing", fake("fake", &["--mode", "libos"]), vec![], 3),
        ("a compile error", fake("minimal-fake-int", &[]), vec![("FAKE_BUILD_FAIL", "1")], 3),
    ];
    for (what, args, env, code) in rows {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = xc_env(&cache, &args, &env);
        assert_eq!(r.code, code, "{what}: exit {}\nstdout: {}\nstderr: {}", r.code, r.stdout, r.stderr);
        if code != 0 {
            let v = r.json();
            assert_eq!(v["exit_code"], code, "{what}: the JSON error object carries the code");
            assert!(!v["error"].as_str().unwrap().is_empty());
        }
    }
    // A cache that cannot be created is the host's problem.
    let r = xc(std::path::Path::new("/proc/xc-convert-cache"), &fake("fake", &[]).iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(r.code, 4, "{}", r.stderr);
}
