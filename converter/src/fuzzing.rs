//! Properties the fuzz targets check (`fuzz/fuzz_targets/*.rs`), one
//! function per parser that takes outside input. Each panics when a
//! property fails, so libFuzzer reports the input; `cargo test` feeds every
//! file of `fuzz/corpus/<target>/` to the same function (see the tests at
//! the end), so a finding fixed once stays fixed on stable Rust without
//! libFuzzer.
//!
//! The properties are stated independently of the code under test where
//! they can be (the tree check uses the kernel's own path resolution via
//! `canonicalize`, not our resolver), so a bug shared by both cannot hide.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use crate::kconfig::{self, DotConfig, Expr, KconfigDb, Tristate, Values};
use crate::profile::{Catalog, Series, Setting};

/// A property: panics when `data` breaks it.
pub type Property = fn(&[u8]);

/// Fuzz targets, by name: the directory names under `fuzz/corpus/` and
/// `fuzz/fuzz_targets/`.
pub const TARGETS: &[(&str, Property)] = &[
    ("tar_extract", tar_extract),
    ("kconfig_parse", kconfig_parse),
    ("kconfig_expr", kconfig_expr),
    ("profile_load", profile_load),
    ("elf_read", elf_read),
    ("abom_rewrite", abom_rewrite),
    ("oci_image_json", oci_image_json),
    ("oci_image_tar", oci_image_tar),
    ("guest_control", guest_control),
];

// ------------------------------------------------------- guest control

/// Feed `data` as the guest's control-channel bytes to `run`'s reader, all
/// at once and in pieces cut where the data says. Properties: no panic;
/// both ways give the same messages; at most one `Ready` and one `Exit`;
/// an `Exit` only when the token's exit line is in the data; the reader
/// never holds more than its line bound.
pub fn guest_control(data: &[u8]) {
    use crate::container::control::{GuestMessage, GuestReader, RunToken, MAX_LINE};
    const TOKEN: &str = "0123456789abcdef0123456789abcdef";
    let token = RunToken::from_hex(TOKEN);
    let mut whole = GuestReader::new(token.clone());
    let all = whole.feed(data);
    let mut pieces = GuestReader::new(token);
    let step = data.first().map_or(1, |b| usize::from(*b % 17) + 1);
    let mut cut = Vec::new();
    for chunk in data.chunks(step) {
        cut.extend(pieces.feed(chunk));
        assert!(pieces.buffered() <= MAX_LINE, "the reader holds {} bytes", pieces.buffered());
    }
    assert_eq!(all, cut, "messages depend on how the bytes arrived");
    assert!(all.iter().filter(|m| **m == GuestMessage::Ready).count() <= 1);
    let exits = all.iter().filter(|m| matches!(m, GuestMessage::Exit(_))).count();
    assert!(exits <= 1);
    if exits == 1 {
        let needle = format!("XC-EXIT {TOKEN} ");
        assert!(data.windows(needle.len()).any(|w| w == needle.as_bytes()), "an exit without the token's line");
    }
}

// ------------------------------------------------------------------ oci

/// Parse `data` as an OCI index, manifest and image config: refusals are
/// fine, panics are not.
pub fn oci_image_json(data: &[u8]) {
    let _ = crate::oci::fuzz::parse_image_json(data);
}

