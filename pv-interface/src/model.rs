//! A small model of `abi.rs`: its integer constants (evaluated) and its
//! `#[repr(C)]` structs, read with syn.

use quote::ToTokens;

/// An integer constant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Constant {
    /// Its name.
    pub name: String,
    /// Rust type: u8, u16, u32 or u64.
    pub ty: String,
    /// Evaluated value.
    pub value: u64,
    /// The expression as C text (`(1 << 2)`, `0xffffffffff600000`).
    pub c_expr: String,
    /// Doc comment lines.
    pub doc: Vec<String>,
}

/// A field of a struct.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// Its name.
    pub name: String,
    /// Rust type.
    pub ty: String,
    /// Doc comment lines.
    pub doc: Vec<String>,
}

/// A `#[repr(C)]` struct.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Struct {
    /// Rust name (CamelCase).
    pub name: String,
    /// C name (snake_case).
    pub c_name: String,
    /// Fields in order.
    pub fields: Vec<Field>,
    /// Doc comment lines.
    pub doc: Vec<String>,
}

/// Everything `abi.rs` defines.
#[derive(Debug, Clone, Default)]
pub struct Model {
    /// Constants in source order.
    pub constants: Vec<Constant>,
    /// Structs in source order.
    pub structs: Vec<Struct>,
}

fn docs(attrs: &[syn::Attribute]) -> Vec<String> {
    attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .filter_map(|a| match &a.meta {
            syn::Meta::NameValue(nv) => match &nv.value {
                syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(s), .. }) => Some(s.value().trim().to_string()),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

fn int_type(ty: &syn::Type) -> Result<String, String> {
    let t = ty.to_token_stream().to_string();
    match t.as_str() {
        "u8" | "u16" | "u32" | "u64" => Ok(t),
        _ => Err(format!("type `{t}` is not a fixed-width unsigned integer")),
    }
}

/// Evaluate an integer expression; return (value, C text).
fn eval(e: &syn::Expr) -> Result<(u64, String), String> {
    match e {
        syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Int(i), .. }) => {
            let v: u64 = i.base10_parse().map_err(|e| e.to_string())?;
            let text = i.to_string().replace('_', "");
            let text = text.trim_end_matches(i.suffix()).to_string();
            Ok((v, text))
        }
        syn::Expr::Paren(p) => {
            let (v, t) = eval(&p.expr)?;
            Ok((v, format!("({t})")))
        }
        syn::Expr::Binary(b) => {
            let (l, lt) = eval(&b.left)?;
            let (r, rt) = eval(&b.right)?;
            let (v, op) = match b.op {
                syn::BinOp::Shl(_) => (l.checked_shl(r as u32).ok_or("shift overflow")?, "<<"),
                syn::BinOp::BitOr(_) => (l | r, "|"),
                _ => return Err(format!("operator `{}` not allowed in the ABI", b.op.to_token_stream())),
            };
            Ok((v, format!("({lt} {op} {rt})")))
        }
        other => Err(format!("expression `{}` not allowed in the ABI", other.to_token_stream())),
    }
}

fn snake(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

impl Model {
    /// Parse `abi.rs` text. Anything outside the allowed subset is an error
    /// naming the item.
    pub fn parse(source: &str) -> Result<Model, String> {
        let file = syn::parse_file(source).map_err(|e| format!("abi.rs: {e}"))?;
        let mut m = Model::default();
        for item in &file.items {
            match item {
                syn::Item::Const(c) => {
                    let name = c.ident.to_string();
                    let ty = int_type(&c.ty).map_err(|e| format!("const {name}: {e}"))?;
                    let (value, c_expr) = eval(&c.expr).map_err(|e| format!("const {name}: {e}"))?;
                    let bits = match ty.as_str() {
                        "u8" => 8,
                        "u16" => 16,
                        "u32" => 32,
                        _ => 64,
                    };
                    if bits < 64 && value >> bits != 0 {
                        return Err(format!("const {name}: {value:#x} does not fit {ty}"));
                    }
                    m.constants.push(Constant { name, ty, value, c_expr, doc: docs(&c.attrs) });
                }
                syn::Item::Struct(s) => {
                    let name = s.ident.to_string();
                    let repr_c = s.attrs.iter().any(|a| a.path().is_ident("repr") && a.to_token_stream().to_string().contains('C'));
                    if !repr_c {
                        return Err(format!("struct {name}: must be #[repr(C)]"));
                    }
                    let mut fields = Vec::new();
                    for f in &s.fields {
                        let fname = f.ident.as_ref().map(|i| i.to_string()).ok_or(format!("struct {name}: unnamed field"))?;
                        let ty = int_type(&f.ty).map_err(|e| format!("{name}.{fname}: {e}"))?;
                        fields.push(Field { name: fname, ty, doc: docs(&f.attrs) });
                    }
                    m.structs.push(Struct { c_name: snake(&name), name, fields, doc: docs(&s.attrs) });
                }
                other => return Err(format!("item `{}` not allowed in abi.rs", other.to_token_stream().to_string().chars().take(40).collect::<String>())),
            }
        }
        Ok(m)
    }

    /// A constant by name.
    pub fn constant(&self, name: &str) -> Option<&Constant> {
        self.constants.iter().find(|c| c.name == name)
    }

    /// Offsets and size of a struct under the C (and `repr(C)`) layout rules
    /// for these field types: each field aligned to its own size.
    pub fn layout(&self, s: &Struct) -> (Vec<(String, usize)>, usize) {
        let size_of = |t: &str| match t {
            "u8" => 1,
            "u16" => 2,
            "u32" => 4,
            _ => 8,
        };
        let mut off = 0usize;
        let mut align = 1usize;
        let mut out = Vec::new();
        for f in &s.fields {
            let sz = size_of(&f.ty);
            off = off.div_ceil(sz) * sz;
            out.push((f.name.clone(), off));
            off += sz;
            align = align.max(sz);
        }
        (out, off.div_ceil(align) * align)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_abi_parses_and_values_match_the_compiled_constants() {
        let m = Model::parse(crate::ABI_SOURCE).unwrap();
        assert_eq!(m.constant("XC_IST_INDEX").unwrap().value, crate::abi::XC_IST_INDEX as u64);
        assert_eq!(m.constant("XC_ENTRY_TABLE_ADDR").unwrap().value, crate::abi::XC_ENTRY_TABLE_ADDR);
        assert_eq!(m.constant("XC_PF_USER").unwrap().c_expr, "(1 << 2)");
        assert_eq!(m.constant("XC_ENTRY_TABLE_ADDR").unwrap().c_expr, "0xffffffffff600000");
        let s = &m.structs[0];
        assert_eq!(s.c_name, "xc_libos_info");
        let (offsets, size) = m.layout(s);
        assert_eq!(size, std::mem::size_of::<crate::abi::XcLibosInfo>());
        assert_eq!(offsets[2], ("features".to_string(), std::mem::offset_of!(crate::abi::XcLibosInfo, features)));
    }

    #[test]
    fn out_of_subset_items_are_refused_by_name() {
        assert!(Model::parse("pub const A: i32 = 1;").unwrap_err().contains("const A"));
        assert!(Model::parse("pub const B: u8 = 256;").unwrap_err().contains("does not fit"));
        assert!(Model::parse("pub const C: u32 = 1 + 2;").unwrap_err().contains("operator"));
        assert!(Model::parse("pub struct S { a: u32 }").unwrap_err().contains("repr(C)"));
        assert!(Model::parse("pub fn f() {}").unwrap_err().contains("not allowed"));
    }
}
