//! Real images (built from the host's redis, nginx, python3 and busybox by
//! `xc_tests::images`) unpacked through the library, each in another of
//! the four on-disk forms; where we are root the unpacked rootfs is also
//! run in a chroot, so "has its libraries" means "the program starts".

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use xc_convert::container::spec::ContainerSpec;
use xc_convert::oci::{
    self, rootfs_path, ConfigError, LayerError, LayoutError, OciError, Overrides, UnpackedImage,
};
use xc_tests::images::{self, BadImage, Form, TestImage};

fn unpack(image: &Path) -> (tempfile::TempDir, PathBuf, UnpackedImage) {
    let out = tempfile::tempdir_in(images::images_dir()).expect("scratch");
    let rootfs = out.path().join("rootfs");
    let got = oci::unpack(image, &rootfs, &Overrides::default())
        .unwrap_or_else(|e| panic!("unpack {}: {e}", image.display()));
    (out, rootfs, got)
}

fn is_root() -> bool {
    fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// Run `argv` in a chroot of `rootfs` as the spec's user with the spec's
/// environment. The suite runs as root (CI does; the chroot and the
/// layers' owners need it): not being root fails, it does not skip.
fn run_in_chroot(
    rootfs: &Path,
    spec: &ContainerSpec,
    argv: &[&str],
) -> Option<std::process::Output> {
    assert!(is_root(), "the chroot run of {argv:?} needs root (run the suite as root, as CI does)");
    let env = spec.env.iter().filter_map(|e| e.split_once('='));
    let out = Command::new("/usr/sbin/chroot")
        .arg(format!("--userspec={}:{}", spec.uid, spec.gid))
        .arg(rootfs)
        .args(argv)
        .env_clear()
        .envs(env)
        .output()
        .expect("run chroot");
    Some(out)
}

/// The uid `/etc/passwd` inside the rootfs gives `user`.
fn uid_in_passwd(rootfs: &Path, user: &str) -> u32 {
    let passwd = fs::read_to_string(rootfs.join("etc/passwd")).expect("passwd");
    let line = passwd
        .lines()
        .find(|l| l.starts_with(&format!("{user}:")))
        .expect("user in passwd");
    line.split(':')
        .nth(2)
        .expect("uid field")
        .parse()
        .expect("uid")
}

/// `path` (as the container sees it) is a regular file in the rootfs.
fn exists_in(rootfs: &Path, path: &Path) -> bool {
    rootfs_path::resolve(rootfs, path, true).is_ok_and(|real| rootfs.join(real).is_file())
}

#[test]
fn redis_oci_layout_has_its_libraries_and_runs_as_the_images_redis_user() {
    let (_out, rootfs, got) = unpack(&images::redis());
    assert!(exists_in(&rootfs, Path::new("/usr/bin/redis-server")));
    for lib in images::shared_libs(Path::new("/usr/bin/redis-server")) {
        assert!(
            exists_in(&rootfs, &lib),
            "{} missing from the rootfs",
            lib.display()
        );
    }
    assert_eq!(got.spec.uid, uid_in_passwd(&rootfs, "redis"));
    assert_eq!(got.spec.uid, images::REDIS_UID);
    assert_eq!(
        got.spec.args[..3],
        ["redis-server", "--protected-mode", "no"]
    );
    assert_eq!(got.spec.exposed_ports, ["6379/tcp"]);
    assert_eq!(got.spec.hostname, "redis");
    assert_eq!(got.spec.cwd, "/data");
    assert!(got.manifest_digest.starts_with("sha256:") && got.layer_digests.len() == 1);
    assert!(is_root(), "the suite runs as root: owners from layers need it");
    {
        assert_eq!(
            fs::metadata(rootfs.join("data")).unwrap().uid(),
            images::REDIS_UID,
            "owners come from the layer"
        );
    }
    if let Some(out) = run_in_chroot(&rootfs, &got.spec, &["redis-server", "--version"]) {
        let host = Command::new("/usr/bin/redis-server")
            .arg("--version")
            .output()
            .expect("host redis");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.stdout, host.stdout);
    }
}

