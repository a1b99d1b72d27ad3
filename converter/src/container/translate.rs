//! `wrap --translate`: the offline ABOM over a rootfs's ELF files.
//!
//! Every x86-64 executable and shared library gets its `mov $nr,%eax;
//! syscall` sites rewritten into calls through the libOS entry table
//! (`crate::abom`). The program loader (`ld-linux*`) stays as shipped, as in
//! `boot --translate`. A rewritten file only runs on a kernel that maps the
//! table, so `wrap` refuses `--translate` with a stock kernel.

use crate::abom;
use serde::{Deserialize, Serialize};

/// What the rewrite did to one file of the rootfs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RewrittenFile {
    /// Path inside the rootfs.
    pub path: String,
    /// Sites rewritten into table calls.
    pub sites: usize,
    /// `syscall` instructions left alone (not a recognised site).
    pub left_alone: usize,
}

/// The whole rewrite, recorded in wrapped.json.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TranslateReport {
    /// Files whose bytes changed.
    pub rewritten: Vec<RewrittenFile>,
    /// ELF files kept as they are, with why (no sites, the loader, not x86-64...).
    pub kept: Vec<(String, String)>,
}

/// Whether `rel` is the dynamic loader, which is kept as shipped.
fn is_loader(rel: &str) -> bool {
    rel.rsplit('/').next().is_some_and(|n| n.starts_with("ld-linux"))
}

/// Rewrite one file if it is an ELF file worth rewriting; None: keep it.
pub fn rewrite_file(rel: &str, bytes: &[u8], report: &mut TranslateReport) -> Option<Vec<u8>> {
    if !bytes.starts_with(b"\x7fELF") {
        return None;
    }
    if is_loader(rel) {
        report.kept.push((rel.to_owned(), "the program loader stays as shipped".into()));
        return None;
    }
    match abom::rewrite(bytes) {
        Ok((_, r)) if r.sites.is_empty() => {
            report.kept.push((rel.to_owned(), format!("no rewritable site ({} syscall instructions)", r.syscalls_seen)));
            None
        }
        Ok((out, r)) => {
            report.rewritten.push(RewrittenFile { path: rel.to_owned(), sites: r.sites.len(), left_alone: r.left_alone.len() });
            Some(out)
        }
        Err(e) => {
            report.kept.push((rel.to_owned(), e.to_string()));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elf_programs_are_rewritten_and_others_kept_with_a_reason() {
        let probe = crate::guest::find("probe").unwrap().bytes;
        let mut r = TranslateReport::default();
        let out = rewrite_file("usr/bin/probe", probe, &mut r).expect("probe has sites");
        assert_eq!(out, abom::rewrite(probe).unwrap().0);
        assert_eq!(r.rewritten[0].path, "usr/bin/probe");
        assert!(r.rewritten[0].sites > 0);
        assert!(rewrite_file("etc/passwd", b"root:x:0:0", &mut r).is_none());
        assert!(rewrite_file("lib64/ld-linux-x86-64.so.2", probe, &mut r).is_none());
        assert_eq!(r.kept.len(), 1, "{:?}", r.kept);
    }
}
