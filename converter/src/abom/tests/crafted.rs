//! Hand-made binaries with one case per kind of site.

use super::util::{assemble_and_link, rewrite_and_check};
use crate::abom::{scan, SiteForm};

/// Every case the rewriter must get right, in one program (never run).
const SOURCE: &str = r#"
    .text
    .globl _start
    .type _start, @function
_start:
    nop                                 # put the first site at an odd address
    mov $39, %eax                       # site: getpid, 7-byte form
    syscall
    mov $110, %rax                      # site: getppid, 9-byte form
    syscall
    movabs $0x00050f00000027b8, %rax    # the pattern inside an imm64: no syscall here
    movabs $0x00000027b8000000, %rcx    # ends in b8 27 00 00 00, then a real syscall
    syscall                             # left alone: mov not at a boundary
    mov %edi, %eax
    syscall                             # left alone: no immediate
    mov $600, %eax
    syscall                             # left alone: outside the table
    mov $512, %eax
    syscall                             # left alone: first number past the table
    mov $510, %eax                      # site: last numbered slot, no name
    syscall
    mov $511, %eax
    syscall                             # left alone: the stack-number slot
    mov 0x8(%rsp), %rax                 # site: Go's number-on-the-stack form
    syscall
    mov $39, %eax
    .globl after
    .type after, @function
after:
    syscall                             # left alone: starts a function (jump target)
    mov $231, %eax                      # site: exit_group
    syscall
    jmp straddle
    .balign 4096, 0x90
    .skip 4093, 0x90
straddle:
    mov $102, %eax                      # site: getuid, crosses a 4 KiB page
    syscall
    ret
    .globl stepped
    .type stepped, @function
stepped:
    lea -128(%rsp), %rsp                # steps over the red zone: no data kept there
    mov $39, %eax                       # site: getpid
    syscall
    lea 128(%rsp), %rsp
    ret
    .globl redzone
    .type redzone, @function
redzone:
    mov %rdi, -8(%rsp)                  # a leaf keeping data in its red zone
    mov $39, %eax
    syscall                             # left alone: the call would overwrite -8(%rsp)
    mov -8(%rsp), %rax
    ret
    .globl poisoned
    .type poisoned, @function
poisoned:
    .byte 0x06                          # invalid in 64-bit mode
    mov $39, %eax
    syscall                             # left alone: decoder lost its footing

    .section .rodata
data_pattern:
    .byte 0xb8, 0x27, 0, 0, 0, 0x0f, 0x05
"#;

/// The pattern placed in .rodata (and inside the movabs).
const PATTERN: [u8; 7] = [0xb8, 0x27, 0, 0, 0, 0x0f, 0x05];

fn check_crafted(elf: &[u8]) {
    let report = scan(elf).expect("scan");
    let sites: Vec<(u32, &str, SiteForm)> = report
        .sites
        .iter()
        .map(|s| (s.nr, s.name.as_str(), s.form))
        .collect();
    assert_eq!(
        sites,
        vec![
            (39, "getpid", SiteForm::Mov32),
            (110, "getppid", SiteForm::Mov64),
            (510, "unknown", SiteForm::Mov32),
            (511, "(number from 8(%rsp))", SiteForm::StackNr),
            (231, "exit_group", SiteForm::Mov32),
            (102, "getuid", SiteForm::Mov32),
            (39, "getpid", SiteForm::Mov32),
        ]
    );
    assert_eq!(report.sites[0].offset % 2, 1, "first site at an odd offset");
    let straddle = &report.sites[5];
    assert_ne!(
        straddle.vaddr / 4096,
        (straddle.vaddr + 6) / 4096,
        "site crosses a page"
    );

    let reasons: Vec<&str> = report
        .left_alone
        .iter()
        .map(|l| l.reason.as_str())
        .collect();
    assert_eq!(reasons.len(), 8, "{reasons:#?}");
    assert_eq!(reasons[0], "mov not at an instruction boundary");
    assert_eq!(reasons[1], "not preceded by mov $imm32,%eax");
    assert_eq!(reasons[2], "number 600 outside the entry table");
    assert_eq!(reasons[3], "number 512 outside the entry table");
    assert!(reasons[4].contains("stack-number slot"), "{}", reasons[4]);
    assert!(
        reasons[5].starts_with("first instruction of its function"),
        "{}",
        reasons[5]
    );
    assert!(reasons[6].contains("red zone"), "{}", reasons[6]);
    assert!(
        reasons[7].starts_with("decoding not trusted"),
        "{}",
        reasons[7]
    );
    assert_eq!(report.syscalls_seen, 15);

    let (output, _) = rewrite_and_check(elf);
    // The pattern in the movabs and in .rodata survives; rewrite_and_check
    // already proved nothing outside the sites changed, this proves the
    // look-alikes were there to be (wrongly) matched.
    let look_alikes = output
        .windows(PATTERN.len())
        .filter(|w| *w == PATTERN)
        .count();
    // movabs imm64, movabs tail + syscall, the three real but refused pairs
    // (function start, red zone, after invalid bytes), and .rodata.
    assert_eq!(look_alikes, 6);
}

