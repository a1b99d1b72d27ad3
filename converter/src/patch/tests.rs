use super::*;
use std::collections::BTreeMap;

fn facts() -> facts::Facts {
    let mut abi = BTreeMap::new();
    abi.insert("XC_IST_INDEX".to_string(), "5".to_string());
    let mut tree = BTreeMap::new();
    tree.insert("kpti_symbol".to_string(), "PAGE_TABLE_ISOLATION".to_string());
    let mut kernel = BTreeMap::new();
    kernel.insert("series".to_string(), "6.1".to_string());
    facts::Facts { kernel, abi, abi_header: "/* header */\n".into(), tree }
}

fn set(groups: &[(&str, &str)]) -> PatchSet {
    let mut files: BTreeMap<String, String> = groups.iter().map(|(n, t)| (format!("{n}.toml"), t.to_string())).collect();
    let names: Vec<String> = groups.iter().map(|(n, _)| format!("\"{n}\"")).collect();
    files.insert("series.toml".into(), format!("description = \"t\"\ngroups = [{}]\n", names.join(", ")));
    PatchSet::from_files("t", &|f| files.get(f).cloned()).unwrap()
}

fn tree() -> BTreeMap<String, String> {
    let mut t = BTreeMap::new();
    t.insert("arch/x86/Kconfig".to_string(), "config X86\n\tdef_bool y\n\nconfig FOO\n\tbool\n".to_string());
    t.insert("entry.S".to_string(), "\tswapgs\n\tsysretq\n\tswapgs\n".to_string());
    t
}

const GROUP: &str = r#"
description = "add XC"
why = "because"
[[edit]]
file = "arch/x86/Kconfig"
anchor = "config FOO\n"
action = "insert_before"
content = "config XC\n\tdepends on !{{ tree.kpti_symbol }}\n\n"
[[edit]]
file = "arch/x86/Kconfig"
anchor = "\tdef_bool y\n"
action = "insert_after"
content = "\t# ist {{ abi.XC_IST_INDEX }}\n"
[[edit]]
file = "include/xc.h"
action = "create"
content = "{{ abi_header }}"
[[edit]]
file = "entry.S"
regex = "^\tsysretq\n"
action = "replace"
content = "\tsti\n\tjmp *%rcx\n"
[[edit]]
file = "entry.S"
kernel = ">=6.12"
anchor = "nothing like this"
action = "replace"
"#;

#[test]
fn edits_render_templates_and_apply_in_order() {
    let t = tree();
    let p = plan(&set(&[("0001-xc", GROUP)]), "6.1.1", Series(6, 1), &facts(), &|f| t.get(f).cloned());
    assert!(p.is_clean(), "{:?}", p.problems());
    assert_eq!(p.files["arch/x86/Kconfig"], "config X86\n\tdef_bool y\n\t# ist 5\n\nconfig XC\n\tdepends on !PAGE_TABLE_ISOLATION\n\nconfig FOO\n\tbool\n");
    assert_eq!(p.files["include/xc.h"], "/* header */\n");
    assert_eq!(p.files["entry.S"], "\tswapgs\n\tsti\n\tjmp *%rcx\n\tswapgs\n");
    assert_eq!(p.edits.len(), 4, "the >=6.12 edit is not selected for 6.1");
    assert_eq!(p.edits[0].line, Some(4));
    assert_eq!(p.patches.len(), 1);
    assert!(p.patches[0].text.contains("+++ b/include/xc.h"));
}

#[test]
fn missing_and_ambiguous_anchors_are_reported_with_edit_file_and_anchor() {
    let t = tree();
    let g = "description = \"x\"\n[[edit]]\nfile = \"entry.S\"\nanchor = \"\\tswapgs\\n\"\naction = \"replace\"\n[[edit]]\nfile = \"arch/x86/Kconfig\"\nanchor = \"config BAR\"\naction = \"replace\"\n[[edit]]\nfile = \"nope.c\"\nanchor = \"x\"\naction = \"replace\"\n";
    let p = plan(&set(&[("0001-g", g)]), "6.12.1", Series(6, 12), &facts(), &|f| t.get(f).cloned());
    let problems = p.problems().join("\n");
    assert!(problems.contains("0001-g edit 1 (entry.S): anchor `swapgs` is ambiguous: 2 matches, at lines 1, 3"), "{problems}");
    assert!(problems.contains("0001-g edit 2 (arch/x86/Kconfig): anchor not found: `config BAR`"), "{problems}");
    assert!(problems.contains("0001-g edit 3 (nope.c): file does not exist"), "{problems}");
    assert!(!p.is_clean());
}

#[test]
fn paths_outside_the_tree_are_refused_when_loading() {
    for bad in ["../x", "/etc/passwd", "a/../../b"] {
        let g = format!("description = \"x\"\n[[edit]]\nfile = \"{bad}\"\naction = \"create\"\n");
        let mut files = BTreeMap::new();
        files.insert("series.toml".to_string(), "description = \"t\"\ngroups = [\"g\"]\n".to_string());
        files.insert("g.toml".to_string(), g);
        let e = PatchSet::from_files("t", &|f| files.get(f).cloned()).unwrap_err().to_string();
        assert!(e.contains("plain relative path"), "{bad}: {e}");
    }
}

#[test]
fn series_applies_with_patch_p1_to_a_pristine_copy_and_gives_the_same_bytes() {
    let t = tree();
    let p = plan(&set(&[("0001-xc", GROUP)]), "6.1.1", Series(6, 1), &facts(), &|f| t.get(f).cloned());
    let dir = tempfile::tempdir().unwrap();
    let pristine = dir.path().join("pristine");
    for (f, c) in &t {
        std::fs::create_dir_all(pristine.join(f).parent().unwrap()).unwrap();
        std::fs::write(pristine.join(f), c).unwrap();
    }
    let patched = dir.path().join("patched");
    apply::patched_copy(&pristine, &patched, &p.files).unwrap();
    // The original is untouched although the copy shares its inodes.
    for (f, c) in &t {
        assert_eq!(&std::fs::read_to_string(pristine.join(f)).unwrap(), c);
    }
    // A real copy (not links) for `patch` to work on.
    let target = dir.path().join("target");
    for (f, c) in &t {
        std::fs::create_dir_all(target.join(f).parent().unwrap()).unwrap();
        std::fs::write(target.join(f), c).unwrap();
    }
    for patch in &p.patches {
        let pf = dir.path().join(&patch.file_name);
        std::fs::write(&pf, &patch.text).unwrap();
        let st = std::process::Command::new("patch").arg("-p1").arg("-s").arg("-i").arg(&pf).current_dir(&target).status().unwrap();
        assert!(st.success());
    }
    for f in p.files.keys() {
        assert_eq!(std::fs::read(target.join(f)).unwrap(), std::fs::read(patched.join(f)).unwrap(), "{f}");
    }
}
