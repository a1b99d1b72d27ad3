//! Unit tests over images crafted in memory: layers as tar bytes, a
//! minimal OCI layout writer, docker's legacy form.

use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde_json::json;
use sha2::{Digest as _, Sha256};

use super::config::{resolve_user, Overrides};
use super::layers::{Applier, LayerError};
use super::layout::LayoutError;
use super::*;

/// One tar member: (name, kind, data or link target, mode).
enum Member<'a> {
    File(&'a str, &'a [u8], u32),
    Dir(&'a str),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
    CharDev(&'a str),
}

/// A tar with names written raw, so hostile names (`../x`) survive.
fn tar(members: &[Member]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for m in members {
        let mut h = tar::Header::new_gnu();
        h.set_size(0);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_mode(0o644);
        let (name, data): (&str, &[u8]) = match m {
            Member::File(n, d, mode) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*mode);
                h.set_size(d.len() as u64);
                (n, d)
            }
            Member::Dir(n) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                (n, b"")
            }
            Member::Symlink(n, t) | Member::Hardlink(n, t) => {
                h.set_entry_type(if matches!(m, Member::Symlink(..)) {
                    tar::EntryType::Symlink
                } else {
                    tar::EntryType::Link
                });
                h.as_gnu_mut().unwrap().linkname[..t.len()].copy_from_slice(t.as_bytes());
                (n, b"")
            }
            Member::CharDev(n) => {
                h.set_entry_type(tar::EntryType::Char);
                (n, b"")
            }
        };
        h.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_cksum();
        b.append(&h, data).unwrap();
    }
    b.into_inner().unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn apply(root: &Path, layers: &[Vec<u8>]) -> Result<(), LayerError> {
    let mut a = Applier::new(root)?;
    for (i, l) in layers.iter().enumerate() {
        a.apply_bytes(l, &format!("layer{i}"))?;
    }
    a.finish().map(|_| ())
}

/// Issue 21 (also): every path made from an image's names goes through a
/// checked constructor: blob digests (oci-spec's `Digest`, then
/// `blobs/sha256/<hex>`) and docker-save member paths
/// (`safe_relative_path`). The hostile spellings are refused.
#[test]
fn hostile_digests_and_member_paths_are_refused() {
    use std::str::FromStr;
    for d in ["sha256:../..", "sha256:../../etc/passwd", "sha256:/etc/passwd", "sha256:", "sha256:ABCDEF", "../sha256:00", "sha256:00/../../x"] {
        assert!(oci_spec::image::Digest::from_str(d).is_err() || !oci_spec::image::Digest::from_str(d).unwrap().digest().chars().all(|c| c.is_ascii_hexdigit()), "digest {d:?} accepted");
    }
    let ok = format!("sha256:{}", "a".repeat(64));
    assert!(oci_spec::image::Digest::from_str(&ok).is_ok());
    for p in ["../layer.tar", "/etc/passwd", "a/../../b", "..", "a/./../../b"] {
        assert!(crate::source::safe_relative_path(p.as_bytes()).is_err(), "member path {p:?} accepted");
    }
    assert_eq!(crate::source::safe_relative_path(b"abc/layer.tar").unwrap(), Path::new("abc/layer.tar"));
}

/// Issue 21.8: a bad image JSON blob is reported with serde's line and
/// column, not oci-spec's bare "serde failed".
#[test]
fn bad_image_json_names_line_and_column() {
    let e = super::layout::parse_config(b"{\"config\": {\"Cmd\": 5}}").unwrap_err();
    assert!(e.contains("line 1 column") && !e.contains("serde failed"), "{e}");
    let e = super::layout::parse_manifest(b"{\n  \"schemaVersion\": 2,\n  oops").unwrap_err();
    assert!(e.contains("line 3 column"), "{e}");
}

/// Issue 21.8: uid and gid 4294967295 are (uid_t)-1, "unchanged" to
/// setuid(2): refused at wrap, not at run.
#[test]
fn user_4294967295_is_refused_at_wrap() {
    let t = tempfile::tempdir().unwrap();
    for user in ["4294967295", "0:4294967295", "4294967296"] {
        let e = resolve_user(t.path(), user).unwrap_err();
        assert!(e.to_string().contains("out of range"), "{user}: {e}");
    }
    assert_eq!(resolve_user(t.path(), "4294967294:4294967294").unwrap().uid, 4294967294);
}

