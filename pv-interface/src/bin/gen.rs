//! Write (or with `--check`, verify) pv-interface/include/xc_libos_abi.h.
use std::path::Path;

fn main() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("include/xc_libos_abi.h");
    let header = pv_interface::c_header();
    let check = std::env::args().any(|a| a == "--check");
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    if check {
        if current != header {
            eprintln!("{} is stale: run `cargo run -p pv-interface --bin pv-interface-gen`", path.display());
            std::process::exit(1);
        }
        return;
    }
    if current != header {
        if let Err(e) = std::fs::write(&path, header) {
            eprintln!("writing {}: {e}", path.display());
            std::process::exit(1);
        }
        eprintln!("wrote {}", path.display());
    }
}
