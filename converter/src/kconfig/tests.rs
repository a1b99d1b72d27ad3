//! Tests over crafted trees and (when present) real kernel trees.

use super::*;

/// Write `files` (path, contents) under a fresh temp dir.
fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (path, text) in files {
        let full = dir.path().join(path);
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(full, text).expect("write");
    }
    dir
}

const ROOT: &str = r#"
mainmenu "Test $(ARCH) Kernel"
source "arch/$(SRCARCH)/Kconfig"
source "init/Kconfig"
source "drivers/*/Kconfig"
osource "missing/Kconfig"
"#;

const ARCH: &str = r#"
config X86
	def_bool y
	select ARCH_HAS_FOO

config X86_64
	bool "64-bit"
	default y

config ARCH_HAS_FOO
	bool

config UML
	bool
"#;

const INIT: &str = r#"
cc-flag := $(success,true)

config PRINTK
	bool "Enable printk" if EXPERT
	default y
	help
	  config NOT_A_SYMBOL
	  This help text mentions keywords; it must be skipped.

config EXPERT
	bool "Expert mode"

config MODULES
	bool "Modules"
	modules

config NR_CPUS
	int "Max CPUs"
	range 2 64 if X86_64
	range 2 8
	default 8

config LOG_BUF_SHIFT
	hex "Log buffer" \
	  if EXPERT
	default 0x11

choice
	prompt "Preemption"
	default PREEMPT_NONE
	depends on X86

config PREEMPT_NONE
	bool "None"

config PREEMPT
	bool "Full"

endchoice

if MODULES
rsource "Kconfig.mod"
endif
"#;

const INIT_MOD: &str = r#"
config MODVERSIONS
	bool "Module versioning"
	depends on !UML
"#;

const NET: &str = r#"
menu "Networking"
	depends on NET_CORE

config NET_DRV
	tristate "A network driver"
	depends on X86_64 && !UML && PCI
	select CRC32

config NET_HIDDEN_SEL
	tristate "Driver that pulls in the helper"
	select NET_HELPER if X86

endmenu

config NET_CORE
	bool "Core networking"

config PCI
	bool "PCI"

config CRC32
	tristate

config NET_HELPER
	tristate
	help
	  Only ever selected.
"#;

fn crafted() -> (tempfile::TempDir, KconfigDb) {
    let dir = tree(&[
        ("Kconfig", ROOT),
        ("arch/x86/Kconfig", ARCH),
        ("init/Kconfig", INIT),
        ("init/Kconfig.mod", INIT_MOD),
        ("drivers/net/Kconfig", NET),
    ]);
    let db = KconfigDb::load(dir.path(), "x86").expect("load crafted tree");
    (dir, db)
}

fn dep_texts(sym: &Symbol) -> Vec<(&str, bool)> {
    sym.depends
        .iter()
        .map(|d| (d.cond.text.as_str(), d.inherited))
        .collect()
}

#[test]
fn loads_sources_globs_and_substitutions() {
    let (_dir, db) = crafted();
    for name in ["X86", "PRINTK", "MODVERSIONS", "NET_DRV", "NET_HELPER"] {
        assert!(db.contains(name), "{name} missing");
    }
    assert!(
        !db.contains("NOT_A_SYMBOL"),
        "help text was parsed as Kconfig"
    );
    assert_eq!(
        db.symbol("CONFIG_X86").map(|s| s.kind),
        Some(SymbolKind::Bool)
    );
    assert_eq!(db.symbol("NR_CPUS").map(|s| s.kind), Some(SymbolKind::Int));
    assert_eq!(
        db.symbol("LOG_BUF_SHIFT").map(|s| s.kind),
        Some(SymbolKind::Hex)
    );
    let printk = db.symbol("PRINTK").expect("PRINTK");
    assert_eq!(printk.defined_at[0].to_string(), "init/Kconfig:4");
    assert_eq!(
        printk.prompts[0].cond.as_ref().map(|c| c.text.as_str()),
        Some("EXPERT")
    );
    assert!(printk
        .help
        .as_deref()
        .is_some_and(|h| h.contains("must be skipped")));
    assert!(db.warnings().is_empty(), "{:?}", db.warnings());
}

