#![no_main]
//! See xc_convert::fuzzing::elf_read for the properties checked.
libfuzzer_sys::fuzz_target!(|data: &[u8]| xc_convert::fuzzing::elf_read(data));
