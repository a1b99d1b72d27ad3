//! `xc-convert matrix`: cells of kernels x profiles x modes, their records,
//! freshness, resuming, the report and regressions. The fast tests run on
//! the fake tree (its make takes milliseconds); the CI matrix runs Debian's
//! real 6.1 trees up to config (nothing compiles).

use serde_json::Value;
use std::path::{Path, PathBuf};
use xc_tests::{fake_profiles, fake_tree, heavy, shared_cache, workspace, xc, xc_env, PROFILE};

/// A spec over the fake tree: stock builds, libos fails analyze (the fake
/// tree has none of the files the patch set edits).
fn fake_spec(dir: &Path) -> PathBuf {
    let spec = dir.join("fake.toml");
    let text = format!(
        "kernels = [{{ dir = \"{}\" }}]\nprofiles = [\"fake\"]\nprofiles_dir = \"{}\"\nmodes = [\"stock\", \"libos\"]\nstages = [\"pull\", \"analyze\", \"patch\", \"config\", \"build\"]\n",
        fake_tree().display(),
        fake_profiles().display()
    );
    std::fs::write(&spec, text).unwrap();
    spec
}

fn read_json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))).unwrap()
}

fn stage<'a>(cell: &'a Value, name: &str) -> &'a Value {
    cell["results"]["stages"].as_array().unwrap().iter().find(|s| s["stage"] == name).unwrap_or_else(|| panic!("no stage {name} in {cell}"))
}

fn status(cell: &Value, name: &str) -> String {
    stage(cell, name)["status"].as_str().unwrap().to_string()
}

#[test]
fn cells_record_every_stage_and_a_failed_anchor_skips_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let (cache, out) = (tmp.path().join("cache"), tmp.path().join("out"));
    let spec = fake_spec(tmp.path());
    // The libos cell fails analyze: the run says so with exit 1, after
    // recording every cell and writing the report.
    let r = xc(&cache, &["matrix", "run", spec.to_str().unwrap(), "--out", out.to_str().unwrap()]).expect_code(1);
    assert!(r.stdout.contains("2 cells: 1 PASS, 1 FAIL"), "{}", r.stdout);

    let stock = read_json(&out.join("cells/dir-fakelinux_fake_stock/cell.json"));
    assert_eq!(stock["results"]["status"], "PASS");
    assert_eq!([status(&stock, "pull"), status(&stock, "analyze"), status(&stock, "config"), status(&stock, "build")], ["PASS", "SKIP", "PASS", "PASS"]);
    assert_eq!(stage(&stock, "boot")["reason"], "not in the spec's stages");
    // tuxmake's groups, filled from the pipeline's own results.
    assert_eq!(stock["source"]["version"], "6.1.999-fake");
    assert!(stock["build"]["image_size"].as_u64().unwrap() > 0, "{stock}");
    assert!(Path::new(stock["build"]["image_dir"].as_str().unwrap()).join("bzImage").is_file());
    assert!(stock["tools"]["gcc"].as_str().unwrap().contains("gcc"), "{stock}");
    assert_eq!(stock["runtime"]["engine"], "local");
    assert!(stock["reproducer_cmdline"].as_str().unwrap().contains("matrix cell"), "{stock}");
    assert!(std::fs::read_to_string(out.join("cells/dir-fakelinux_fake_stock/log")).unwrap().contains("== build"));

    let libos = read_json(&out.join("cells/dir-fakelinux_fake_libos/cell.json"));
    assert_eq!(libos["results"]["status"], "FAIL");
    let why = stage(&libos, "analyze")["reason"].as_str().unwrap();
    assert!(why.contains("0001-kconfig edit 1 in arch/x86/Kconfig: anchor `menu \"Power management and ACPI options\"`"), "edit, file and anchor must be named: {why}");
    for later in ["patch", "config", "build"] {
        assert_eq!(status(&libos, later), "SKIP");
        assert_eq!(stage(&libos, later)["reason"], "analyze failed");
    }

    let report = read_json(&out.join("matrix.json"));
    assert_eq!((report["totals"]["pass"].as_u64(), report["totals"]["fail"].as_u64()), (Some(1), Some(1)));
    let md = std::fs::read_to_string(out.join("matrix.md")).unwrap();
    assert!(md.contains("| dir:fakelinux | 6.1.999-fake | fake | libos | **FAIL** |"), "{md}");
    let html = std::fs::read_to_string(out.join("matrix.html")).unwrap();
    assert!(html.contains("<svg") && html.contains("background:#f4b8b8"), "the page has plots and coloured cells");
}

