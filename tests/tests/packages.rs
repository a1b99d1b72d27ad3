//! Packages of real images, installed with the real dpkg in a bookworm root
//! made by debootstrap: the stock 6.1 and 6.12 linux-image packages from the
//! kernel's bindeb-pkg, and the libos guest-kernel package, upgraded from a
//! 6.1 to a 6.12 build of one profile; lintian on each; purge leaves no file.
//! Plus the QEMU line written beside every image, booted.
//!
//! Images: the suite's one profile (`xc_tests::PROFILE`) throughout: the
//! four images every real-kernel test shares, so this file adds no kernel.

use std::path::{Path, PathBuf};
use xc_tests::chroot::Root;
use xc_tests::{heavy, shared_cache, shared_image, xc, PROFILE};

/// `package IMAGE --out DIR --json`: the record, and the one package's path.
fn package(cache: &Path, image: &Path, out: &Path) -> (serde_json::Value, PathBuf) {
    let v = xc(cache, &["--json", "package", image.to_str().unwrap(), "--out", out.to_str().unwrap()]).expect_code(0).json();
    let packages = v["record"]["packages"].as_array().unwrap();
    assert_eq!(packages.len(), 1, "{v}");
    for f in v["record"]["lintian"].as_array().unwrap() {
        assert!(!["E", "W"].contains(&f["severity"].as_str().unwrap()), "lintian: {f}");
    }
    let deb = PathBuf::from(v["copies"][0].as_str().unwrap());
    assert_eq!(deb.parent().unwrap(), out);
    (v, deb)
}

fn field(deb: &Path, name: &str) -> String {
    let out = std::process::Command::new("dpkg-deb").args(["-f"]).arg(deb).arg(name).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn contents(deb: &Path) -> String {
    String::from_utf8_lossy(&std::process::Command::new("dpkg-deb").arg("-c").arg(deb).output().unwrap().stdout).into_owned()
}

fn release(image: &Path) -> String {
    let m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(image.join("manifest.json")).unwrap()).unwrap();
    m["kernel_release"].as_str().unwrap().to_string()
}

#[test]
fn stock_packages_of_6_1_and_6_12_install_into_boot_and_purge_without_a_trace() {
    let _lock = heavy();
    let out = tempfile::tempdir().unwrap();
    let root = Root::new();
    for series in ["6.1", "6.12"] {
        let img = shared_image(series, "stock");
        let krel = release(&img);
        assert!(krel.starts_with(series) && krel.ends_with(&format!("-xc-stock-{PROFILE}")), "{krel}");
        let (v, deb) = package(&shared_cache(), &img, out.path());
        let name = format!("linux-image-{krel}");
        assert_eq!(v["record"]["packages"][0]["name"], name.as_str());
        assert_eq!(field(&deb, "Package"), name);
        let version = field(&deb, "Version");
        assert!(version.contains("+xc") && version.ends_with("-1"), "{version}");
        let inside = root.put(&deb);
        root.ok(&["dpkg", "-i", &inside]);
        let status = root.ok(&["dpkg-query", "-W", "-f", "${Status} ${Version}", &name]);
        assert_eq!(status, format!("install ok installed {version}"));
        // The package's kernel is the image's, byte for byte.
        assert_eq!(std::fs::read(root.host_path(&format!("/boot/vmlinuz-{krel}"))).unwrap(), std::fs::read(img.join("bzImage")).unwrap());
        assert_eq!(std::fs::read(root.host_path(&format!("/boot/config-{krel}"))).unwrap(), std::fs::read(img.join("config")).unwrap());
        let files = root.files_of(&name);
        assert!(files.len() >= 3, "{files:?}");
        root.ok(&["dpkg", "--purge", &name]);
        let left: Vec<&String> = files.iter().filter(|f| root.host_path(f).exists()).collect();
        assert!(left.is_empty(), "purge left {left:?}");
        // A second run is the cached entry, the same bytes.
        let again = xc(&shared_cache(), &["--json", "package", img.to_str().unwrap()]).expect_code(0).json();
        assert_eq!(again["cache_hit"], true);
        assert_eq!(again["record"]["packages"][0]["sha256"], v["record"]["packages"][0]["sha256"]);
    }
}