/// Issue 21.7: `.wh..` and `.wh...` name the directory itself and its
/// parent; they are refused by name and the lower layers stay whole.
#[test]
fn whiteouts_naming_dot_or_dotdot_are_refused() {
    for marker in ["etc/.wh..", "etc/.wh...", "etc/sub/.wh...", ".wh..", "etc/.wh.", "etc/.wh..wh.x"] {
        let t = tempfile::tempdir().unwrap();
        let lower = tar(&[Member::Dir("etc"), Member::Dir("etc/sub"), Member::File("etc/keep", b"1", 0o644), Member::File("etc/sub/keep", b"1", 0o644), Member::File("top", b"1", 0o644)]);
        let upper = tar(&[Member::File(marker, b"", 0o644)]);
        let e = apply(t.path(), &[lower, upper]).unwrap_err();
        assert!(matches!(&e, LayerError::Unsafe { entry, .. } if entry == marker), "{marker}: {e}");
        assert!(e.to_string().contains("whiteout must name one entry"), "{marker}: {e}");
        for f in ["etc/keep", "etc/sub/keep", "top"] {
            assert!(t.path().join(f).is_file(), "{marker} removed {f}");
        }
    }
}

#[test]
fn whiteout_removes_a_lower_file_and_opaque_keeps_only_the_upper_layer() {
    let t = tempfile::tempdir().unwrap();
    let lower = tar(&[
        Member::Dir("etc"),
        Member::File("etc/gone", b"1", 0o644),
        Member::File("etc/kept", b"1", 0o644),
        Member::Dir("data/sub"),
        Member::File("data/old", b"1", 0o644),
        Member::File("data/sub/old", b"1", 0o644),
    ]);
    // The opaque marker comes after the layer's own file: it still only hides the lower ones.
    let upper = tar(&[
        Member::File("data/new", b"2", 0o644),
        Member::File("data/.wh..wh..opq", b"", 0o644),
        Member::File("etc/.wh.gone", b"", 0o644),
    ]);
    apply(t.path(), &[gzip(&lower), upper]).unwrap();
    assert!(!t.path().join("etc/gone").exists());
    let kept = fs::metadata(t.path().join("etc/kept")).unwrap();
    assert_eq!(kept.mtime(), 0, "the layer's mtime is kept");
    let mut data: Vec<String> = fs::read_dir(t.path().join("data"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    data.sort();
    assert_eq!(data, ["new"]);
    assert!(
        !t.path().join("etc/.wh.gone").exists(),
        "whiteout markers are not unpacked"
    );
}

#[test]
fn zstd_layers_are_read() {
    let t = tempfile::tempdir().unwrap();
    let layer = tar(&[Member::File("hello", b"zstd body", 0o644)]);
    let z =
        ruzstd::encoding::compress_to_vec(&layer[..], ruzstd::encoding::CompressionLevel::Fastest);
    apply(t.path(), &[z]).unwrap();
    assert_eq!(fs::read(t.path().join("hello")).unwrap(), b"zstd body");
}

#[test]
fn hard_links_share_the_inode_and_must_name_a_file_in_the_rootfs() {
    let t = tempfile::tempdir().unwrap();
    apply(
        t.path(),
        &[tar(&[
            Member::File("bin/a", b"x", 0o755),
            Member::Hardlink("bin/b", "bin/a"),
        ])],
    )
    .unwrap();
    let (a, b) = (
        fs::metadata(t.path().join("bin/a")).unwrap(),
        fs::metadata(t.path().join("bin/b")).unwrap(),
    );
    assert_eq!(a.ino(), b.ino());

    for target in ["missing", "../../etc/passwd", "/etc/passwd"] {
        let t = tempfile::tempdir().unwrap();
        let err = apply(t.path(), &[tar(&[Member::Hardlink("x", target)])]).unwrap_err();
        assert!(
            matches!(&err, LayerError::Unsafe { entry, .. } if entry == "x"),
            "{target}: {err}"
        );
    }
}

#[test]
fn traversal_absolute_and_device_entries_are_refused_by_name() {
    for (member, want) in [
        (Member::File("../evil", b"x", 0o644), "../evil"),
        (Member::File("a/../../evil", b"x", 0o644), "a/../../evil"),
        (Member::File("/etc/evil", b"x", 0o644), "/etc/evil"),
        (Member::CharDev("dev/null"), "dev/null"),
    ] {
        let err = fuzz::apply_layers_contained(&[&tar(&[member])]).unwrap_err();
        match err {
            LayerError::Unsafe { entry, .. } => assert_eq!(entry, want),
            other => panic!("{want}: {other}"),
        }
    }
}

#[test]
fn writes_through_symlinks_stay_in_the_rootfs() {
    // An absolute link resolves inside the rootfs: etc/passwd lands in rootfs/real-etc.
    let t = tempfile::tempdir().unwrap();
    apply(
        t.path(),
        &[
            tar(&[Member::Dir("real-etc"), Member::Symlink("etc", "/real-etc")]),
            tar(&[Member::File(
                "etc/passwd",
                b"root:x:0:0::/root:/bin/sh\n",
                0o644,
            )]),
        ],
    )
    .unwrap();
    assert!(t.path().join("real-etc/passwd").is_file());
    assert!(fs::symlink_metadata(t.path().join("etc"))
        .unwrap()
        .file_type()
        .is_symlink());

    // A link climbing above the root cannot be written through, in the same layer or a later one.
    let escape = tar(&[
        Member::Symlink("up", "../outside"),
        Member::File("up/x", b"x", 0o644),
    ]);
    let err = fuzz::apply_layers_contained(&[&escape]).unwrap_err();
    assert!(
        matches!(&err, LayerError::Path { entry, .. } if entry == "up"),
        "{err}"
    );
    let later = tar(&[Member::File("up/x", b"x", 0o644)]);
    let err =
        fuzz::apply_layers_contained(&[&tar(&[Member::Symlink("up", "../../outside")]), &later])
            .unwrap_err();
    assert!(matches!(err, LayerError::Path { .. }), "{err}");

    // A file replacing a symlink replaces the link, never writes to its target.
    let t = tempfile::tempdir().unwrap();
    apply(
        t.path(),
        &[
            tar(&[
                Member::File("target", b"keep", 0o644),
                Member::Symlink("link", "target"),
            ]),
            tar(&[Member::File("link", b"new", 0o644)]),
        ],
    )
    .unwrap();
    assert_eq!(fs::read(t.path().join("target")).unwrap(), b"keep");
    assert_eq!(fs::read(t.path().join("link")).unwrap(), b"new");
}

/// A minimal OCI layout writer: blobs by digest, an index.json.
struct Layout<'p> {
    root: &'p Path,
}

impl<'p> Layout<'p> {
    fn new(root: &'p Path) -> Self {
        fs::create_dir_all(root.join("blobs/sha256")).unwrap();
        fs::write(
            root.join("oci-layout"),
            br#"{"imageLayoutVersion":"1.0.0"}"#,
        )
        .unwrap();
        Layout { root }
    }

    fn blob(&self, bytes: &[u8]) -> (String, usize) {
        let hex = sha(bytes);
        fs::write(self.root.join("blobs/sha256").join(&hex), bytes).unwrap();
        (format!("sha256:{hex}"), bytes.len())
    }

    /// An image manifest over gzip `layers` and `config` (rootfs.diff_ids filled in).
    fn manifest(
        &self,
        layers: &[Vec<u8>],
        mut config: serde_json::Value,
        arch: &str,
    ) -> serde_json::Value {
        let diff_ids: Vec<String> = layers
            .iter()
            .map(|l| format!("sha256:{}", sha(l)))
            .collect();
        config["rootfs"] = json!({"type": "layers", "diff_ids": diff_ids});
        config["architecture"] = json!(arch);
        config["os"] = json!("linux");
        let (cd, cs) = self.blob(config.to_string().as_bytes());
        let layer_descs: Vec<_> = layers
            .iter()
            .map(|l| {
                let (d, s) = self.blob(&gzip(l));
                json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": s})
            })
            .collect();
        let m = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs}, "layers": layer_descs});
        let (md, ms) = self.blob(m.to_string().as_bytes());
        json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ms, "platform": {"os": "linux", "architecture": arch}})
    }

    fn index_blob(&self, manifests: Vec<serde_json::Value>) -> serde_json::Value {
        let (d, s) = self.blob(index(manifests).to_string().as_bytes());
        json!({"mediaType": "application/vnd.oci.image.index.v1+json", "digest": d, "size": s})
    }

    fn write_index(&self, manifests: Vec<serde_json::Value>) {
        fs::write(self.root.join("index.json"), index(manifests).to_string()).unwrap();
    }
}