#[test]
fn fresh_cells_do_nothing_and_an_interrupted_run_resumes_with_the_missing_cell() {
    let tmp = tempfile::tempdir().unwrap();
    let (cache, out) = (tmp.path().join("cache"), tmp.path().join("out"));
    let spec = fake_spec(tmp.path());
    let args = ["matrix", "run", spec.to_str().unwrap(), "--out", out.to_str().unwrap()];
    xc(&cache, &args).expect_code(1);
    let stock_record = out.join("cells/dir-fakelinux_fake_stock/cell.json");
    let before = std::fs::read(&stock_record).unwrap();
    // A run killed before the libos cell ended leaves no record for it.
    std::fs::remove_file(out.join("cells/dir-fakelinux_fake_libos/cell.json")).unwrap();
    // A slow build would show: the fresh cell must not build at all.
    let r = xc_env(&cache, &args, &[("FAKE_BUILD_FAIL", "1")]).expect_code(1);
    assert!(r.stderr.contains("dir-fakelinux_fake_stock fresh"), "{}", r.stderr);
    assert!(r.stderr.contains("FAIL dir-fakelinux_fake_libos"), "the missing cell ran again: {}", r.stderr);
    assert_eq!(std::fs::read(&stock_record).unwrap(), before, "a fresh cell's record is left as it was");
    assert!(out.join("cells/dir-fakelinux_fake_libos/cell.json").is_file());
}

#[test]
fn report_against_names_a_stage_that_went_from_pass_to_fail_and_a_bigger_image() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = fake_spec(tmp.path());
    let (old, new) = (tmp.path().join("old"), tmp.path().join("new"));
    xc(&tmp.path().join("c1"), &["matrix", "run", spec.to_str().unwrap(), "--out", old.to_str().unwrap()]).expect_code(1);
    // Against itself: nothing regressed.
    let same = xc(&tmp.path().join("c1"), &["matrix", "report", old.to_str().unwrap(), "--against", old.to_str().unwrap()]).expect_code(0);
    assert!(same.stdout.contains("no regressions"), "{}", same.stdout);
    // The new run's build fails (another cache, so nothing is a hit).
    xc_env(&tmp.path().join("c2"), &["matrix", "run", spec.to_str().unwrap(), "--out", new.to_str().unwrap()], &[("FAKE_BUILD_FAIL", "1")]).expect_code(1);
    let r = xc(&tmp.path().join("c2"), &["--json", "matrix", "report", new.to_str().unwrap(), "--against", old.to_str().unwrap()]).expect_code(1);
    let regs = r.json()["regressions"].as_array().unwrap().clone();
    assert!(regs.iter().any(|g| g["cell"] == "dir-fakelinux_fake_stock" && g["what"].as_str().unwrap().starts_with("build: PASS -> FAIL")), "{regs:?}");
    // An image that grew beyond the threshold: the old record made smaller.
    let path = old.join("cells/dir-fakelinux_fake_stock/cell.json");
    let mut rec = read_json(&path);
    let size = rec["build"]["image_size"].as_u64().unwrap();
    rec["build"]["image_size"] = Value::from(size * 100 / 110);
    std::fs::write(&path, serde_json::to_string(&rec).unwrap()).unwrap();
    std::fs::remove_file(old.join("matrix.json")).unwrap();
    let r = xc(&tmp.path().join("c1"), &["matrix", "report", old.to_str().unwrap(), "--against", old.to_str().unwrap()]).expect_code(0);
    assert!(r.stdout.contains("no regressions"), "{}", r.stdout);
    let grown = tmp.path().join("grown");
    std::fs::create_dir_all(grown.join("cells/dir-fakelinux_fake_stock")).unwrap();
    rec["build"]["image_size"] = Value::from(size);
    std::fs::write(grown.join("cells/dir-fakelinux_fake_stock/cell.json"), serde_json::to_string(&rec).unwrap()).unwrap();
    let r = xc(&tmp.path().join("c1"), &["matrix", "report", grown.to_str().unwrap(), "--against", old.to_str().unwrap()]).expect_code(1);
    assert!(r.stdout.contains("dir-fakelinux_fake_stock: bzImage") && r.stdout.contains("threshold 5%"), "{}", r.stdout);
}

#[test]
fn a_spec_with_an_unknown_key_is_refused_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = tmp.path().join("bad.toml");
    std::fs::write(&spec, "kernels = [\"6.1\"]\nprofile = [\"minimal\"]\n").unwrap();
    let r = xc(&tmp.path().join("c"), &["matrix", "run", spec.to_str().unwrap(), "--out", tmp.path().join("o").to_str().unwrap()]).expect_code(2);
    assert!(r.stderr.contains("unknown field `profile`") && r.stderr.contains("bad.toml"), "{}", r.stderr);
}

