use super::*;

fn catalog(files: &[(&str, &str)]) -> Catalog {
    let mut c = Catalog::default();
    for (n, t) in files {
        c.add_text(n, t);
    }
    c
}

const BASE: &str = r#"
base = "tinyconfig"
enable = ["PRINTK", "CONFIG_TTY"]
disable = ["MODULES"]
[set]
NR_CPUS = 2
LOCALVERSION = "-xc"
[[when]]
kernel = "<6.12"
enable = ["PAGE_TABLE_ISOLATION"]
[[when]]
kernel = ">=6.12"
enable = ["MITIGATION_PAGE_TABLE_ISOLATION", "CPU_MITIGATIONS"]
"#;

#[test]
fn version_blocks_pick_the_symbol_of_each_series() {
    let c = catalog(&[("base", BASE)]);
    let r61 = c.resolve("base", Series(6, 1)).unwrap();
    assert!(r61.options.contains_key("PAGE_TABLE_ISOLATION"));
    assert!(!r61.options.contains_key("MITIGATION_PAGE_TABLE_ISOLATION"));
    let r612 = c.resolve("base", Series(6, 12)).unwrap();
    assert!(r612.options.contains_key("MITIGATION_PAGE_TABLE_ISOLATION"));
    assert!(!r612.options.contains_key("PAGE_TABLE_ISOLATION"));
    assert_eq!(r612.options["NR_CPUS"].setting, Setting::Value("2".into()));
    assert_eq!(r612.options["TTY"].setting, Setting::Yes, "CONFIG_ prefix is stripped");
    assert_eq!(r612.base, "tinyconfig");
}

#[test]
fn child_inherits_and_adds() {
    let c = catalog(&[("base", BASE), ("net", "inherits = [\"base\"]\nenable = [\"NET\", \"INET\"]\n")]);
    let r = c.resolve("net", Series(6, 1)).unwrap();
    assert_eq!(r.layers, vec!["base", "net"]);
    assert_eq!(r.options["PRINTK"].from, "base");
    assert_eq!(r.options["INET"].from, "net");
}

#[test]
fn child_changing_a_parent_value_is_reported_unless_declared() {
    let child = "inherits = [\"base\"]\nenable = [\"MODULES\"]\n";
    let c = catalog(&[("base", BASE), ("child", child)]);
    let e = c.resolve("child", Series(6, 1)).unwrap_err().to_string();
    assert!(e.contains("CONFIG_MODULES") && e.contains("base sets it to n") && e.contains("overrides"), "{e}");

    let declared = "inherits = [\"base\"]\noverrides = [\"MODULES\"]\nenable = [\"MODULES\"]\n";
    let c = catalog(&[("base", BASE), ("child", declared)]);
    let r = c.resolve("child", Series(6, 1)).unwrap();
    assert_eq!(r.options["MODULES"], ResolvedOption { setting: Setting::Yes, from: "child".into() });
}

#[test]
fn setting_the_same_value_again_is_not_a_conflict() {
    let c = catalog(&[("base", BASE), ("child", "inherits = [\"base\"]\nenable = [\"PRINTK\"]\n")]);
    assert!(c.resolve("child", Series(6, 1)).is_ok());
}

#[test]
fn parents_that_disagree_are_reported() {
    let a = "enable = [\"X\"]\n";
    let b = "disable = [\"X\"]\n";
    let c = catalog(&[("a", a), ("b", b), ("c", "inherits = [\"a\", \"b\"]\n")]);
    let e = c.resolve("c", Series(6, 1)).unwrap_err().to_string();
    assert!(e.contains("CONFIG_X") && e.contains("a sets it to y") && e.contains("b sets it to n"), "{e}");
}

#[test]
fn one_layer_asking_two_values_is_reported_even_across_when_blocks() {
    let t = "enable = [\"X\"]\n[[when]]\nkernel = \">=6.1\"\ndisable = [\"X\"]\n";
    let c = catalog(&[("t", t)]);
    let e = c.resolve("t", Series(6, 1)).unwrap_err().to_string();
    assert!(e.contains("CONFIG_X"), "{e}");
    // ...but only when the block applies.
    assert!(c.resolve("t", Series(5, 15)).is_ok());
}

