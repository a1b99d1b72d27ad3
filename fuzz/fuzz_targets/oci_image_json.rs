#![no_main]
//! See xc_convert::fuzzing::oci_image_json for the properties checked.
libfuzzer_sys::fuzz_target!(|data: &[u8]| xc_convert::fuzzing::oci_image_json(data));