/// The matrix CI runs: two point releases of 6.1 up to config.
#[test]
fn the_ci_matrix_configures_two_point_releases_without_compiling() {
    let _lock = heavy();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let spec = workspace().join("matrices/ci.toml");
    let r = xc(&shared_cache(), &["--json", "matrix", "run", spec.to_str().unwrap(), "--out", out.to_str().unwrap()]).expect_code(0);
    assert_eq!(r.json()["pass"], 4, "{}", r.stderr);
    let report = read_json(&out.join("matrix.json"));
    let cells = report["cells"].as_array().unwrap();
    let hashes: std::collections::BTreeSet<&str> = cells.iter().map(|c| c["source"]["source_hash"].as_str().unwrap()).collect();
    assert_eq!(hashes.len(), 2, "two different trees");
    for c in cells {
        assert_eq!(status(c, "config"), "PASS", "{c}");
        assert_eq!(stage(c, "build")["reason"], "not in the spec's stages");
        assert!(c["build"]["config_key"].is_string());
        let expected = if c["build"]["mode"] == "libos" { "PASS" } else { "SKIP" };
        assert_eq!(status(c, "patch"), expected, "{c}");
    }
}

/// Full cells on real kernels: 6.1 stock and libos of the suite's profile
/// (the images every real-kernel test shares, so no compile of its own) through
/// build, boot and bench. Each bench cell measures its own image; the
/// report divides libos by stock and plots the ratio per row.
#[test]
fn full_cells_build_boot_and_bench_and_the_report_divides_libos_by_stock() {
    let _lock = heavy();
    let tmp = tempfile::tempdir().unwrap();
    let (spec, out) = (tmp.path().join("bench.toml"), tmp.path().join("out"));
    // Few iterations: the test checks the stage and the report, not the values.
    std::fs::write(&spec, format!("kernels = [\"6.1\"]\nprofiles = [\"{PROFILE}\"]\nmodes = [\"stock\", \"libos\"]\nstages = [\"pull\", \"analyze\", \"patch\", \"config\", \"build\", \"boot\", \"bench\"]\n[bench]\niterations = 20000\n")).unwrap();
    let r = xc(&shared_cache(), &["--json", "matrix", "run", spec.to_str().unwrap(), "--out", out.to_str().unwrap()]).expect_code(0);
    assert_eq!(r.json()["pass"], 2, "{}", r.stderr);
    let report = read_json(&out.join("matrix.json"));
    let cells = report["cells"].as_array().unwrap();
    let getppid = |c: &Value| c["results"]["bench"]["rows"].as_array().unwrap().iter().find(|r| r["name"] == "getppid").unwrap()["ns"].as_f64().unwrap();
    for c in cells {
        for st in ["build", "boot", "bench"] {
            assert_eq!(status(c, st), "PASS", "{st}: {c}");
        }
        let b = &c["results"]["bench"];
        assert_eq!(b["column"], if c["build"]["mode"] == "stock" { "stock" } else { "libos+xlat" }, "{b}");
        assert_eq!(b["accel"], "tcg");
        assert_eq!(b["iterations"], 20000);
        let rows = b["rows"].as_array().unwrap();
        assert!(rows.len() >= 6 && rows.iter().all(|r| r["ns"].as_f64().unwrap() > 0.0), "{b}");
        // The bench boot's files are the cell's, beside its boot/.
        let console = Path::new(b["console_log"].as_str().unwrap());
        assert!(console.is_file() && console.starts_with(out.join("cells").join(c["id"].as_str().unwrap()).join("bench")), "{}", console.display());
    }
    // The libos row of the Markdown table carries getppid's ratio to stock,
    // computed from the two records.
    let ratio = getppid(&cells[1]) / getppid(&cells[0]);
    let md = std::fs::read_to_string(out.join("matrix.md")).unwrap();
    let expect = format!("{:.0} ({ratio:.2}x)", getppid(&cells[1]));
    assert!(md.lines().any(|l| l.contains("| libos | libos+xlat |") && l.contains(&expect)), "{expect} not in\n{md}");
    let html = std::fs::read_to_string(out.join("matrix.html")).unwrap();
    let bench = &html[html.find("<h2>bench ratios").expect("a bench section")..];
    assert!(bench.contains("<h3>getppid</h3>\n<svg"), "{bench}");
    assert!(bench.contains("TCG"), "the page says what TCG times are");
}
