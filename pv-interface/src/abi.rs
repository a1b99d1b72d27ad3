//! The library-OS ABI: every constant and layout shared by the converted
//! kernel, the processes it runs and the tools around it.
//!
//! This file is the single source of truth. `pv-interface-gen` parses it
//! (with syn) and writes `include/xc_libos_abi.h`, which the patch series
//! installs as `arch/x86/include/asm/xc_libos_abi.h`; a test runs bindgen on
//! that header and compares every value and layout back with this file.
//! Only integer constants (literals, `<<`, `|`) and `#[repr(C)]` structs of
//! fixed-width integers are allowed here, so both sides mean the same thing.

/// Version of this ABI; bumped when a value or layout below changes meaning.
pub const XC_ABI_VERSION: u32 = 2;

/// Magic at the start of [`XcLibosInfo`] ("XCLB").
pub const XC_LIBOS_MAGIC: u32 = 0x424c_4358;

/// IST slot (0-based index into the TSS `ist[]` array) of the stack that
/// every formerly non-IST IDT gate uses in a libOS kernel. Linux 6.1 and 6.12
/// use slots 0-4 (DF, NMI, DB, MCE, VC); 5 is free. The gate descriptor's
/// 3-bit IST field holds this value plus one.
pub const XC_IST_INDEX: u32 = 5;

/// Size in bytes of the per-CPU XC IST stack. Frames only pass through it
/// (the entry code moves them off at once), so two pages are plenty.
pub const XC_IST_STACK_SIZE: u32 = 8192;

/// Bit set in the saved #PF error code when the faulting context was a
/// process running at CPL 0 (the hardware cannot set it: it is X86_PF_USER).
pub const XC_PF_USER: u32 = 1 << 2;

/// The errno `arch_prctl(ARCH_SET_GS)` fails with: GS base always holds the
/// kernel's per-CPU base in a libOS kernel (EPERM).
pub const XC_ARCH_SET_GS_ERRNO: u32 = 1;

/// Address of the system-call entry table: a page in the fixmap (the legacy
/// vsyscall slot), reachable from any code by a sign-extended disp32.
pub const XC_ENTRY_TABLE_ADDR: u64 = 0xffff_ffff_ff60_0000;

/// Bytes per entry-table slot: one 8-byte pointer per system call number.
pub const XC_ENTRY_TABLE_STRIDE: u32 = 8;

/// Number of slots in the entry table (one 4 KiB page).
pub const XC_ENTRY_TABLE_SLOTS: u32 = 512;

/// The entry-table slot whose stub takes the system-call number from the
/// stack instead of an immediate: Go's `mov 0x8(%rsp),%rax; syscall`
/// (`48 8b 44 24 08 0f 05`, 7 bytes) becomes `call *slot` and the stub loads
/// RAX from 16(%rsp) (the call pushed its return address). Above every
/// kernel's system-call count, so never a number itself (since ABI 2).
pub const XC_ENTRY_SLOT_STACK_NR: u32 = 511;

/// Feature bit: processes run at CPL 0.
pub const XC_FEATURE_RING0: u64 = 1 << 0;

/// Feature bit: the system-call entry table is mapped.
pub const XC_FEATURE_ENTRY_TABLE: u64 = 1 << 1;

/// Feature bit: the kernel rewrites `syscall` sites on first use (online ABOM).
pub const XC_FEATURE_ONLINE_ABOM: u64 = 1 << 2;

/// What a libOS kernel tells processes and tools about itself
/// (`/proc/xc_libos` prints these fields).
#[repr(C)]
pub struct XcLibosInfo {
    /// [`XC_LIBOS_MAGIC`].
    pub magic: u32,
    /// [`XC_ABI_VERSION`].
    pub abi_version: u32,
    /// `XC_FEATURE_*` bits.
    pub features: u64,
    /// [`XC_ENTRY_TABLE_ADDR`] when the table is mapped, else 0.
    pub entry_table: u64,
    /// [`XC_ENTRY_TABLE_STRIDE`].
    pub entry_stride: u32,
    /// [`XC_ENTRY_TABLE_SLOTS`].
    pub entry_slots: u32,
    /// [`XC_IST_INDEX`].
    pub ist_index: u32,
    /// Reserved, zero.
    pub reserved: u32,
}
