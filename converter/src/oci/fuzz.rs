//! Entry points for fuzz targets: bytes in, no panic, nothing outside the rootfs.

use std::fs;
use std::path::Path;

use super::layers::{Applier, ApplyStats, LayerError};
use super::layout;
use super::{OciError, Overrides, UnpackedImage};

/// Parse `bytes` as an image index, a manifest and a configuration; each
/// may be refused, none may panic. Returns how many parsed.
pub fn parse_image_json(bytes: &[u8]) -> usize {
    [
        layout::parse_index(bytes).is_ok(),
        layout::parse_manifest(bytes).is_ok(),
        layout::parse_config(bytes).is_ok(),
    ]
    .iter()
    .filter(|ok| **ok)
    .count()
}

/// Apply `layers` (each any of gzip/zstd/tar, whiteouts and all) onto a
/// fresh rootfs in a temporary directory beside an empty `outside`
/// directory, and panic if anything appeared next to the rootfs or in
/// `outside` (an escape through `..` or a symlink would land there).
pub fn apply_layers_contained(layers: &[&[u8]]) -> Result<ApplyStats, LayerError> {
    let scratch = tempfile::tempdir().expect("temporary directory");
    let rootfs = scratch.path().join("rootfs");
    let outside = scratch.path().join("outside");
    fs::create_dir(&rootfs).expect("rootfs dir");
    fs::create_dir(&outside).expect("outside dir");
    let result = (|| {
        let mut applier = Applier::new(&rootfs)?;
        for (i, layer) in layers.iter().enumerate() {
            applier.apply_bytes(layer, &format!("layer{i}"))?;
        }
        applier.finish()
    })();
    assert_contained(scratch.path());
    result
}

fn assert_contained(scratch: &Path) {
    let mut names: Vec<String> = fs::read_dir(scratch)
        .expect("list scratch")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["outside", "rootfs"],
        "a layer wrote beside the rootfs"
    );
    assert!(
        fs::read_dir(scratch.join("outside"))
            .expect("list outside")
            .next()
            .is_none(),
        "a layer wrote outside the rootfs"
    );
}

/// Unpack `bytes` as an image tar (any of the forms [`super::unpack`]
/// reads), and panic if anything is left beside the staging rootfs or
/// appears in a sibling `outside` directory.
pub fn unpack_image_tar(bytes: &[u8]) -> Result<UnpackedImage, OciError> {
    let scratch = tempfile::tempdir().expect("temporary directory");
    let image = scratch.path().join("image.tar");
    let work = scratch.path().join("work");
    let outside = scratch.path().join("outside");
    fs::write(&image, bytes).expect("write image");
    fs::create_dir(&work).expect("work dir");
    fs::create_dir(&outside).expect("outside dir");
    let result = super::unpack(&image, &work.join("rootfs"), &Overrides::default());
    let left: Vec<String> = fs::read_dir(&work)
        .expect("list work")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    let expected: &[&str] = if result.is_ok() { &["rootfs"] } else { &[] };
    assert_eq!(
        left, expected,
        "unpack left scratch behind or kept a failed rootfs"
    );
    assert!(
        fs::read_dir(&outside)
            .expect("list outside")
            .next()
            .is_none(),
        "an image wrote outside its rootfs"
    );
    result
}