/// Unpack `data` as an image tar (OCI layout or docker save): nothing may
/// land outside the staging rootfs, and a refused image leaves nothing
/// (both asserted inside `oci::fuzz::unpack_image_tar`).
pub fn oci_image_tar(data: &[u8]) {
    let _ = crate::oci::fuzz::unpack_image_tar(data);
}
/// A tiny valid OCI layout as one tar (one uncompressed layer: a file, a
/// symlink and a whiteout), built here rather than committed: the replay
/// test checks it unpacks, and `scripts/fuzz` writes it as the seed of
/// `oci_image_tar` (converter/examples/write_fuzz_seeds.rs).
pub fn oci_seed_image_tar() -> Vec<u8> {
    use sha2::{Digest, Sha256};
    /// (path, file bytes, symlink target); neither: a directory.
    type TarEntry<'a> = (&'a str, Option<&'a [u8]>, Option<&'a str>);
    fn tar_of(entries: &[TarEntry]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data, link) in entries {
            let mut h = tar::Header::new_ustar();
            h.set_size(data.map_or(0, |d| d.len() as u64));
            h.set_mode(0o755);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            match (data, link) {
                (_, Some(target)) => {
                    h.set_entry_type(tar::EntryType::Symlink);
                    h.set_link_name(target).expect("link name");
                }
                (Some(_), None) => h.set_entry_type(tar::EntryType::Regular),
                (None, None) => h.set_entry_type(tar::EntryType::Directory),
            }
            h.set_cksum();
            b.append_data(&mut h, name, data.unwrap_or(&[][..])).expect("tar entry");
        }
        b.into_inner().expect("tar")
    }
    let digest = |d: &[u8]| format!("sha256:{}", hex::encode(Sha256::digest(d)));
    let layer = tar_of(&[("bin/", None, None), ("bin/sh", Some(b"#!/bin/sh\n"), None), ("bin/ln", None, Some("sh")), ("etc/", None, None), ("etc/.wh.gone", Some(b""), None)]);
    let config = serde_json::json!({"architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"], "User": "0:0"},
        "rootfs": {"type": "layers", "diff_ids": [digest(&layer)]}})
    .to_string()
    .into_bytes();
    let manifest = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(&config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest(&layer), "size": layer.len()}]})
    .to_string()
    .into_bytes();
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": digest(&manifest), "size": manifest.len(), "platform": {"architecture": "amd64", "os": "linux"}}]})
    .to_string()
    .into_bytes();
    let blob = |d: &[u8]| format!("blobs/sha256/{}", &digest(d)["sha256:".len()..]);
    let (lb, cb, mb) = (blob(&layer), blob(&config), blob(&manifest));
    tar_of(&[
        ("oci-layout", Some(br#"{"imageLayoutVersion":"1.0.0"}"#), None),
        ("index.json", Some(&index), None),
        ("blobs/", None, None),
        ("blobs/sha256/", None, None),
        (&lb, Some(&layer), None),
        (&cb, Some(&config), None),
        (&mb, Some(&manifest), None),
    ])
}


// ------------------------------------------------------------------ tar

/// Extract `data` as a tar stream the way `pull` does and, when the tree
/// would be published, check that nothing in it reaches outside it: no
/// entry outside the unpack directory, no symlink that resolves (by the
/// kernel's rules) outside the published tree.
pub fn tar_extract(data: &[u8]) {
    let scratch = tempfile::tempdir().expect("scratch directory");
    let unpack = scratch.path().join("unpack");
    std::fs::create_dir(&unpack).expect("unpack directory");
    let extracted = crate::source::extract_tar_safely(data, &unpack);
    // Whatever happened, nothing was written beside the unpack directory.
    let beside: Vec<_> = std::fs::read_dir(scratch.path()).expect("list scratch").map(|e| e.expect("dirent").file_name()).collect();
    assert_eq!(beside, vec![std::ffi::OsString::from("unpack")], "extraction wrote outside its destination");
    if extracted.is_err() {
        return;
    }
    let published = crate::source::published_tree_check(&unpack).expect("walk the unpacked tree");
    let Some(root) = published else { return }; // refused at publication
    let root = root.canonicalize().expect("canonical root");
    for entry in walkdir::WalkDir::new(&root).min_depth(1).follow_links(false) {
        let entry = entry.expect("walk published tree");
        let path = entry.path();
        assert!(path.starts_with(&root), "{} outside the tree", path.display());
        if entry.file_type().is_symlink() {
            let target = std::fs::read_link(path).expect("read link");
            let lands = nearest_existing(&path.parent().expect("parent").join(&target));
            assert!(
                lands.starts_with(&root),
                "published link {} -> {} resolves to {} outside {}",
                path.display(),
                target.display(),
                lands.display(),
                root.display()
            );
        }
    }
}

/// Where the kernel would take `path`: canonicalize it, or, when it does
/// not exist (a dangling link), its nearest existing ancestor plus the rest
/// (which then cannot climb any more: `..` of a missing directory fails).
fn nearest_existing(path: &Path) -> PathBuf {
    let mut missing = Vec::new();
    let mut at = path.to_path_buf();
    loop {
        if let Ok(real) = at.canonicalize() {
            return missing.iter().rev().fold(real, |p, c: &std::ffi::OsString| p.join(c));
        }
        match (at.file_name().map(|n| n.to_os_string()), at.parent()) {
            (Some(name), Some(parent)) => {
                missing.push(name);
                at = parent.to_path_buf();
            }
            // `..` at the end, or the root: resolve lexically one step up.
            _ => match at.parent() {
                Some(parent) => at = parent.to_path_buf(),
                None => return at,
            },
        }
    }
}

// ------------------------------------------------------------- kconfig

/// Deterministic symbol values derived from a seed: every symbol gets
/// y, m, n, a number or a string, so expressions are evaluated in many
/// states without the input having to spell them.
struct SeededValues(u64);

impl Values for SeededValues {
    fn value(&self, name: &str) -> String {
        let mut h = DefaultHasher::new();
        (self.0, name).hash(&mut h);
        match h.finish() % 6 {
            0 => "y".into(),
            1 => "m".into(),
            2 => "n".into(),
            3 => "16".into(),
            4 => "0x10".into(),
            _ => "str".into(),
        }
    }
}

/// Parse `data` as a `depends on` expression. Properties: evaluation is
/// total; `blame` names leaves exactly when the value is below what is
/// needed; and the expression as displayed (in messages and
/// `configured.json`) parses back to one that evaluates the same.
pub fn kconfig_expr(data: &[u8]) {
    let Some((&seed, text)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(text) else { return };
    let Ok(expr) = Expr::parse(text) else { return };
    let shown = expr.to_string();
    let again = Expr::parse(&shown).unwrap_or_else(|e| panic!("{text:?} displays as {shown:?}, which does not parse: {e}"));
    for s in 0..4u64 {
        let values = SeededValues(u64::from(seed) * 4 + s);
        let value = expr.eval(&values);
        assert_eq!(again.eval(&values), value, "{text:?} and its display {shown:?} evaluate differently");
        for need in [Tristate::N, Tristate::M, Tristate::Y] {
            let blamed = expr.blame(need, &values);
            if value >= need {
                assert!(blamed.is_empty(), "{text:?} = {value} meets {need} but blames {blamed:?}");
            } else {
                assert!(!blamed.is_empty(), "{text:?} = {value} is below {need} and blames nothing");
            }
        }
    }
}

/// Parse `data` as Kconfig files (split at NUL bytes into `Kconfig`,
/// `a/Kconfig`, `b/Kconfig`, so `source` has something to find). Properties:
/// loading returns a result (no panic, no hang); every symbol is found by
/// its name; every dependency evaluates; explaining any symbol works.
pub fn kconfig_parse(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let tree = tempfile::tempdir().expect("tree");
    for (i, part) in text.split('\0').take(3).enumerate() {
        let path = match i {
            0 => tree.path().join("Kconfig"),
            n => tree.path().join(["a", "b"][n - 1]).join("Kconfig"),
        };
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, part).expect("write Kconfig");
    }
    let Ok(db) = KconfigDb::load(tree.path(), "x86") else { return };
    let config = DotConfig::parse("");
    for symbol in db.symbols() {
        assert!(db.symbol(&symbol.name).is_some_and(|s| s.name == symbol.name), "{} not found by name", symbol.name);
        for dep in &symbol.depends {
            let _ = dep.cond.expr.eval(&config);
        }
        let _ = db.explain(&symbol.name, &kconfig::Requested::Yes, &config);
    }
}

// ------------------------------------------------------------- profile

/// Load `data` as a profile layer next to the built-in ones and resolve it
/// for both supported series. Properties: no panic; every resolved option
/// is a valid Kconfig symbol name (it becomes a `.config` line); every
/// value survives being written to `.config` and read back.
pub fn profile_load(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut catalog = Catalog::builtin();
    catalog.add_text("fuzz", text);
    for series in [Series(6, 1), Series(6, 12)] {
        let Ok(resolved) = catalog.resolve("fuzz", series) else { continue };
        for (name, option) in &resolved.options {
            assert!(
                !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
                "option name {name:?} is not a Kconfig symbol"
            );
            if let Setting::Value(v) = &option.setting {
                let line = format!("CONFIG_{name}={}\n", kconfig::quote(v));
                let back = DotConfig::parse(&line);
                assert_eq!(back.get(name).map(kconfig::unquote).as_deref(), Some(v.as_str()), "{line:?}");
            }
        }
    }
}

// ----------------------------------------------------------------- ELF

/// Read `data` as an ELF file the two ways the converter does: the guest
/// packer's static-executable check and ABOM's scan. Properties: no panic;
/// every site and every syscall left alone lies inside the file, with a
/// `syscall` instruction where the report says.
pub fn elf_read(data: &[u8]) {
    let _ = crate::guest::check_static_elf(data);
    let Ok(report) = crate::abom::scan(data) else { return };
    assert_eq!(report.syscalls_seen, report.sites.len() + report.left_alone.len());
    for site in &report.sites {
        let end = site.offset as usize + site.byte_len();
        let bytes = data.get(site.offset as usize..end).unwrap_or_else(|| panic!("site {:#x} outside the file", site.offset));
        assert_eq!(&bytes[bytes.len() - 2..], [0x0f, 0x05], "site {:#x} does not end in syscall", site.offset);
        assert_eq!(bytes, site.original_bytes().as_slice(), "site {:#x}", site.offset);
    }
    for left in &report.left_alone {
        // The instruction may carry prefixes (`48 0f 05` is a syscall too).
        let at = left.offset as usize;
        let insn = data.get(at..).unwrap_or_else(|| panic!("left-alone {at:#x} outside the file"));
        let prefixes = insn.iter().take_while(|b| is_prefix(**b)).count();
        assert_eq!(insn.get(prefixes..prefixes + 2), Some(&[0x0f, 0x05][..]), "left-alone {at:#x} is not a syscall");
    }
}

/// x86 legacy and REX prefix bytes.
fn is_prefix(b: u8) -> bool {
    matches!(b, 0x40..=0x4f | 0x66 | 0x67 | 0xf0 | 0xf2 | 0xf3 | 0x2e | 0x36 | 0x3e | 0x26 | 0x64 | 0x65)
}

/// Rewrite `data` with ABOM. Properties: same length; every byte that
/// differs lies in a reported site; `restore` gives the input back; a
/// second scan finds none of the rewritten sites again.
pub fn abom_rewrite(data: &[u8]) {
    let Ok((out, report)) = crate::abom::rewrite(data) else { return };
    assert_eq!(out.len(), data.len(), "rewrite changed the length");
    let mut in_site = vec![false; data.len()];
    for site in &report.sites {
        let start = site.offset as usize;
        in_site[start..start + site.byte_len()].iter_mut().for_each(|b| *b = true);
    }
    for (i, (a, b)) in data.iter().zip(&out).enumerate() {
        assert!(a == b || in_site[i], "byte {i:#x} changed outside every reported site");
    }
    let restored = crate::abom::restore(&out, &report).expect("restore the rewrite");
    assert!(restored == data, "restore did not give the input back");
    if let Ok(again) = crate::abom::scan(&out) {
        for site in &again.sites {
            assert!(!report.sites.iter().any(|s| s.offset == site.offset), "site {:#x} found again after rewriting", site.offset);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_oci_seed_is_a_valid_image_and_holds_the_property() {
        let seed = oci_seed_image_tar();
        let unpacked = crate::oci::fuzz::unpack_image_tar(&seed).expect("the seed image unpacks");
        assert_eq!(unpacked.spec.args, ["/bin/sh"]);
        oci_image_tar(&seed);
    }

    /// Every corpus file (seeds and fixed findings) through its property.
    #[test]
    fn fuzz_corpus_inputs_hold_their_properties() {
        let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
        let mut ran = 0;
        for (name, property) in TARGETS {
            let dir = corpus.join(name);
            let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .map(|e| e.expect("dirent").path())
                .collect();
            files.sort();
            assert!(!files.is_empty(), "no corpus for {name}");
            for file in files {
                let data = std::fs::read(&file).expect("corpus file");
                let outcome = std::panic::catch_unwind(|| property(&data));
                assert!(outcome.is_ok(), "{name}: {} breaks its property", file.display());
                ran += 1;
            }
        }
        assert!(ran >= TARGETS.len());
    }
}
