//! What templates may use: the pv-interface ABI and facts read off the tree.
//!
//! Facts are names that differ between kernel versions (e.g. the KPTI
//! symbol) and features a tree has or lacks; they are read from the tree's
//! own Kconfig, never assumed from a version number.

use crate::kconfig::KconfigDb;
use crate::source::KernelTree;
use serde::Serialize;
use std::collections::BTreeMap;

/// The template context.
#[derive(Debug, Clone, Serialize)]
pub struct Facts {
    /// Kernel version and series.
    pub kernel: BTreeMap<String, String>,
    /// ABI constant name -> C expression.
    pub abi: BTreeMap<String, String>,
    /// The generated ABI header text.
    pub abi_header: String,
    /// Tree facts: symbol names and feature flags.
    pub tree: BTreeMap<String, String>,
}

/// The first of `candidates` the tree's Kconfig defines, or "".
fn first_symbol(db: &KconfigDb, candidates: &[&str]) -> String {
    candidates.iter().find(|c| db.contains(c)).map(|c| c.to_string()).unwrap_or_default()
}

impl Facts {
    /// Collect facts for a tree.
    pub fn collect(tree: &KernelTree, db: &KconfigDb) -> Facts {
        let model = pv_interface::model::Model::parse(pv_interface::ABI_SOURCE).expect("abi.rs parses (tested in pv-interface)");
        let abi = model.constants.iter().map(|c| (c.name.clone(), c.c_expr.clone())).collect();
        let mut kernel = BTreeMap::new();
        kernel.insert("version".into(), tree.version.to_string());
        kernel.insert("series".into(), tree.version.series());
        let mut t = BTreeMap::new();
        t.insert("kpti_symbol".into(), first_symbol(db, &["MITIGATION_PAGE_TABLE_ISOLATION", "PAGE_TABLE_ISOLATION"]));
        for (fact, sym) in [
            ("has_fred", "X86_FRED"),
            ("has_user_shstk", "X86_USER_SHADOW_STACK"),
            ("has_kernel_ibt", "X86_KERNEL_IBT"),
            ("has_x32", "X86_X32_ABI"),
            ("has_xen_pv", "XEN_PV"),
        ] {
            t.insert(fact.into(), if db.contains(sym) { "y".into() } else { String::new() });
        }
        Facts { kernel, abi, abi_header: pv_interface::c_header(), tree: t }
    }

    /// The facts as a tera context.
    pub fn context(&self) -> tera::Context {
        tera::Context::from_serialize(self).expect("facts serialize")
    }
}