#[test]
fn effective_depends_include_inherited() {
    let (_dir, db) = crafted();
    let drv = db.symbol("NET_DRV").expect("NET_DRV");
    assert_eq!(
        dep_texts(drv),
        [("NET_CORE", true), ("X86_64 && !UML && PCI", false)]
    );
    assert_eq!(drv.depends[0].origin, DepOrigin::Menu);
    let modv = db.symbol("MODVERSIONS").expect("MODVERSIONS");
    assert_eq!(dep_texts(modv), [("MODULES", true), ("!UML", false)]);
    assert_eq!(modv.depends[0].origin, DepOrigin::If);
    assert_eq!(modv.depends[0].location.to_string(), "init/Kconfig:42");
    let preempt = db.symbol("PREEMPT").expect("PREEMPT");
    assert_eq!(dep_texts(preempt), [("X86", true)]);
    let choice = &db.choices()[preempt.choice.expect("in choice")];
    assert_eq!(choice.members, ["PREEMPT_NONE", "PREEMPT"]);
    assert_eq!(choice.prompt.as_deref(), Some("Preemption"));
    // Outside the menu nothing is inherited.
    assert!(db.symbol("PCI").expect("PCI").depends.is_empty());
}

#[test]
fn reverse_selects_are_recorded() {
    let (_dir, db) = crafted();
    let foo = db.symbol("ARCH_HAS_FOO").expect("ARCH_HAS_FOO");
    assert_eq!(foo.selected_by.len(), 1);
    assert_eq!(foo.selected_by[0].symbol, "X86");
    assert_eq!(
        foo.selected_by[0].location.to_string(),
        "arch/x86/Kconfig:4"
    );
    let helper = db.symbol("NET_HELPER").expect("NET_HELPER");
    assert_eq!(
        helper.selected_by[0].cond.as_ref().map(|c| c.text.as_str()),
        Some("X86")
    );
    assert_eq!(
        db.symbol("NET_DRV").expect("NET_DRV").selects[0].symbol,
        "CRC32"
    );
    assert!(!helper.has_prompt);
}

#[test]
fn explain_names_unmet_symbol() {
    let (_dir, db) = crafted();
    let config = DotConfig::parse(
        "CONFIG_X86=y\nCONFIG_X86_64=y\nCONFIG_NET_CORE=y\n# CONFIG_PCI is not set\n",
    );
    let e = db.explain("NET_DRV", &Requested::Yes, &config);
    assert_eq!(e.reason, Reason::UnmetDependencies);
    assert_eq!(e.unmet, vec![("PCI".to_string(), "n".to_string())]);
    assert!(e.summary.contains("drivers/net/Kconfig:5"), "{}", e.summary);
    assert!(e.summary.contains("X86_64 && !UML && PCI"), "{}", e.summary);
    assert!(e.summary.contains("PCI=n"), "{}", e.summary);

    // Inherited menu dependency.
    let config = DotConfig::parse("CONFIG_X86_64=y\nCONFIG_PCI=y\nCONFIG_MODULES=y\n");
    let e = db.explain("CONFIG_NET_DRV", &Requested::Module, &config);
    assert_eq!(e.unmet, vec![("NET_CORE".to_string(), "n".to_string())]);
    assert!(
        e.summary.contains("menu that depends on `NET_CORE`"),
        "{}",
        e.summary
    );
}

#[test]
fn explain_no_prompt_lists_selectors() {
    let (_dir, db) = crafted();
    let config = DotConfig::parse("CONFIG_X86=y\n");
    let e = db.explain("NET_HELPER", &Requested::Yes, &config);
    assert!(
        matches!(&e.reason, Reason::NoPrompt { selectors } if selectors == &["NET_HIDDEN_SEL"])
    );
    assert!(
        e.summary.contains(
            "has no prompt; only set by `select` from NET_HIDDEN_SEL (drivers/net/Kconfig:12)"
        ),
        "{}",
        e.summary
    );
    assert_eq!(
        e.unmet,
        vec![("NET_HIDDEN_SEL".to_string(), "n".to_string())]
    );
}

