//! The matrix on Slurm: a one-node cluster on localhost (scripts/start-slurm
//! starts munged, slurmctld, slurmd and a redis-server for ccache), the CI
//! matrix run as a job array, its report compared cell by cell with the
//! local engine's; slurmctld unreachable; ccache's Redis remote storage.

use serde_json::Value;
use std::path::Path;
use std::process::Command;
use xc_tests::{heavy, shared_cache, workspace, xc, xc_env};

const REDIS: &str = "redis://127.0.0.1:6390";

/// Under `timeout`: the script is called again from every test after .ci/run
/// started the cluster, and a start that waits on a lock must fail the test,
/// not hang CI (a daemon once inherited the script's lock fd).
fn start_slurm() {
    let out = Command::new("timeout").arg("360").arg(workspace().join("scripts/start-slurm")).output().expect("run scripts/start-slurm");
    assert!(out.status.success(), "scripts/start-slurm failed:\n{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

fn report(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("matrix.json")).unwrap()).unwrap()
}

/// What must not depend on the engine: per cell, its id, result, every
/// stage's status and reason, the tree and the configuration's key.
fn outcome(report: &Value) -> Vec<Value> {
    report["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let stages: Vec<Value> = c["results"]["stages"].as_array().unwrap().iter().map(|s| serde_json::json!([s["stage"], s["status"]])).collect();
            serde_json::json!({"id": c["id"], "status": c["results"]["status"], "stages": stages, "problems": c["results"]["problems"],
                "source_hash": c["source"]["source_hash"], "version": c["source"]["version"], "config_key": c["build"]["config_key"]})
        })
        .collect()
}

#[test]
fn the_ci_matrix_through_slurm_reports_what_the_local_engine_does() {
    let _lock = heavy();
    start_slurm();
    let tmp = tempfile::tempdir().unwrap();
    let spec = workspace().join("matrices/ci.toml");
    let (local, slurm) = (tmp.path().join("local"), tmp.path().join("slurm"));
    xc(&shared_cache(), &["matrix", "run", spec.to_str().unwrap(), "--out", local.to_str().unwrap()]).expect_code(0);
    let r = xc(&shared_cache(), &["matrix", "run", spec.to_str().unwrap(), "--out", slurm.to_str().unwrap(), "--engine", "slurm", "--ccache-remote", REDIS]).expect_code(0);
    assert!(r.stderr.contains("slurm engine"), "{}", r.stderr);
    let (a, b) = (report(&local), report(&slurm));
    assert_eq!(a["cells"].as_array().unwrap().len(), 4);
    assert_eq!(outcome(&a), outcome(&b));
    for c in b["cells"].as_array().unwrap() {
        assert_eq!(c["runtime"]["engine"], "slurm", "{c}");
        assert!(c["runtime"]["slurm_job"].as_str().is_some_and(|j| j.contains('_')), "an array task: {c}");
        assert_eq!(c["tools"]["ccache_remote"], REDIS, "the remote storage reached the task: {c}");
    }
}

