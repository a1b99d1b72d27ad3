#![no_main]
//! See xc_convert::fuzzing::guest_control for the properties checked.
libfuzzer_sys::fuzz_target!(|data: &[u8]| xc_convert::fuzzing::guest_control(data));
