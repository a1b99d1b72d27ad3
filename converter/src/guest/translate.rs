//! Offline binary translation of a boot's guest side (`boot --translate`).
//!
//! Every ELF guest program is rewritten with `abom::rewrite` before it is
//! packed, and a dynamic check is added: Debian's dynamically linked `dash`
//! runs a script against a rewritten `libc.so.6` (the program loader,
//! `ld-linux`, stays as shipped). A rewritten binary would crash on a kernel
//! without the entry table, so `/init` first runs a guard, [`GUARD`], that
//! refuses to run anything when `/proc/xc_libos` does not announce the
//! table: a failed check with a reason instead of a crash.

use super::{GuestError, GuestPayload};
use crate::abom;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Name of the `/init` step that checks the kernel maps the entry table.
pub const GUARD: &str = "xc_translate";
/// Name of the dash script that runs on the rewritten libc.
pub const DYNAMIC_CHECK: &str = "xc_dynamic";

/// Where the dynamic check looks for the shell and the C library.
const DASH_CANDIDATES: &[&str] = &["/usr/bin/dash", "/bin/dash"];
const LIBC_CANDIDATES: &[&str] = &["/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/libc.so.6"];
/// Where libc goes in the guest (a directory ld.so searches by default on
/// Debian; /init also sets LD_LIBRARY_PATH to it since there is no ld.so.cache).
pub const GUEST_LIBC_DIR: &str = "lib/x86_64-linux-gnu";

/// A file placed at a fixed path in the initramfs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraFile {
    /// Path inside the guest, relative to `/`.
    pub path: String,
    pub mode: u32,
    pub bytes: Vec<u8>,
}

/// What the rewrite did to one file.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TranslatedFile {
    /// Guest path.
    pub path: String,
    /// Sites rewritten into table calls.
    pub sites: usize,
    /// `syscall` instructions left alone.
    pub left_alone: usize,
}

/// The guest side of a translated boot.
#[derive(Debug, Clone)]
pub struct Translated {
    /// The programs (rewritten where they are ELF files), then [`DYNAMIC_CHECK`].
    pub programs: Vec<GuestPayload>,
    /// dash, its loader and the rewritten libc.
    pub files: Vec<ExtraFile>,
    /// One entry per rewritten file.
    pub report: Vec<TranslatedFile>,
}

