//! Linear-sweep decoding of one region and classification of each `syscall`.

use iced_x86::{Code, Decoder, DecoderOptions, Instruction, OpKind, Register};

use super::elf::Region;
use super::encode::{immediate_number_ok, SiteForm, MOV_STACK8};
use pv_interface::abi::XC_ENTRY_SLOT_STACK_NR;
use super::names::syscall_name;
use super::{LeftAlone, Site};

/// What the sweep found for one `syscall` instruction.
#[derive(Debug)]
pub(super) enum Finding {
    Site(Site),
    LeftAlone(LeftAlone),
}

/// The decoded instruction just before the current one, as file offset,
/// length and code.
#[derive(Debug, Clone, Copy)]
struct Prev {
    offset: u64,
    len: usize,
    code: Code,
}

/// How many instructions on each side of a `syscall` are searched for
/// red-zone use (see [`below_rsp`]).
const RED_ZONE_WINDOW: usize = 24;

/// The instruction reads, writes or takes the address of memory below RSP
/// (`-8(%rsp)` and the like): the SysV red zone. `syscall` leaves it alone,
/// but the `call` that replaces it stores its return address at -8(%rsp),
/// so code that keeps data there across the system call must not be
/// rewritten.
fn below_rsp(insn: &Instruction) -> bool {
    // `lea -N(%rsp),%rsp` moves the stack pointer past the red zone (as
    // code that protects it from a call does): nothing is kept there.
    if insn.mnemonic() == iced_x86::Mnemonic::Lea && insn.op0_register() == Register::RSP {
        return false;
    }
    (0..insn.op_count()).any(|i| insn.op_kind(i) == OpKind::Memory)
        && insn.memory_base() == Register::RSP
        && (insn.memory_displacement64() as i64) < 0
}

/// Decode `region` from its start and classify every `syscall` in it.
pub(super) fn sweep_region(elf: &[u8], region: &Region) -> Vec<Finding> {
    // Region bounds were checked against the file when the layout was built.
    let bytes = &elf[region.start as usize..region.end as usize];
    let mut decoder = Decoder::with_ip(64, bytes, region.start, DecoderOptions::NONE);
    let mut insn = Instruction::default();
    let mut prev: Option<Prev> = None;
    // Once the decoder meets bytes that are no instruction, its boundaries
    // after that point are guesses: it resynchronises by luck, not by proof.
    let mut first_invalid: Option<u64> = None;
    let mut findings = Vec::new();
    // Per decoded instruction: does it touch the red zone? Sites are judged
    // once the whole region is decoded, as red-zone use may follow them.
    let mut red_zone: Vec<bool> = Vec::new();
    let mut site_index: Vec<(usize, usize)> = Vec::new(); // (finding, instruction)
    while decoder.can_decode() {
        decoder.decode_out(&mut insn);
        // The decoder's "ip" is the file offset here (see with_ip above).
        let offset = insn.ip();
        if insn.is_invalid() {
            first_invalid.get_or_insert(offset);
        } else if insn.code() == Code::Syscall {
            let verdict = match first_invalid {
                Some(at) => Err(format!(
                    "decoding not trusted: invalid bytes earlier in the function at offset {at:#x}"
                )),
                None => classify(bytes, region.start, offset, insn.len(), prev),
            };
            if verdict.is_ok() {
                site_index.push((findings.len(), red_zone.len()));
            }
            findings.push(finding(region, offset, verdict));
        }
        red_zone.push(!insn.is_invalid() && below_rsp(&insn));
        prev = Some(Prev {
            offset,
            len: insn.len(),
            code: insn.code(),
        });
    }
    for (f, i) in site_index {
        let lo = i.saturating_sub(RED_ZONE_WINDOW);
        let hi = (i + RED_ZONE_WINDOW + 1).min(red_zone.len());
        if red_zone[lo..hi].iter().any(|&b| b) {
            if let Finding::Site(site) = &findings[f] {
                let syscall_at = site.offset + site.byte_len() as u64 - 2;
                findings[f] = Finding::LeftAlone(LeftAlone {
                    offset: syscall_at,
                    vaddr: region.segment.vaddr_of(syscall_at),
                    reason: "code nearby keeps data below %rsp (red zone), which the call's return address would overwrite".into(),
                });
            }
        }
    }
    findings
}

/// A site's form and number, or why the `syscall` at `offset` is left alone.
fn classify(
    bytes: &[u8],
    base: u64,
    offset: u64,
    len: usize,
    prev: Option<Prev>,
) -> Result<(u64, SiteForm, u32), String> {
    if len != 2 {
        return Err(format!("syscall carries prefixes ({len} bytes)"));
    }
    let local = |off: u64| (off - base) as usize;
    let Some(prev) = prev.filter(|p| p.offset + p.len as u64 == offset) else {
        return Err(
            "first instruction of its function or section: not preceded by mov $imm32,%eax".into(),
        );
    };
    let mov = &bytes[local(prev.offset)..local(offset)];
    if prev.code == Code::Mov_r64_rm64 && mov == MOV_STACK8 {
        return Ok((prev.offset, SiteForm::StackNr, XC_ENTRY_SLOT_STACK_NR));
    }
    let form = match (prev.code, prev.len) {
        (Code::Mov_r32_imm32, 5) => SiteForm::Mov32,
        (Code::Mov_rm64_imm32, 7) => SiteForm::Mov64,
        _ => return Err(not_a_mov_reason(bytes, local(offset))),
    };
    let expected_opcode: &[u8] = match form {
        SiteForm::Mov32 => &[0xb8],
        SiteForm::Mov64 => &[0x48, 0xc7, 0xc0],
        SiteForm::StackNr => unreachable!("returned above"),
    };
    // The code check above allows other registers and prefixes: only the
    // exact encodings load %eax/%rax and have the length we replace.
    if !mov.starts_with(expected_opcode) {
        return Err(not_a_mov_reason(bytes, local(offset)));
    }
    let imm: [u8; 4] = mov[mov.len() - 4..]
        .try_into()
        .expect("mov ends in an imm32");
    let nr = u32::from_le_bytes(imm);
    immediate_number_ok(nr)?;
    Ok((prev.offset, form, nr))
}

/// Why the instruction before a `syscall` is not a usable `mov`: tell apart
/// code that merely has the `b8 imm32` bytes there, which a byte-pattern
/// matcher would have rewritten, from code with no such bytes at all.
fn not_a_mov_reason(bytes: &[u8], syscall_at: usize) -> String {
    let looks_like_mov32 = syscall_at >= 5 && bytes[syscall_at - 5] == 0xb8;
    let looks_like_mov64 =
        syscall_at >= 7 && bytes[syscall_at - 7..syscall_at - 4] == [0x48, 0xc7, 0xc0];
    if looks_like_mov32 || looks_like_mov64 {
        "mov not at an instruction boundary".into()
    } else {
        "not preceded by mov $imm32,%eax".into()
    }
}

fn finding(
    region: &Region,
    syscall_offset: u64,
    verdict: Result<(u64, SiteForm, u32), String>,
) -> Finding {
    match verdict {
        Ok((offset, form, nr)) => Finding::Site(Site {
            offset,
            vaddr: region.segment.vaddr_of(offset),
            nr,
            name: match form {
                SiteForm::StackNr => "(number from 8(%rsp))".to_string(),
                _ => syscall_name(nr).to_string(),
            },
            form,
        }),
        Err(reason) => Finding::LeftAlone(LeftAlone {
            offset: syscall_offset,
            vaddr: region.segment.vaddr_of(syscall_offset),
            reason,
        }),
    }
}