#[test]
fn nginx_docker_legacy_save_serves_its_page_and_its_config_checks_out() {
    let (_out, rootfs, got) = unpack(&images::image(TestImage::Nginx, Form::DockerLegacy));
    assert_eq!(
        fs::read_to_string(rootfs.join("usr/share/nginx/html/index.html")).unwrap(),
        images::NGINX_INDEX_BODY
    );
    assert_eq!(got.spec.args, ["nginx", "-c", "/etc/nginx/nginx.conf"]);
    assert_eq!(
        (got.spec.uid, got.spec.exposed_ports.clone()),
        (0, vec!["80/tcp".to_string()])
    );
    assert_eq!(uid_in_passwd(&rootfs, "www-data"), images::WWW_DATA_UID);
    assert_eq!(got.spec.hostname, "nginx");
    for dir in ["var/lib/nginx", "var/log/nginx", "run"] {
        assert!(rootfs.join(dir).is_dir(), "{dir}");
    }
    // `nginx -t` loads every library, parses the config and looks up www-data.
    if let Some(out) = run_in_chroot(
        &rootfs,
        &got.spec,
        &["nginx", "-t", "-c", "/etc/nginx/nginx.conf"],
    ) {
        assert!(
            out.status.success(),
            "nginx -t: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn python_oci_tar_and_docker_oci_save_are_the_same_image_and_compute_the_answer() {
    let (_a, rootfs, from_oci_tar) = unpack(&images::image(TestImage::Python, Form::OciTar));
    let (_b, _, from_docker) = unpack(&images::image(TestImage::Python, Form::DockerOci));
    assert_eq!(from_oci_tar.config_digest, from_docker.config_digest);
    assert_eq!(from_oci_tar.diff_ids, from_docker.diff_ids);
    assert_ne!(
        from_oci_tar.layer_digests, from_docker.layer_digests,
        "gzip vs uncompressed blobs"
    );
    assert_eq!(from_oci_tar.spec, from_docker.spec);
    assert_eq!(from_oci_tar.spec.uid, uid_in_passwd(&rootfs, "app"));
    assert!(
        from_oci_tar.rootfs_bytes > 10 << 20,
        "the stdlib is in: {} bytes",
        from_oci_tar.rootfs_bytes
    );
    let argv: Vec<&str> = from_oci_tar.spec.args.iter().map(String::as_str).collect();
    if let Some(out) = run_in_chroot(&rootfs, &from_oci_tar.spec, &argv) {
        assert!(
            out.status.success(),
            "python: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim_end(),
            images::python_expected_output()
        );
    }
}

#[test]
fn whiteout_image_loses_layer_one_file_and_its_opaque_dir_holds_only_layer_two() {
    let (_out, rootfs, got) = unpack(&images::whiteouts());
    assert!(!rootfs.join("etc/removed").exists());
    assert_eq!(
        fs::read_to_string(rootfs.join("etc/kept")).unwrap(),
        "from layer 1\n"
    );
    let mut data: Vec<String> = fs::read_dir(rootfs.join("data"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    data.sort();
    assert_eq!(data, ["new"]);
    let (a, b) = (
        fs::metadata(rootfs.join("bin/busybox")).unwrap(),
        fs::metadata(rootfs.join("bin/busybox-hardlink")).unwrap(),
    );
    assert_eq!(a.ino(), b.ino(), "hard link kept");
    assert_eq!(got.layer_digests.len(), 2);
    let argv: Vec<&str> = got.spec.args.iter().map(String::as_str).collect();
    let out = run_in_chroot(&rootfs, &got.spec, &argv).expect("chroot ran");
    assert!(out.status.success(), "the whiteout image's command in a chroot: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "new\nfrom layer 2\n");
}

#[test]
fn test_images_are_deterministic() {
    let def = images::definition(TestImage::Whiteouts);
    let t = tempfile::tempdir().unwrap();
    def.write(Form::OciDir, &t.path().join("a"));
    def.write(Form::OciDir, &t.path().join("b"));
    let index = |d: &str| fs::read(t.path().join(d).join("index.json")).unwrap();
    assert_eq!(index("a"), index("b"));
    assert_eq!(
        index("a"),
        fs::read(images::whiteouts().join("index.json")).unwrap()
    );
}

#[test]
fn bad_images_fail_with_one_error_naming_the_culprit_and_leave_nothing() {
    type Expected = fn(&OciError) -> bool;
    let cases: [(BadImage, Expected); 5] = [
        (BadImage::DigestMismatch, |e| {
            matches!(e, OciError::Layout(LayoutError::DigestMismatch { .. }))
        }),
        (
            BadImage::Traversal,
            |e| matches!(e, OciError::Layer(LayerError::Unsafe { entry, .. }) if entry == "../../escape"),
        ),
        (
            BadImage::NoAmd64,
            |e| matches!(e, OciError::Layout(LayoutError::NoAmd64 { found }) if found == &["linux/arm64"]),
        ),
        (BadImage::NoCommand, |e| {
            matches!(e, OciError::Config(ConfigError::NoCommand))
        }),
        (
            BadImage::MissingEntrypoint,
            |e| matches!(e, OciError::Config(ConfigError::EntrypointNotFound { argv0, .. }) if argv0 == "/usr/bin/missing-server"),
        ),
    ];
    for (which, expected) in cases {
        let out = tempfile::tempdir_in(images::images_dir()).unwrap();
        let rootfs = out.path().join("rootfs");
        let err = oci::unpack(&images::bad_image(which), &rootfs, &Overrides::default())
            .expect_err("bad image unpacked");
        assert!(expected(&err), "{which:?}: {err}");
        assert_eq!(
            fs::read_dir(out.path()).unwrap().count(),
            0,
            "{which:?} left something behind"
        );
    }
    assert!(
        !images::images_dir().join("escape").exists()
            && !images::images_dir()
                .parent()
                .unwrap()
                .join("escape")
                .exists()
    );
}
