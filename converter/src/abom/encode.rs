//! Byte encodings of a site before and after rewriting.
//!
//! ## The 9-byte form (`mov $nr,%rax; syscall`)
//!
//! Bytes 0..7 are the `mov`, 7..9 the `syscall`. No 9-byte replacement can
//! serve both straight-line execution (call, then continue at 9) and a jump
//! to the old `syscall` at 7: two bytes at offset 7 cannot call the table,
//! and whatever sits there also runs after the call returns to it (so
//! `eb f7`, jump back to the call, loops forever; keeping `0f 05` makes a
//! second, real system call). We therefore write a 2-byte nop *first* and
//! the call after it: `66 90 ff 14 25 <disp32>`. Then
//! - straight-line code does nop, call, and the call returns to offset 9,
//!   exactly where `syscall` would have continued (same return address as
//!   the 7-byte form);
//! - a jump to offset 7 lands on byte 2 of the disp32, which is always 0x60
//!   for a slot of the table page (see [`table_disp32`]) and 0x60 is an
//!   invalid opcode in 64-bit mode: such a jump faults with #UD at once
//!   instead of silently skipping the system call. The 7-byte form has the
//!   same property (its old `syscall` at offset 5 is also disp32 byte 2).

//!
//! ## The stack-number form (`mov 0x8(%rsp),%rax; syscall`, Go's runtime)
//!
//! `48 8b 44 24 08 0f 05` becomes `call *slot(XC_ENTRY_SLOT_STACK_NR)`, whose
//! stub loads RAX from 16(%rsp): the call has pushed its return address
//! since the original `mov` read 8(%rsp). A site's `nr` is that slot.

use pv_interface::abi::{XC_ENTRY_SLOT_STACK_NR, XC_ENTRY_TABLE_ADDR, XC_ENTRY_TABLE_SLOTS, XC_ENTRY_TABLE_STRIDE};

/// How the system-call number was loaded in the original code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum SiteForm {
    /// `mov $nr,%eax; syscall` = `b8 <imm32> 0f 05` (7 bytes).
    Mov32,
    /// `mov $nr,%rax; syscall` = `48 c7 c0 <imm32> 0f 05` (9 bytes).
    Mov64,
    /// `mov 0x8(%rsp),%rax; syscall` = `48 8b 44 24 08 0f 05` (7 bytes):
    /// the number is on the stack (Go's runtime).
    StackNr,
}

const SYSCALL: [u8; 2] = [0x0f, 0x05];
const MOV32_OPCODE: [u8; 1] = [0xb8];
const MOV64_OPCODE: [u8; 3] = [0x48, 0xc7, 0xc0];
/// `mov 0x8(%rsp),%rax`: REX.W 8b /r, ModRM 0x44 (rax, [SIB+disp8]), SIB 0x24 (rsp).
pub(super) const MOV_STACK8: [u8; 5] = [0x48, 0x8b, 0x44, 0x24, 0x08];
/// `call qword ptr [disp32]`: ModRM 0x14 (/2, SIB follows), SIB 0x25 (no base,
/// no index), so the address is the sign-extended disp32 itself.
const CALL_ABS: [u8; 3] = [0xff, 0x14, 0x25];
/// `xchg %ax,%ax`, the canonical 2-byte nop.
const NOP2: [u8; 2] = [0x66, 0x90];

impl SiteForm {
    /// Length of the `mov` + `syscall` pair (and of its replacement).
    pub fn byte_len(self) -> usize {
        match self {
            SiteForm::Mov32 | SiteForm::StackNr => 7,
            SiteForm::Mov64 => 9,
        }
    }

    /// Offset of the `call` inside the replacement bytes.
    pub fn call_offset(self) -> usize {
        match self {
            SiteForm::Mov32 | SiteForm::StackNr => 0,
            SiteForm::Mov64 => NOP2.len(),
        }
    }

    fn mov_opcode(self) -> &'static [u8] {
        match self {
            SiteForm::Mov32 => &MOV32_OPCODE,
            SiteForm::Mov64 => &MOV64_OPCODE,
            SiteForm::StackNr => &MOV_STACK8,
        }
    }
}

/// Absolute address of slot `nr` of the entry table; `None` past its end.
pub fn table_slot_addr(nr: u32) -> Option<u64> {
    if nr >= XC_ENTRY_TABLE_SLOTS {
        return None;
    }
    Some(XC_ENTRY_TABLE_ADDR.wrapping_add(u64::from(XC_ENTRY_TABLE_STRIDE) * u64::from(nr)))
}

/// The disp32 of `call *slot`: the slot address must survive sign extension
/// from 32 bits, which holds for the whole table page at 0xffffffffff600000.
pub(super) fn table_disp32(nr: u32) -> Option<i32> {
    let addr = table_slot_addr(nr)?;
    // The address is meant as a sign-extended value; reinterpreting the bits
    // as i64 is the point, not a lossy conversion.
    i32::try_from(addr as i64).ok()
}

/// The bytes the compiler emitted for a site.
pub(super) fn original_bytes(form: SiteForm, nr: u32) -> Vec<u8> {
    match form {
        SiteForm::StackNr => [&MOV_STACK8[..], &SYSCALL].concat(),
        _ => [form.mov_opcode(), &nr.to_le_bytes(), &SYSCALL].concat(),
    }
}

/// Whether `nr` may be loaded by an immediate and called through its own
/// slot: inside the table and not the stack-number slot.
pub(super) fn immediate_number_ok(nr: u32) -> Result<(), String> {
    if nr == XC_ENTRY_SLOT_STACK_NR {
        return Err(format!("number {nr} is the entry table's stack-number slot, not a system call"));
    }
    table_disp32(nr).map(|_| ()).ok_or_else(|| format!("number {nr} outside the entry table"))
}

/// The replacement bytes, same length as [`original_bytes`].
pub(super) fn patched_bytes(form: SiteForm, nr: u32) -> Option<Vec<u8>> {
    let call = [&CALL_ABS[..], &table_disp32(nr)?.to_le_bytes()].concat();
    Some(match form {
        SiteForm::Mov32 | SiteForm::StackNr => call,
        SiteForm::Mov64 => [&NOP2[..], &call].concat(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patches_keep_the_length() {
        for form in [SiteForm::Mov32, SiteForm::Mov64] {
            for nr in [0, 1, 39, 511] {
                assert_eq!(original_bytes(form, nr).len(), form.byte_len());
                assert_eq!(patched_bytes(form, nr).unwrap().len(), form.byte_len());
            }
        }
    }

    #[test]
    fn disp32_is_the_sign_extended_slot_address() {
        assert_eq!(table_disp32(0).unwrap() as i64 as u64, XC_ENTRY_TABLE_ADDR);
        assert_eq!(
            table_disp32(110).unwrap() as i64 as u64,
            XC_ENTRY_TABLE_ADDR + 8 * 110
        );
        assert_eq!(table_disp32(XC_ENTRY_TABLE_SLOTS), None);
    }

    #[test]
    fn old_syscall_position_holds_an_invalid_opcode() {
        // A jump to where `syscall` was must fault, for every slot: see the
        // module comment.
        for nr in 0..XC_ENTRY_TABLE_SLOTS {
            for form in [SiteForm::Mov32, SiteForm::Mov64] {
                let patched = patched_bytes(form, nr).unwrap();
                assert_eq!(
                    patched[form.byte_len() - SYSCALL.len()],
                    0x60,
                    "nr {nr} {form:?}"
                );
            }
        }
    }
}
