//! The C header the kernel patches include, read back through bindgen, must
//! agree with pv-interface's Rust definitions: every constant and every
//! struct layout.

#[allow(non_camel_case_types, non_upper_case_globals, dead_code)]
mod c {
    include!(concat!(env!("OUT_DIR"), "/xc_libos_abi.rs"));
}

/// Constants bindgen saw, by name, from its generated source, as 64-bit
/// patterns (cexpr types 0xffffffffff600000 as a negative i32; C itself
/// gives it an unsigned 64-bit type, and the bits are what matter).
fn bindgen_constants() -> std::collections::BTreeMap<String, u64> {
    let text = std::fs::read_to_string(concat!(env!("OUT_DIR"), "/xc_libos_abi.rs")).unwrap();
    let file = syn::parse_file(&text).unwrap();
    let mut out = std::collections::BTreeMap::new();
    for item in file.items {
        if let syn::Item::Const(c) = item {
            let value = match *c.expr {
                syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Int(i), .. }) => i.base10_parse::<u64>().unwrap(),
                syn::Expr::Unary(syn::ExprUnary { op: syn::UnOp::Neg(_), expr, .. }) => match *expr {
                    syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Int(i), .. }) => (-i.base10_parse::<i64>().unwrap()) as u64,
                    _ => panic!("unexpected constant expression for {}", c.ident),
                },
                _ => panic!("unexpected constant expression for {}", c.ident),
            };
            out.insert(c.ident.to_string(), value);
        }
    }
    out
}

#[test]
fn every_constant_has_the_same_value_in_c() {
    let model = pv_interface::model::Model::parse(pv_interface::ABI_SOURCE).unwrap();
    let seen = bindgen_constants();
    assert!(model.constants.len() >= 10);
    for k in &model.constants {
        assert_eq!(seen.get(&k.name), Some(&k.value), "{} differs between abi.rs and the C header", k.name);
    }
    assert_eq!(seen.len(), model.constants.len(), "the header defines constants abi.rs does not: {seen:?}");
    // And a few by direct comparison of the compiled values.
    assert_eq!(c::XC_ENTRY_TABLE_ADDR as i64 as u64, pv_interface::abi::XC_ENTRY_TABLE_ADDR);
    assert_eq!(c::XC_IST_INDEX as u64, pv_interface::abi::XC_IST_INDEX as u64);
}

#[test]
fn every_struct_has_the_same_layout_in_c() {
    use pv_interface::abi::XcLibosInfo as R;
    use std::mem::{offset_of, size_of};
    type C = c::xc_libos_info;
    assert_eq!(size_of::<C>(), size_of::<R>());
    assert_eq!(std::mem::align_of::<C>(), std::mem::align_of::<R>());
    let pairs = [
        ("magic", offset_of!(C, magic), offset_of!(R, magic)),
        ("abi_version", offset_of!(C, abi_version), offset_of!(R, abi_version)),
        ("features", offset_of!(C, features), offset_of!(R, features)),
        ("entry_table", offset_of!(C, entry_table), offset_of!(R, entry_table)),
        ("entry_stride", offset_of!(C, entry_stride), offset_of!(R, entry_stride)),
        ("entry_slots", offset_of!(C, entry_slots), offset_of!(R, entry_slots)),
        ("ist_index", offset_of!(C, ist_index), offset_of!(R, ist_index)),
        ("reserved", offset_of!(C, reserved), offset_of!(R, reserved)),
    ];
    for (name, c_off, r_off) in pairs {
        assert_eq!(c_off, r_off, "offset of {name}");
    }
    // The model's own layout computation (used for docs) agrees too, and
    // names every field checked above.
    let model = pv_interface::model::Model::parse(pv_interface::ABI_SOURCE).unwrap();
    let s = model.structs.iter().find(|s| s.c_name == "xc_libos_info").unwrap();
    let (offsets, size) = model.layout(s);
    assert_eq!(size, size_of::<C>());
    assert_eq!(offsets.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), pairs.iter().map(|p| p.0).collect::<Vec<_>>());
    for ((_, off), (_, c_off, _)) in offsets.iter().zip(pairs.iter()) {
        assert_eq!(off, c_off);
    }
}
