//! Run bindgen on the committed library-OS ABI header, so a test can compare
//! what C sees with what Rust defines (tests/tests/abi_bindgen.rs).
fn main() {
    let header = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../pv-interface/include/xc_libos_abi.h");
    println!("cargo:rerun-if-changed={}", header.display());
    let bindings = bindgen::Builder::default()
        .header(header.display().to_string())
        .allowlist_item("(XC|xc)_.*")
        .layout_tests(false)
        .generate()
        .expect("bindgen on xc_libos_abi.h");
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    bindings.write_to_file(out.join("xc_libos_abi.rs")).expect("write bindings");
}