#[test]
fn explain_disabled_request_that_stayed_on() {
    let (_dir, db) = crafted();
    let config = DotConfig::parse("CONFIG_X86=y\nCONFIG_ARCH_HAS_FOO=y\nCONFIG_NET_CORE=y\nCONFIG_NET_HIDDEN_SEL=m\nCONFIG_NET_HELPER=m\n");
    let e = db.explain("ARCH_HAS_FOO", &Requested::No, &config);
    assert!(e.summary.contains("selected by X86 (=y)"), "{}", e.summary);
    let e = db.explain("NET_HELPER", &Requested::No, &config);
    assert_eq!(
        e.reason,
        Reason::Selected {
            by: vec!["NET_HIDDEN_SEL".into()]
        }
    );

    let config = DotConfig::parse("CONFIG_X86=y\nCONFIG_PRINTK=y\n");
    let e = db.explain("PRINTK", &Requested::No, &config);
    assert!(
        e.summary.contains("default y with a hidden prompt"),
        "{}",
        e.summary
    );
    let e = db.explain("X86", &Requested::No, &config);
    assert!(
        e.summary.contains("default y with no prompt"),
        "{}",
        e.summary
    );
}

#[test]
fn explain_range_choice_and_misc() {
    let (_dir, db) = crafted();
    let config = DotConfig::parse(
        "CONFIG_X86=y\nCONFIG_X86_64=y\nCONFIG_NR_CPUS=64\nCONFIG_PREEMPT_NONE=y\n",
    );
    let e = db.explain("NR_CPUS", &Requested::Value("512".into()), &config);
    assert!(matches!(e.reason, Reason::RangeRejected { .. }));
    assert!(
        e.summary.contains("range 2 64") && e.summary.contains("init/Kconfig:20"),
        "{}",
        e.summary
    );
    assert_eq!(
        db.explain("NR_CPUS", &Requested::Value("64".into()), &config)
            .reason,
        Reason::Satisfied
    );

    let e = db.explain("PREEMPT", &Requested::Yes, &config);
    assert_eq!(
        e.reason,
        Reason::ChoiceOther {
            chosen: Some("PREEMPT_NONE".into())
        }
    );
    let e = db.explain("PREEMPT_NONE", &Requested::No, &config);
    assert_eq!(e.reason, Reason::ChoiceRequired);

    let e = db.explain("EXPERT", &Requested::Module, &config);
    assert_eq!(e.reason, Reason::NotModular);
    let e = db.explain("PRINK", &Requested::Yes, &config);
    assert_eq!(
        e.reason,
        Reason::Undefined {
            suggestion: Some("PRINTK".into())
        }
    );
    assert!(
        e.summary.contains("did you mean CONFIG_PRINTK"),
        "{}",
        e.summary
    );

    let e = db.explain("LOG_BUF_SHIFT", &Requested::Value("0x12".into()), &config);
    assert_eq!(e.reason, Reason::NoPrompt { selectors: vec![] });
    assert!(e.summary.contains("default 0x11"), "{}", e.summary);
}

#[test]
fn suggest_finds_close_names_only() {
    let (_dir, db) = crafted();
    assert_eq!(db.suggest("PRINK").as_deref(), Some("PRINTK"));
    assert_eq!(db.suggest("CONFIG_printk").as_deref(), Some("PRINTK"));
    assert_eq!(db.suggest("net_drvv").as_deref(), Some("NET_DRV"));
    assert_eq!(db.suggest("COMPLETELY_DIFFERENT"), None);
    assert_eq!(db.suggest(""), None);
}