fn index(manifests: Vec<serde_json::Value>) -> serde_json::Value {
    json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests})
}

fn busybox_layer() -> Vec<u8> {
    tar(&[
        Member::File("bin/busybox", b"\x7fELF pretend", 0o755),
        Member::Symlink("bin/sh", "busybox"),
        Member::File(
            "etc/passwd",
            b"root:x:0:0:root:/root:/bin/sh\nredis:x:100:101:redis:/var/lib/redis:/bin/false\n",
            0o644,
        ),
        Member::File(
            "etc/group",
            b"root:x:0:\nredis:x:101:\nwww:x:33:redis\nextra:x:500:redis,other\n",
            0o644,
        ),
    ])
}

fn cmd_config(cmd: serde_json::Value) -> serde_json::Value {
    json!({"config": {"Cmd": cmd, "Env": ["PATH=/bin"], "User": "redis", "ExposedPorts": {"6379/tcp": {}}}})
}

#[test]
fn nested_index_leads_to_the_amd64_manifest_and_its_config_becomes_the_spec() {
    let img = tempfile::tempdir().unwrap();
    let l = Layout::new(img.path());
    let arm = l.manifest(&[busybox_layer()], cmd_config(json!(["wrong"])), "arm64");
    let amd = l.manifest(
        &[busybox_layer()],
        cmd_config(json!(["sh", "-c", "echo hi"])),
        "amd64",
    );
    let inner = l.index_blob(vec![arm, amd.clone()]);
    let mut named = inner.clone();
    named["annotations"] = json!({"io.containerd.image.name": "docker.io/library/redis:7"});
    l.write_index(vec![named]);

    let out = tempfile::tempdir().unwrap();
    let rootfs = out.path().join("rootfs");
    let got = unpack(img.path(), &rootfs, &Overrides::default()).unwrap();
    assert_eq!(got.manifest_digest, amd["digest"].as_str().unwrap());
    assert_eq!(got.spec.args, ["sh", "-c", "echo hi"]);
    assert_eq!(
        (got.spec.uid, got.spec.gid, got.spec.groups.clone()),
        (100, 101, vec![33, 500])
    );
    assert_eq!(got.spec.hostname, "redis");
    assert_eq!(got.spec.exposed_ports, ["6379/tcp"]);
    assert!(got.spec.env.contains(&"HOME=/var/lib/redis".to_string()));
    assert_eq!(got.layer_digests.len(), 1);
    assert!(rootfs.join("bin/busybox").is_file());
    assert!(got.rootfs_bytes > 0);

    // The user's arguments replace Cmd; a missing program is named.
    let o = Overrides {
        cmd: Some(vec!["nosuch".into()]),
        ..Overrides::default()
    };
    let rootfs2 = out.path().join("rootfs2");
    let err = unpack(img.path(), &rootfs2, &o).unwrap_err();
    assert!(
        matches!(&err, OciError::Config(ConfigError::EntrypointNotFound { argv0, .. }) if argv0 == "nosuch"),
        "{err}"
    );
    assert!(!rootfs2.exists(), "nothing left behind");
}