#[test]
fn the_libos_guest_package_upgrades_from_6_1_to_6_12_and_purges_without_a_trace() {
    let _lock = heavy();
    let out = tempfile::tempdir().unwrap();
    let old_img = shared_image("6.1", "libos");
    let new_img = shared_image("6.12", "libos");
    let (_, old) = package(&shared_cache(), &old_img, out.path());
    let (_, new) = package(&shared_cache(), &new_img, out.path());
    let name = format!("xc-libos-kernel-{PROFILE}");
    assert_eq!(field(&old, "Package"), name);
    assert_eq!(field(&new, "Package"), name);
    assert!(field(&old, "Description").contains("not a kernel for this machine"));
    let (vo, vn) = (field(&old, "Version"), field(&new, "Version"));
    let newer = std::process::Command::new("dpkg").args(["--compare-versions", &vn, "gt", &vo]).status().unwrap();
    assert!(newer.success(), "{vn} sorts after {vo}");
    for deb in [&old, &new] {
        let c = contents(deb);
        assert!(!c.contains("./boot"), "a guest kernel installs nothing in /boot:\n{c}");
        assert!(field(deb, "Depends").is_empty() && !String::from_utf8_lossy(&std::process::Command::new("dpkg-deb").arg("-I").arg(deb).output().unwrap().stdout).contains("postinst"), "no maintainer scripts, no bootloader hook");
    }
    // The same image packaged through another cache: the same bytes.
    let other = tempfile::tempdir().unwrap();
    let out2 = tempfile::tempdir().unwrap();
    let (_, again) = package(other.path(), &old_img, out2.path());
    assert!(std::fs::read(&again).unwrap() == std::fs::read(&old).unwrap(), "two packagings of one image differ: {} and {}", again.display(), old.display());

    let root = Root::new();
    let kernels = "/usr/share/xc-convert/kernels";
    let (ko, kn) = (release(&old_img), release(&new_img));
    root.ok(&["dpkg", "-i", &root.put(&old)]);
    let link = root.host_path(&format!("{kernels}/libos-{PROFILE}"));
    assert_eq!(std::fs::read_link(&link).unwrap(), Path::new(&ko));
    assert_eq!(std::fs::read(root.host_path(&format!("{kernels}/{ko}/vmlinuz"))).unwrap(), std::fs::read(old_img.join("bzImage")).unwrap());
    let fc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(root.host_path(&format!("{kernels}/{ko}/firecracker.json"))).unwrap()).unwrap();
    let kernel_path = fc["boot-source"]["kernel_image_path"].as_str().unwrap();
    assert!(root.host_path(kernel_path).is_file(), "firecracker.json names an installed file: {kernel_path}");
    let old_files = root.files_of(&name);

    root.ok(&["dpkg", "-i", &root.put(&new)]);
    assert_eq!(root.ok(&["dpkg-query", "-W", "-f", "${Version}", &name]), vn);
    assert_eq!(std::fs::read_link(&link).unwrap(), Path::new(&kn), "the profile's symlink follows the upgrade");
    assert!(!root.host_path(&format!("{kernels}/{ko}")).exists(), "the upgrade removed the 6.1 kernel");
    let new_files = root.files_of(&name);

    root.ok(&["dpkg", "--purge", &name]);
    let left: Vec<&String> = old_files.iter().chain(&new_files).filter(|f| root.host_path(f).exists() || root.host_path(f).is_symlink()).collect();
    assert!(left.is_empty(), "purge left {left:?}");
    assert!(!root.host_path("/usr/share/xc-convert").exists(), "purge left /usr/share/xc-convert");
}

