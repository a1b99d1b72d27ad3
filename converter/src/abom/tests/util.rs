//! Building test binaries with the host toolchain and checking rewrites.

use std::path::Path;
use std::process::Command;

use iced_x86::{Code, Decoder, DecoderOptions, Register};

use crate::abom::{restore, rewrite, table_slot_addr, Report, Site};

/// Run a host tool, panicking with its output if it fails.
pub fn run(dir: &Path, program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Assemble `source` and link it with `ld` plus `ld_args`; return the file.
pub fn assemble_and_link(source: &str, ld_args: &[&str]) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("t.s"), source).expect("write source");
    run(dir.path(), "as", &["--64", "-o", "t.o", "t.s"]);
    let mut args = vec!["-o", "t", "t.o"];
    args.extend_from_slice(ld_args);
    run(dir.path(), "ld", &args);
    std::fs::read(dir.path().join("t")).expect("read linked file")
}

/// Compile a C program with `gcc` and `flags`; return the file.
pub fn compile_c(source: &str, flags: &[&str]) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("t.c"), source).expect("write source");
    let mut args = vec!["-O2", "-o", "t", "t.c"];
    args.extend_from_slice(flags);
    run(dir.path(), "gcc", &args);
    std::fs::read(dir.path().join("t")).expect("read compiled file")
}

/// Rewrite `input` and check everything the rewrite promises: same length,
/// bytes differ only inside reported sites, each site decodes to
/// `call qword ptr [slot]` (after a 2-byte nop for the 9-byte form), and
/// restoring the original bytes gives back the input.
pub fn rewrite_and_check(input: &[u8]) -> (Vec<u8>, Report) {
    let (output, report) = rewrite(input).expect("rewrite");
    assert_eq!(output.len(), input.len());
    assert_eq!(
        report.syscalls_seen,
        report.sites.len() + report.left_alone.len()
    );
    let mut in_site = vec![false; input.len()];
    for site in &report.sites {
        let range = site.offset as usize..site.offset as usize + site.byte_len();
        in_site[range.clone()].iter_mut().for_each(|b| *b = true);
        assert_eq!(
            &input[range.clone()],
            site.original_bytes().as_slice(),
            "input at {site:?}"
        );
        check_patched(&output[range], site);
    }
    let stray: Vec<usize> = (0..input.len())
        .filter(|&i| !in_site[i] && input[i] != output[i])
        .collect();
    assert!(
        stray.is_empty(),
        "bytes changed outside sites at offsets {stray:x?}"
    );
    assert_eq!(
        restore(&output, &report).expect("restore"),
        input,
        "restore gives back the input"
    );
    (output, report)
}

/// The rewritten bytes of one site decode to the intended instructions, and
/// a jump to where `syscall` used to be hits an invalid opcode.
fn check_patched(bytes: &[u8], site: &Site) {
    let call_at = site.form.call_offset();
    if call_at > 0 {
        let nop = Decoder::new(64, &bytes[..call_at], DecoderOptions::NONE).decode();
        assert_eq!(nop.mnemonic(), iced_x86::Mnemonic::Nop, "{site:?}");
    }
    let call = Decoder::new(64, &bytes[call_at..], DecoderOptions::NONE).decode();
    assert_eq!(call.code(), Code::Call_rm64, "{site:?}");
    assert_eq!(call.len(), bytes.len() - call_at, "{site:?}");
    assert_eq!(call.memory_base(), Register::None, "{site:?}");
    assert_eq!(call.memory_index(), Register::None, "{site:?}");
    assert_eq!(
        call.memory_displacement64(),
        table_slot_addr(site.nr).unwrap(),
        "{site:?}"
    );
    let old_syscall = Decoder::new(64, &bytes[bytes.len() - 2..], DecoderOptions::NONE).decode();
    assert!(
        old_syscall.is_invalid(),
        "jump to old syscall of {site:?} decodes as {:?}",
        old_syscall.code()
    );
}
