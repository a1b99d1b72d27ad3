//! The Kconfig reader on Debian's real 6.1 and 6.12 trees, pulled into the
//! shared cache (a cache hit after the pipeline tests' first pull). These
//! were unit tests that looked for /work/ref/linux-source-6.x, which nothing
//! made, and returned early: they never ran.

use std::path::{Path, PathBuf};
use std::time::Instant;
use xc_convert::kconfig::{DotConfig, KconfigDb, Reason, Requested};
use xc_tests::{shared_cache, xc};

/// The tree `pull --kernel SERIES` puts in the shared cache.
fn pulled_tree(series: &str) -> PathBuf {
    let v = xc(&shared_cache(), &["--json", "pull", "--kernel", series]).expect_code(0).json();
    PathBuf::from(v["tree"]["root"].as_str().expect("pull reports the tree's root"))
}

fn load_real(tree: &Path, must_know: &str) -> KconfigDb {
    let start = Instant::now();
    let db = KconfigDb::load(tree, "x86").unwrap_or_else(|e| panic!("loading {}: {e}", tree.display()));
    println!("loaded {} symbols, {} choices from {} in {:?} ({} warnings)", db.len(), db.choices().len(), tree.display(), start.elapsed(), db.warnings().len());
    assert!(db.len() > 10_000, "only {} symbols", db.len());
    assert!(db.contains(must_know), "{must_know} missing");
    db
}

#[test]
fn kconfig_of_debian_6_1_loads_whole() {
    let tree = pulled_tree("6.1");
    let db = load_real(&tree, "PAGE_TABLE_ISOLATION");
    let pti = db.symbol("PAGE_TABLE_ISOLATION").expect("PTI");
    assert!(pti.depends.iter().any(|d| d.cond.text.contains("X86_64")), "{:?}", pti.depends);
    assert_eq!(db.suggest("PRINK").as_deref(), Some("PRINTK"));
    // Every option of the in-tree x86_64 defconfig must be known.
    let text = std::fs::read_to_string(tree.join("arch/x86/configs/x86_64_defconfig")).expect("the tree's x86_64_defconfig");
    let defconfig = DotConfig::parse(&text);
    let missing: Vec<_> = defconfig.iter().map(|(n, _)| n).filter(|n| !db.contains(n)).collect();
    assert!(missing.is_empty(), "defconfig options unknown: {missing:?}");
    // Only `select`s of other architectures' symbols may warn.
    let odd: Vec<_> = db.warnings().iter().filter(|w| !w.contains("selects undefined")).collect();
    assert!(odd.is_empty(), "{odd:?}");
}

#[test]
fn kconfig_of_debian_6_12_loads_and_explains() {
    let tree = pulled_tree("6.12");
    let db = load_real(&tree, "MITIGATION_PAGE_TABLE_ISOLATION");
    let config = DotConfig::parse("CONFIG_X86_64=y\n");
    let e = db.explain("MITIGATION_PAGE_TABLE_ISOLATION", &Requested::Yes, &config);
    println!("explain: {}", e.summary);
    assert_ne!(e.reason, Reason::Satisfied);
}