#[test]
fn syntax_errors_carry_file_and_line() {
    let dir = tree(&[
        ("Kconfig", "source \"a/Kconfig\"\n"),
        ("a/Kconfig", "if FOO\nconfig A\n\tbool\n"),
    ]);
    let err = KconfigDb::load(dir.path(), "x86").expect_err("unclosed if");
    assert_eq!(
        err.to_string(),
        "a/Kconfig:1: `if` block is not closed in this file"
    );

    let dir = tree(&[("Kconfig", "config A\n\tbool\n\nsource \"nope/Kconfig\"\n")]);
    let err = KconfigDb::load(dir.path(), "x86").expect_err("missing source");
    assert_eq!(
        err.to_string(),
        "Kconfig:4: sourced file `nope/Kconfig` not found"
    );

    let dir = tree(&[("Kconfig", "config A\n\tdepends on (B\n")]);
    let err = KconfigDb::load(dir.path(), "x86").expect_err("bad expr");
    assert!(err.to_string().starts_with("Kconfig:2: "), "{err}");

    let dir = tree(&[("Kconfig", "menu \"m\"\nendif\n")]);
    let err = KconfigDb::load(dir.path(), "x86").expect_err("mismatched");
    assert!(
        err.to_string().contains("Kconfig:2: `endif` closes `menu`"),
        "{err}"
    );

    let dir = tree(&[("Kconfig", "source \"Kconfig\"\n")]);
    assert!(matches!(
        KconfigDb::load(dir.path(), "x86"),
        Err(KconfigError::SourceLoop { .. })
    ));
}

#[test]
fn symbols_defined_twice_are_merged() {
    let dir = tree(&[(
        "Kconfig",
        "config A\n\tbool \"a\"\n\tdepends on B\n\nif C\nconfig A\n\tdefault y\nendif\nconfig B\n\tbool\nconfig C\n\tbool\n",
    )]);
    let db = KconfigDb::load(dir.path(), "x86").expect("load");
    let a = db.symbol("A").expect("A");
    assert_eq!(a.defined_at.len(), 2);
    assert_eq!(
        a.depends_of(0)
            .map(|d| d.cond.text.as_str())
            .collect::<Vec<_>>(),
        ["B"]
    );
    assert_eq!(
        a.depends_of(1)
            .map(|d| d.cond.text.as_str())
            .collect::<Vec<_>>(),
        ["C"]
    );
    assert_eq!(a.kind, SymbolKind::Bool);
    // Neither definition's dependencies are met: report the first.
    let e = db.explain("A", &Requested::Yes, &DotConfig::parse(""));
    assert_eq!(e.unmet, vec![("B".to_string(), "n".to_string())]);
}

#[test]
fn unresolved_and_overridden_variables() {
    let dir = tree(&[
        ("Kconfig", "source \"arch/$(FOO)/Kconfig\"\n"),
        ("arch/bar/Kconfig", "config BAR\n\tbool\n"),
    ]);
    let err = KconfigDb::load(dir.path(), "x86").expect_err("unknown var");
    assert_eq!(
        err.to_string(),
        "Kconfig:1: unknown variable `$(FOO)` in source path"
    );
    let mut options = LoadOptions::new(dir.path(), "x86");
    options.vars.insert("FOO".into(), "bar".into());
    let db = KconfigDb::load_with(dir.path(), &options).expect("load");
    assert!(db.contains("BAR"));
}

#[test]
fn tristate_limited_to_module_by_dependency() {
    let dir = tree(&[(
        "Kconfig",
        "config MODULES\n\tbool \"m\"\nconfig LIB\n\ttristate \"lib\"\nconfig DRV\n\ttristate \"drv\"\n\tdepends on LIB\n",
    )]);
    let db = KconfigDb::load(dir.path(), "x86").expect("load");
    let config = DotConfig::parse("CONFIG_MODULES=y\nCONFIG_LIB=m\nCONFIG_DRV=m\n");
    let e = db.explain("DRV", &Requested::Yes, &config);
    assert_eq!(e.reason, Reason::UnmetDependencies);
    assert_eq!(e.unmet, vec![("LIB".to_string(), "m".to_string())]);
    assert_eq!(
        db.explain("DRV", &Requested::Module, &config).reason,
        Reason::Satisfied
    );
    // Expressions evaluate directly against a .config too.
    let expr = Expr::parse("LIB && !ABSENT && MODULES = y").expect("parse");
    assert_eq!(expr.eval(&config), Tristate::M);
}

// The real-tree tests load Debian's 6.1 and 6.12 trees, pulled into the
// shared cache: tests/tests/kconfig_real_trees.rs.