#[test]
fn static_executable() {
    let elf = assemble_and_link(SOURCE, &[]);
    assert_eq!(elf[16], 2, "ET_EXEC");
    check_crafted(&elf);
}

#[test]
fn shared_object() {
    let elf = assemble_and_link(SOURCE, &["-shared"]);
    assert_eq!(elf[16], 3, "ET_DYN");
    check_crafted(&elf);
}

#[test]
fn stripped_file_still_found_by_sections() {
    // Without .symtab the sweep runs over whole sections, so the function
    // boundary at `after` is unknown and its mov+syscall becomes a site.
    let elf = assemble_and_link(SOURCE, &["-s"]);
    let report = scan(&elf).expect("scan");
    assert!(report.sites.iter().any(|s| s.nr == 39 && s.offset % 2 == 1));
    rewrite_and_check(&elf);
}

#[test]
fn rejects_what_it_cannot_handle() {
    use crate::abom::AbomError;
    let object_file = {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("t.s"), SOURCE).unwrap();
        super::util::run(dir.path(), "as", &["--64", "-o", "t.o", "t.s"]);
        std::fs::read(dir.path().join("t.o")).unwrap()
    };
    assert!(matches!(
        scan(&object_file),
        Err(AbomError::UnsupportedType(1))
    ));
    let mut not_x86 = assemble_and_link(SOURCE, &[]);
    not_x86[18] = 183; // EM_AARCH64
    assert!(matches!(scan(&not_x86), Err(AbomError::NotX86_64)));
    let mut elf32 = assemble_and_link(SOURCE, &[]);
    elf32[4] = 1; // ELFCLASS32
    assert!(matches!(scan(&elf32), Err(AbomError::NotElf64)));
    let truncated = assemble_and_link(SOURCE, &[]);
    assert!(matches!(
        scan(&truncated[..0x1800]),
        Err(AbomError::Malformed(_))
    ));
}

/// Fuzz finding: an executable segment whose virtual addresses wrap around
/// the address space made `vaddr_of` overflow (a panic with overflow
/// checks, a wrong address in the report without). It is malformed.
#[test]
fn segment_wrapping_the_address_space_is_malformed() {
    let mut elf = assemble_and_link(SOURCE, &[]);
    // Point the first executable PT_LOAD at the top of the address space.
    let phoff = u64::from_le_bytes(elf[0x20..0x28].try_into().unwrap()) as usize;
    let phnum = u16::from_le_bytes(elf[0x38..0x3a].try_into().unwrap()) as usize;
    let exec = (0..phnum)
        .map(|i| phoff + i * 56)
        .find(|&ph| elf[ph..ph + 4] == [1, 0, 0, 0] && elf[ph + 4] & 1 != 0)
        .expect("an executable PT_LOAD");
    elf[exec + 16..exec + 24].copy_from_slice(&(u64::MAX - 8).to_le_bytes());
    let err = scan(&elf).expect_err("wrapping segment").to_string();
    assert!(err.contains("wraps around the address space"), "{err}");
}
