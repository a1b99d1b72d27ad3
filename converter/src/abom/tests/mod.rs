//! Tests on real ELF files: crafted with binutils, and glibc from the host.

mod crafted;
mod glibc;
mod util;
