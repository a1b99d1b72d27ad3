//! Build script: embed the kconfig profiles (and, later, guest programs).
use std::env;
use std::fs;
use std::path::{Path, PathBuf};

fn main() {
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
    embed_profiles(&out);
}

/// Generate `profiles.rs`: one (name, text) entry per kconfig-profiles/*.toml,
/// so the binary works from anywhere and `--help` lists exactly what ships.
fn embed_profiles(out: &Path) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../kconfig-profiles");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut entries: Vec<PathBuf> = fs::read_dir(&dir)
        .expect("kconfig-profiles/ beside converter/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    entries.sort();
    let mut code = String::from("/// (name, TOML text) of every shipped profile.\npub static PROFILES: &[(&str, &str)] = &[\n");
    for p in entries {
        println!("cargo:rerun-if-changed={}", p.display());
        let name = p.file_stem().unwrap().to_string_lossy().into_owned();
        let abs = p.canonicalize().unwrap();
        code.push_str(&format!("    ({name:?}, include_str!({:?})),\n", abs.display().to_string()));
    }
    code.push_str("];\n");
    fs::write(out.join("profiles.rs"), code).unwrap();
}