#[derive(Debug, thiserror::Error)]
pub enum TranslateError {
    #[error("cannot translate {what}")]
    Rewrite { what: String, #[source] source: abom::AbomError },
    #[error("{what} not found (looked in {searched}); install it with `apt-get install {package}`")]
    Missing { what: &'static str, searched: String, package: &'static str },
    #[error("cannot read {path}")]
    Read { path: PathBuf, #[source] source: std::io::Error },
    #[error("{path}: {reason}")]
    BadElf { path: PathBuf, reason: String },
    #[error(transparent)]
    Guest(#[from] GuestError),
}

fn rewrite(what: &str, bytes: &[u8]) -> Result<(Vec<u8>, TranslatedFile), TranslateError> {
    let (out, report) = abom::rewrite(bytes).map_err(|source| TranslateError::Rewrite { what: what.to_owned(), source })?;
    Ok((out, TranslatedFile { path: what.to_owned(), sites: report.sites.len(), left_alone: report.left_alone.len() }))
}

fn first_existing(what: &'static str, candidates: &[&str], package: &'static str) -> Result<PathBuf, TranslateError> {
    candidates.iter().map(PathBuf::from).find(|p| p.is_file()).ok_or_else(|| TranslateError::Missing {
        what,
        searched: candidates.join(", "),
        package,
    })
}

fn read(path: &Path) -> Result<Vec<u8>, TranslateError> {
    std::fs::read(path).map_err(|source| TranslateError::Read { path: path.to_owned(), source })
}

/// The program interpreter (PT_INTERP) a dynamic executable asks for.
fn interpreter(path: &Path, elf: &[u8]) -> Result<String, TranslateError> {
    use object::read::elf::{ElfFile64, ProgramHeader};
    let bad = |reason: String| TranslateError::BadElf { path: path.to_owned(), reason };
    let file = ElfFile64::<object::Endianness>::parse(elf).map_err(|e| bad(e.to_string()))?;
    let endian = file.endian();
    for ph in file.elf_program_headers() {
        if let Some(interp) = ph.interpreter(endian, elf).map_err(|e| bad(e.to_string()))? {
            let s = String::from_utf8_lossy(interp).into_owned();
            // never trust a path from a file: it must be absolute and plain
            if s.starts_with('/') && !s.split('/').any(|c| c == "..") {
                return Ok(s);
            }
            return Err(bad(format!("unusable interpreter path {s:?}")));
        }
    }
    Err(bad("no PT_INTERP: not a dynamically linked executable".into()))
}

/// Rewrite `programs` and add the dynamic check.
pub fn translate(programs: &[GuestPayload]) -> Result<Translated, TranslateError> {
    let mut out = Translated { programs: Vec::new(), files: Vec::new(), report: Vec::new() };
    for p in programs {
        if p.bytes.starts_with(b"\x7fELF") {
            let (bytes, r) = rewrite(&format!("xc/{}", p.name), &p.bytes)?;
            out.report.push(r);
            out.programs.push(GuestPayload { name: p.name.clone(), bytes });
        } else {
            out.programs.push(p.clone());
        }
    }
    let dash_path = first_existing("dash (a dynamically linked /bin/sh)", DASH_CANDIDATES, "dash")?;
    let dash = read(&dash_path)?;
    let interp = interpreter(&dash_path, &dash)?;
    let loader = read(Path::new(&interp))?;
    let libc_path = first_existing("libc.so.6", LIBC_CANDIDATES, "libc6")?;
    let libc_guest = format!("{GUEST_LIBC_DIR}/libc.so.6");
    let (libc, r) = rewrite(&libc_guest, &read(&libc_path)?)?;
    out.report.push(r);
    out.files.push(ExtraFile { path: "bin/dash".into(), mode: 0o755, bytes: dash });
    out.files.push(ExtraFile { path: interp.trim_start_matches('/').to_owned(), mode: 0o755, bytes: loader });
    out.files.push(ExtraFile { path: libc_guest, mode: 0o755, bytes: libc });
    out.programs.push(GuestPayload { name: DYNAMIC_CHECK.into(), bytes: DYNAMIC_SCRIPT.as_bytes().to_vec() });
    Ok(out)
}

/// Run by Debian's dynamic dash on the rewritten libc. With online
/// translation off (`xc_abom=off`) every table call while it runs comes
/// from the offline rewrite.
const DYNAMIC_SCRIPT: &str = r#"#!/bin/dash
# xc_dynamic: Debian's dynamically linked dash on the rewritten libc.so.6.
fail=0
check() {
	if [ "$2" = 0 ]; then r=PASS; else r=FAIL; fail=1; fi
	echo "XC-CHECK xc_dynamic $1 $r $3"
}
table() { /bin/busybox awk '$1 == "syscalls_via_table" { print $2 }' /proc/xc_libos; }
t0=$(table)
i=0
while [ $i -lt 200 ]; do
	echo "line $i" > /tmp/xc_dynamic
	i=$((i + 1))
done
read l < /tmp/xc_dynamic
t1=$(table)
[ "$l" = "line 199" ]
check dash_io $? "read back '$l' after 200 writes"
/bin/busybox grep -q " /lib/x86_64-linux-gnu/libc.so.6" /proc/$$/maps
check libc_mapped $? "dash maps /lib/x86_64-linux-gnu/libc.so.6"
d=$((t1 - t0))
[ "$d" -ge 600 ]
check table_calls $? "syscalls_via_table grew by $d while dash ran 200 redirections"
exit $fail
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_are_rewritten_and_dash_runs_on_a_rewritten_libc() {
        assert!(DASH_CANDIDATES.iter().any(|p| Path::new(p).exists()), "no dash on this host (apt-get install dash)");
        let probe = GuestPayload::from(super::super::find("probe").unwrap());
        let script = GuestPayload { name: "s".into(), bytes: b"#!/bin/sh\n".to_vec() };
        let t = translate(&[probe.clone(), script.clone()]).unwrap();
        let names: Vec<&str> = t.programs.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["probe", "s", DYNAMIC_CHECK]);
        assert_ne!(t.programs[0].bytes, probe.bytes, "probe has mov+syscall sites");
        assert_eq!(t.programs[0].bytes.len(), probe.bytes.len());
        assert_eq!(t.programs[1], script, "scripts pass through");
        let (expected, _) = abom::rewrite(&probe.bytes).unwrap();
        assert_eq!(t.programs[0].bytes, expected);
        let libc = t.files.iter().find(|f| f.path.ends_with("libc.so.6")).unwrap();
        let host = std::fs::read(first_existing("libc", LIBC_CANDIDATES, "libc6").unwrap()).unwrap();
        assert_eq!(libc.bytes, abom::rewrite(&host).unwrap().0);
        assert!(t.files.iter().any(|f| f.path.starts_with("lib") && f.path.contains("ld-linux")));
        assert!(t.report.iter().all(|r| r.sites > 0), "{:?}", t.report);
        assert!(DYNAMIC_SCRIPT.contains(&format!("/{GUEST_LIBC_DIR}/libc.so.6")));
    }

    #[test]
    fn interpreter_paths_are_checked() {
        let dash = DASH_CANDIDATES.iter().map(Path::new).find(|p| p.exists());
        let Some(dash) = dash else { return };
        let interp = interpreter(dash, &std::fs::read(dash).unwrap()).unwrap();
        assert!(interp.starts_with('/') && interp.contains("ld-linux"), "{interp}");
        let probe = super::super::find("probe").unwrap();
        assert!(matches!(interpreter(Path::new("probe"), probe.bytes), Err(TranslateError::BadElf { .. })));
    }
}