#[test]
fn cycles_unknown_names_and_schema_errors() {
    let c = catalog(&[("a", "inherits = [\"b\"]\n"), ("b", "inherits = [\"a\"]\n")]);
    assert!(c.resolve("a", Series(6, 1)).unwrap_err().to_string().contains("a -> b -> a"));
    let c = catalog(&[("minimal", "")]);
    let e = c.resolve("minimel", Series(6, 1)).unwrap_err().to_string();
    assert!(e.contains("did you mean `minimal`"), "{e}");
    let c = catalog(&[("x", "enabel = [\"A\"]\n")]);
    let e = c.resolve("x", Series(6, 1)).unwrap_err().to_string();
    assert!(e.contains("<x>") && e.contains("enabel"), "{e}");
    let c = catalog(&[("x", "overrides = [\"A\"]\n")]);
    assert!(c.resolve("x", Series(6, 1)).unwrap_err().to_string().contains("does not set it"));
}

#[test]
fn builtin_profiles_resolve_for_both_supported_series() {
    let c = Catalog::builtin();
    for name in ["minimal", "net", "libos"] {
        for s in [Series(6, 1), Series(6, 12)] {
            let r = c.resolve(name, s).unwrap_or_else(|e| panic!("{name} {s}: {e}"));
            assert!(r.options.len() > 10);
        }
    }
}

#[test]
fn mode_layer_adds_only_its_own_options_on_top_of_any_profile() {
    let c = Catalog::builtin();
    let stock = c.resolve("net", Series(6, 1)).unwrap();
    let libos = c.resolve_with_layer("net", Series(6, 1), "libos").unwrap();
    assert_eq!(libos.layers, vec!["minimal", "net", "libos"]);
    assert_eq!(libos.options["XC_LIBOS"].setting, Setting::Yes);
    assert_eq!(libos.options["PAGE_TABLE_ISOLATION"].setting, Setting::No);
    let differing: Vec<&String> =
        stock.options.keys().filter(|k| stock.options[*k] != libos.options[*k]).collect();
    assert_eq!(differing, vec!["CPU_MITIGATIONS", "PAGE_TABLE_ISOLATION"], "only what the conversion forces differs");
    let r612 = c.resolve_with_layer("minimal", Series(6, 12), "libos").unwrap();
    assert_eq!(r612.options["MITIGATION_PAGE_TABLE_ISOLATION"].setting, Setting::No);
    assert_eq!(r612.options["X86_FRED"].setting, Setting::No);
}

#[test]
fn set_values_of_the_wrong_type_are_refused_when_loaded() {
    for (value, kind) in [("1.5", "a float"), ("[1, 2]", "an array"), ("{ a = 1 }", "a table"), ("1979-05-27", "a date"), ("\"a\\nb\"", "line break")] {
        let text = format!("[set]\nCMDLINE = {value}\n");
        let c = catalog(&[("bad", &text)]);
        let err = c.resolve("bad", Series(6, 1)).expect_err(value).to_string();
        assert!(err.contains("[set] CMDLINE") && err.contains(kind), "{value}: {err}");
        assert!(err.contains("<bad>"), "the file is named: {err}");
    }
    // Also inside a [[when]] block for another kernel: refused when loaded,
    // not only when a matching kernel comes along.
    let text = "[[when]]\nkernel = \">=6.12\"\n[when.set]\nNR_CPUS = 2.0\n";
    let c = catalog(&[("later", text)]);
    let err = c.resolve("later", Series(6, 1)).expect_err("float in when").to_string();
    assert!(err.contains("[set] NR_CPUS") && err.contains("a float"), "{err}");
    // Strings, integers and booleans are fine; a backslash is kept as written.
    let c = catalog(&[("ok", "[set]\nCMDLINE = 'a\\b'\nNR_CPUS = 2\nX = true\n")]);
    let r = c.resolve("ok", Series(6, 1)).unwrap();
    assert_eq!(r.options["CMDLINE"].setting, Setting::Value("a\\b".into()));
    assert_eq!(r.options["X"].setting, Setting::Yes);
}

#[test]
fn option_names_that_are_not_symbols_are_refused() {
    for name in ["A B", "X=y\\nCONFIG_Y", "", "CONFIG_"] {
        let text = format!("enable = [\"{name}\"]\n");
        let c = catalog(&[("bad", &text)]);
        let err = c.resolve("bad", Series(6, 1)).expect_err(name).to_string();
        assert!(err.contains("is not a Kconfig option name"), "{name:?}: {err}");
    }
}
