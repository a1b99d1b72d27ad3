//! Build script: embed the kconfig profiles, and compile the guest programs
//! in `guest/*.c` and embed them.
//!
//! The guest programs run inside the booted kernel, not on the host, so they
//! are linked statically (the initramfs has no libc) and handed to the
//! `xc-convert` binary as byte arrays. That way a single binary can build a
//! test initramfs without any guest toolchain at run time.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Directory (relative to the crate root) holding the guest C sources.
const GUEST_DIR: &str = "guest";
/// Generated Rust file, included by `src/guest/mod.rs`.
const GENERATED: &str = "guest_programs.rs";

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
    let guest_dir = manifest_dir.join(GUEST_DIR);
    println!("cargo:rerun-if-changed={}", guest_dir.display());

    // Shared headers (xc_check.h) change the programs too.
    for entry in fs::read_dir(&guest_dir).into_iter().flatten().flatten() {
        if entry.path().extension().is_some_and(|x| x == "h") {
            println!("cargo:rerun-if-changed={}", entry.path().display());
        }
    }
    let sources = guest_sources(&guest_dir);
    let mut programs = Vec::new();
    for src in &sources {
        println!("cargo:rerun-if-changed={}", src.display());
        let name = program_name(src);
        let exe = out_dir.join(format!("guest-{name}"));
        compile_static(src, &exe);
        programs.push((name, exe));
    }
    let generated = render_table(&programs);
    fs::write(out_dir.join(GENERATED), generated).expect("write generated guest table");
    embed_profiles(&manifest_dir, &out_dir);
    embed_patches(&manifest_dir, &out_dir);
}

/// Generate `patches.rs`: (set, file, text) for every patches/<set>/*.toml.
fn embed_patches(manifest_dir: &Path, out: &Path) {
    let root = manifest_dir.join("../patches");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut code = String::from("/// (set, file, TOML text) of every shipped patch-set file.\npub static PATCH_FILES: &[(&str, &str, &str)] = &[\n");
    let mut sets: Vec<PathBuf> = fs::read_dir(&root)
        .expect("patches/ beside converter/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    sets.sort();
    for set in sets {
        println!("cargo:rerun-if-changed={}", set.display());
        let set_name = set.file_name().expect("set name").to_string_lossy().into_owned();
        for (f, abs) in toml_files(&set) {
            let name = f.file_name().expect("file name").to_string_lossy().into_owned();
            writeln!(code, "    ({set_name:?}, {name:?}, include_str!({abs:?})),").expect("write to String");
        }
    }
    code.push_str("];\n");
    fs::write(out.join("patches.rs"), code).expect("write generated patch table");
}

/// Generate `profiles.rs`: one (name, text) entry per kconfig-profiles/*.toml,
/// so the binary works from anywhere and lists exactly what ships.
fn embed_profiles(manifest_dir: &Path, out: &Path) {
    let dir = manifest_dir.join("../kconfig-profiles");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut code = String::from("/// (name, TOML text) of every shipped profile.\npub static PROFILES: &[(&str, &str)] = &[\n");
    for (p, abs) in toml_files(&dir) {
        let name = p.file_stem().expect("file name").to_string_lossy().into_owned();
        writeln!(code, "    ({name:?}, include_str!({abs:?})),").expect("write to String");
    }
    code.push_str("];\n");
    fs::write(out.join("profiles.rs"), code).expect("write generated profile table");
}

/// The `*.toml` files of `dir`, sorted, each with its absolute path for
/// `include_str!`; each is registered for rerun-if-changed.
fn toml_files(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|f| {
            println!("cargo:rerun-if-changed={}", f.display());
            let abs = f.canonicalize().expect("toml path").display().to_string();
            (f, abs)
        })
        .collect()
}

/// All `*.c` files in `dir`, sorted so the embedded table is deterministic.
fn guest_sources(dir: &Path) -> Vec<PathBuf> {
    let entries = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read guest source dir {}: {e}", dir.display()));
    let mut sources: Vec<PathBuf> = entries
        .map(|entry| entry.expect("read guest dir entry").path())
        .filter(|p| p.extension().is_some_and(|ext| ext == "c"))
        .collect();
    sources.sort();
    sources
}

fn program_name(src: &Path) -> String {
    let stem = src.file_stem().and_then(|s| s.to_str());
    let name = stem.unwrap_or_else(|| panic!("guest source {} has no UTF-8 name", src.display()));
    assert!(
        name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
        "guest program name {name:?} must be [A-Za-z0-9_-] (it becomes /xc/<name> and a shell word)"
    );
    name.to_owned()
}

/// Compile one source with the compiler `cc` detects for the target, adding
/// `-static` ourselves because `cc` only knows how to build libraries.
fn compile_static(src: &Path, exe: &Path) {
    let compiler = cc::Build::new().debug(false).cargo_metadata(false).get_compiler();
    let mut cmd: Command = compiler.to_command();
    cmd.args(["-static", "-O2", "-Wall", "-o"]).arg(exe).arg(src);
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("cannot run guest compiler {cmd:?}: {e}"));
    assert!(
        status.success(),
        "compiling guest program {} failed ({status}); command: {cmd:?}\n\
         hint: static linking needs the libc static archives (Debian: libc6-dev)",
        src.display()
    );
}

/// Emit a `BUILTIN` slice of `GuestProgram`s with `include_bytes!` payloads.
fn render_table(programs: &[(String, PathBuf)]) -> String {
    let mut out = String::from("// @generated by converter/build.rs: do not edit.\n");
    out.push_str("pub(crate) static BUILTIN: &[GuestProgram] = &[\n");
    for (name, exe) in programs {
        writeln!(
            out,
            "    GuestProgram {{ name: {name:?}, bytes: include_bytes!({path:?}) }},",
            path = exe.display().to_string()
        )
        .expect("write to String");
    }
    out.push_str("];\n");
    out
}