#[test]
fn no_wait_returns_the_job_and_collect_builds_the_report_after_it() {
    start_slurm();
    let tmp = tempfile::tempdir().unwrap();
    let spec = tmp.path().join("fake.toml");
    std::fs::write(
        &spec,
        format!(
            "kernels = [{{ dir = \"{}\" }}]\nprofiles = [\"fake\"]\nprofiles_dir = \"{}\"\nmodes = [\"stock\"]\nstages = [\"pull\", \"analyze\", \"patch\", \"config\", \"build\"]\n",
            xc_tests::fake_tree().display(),
            xc_tests::fake_profiles().display()
        ),
    )
    .unwrap();
    let (cache, out) = (tmp.path().join("cache"), tmp.path().join("out"));
    let r = xc(&cache, &["--json", "matrix", "run", spec.to_str().unwrap(), "--out", out.to_str().unwrap(), "--engine", "slurm", "--no-wait"]).expect_code(0);
    let job = r.json()["queued"].as_str().unwrap().to_string();
    // Wait as a user would, with squeue, then collect.
    for _ in 0..240 {
        let q = Command::new("squeue").args(["-h", "-j", &job]).output().unwrap();
        if String::from_utf8_lossy(&q.stdout).trim().is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    let r = xc(&cache, &["matrix", "collect", out.to_str().unwrap()]).expect_code(0);
    assert!(r.stdout.contains("1 cells: 1 PASS, 0 FAIL"), "{}", r.stdout);
    assert_eq!(report(&out)["cells"][0]["runtime"]["slurm_job"], format!("{job}_0"));
}

#[test]
fn an_unreachable_slurmctld_is_one_clear_error_and_loses_nothing() {
    start_slurm();
    let tmp = tempfile::tempdir().unwrap();
    // The same cluster, but a controller port nothing listens on.
    let conf = std::fs::read_to_string("/etc/slurm/slurm.conf").unwrap() + "SlurmctldPort=6999\n";
    let conf_path = tmp.path().join("slurm.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let spec = workspace().join("matrices/ci.toml");
    let out = tmp.path().join("out");
    // An earlier result in the directory must survive the failed submission.
    let kept = out.join("cells/keep/cell.json");
    std::fs::create_dir_all(kept.parent().unwrap()).unwrap();
    std::fs::write(&kept, "{}").unwrap();
    let r = xc_env(&tmp.path().join("c"), &["--json", "matrix", "run", spec.to_str().unwrap(), "--out", out.to_str().unwrap(), "--engine", "slurm"], &[("SLURM_CONF", conf_path.to_str().unwrap())]).expect_code(4);
    let v = r.json();
    let error = v["error"].as_str().unwrap();
    assert!(error.starts_with("sbatch could not submit the matrix"), "{error}");
    assert!(error.contains("nothing was submitted and no result was lost"), "{error}");
    assert_eq!(r.stderr.lines().filter(|l| l.starts_with("error:")).count(), 1, "one error: {}", r.stderr);
    assert_eq!(std::fs::read_to_string(&kept).unwrap(), "{}");
}

/// ccache's remote storage through the redis-server start-slurm runs: a
/// tiny C file compiled through ccache from two empty local caches; the
/// second compile is served from Redis. (A kernel would show the same, at
/// minutes per build.)
#[test]
fn a_second_compile_from_an_empty_local_cache_is_a_redis_hit() {
    start_slurm();
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("tiny.c");
    // Unique text: a hit can only come from this test's first compile.
    let unique = format!("{:?}", std::time::SystemTime::now());
    std::fs::write(&src, format!("const char *xc_matrix_probe = \"{unique}\";\nint main(void) {{ return 0; }}\n")).unwrap();
    let compile = |local: &str| {
        let dir = tmp.path().join(local);
        let out = Command::new("ccache")
            .args(["gcc", "-c", src.to_str().unwrap(), "-o"])
            .arg(tmp.path().join(format!("{local}.o")))
            .env("CCACHE_DIR", &dir)
            .env("CCACHE_REMOTE_STORAGE", REDIS)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let stats = Command::new("ccache").arg("--print-stats").env("CCACHE_DIR", &dir).output().unwrap();
        let text = String::from_utf8_lossy(&stats.stdout).into_owned();
        let get = |k: &str| text.lines().find_map(|l| l.strip_prefix(&format!("{k}\t"))).and_then(|v| v.trim().parse::<u64>().ok()).unwrap_or(0);
        (get("remote_storage_hit"), get("remote_storage_miss"))
    };
    assert_eq!(compile("first"), (0, 1), "the first compile misses and stores");
    assert_eq!(compile("second"), (1, 0), "the second is served by Redis");
    assert_eq!(std::fs::read(tmp.path().join("first.o")).unwrap(), std::fs::read(tmp.path().join("second.o")).unwrap());
}
