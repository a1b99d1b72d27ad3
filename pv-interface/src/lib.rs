//! pv-interface: the ABI of the library-OS kernel, and its C rendering.
//!
//! [`abi`] holds the definitions. [`model`] reads them back from their own
//! source text with syn, so the generator and the tests see exactly what the
//! compiler sees; [`cheader`] renders the model as the C header the kernel
//! patches include.

pub mod abi;
pub mod cheader;
pub mod model;

/// The source text of [`abi`], parsed by the generator.
pub const ABI_SOURCE: &str = include_str!("abi.rs");

/// The header, as committed in `include/` (the generator's `--check` and a
/// test keep it current).
pub const COMMITTED_HEADER: &str = include_str!("../include/xc_libos_abi.h");

/// The C header generated from [`abi`].
pub fn c_header() -> String {
    let model = model::Model::parse(ABI_SOURCE).expect("abi.rs follows the model's rules (tested)");
    cheader::render(&model)
}
