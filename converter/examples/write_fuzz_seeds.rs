//! Write the fuzz seeds that are built, not committed (a tiny OCI image
//! tar), into DIR/<target>/: `scripts/fuzz` runs this before libFuzzer.
//!
//!   cargo run -q -p xc-convert --example write_fuzz_seeds -- target/fuzz/corpus

fn main() -> std::io::Result<()> {
    let dir = std::env::args_os().nth(1).map(std::path::PathBuf::from).unwrap_or_else(|| {
        eprintln!("usage: write_fuzz_seeds DIR");
        std::process::exit(2)
    });
    let dir = dir.join("oci_image_tar");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("built-oci-layout.tar"), xc_convert::fuzzing::oci_seed_image_tar())
}