/// qemu.sh, written beside every image, boots it with an initramfs that
/// `boot --out` kept.
#[test]
fn the_qemu_line_beside_an_image_boots_it() {
    let _lock = heavy();
    let img = shared_image("6.1", "stock");
    let out = tempfile::tempdir().unwrap();
    let boot_dir = out.path().join("boot");
    xc(&shared_cache(), &["boot", img.to_str().unwrap(), "--out", boot_dir.to_str().unwrap()]).expect_code(0);
    let run = std::process::Command::new("timeout")
        .arg("300")
        .arg(img.join("qemu.sh"))
        .arg(boot_dir.join("initramfs.cpio"))
        .arg("loglevel=4")
        .output()
        .unwrap();
    let console = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "qemu.sh: {}\n{console}", String::from_utf8_lossy(&run.stderr));
    assert!(console.contains("XC-BOOT ok") && console.contains("XC-DONE"), "{console}");
    assert!(console.contains(&release(&img)), "the probe saw the image's release:\n{console}");
}

/// Every file in `dir` (none may be a package or a leftover temporary).
fn listing(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir).map(|rd| rd.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect()).unwrap_or_default()
}

/// A PATH with every program of this machine but `missing`.
fn path_without(missing: &str, dir: &Path) -> String {
    std::fs::create_dir_all(dir).unwrap();
    for bin in ["/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin"] {
        for e in std::fs::read_dir(bin).into_iter().flatten().flatten() {
            let name = e.file_name();
            if name != missing && !dir.join(&name).exists() {
                let _ = std::os::unix::fs::symlink(e.path(), dir.join(&name));
            }
        }
    }
    dir.display().to_string()
}

#[test]
fn bad_images_and_missing_tools_are_one_clear_error_and_leave_no_package() {
    let _lock = heavy();
    let img = shared_image("6.1", "libos");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let run = |cache: &Path, image: &Path, env: &[(&str, &str)]| xc_tests::xc_env(cache, &["package", image.to_str().unwrap(), "--out", out.to_str().unwrap()], env);
    let one_error = |r: &xc_tests::Run, names: &str| {
        assert_eq!(r.stderr.lines().filter(|l| l.starts_with("error:")).count(), 1, "{}", r.stderr);
        assert!(r.stderr.contains(names), "the error names {names}: {}", r.stderr);
        assert!(!listing(&out).iter().any(|f| f.ends_with(".deb") || f.starts_with(".tmp")), "{:?}", listing(&out));
    };

    // Not an image.
    let empty = tmp.path().join("not-an-image");
    std::fs::create_dir_all(&empty).unwrap();
    let r = run(&shared_cache(), &empty, &[]).expect_code(2);
    one_error(&r, &empty.join("manifest.json").display().to_string());

    // An image whose bzImage was edited (same size, one byte changed).
    let edited = tmp.path().join("edited");
    assert!(std::process::Command::new("cp").arg("-r").arg(&img).arg(&edited).status().unwrap().success());
    let mut bz = std::fs::read(edited.join("bzImage")).unwrap();
    let n = bz.len() / 2;
    bz[n] ^= 0xff;
    std::fs::write(edited.join("bzImage"), &bz).unwrap();
    let r = run(&shared_cache(), &edited, &[]).expect_code(3);
    one_error(&r, "bzImage has sha256");

    // dpkg-deb, then lintian, missing (a fresh cache: no package to serve).
    let r = run(&tmp.path().join("c1"), &img, &[("PATH", "/nonexistent")]).expect_code(4);
    one_error(&r, "`dpkg-deb` not found on PATH");
    assert!(r.stderr.contains("Debian package dpkg"), "{}", r.stderr);
    let cache = tmp.path().join("c2");
    let path = path_without("lintian", &tmp.path().join("bin"));
    let r = run(&cache, &img, &[("PATH", &path)]).expect_code(4);
    one_error(&r, "`lintian` not found on PATH");
    assert!(listing(&cache.join("packages")).is_empty(), "a package that failed lintian's run is not kept: {:?}", listing(&cache.join("packages")));

    // --out that is a file.
    let file = tmp.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let r = xc_tests::xc(&shared_cache(), &["package", img.to_str().unwrap(), "--out", file.to_str().unwrap()]).expect_code(2);
    assert!(r.stderr.contains(&format!("--out {}: is not a directory", file.display())), "{}", r.stderr);
}