#[test]
fn an_index_without_linux_amd64_is_refused_with_what_it_has() {
    let img = tempfile::tempdir().unwrap();
    let l = Layout::new(img.path());
    let arm = l.manifest(&[busybox_layer()], cmd_config(json!(["sh"])), "arm64");
    l.write_index(vec![arm]);
    let out = tempfile::tempdir().unwrap();
    let err = unpack(img.path(), &out.path().join("r"), &Overrides::default()).unwrap_err();
    assert!(
        matches!(&err, OciError::Layout(LayoutError::NoAmd64 { found }) if found == &["linux/arm64"]),
        "{err}"
    );
}

#[test]
fn a_blob_that_does_not_match_its_digest_is_named_and_nothing_is_left() {
    let img = tempfile::tempdir().unwrap();
    let l = Layout::new(img.path());
    let m = l.manifest(&[busybox_layer()], cmd_config(json!(["sh"])), "amd64");
    l.write_index(vec![m.clone()]);
    // Find the layer blob through the manifest and flip one byte in it.
    let manifest: serde_json::Value = serde_json::from_slice(
        &fs::read(
            img.path()
                .join("blobs/sha256")
                .join(&m["digest"].as_str().unwrap()[7..]),
        )
        .unwrap(),
    )
    .unwrap();
    let layer = manifest["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let path = img.path().join("blobs/sha256").join(&layer[7..]);
    let mut bytes = fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    fs::write(&path, bytes).unwrap();
    let out = tempfile::tempdir().unwrap();
    let rootfs = out.path().join("r");
    let err = unpack(img.path(), &rootfs, &Overrides::default()).unwrap_err();
    assert!(
        matches!(&err, OciError::Layout(LayoutError::DigestMismatch { blob, .. }) if *blob == layer),
        "{err}"
    );
    assert!(!rootfs.exists());
    assert_eq!(
        fs::read_dir(out.path()).unwrap().count(),
        0,
        "no scratch left beside the rootfs"
    );
}

#[test]
fn no_entrypoint_and_no_cmd_is_refused() {
    let img = tempfile::tempdir().unwrap();
    let l = Layout::new(img.path());
    let m = l.manifest(
        &[busybox_layer()],
        json!({"config": {"Env": ["PATH=/bin"]}}),
        "amd64",
    );
    l.write_index(vec![m]);
    let out = tempfile::tempdir().unwrap();
    let err = unpack(img.path(), &out.path().join("r"), &Overrides::default()).unwrap_err();
    assert!(
        matches!(err, OciError::Config(ConfigError::NoCommand)),
        "{err}"
    );
}

#[test]
fn docker_legacy_save_is_verified_by_diff_ids() {
    let img = tempfile::tempdir().unwrap();
    let layer = busybox_layer();
    let mut config = cmd_config(json!(["/bin/sh"]));
    config["architecture"] = json!("amd64");
    config["os"] = json!("linux");
    config["rootfs"] = json!({"type": "layers", "diff_ids": [format!("sha256:{}", sha(&layer))]});
    let config = config.to_string();
    let config_name = format!("{}.json", sha(config.as_bytes()));
    fs::write(img.path().join(&config_name), &config).unwrap();
    fs::create_dir(img.path().join("abc")).unwrap();
    fs::write(img.path().join("abc/layer.tar"), &layer).unwrap();
    fs::write(
        img.path().join("manifest.json"),
        json!([{"Config": config_name, "RepoTags": ["my_app:1"], "Layers": ["abc/layer.tar"]}])
            .to_string(),
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let got = unpack(img.path(), &out.path().join("r"), &Overrides::default()).unwrap();
    assert_eq!(got.spec.hostname, "my-app");
    assert_eq!(
        got.config_digest,
        format!("sha256:{}", sha(config.as_bytes()))
    );

    let mut bad = layer.clone();
    bad[600] ^= 1; // inside the first file's data
    fs::write(img.path().join("abc/layer.tar"), &bad).unwrap();
    let err = unpack(img.path(), &out.path().join("r2"), &Overrides::default()).unwrap_err();
    assert!(
        matches!(&err, OciError::Layout(LayoutError::DigestMismatch { blob, .. }) if blob.contains("abc/layer.tar")),
        "{err}"
    );
}

#[test]
fn users_resolve_through_the_images_passwd_and_group() {
    let t = tempfile::tempdir().unwrap();
    apply(t.path(), &[busybox_layer()]).unwrap();
    let u = resolve_user(t.path(), "redis").unwrap();
    assert_eq!((u.uid, u.gid, u.groups), (100, 101, vec![33, 500]));
    let u = resolve_user(t.path(), "redis:www").unwrap();
    assert_eq!(
        (u.uid, u.gid, u.groups),
        (
            100,
            33,
            vec![101, 500]
                .into_iter()
                .filter(|g| *g != 101)
                .collect::<Vec<_>>()
        )
    );
    let u = resolve_user(t.path(), "4242:77").unwrap();
    assert_eq!((u.uid, u.gid, u.groups), (4242, 77, vec![]));
    let u = resolve_user(t.path(), "").unwrap();
    assert_eq!((u.uid, u.gid), (0, 0));
    assert!(
        matches!(resolve_user(t.path(), "nobody"), Err(ConfigError::BadUser { user, .. }) if user == "nobody")
    );
    assert!(matches!(
        resolve_user(t.path(), "redis:nogroup"),
        Err(ConfigError::BadUser { .. })
    ));
}

#[test]
fn hostnames_are_short_and_valid() {
    assert_eq!(config::hostname_from("docker.io/library/redis:7"), "redis");
    assert_eq!(config::hostname_from("/images/My_App.tar"), "my-app");
    assert_eq!(config::hostname_from("ghcr.io/x/y@sha256:abc"), "y");
    assert_eq!(config::hostname_from(""), "container");
}

#[test]
fn fuzz_entry_points_take_any_bytes() {
    assert_eq!(fuzz::parse_image_json(b"not json"), 0);
    assert!(fuzz::parse_image_json(br#"{"schemaVersion":2,"manifests":[]}"#) >= 1);
    assert!(fuzz::apply_layers_contained(&[b"\x1f\x8bgarbage"]).is_err());
    assert!(fuzz::unpack_image_tar(b"not a tar").is_err());
    // A tar holding a whole OCI layout unpacks through the same entry point.
    let img = tempfile::tempdir().unwrap();
    let l = Layout::new(img.path());
    let m = l.manifest(&[busybox_layer()], cmd_config(json!(["sh"])), "amd64");
    l.write_index(vec![m]);
    let mut b = tar::Builder::new(Vec::new());
    b.append_dir_all(".", img.path()).unwrap();
    let got = fuzz::unpack_image_tar(&b.into_inner().unwrap()).unwrap();
    assert_eq!(got.spec.args, ["sh"]);
}

#[test]
fn overrides_follow_docker_run_semantics() {
    let img = tempfile::tempdir().unwrap();
    let l = Layout::new(img.path());
    let mut config = cmd_config(json!(["-c", "echo from cmd"]));
    config["config"]["Entrypoint"] = json!(["/bin/sh"]);
    let m = l.manifest(&[busybox_layer()], config, "amd64");
    l.write_index(vec![m]);
    let out = tempfile::tempdir().unwrap();

    let o = Overrides {
        cmd: Some(vec!["-c".into(), "echo mine".into()]),
        env: vec!["PATH=/bin:/usr/bin".into(), "EXTRA=1".into()],
        workdir: Some("srv/app".into()),
        hostname: Some("web-1".into()),
        user: Some("0:33".into()),
        ..Overrides::default()
    };
    let rootfs = out.path().join("a");
    let got = unpack(img.path(), &rootfs, &o).unwrap();
    assert_eq!(
        got.spec.args,
        ["/bin/sh", "-c", "echo mine"],
        "Cmd replaced, Entrypoint kept"
    );
    assert_eq!(
        got.spec
            .env
            .iter()
            .filter(|e| e.starts_with("PATH="))
            .collect::<Vec<_>>(),
        ["PATH=/bin:/usr/bin"]
    );
    assert!(got.spec.env.contains(&"EXTRA=1".to_string()));
    assert_eq!(
        (got.spec.cwd.as_str(), got.spec.hostname.as_str()),
        ("/srv/app", "web-1")
    );
    assert!(
        rootfs.join("srv/app").is_dir(),
        "a missing WorkingDir is created"
    );
    assert_eq!((got.spec.uid, got.spec.gid), (0, 33));

    let o = Overrides {
        entrypoint: Some(vec!["sh".into()]),
        ..Overrides::default()
    };
    let got = unpack(img.path(), &out.path().join("b"), &o).unwrap();
    assert_eq!(
        got.spec.args,
        ["sh"],
        "a new entrypoint drops the image's Cmd"
    );

    let o = Overrides {
        hostname: Some("-bad name".into()),
        ..Overrides::default()
    };
    let err = unpack(img.path(), &out.path().join("c"), &o).unwrap_err();
    assert!(
        matches!(err, OciError::Config(ConfigError::BadHostname { .. })),
        "{err}"
    );
}
