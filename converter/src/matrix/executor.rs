//! Where cells run: on this machine (the default) or as a Slurm job array.
//! An engine only has to run `xc-convert matrix cell SPEC ID` for each
//! planned cell with a shared output directory and cache; the report is made
//! from the cells' records afterwards, the same whichever engine ran them.

use super::schedule::{self, Progress, Slots};
use super::spec::CellSpec;
use crate::pipeline::Context;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Errors of running cells.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// A local cell could not record its result.
    #[error(transparent)]
    Cell(#[from] super::cell::CellError),
    /// `sbatch` refused the job (slurmctld down, bad partition...).
    #[error("sbatch could not submit the matrix ({status}): {stderr}; nothing was submitted and no result was lost: run again when Slurm answers")]
    Submit {
        /// sbatch's exit status.
        status: String,
        /// What it said.
        stderr: String,
    },
    /// A Slurm command could not be started.
    #[error("cannot run `{program}` (is slurm-wlm installed?): {source}")]
    Spawn {
        /// The program.
        program: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Waiting on the job failed.
    #[error("squeue failed while waiting for job {job}: {stderr}")]
    Wait {
        /// The job id.
        job: String,
        /// What squeue said.
        stderr: String,
    },
    /// The Slurm batch script could not be written.
    #[error(transparent)]
    Io(#[from] build_farm::PathError),
}

/// What an engine is asked to run.
pub struct Request<'a> {
    /// The spec file (absolute), for `matrix cell`.
    pub spec: &'a Path,
    /// The cells not yet fresh.
    pub cells: &'a [CellSpec],
    /// Parallelism and -j.
    pub slots: Slots,
    /// The output directory (shared by every node).
    pub out: &'a Path,
    /// The cache (shared by every node).
    pub cache: &'a Path,
}

/// What an engine did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Submitted {
    /// Every cell ran; the records are in `out`.
    Done,
    /// Cells were handed to a scheduler and may still run (`--no-wait`).
    Queued {
        /// The scheduler's job id.
        job: String,
    },
}

/// An engine.
pub trait Executor {
    /// Its name in records (`local`, `slurm`).
    fn name(&self) -> &'static str;
    /// Run (or submit) the cells.
    fn run(&self, req: &Request) -> Result<Submitted, ExecError>;
}

/// The command line that runs one cell: the reproducer in every record.
pub fn cell_command(binary: &Path, cache: &Path, spec: &Path, id: &str, out: &Path) -> Vec<String> {
    vec![
        binary.display().to_string(),
        "--cache".into(),
        cache.display().to_string(),
        "matrix".into(),
        "cell".into(),
        spec.display().to_string(),
        id.to_string(),
        "--out".into(),
        out.display().to_string(),
    ]
}

/// Cells on this machine's worker pool.
pub struct Local<'a> {
    /// The pipeline's context (cache and terminal).
    pub ctx: &'a Context,
    /// The terminal's progress lines.
    pub progress: &'a dyn Progress,
    /// The xc-convert binary named in reproducers.
    pub binary: PathBuf,
}

impl Executor for Local<'_> {
    fn name(&self) -> &'static str {
        "local"
    }

    fn run(&self, req: &Request) -> Result<Submitted, ExecError> {
        let line = |c: &CellSpec| crate::shell::join(&cell_command(&self.binary, req.cache, req.spec, &c.id, req.out));
        schedule::run_local(self.ctx, req.cells, req.slots, req.out, &line, self.progress)?;
        Ok(Submitted::Done)
    }
}

/// Cells as one Slurm job array: task N runs the N-th cell of `plan.json`.
pub struct Slurm {
    /// The xc-convert binary every node runs (on the shared filesystem).
    pub binary: PathBuf,
    /// Wait for the array to finish.
    pub wait: bool,
    /// Extra `sbatch` arguments (partition, account...).
    pub sbatch_args: Vec<String>,
    /// How often to ask squeue while waiting.
    pub poll: Duration,
}

impl Executor for Slurm {
    fn name(&self) -> &'static str {
        "slurm"
    }

    fn run(&self, req: &Request) -> Result<Submitted, ExecError> {
        if req.cells.is_empty() {
            return Ok(Submitted::Done);
        }
        let dir = req.out.join("slurm");
        std::fs::create_dir_all(&dir).map_err(build_farm::at("create", &dir))?;
        // The array indexes this list, written beside the script so a task
        // never depends on what apt-cache says on its node.
        let ids: Vec<&str> = req.cells.iter().map(|c| c.id.as_str()).collect();
        let list = dir.join("cells.txt");
        std::fs::write(&list, ids.join("\n") + "\n").map_err(build_farm::at("write", &list))?;
        let mut cmd = cell_command(&self.binary, req.cache, req.spec, "\"$id\"", req.out);
        cmd.push("--engine-name".into());
        cmd.push("slurm".into());
        let quoted: Vec<String> = cmd.iter().map(|w| if w == "\"$id\"" { w.clone() } else { crate::shell::quote(w) }).collect();
        let script = format!(
            "#!/bin/sh\n# One matrix cell per array task (written by xc-convert matrix run --engine slurm).\nid=$(sed -n \"$((SLURM_ARRAY_TASK_ID + 1))p\" {})\nexec {}\n",
            crate::shell::quote(&list.display().to_string()),
            quoted.join(" ")
        );
        let script_path = dir.join("cell.sh");
        std::fs::write(&script_path, script).map_err(build_farm::at("write", &script_path))?;
        let mut sbatch = Command::new("sbatch");
        sbatch
            .arg("--parsable")
            .arg(format!("--array=0-{}", req.cells.len() - 1))
            .arg(format!("--cpus-per-task={}", req.slots.jobs))
            .arg("--job-name=xc-matrix")
            .arg(format!("--output={}/%A_%a.out", dir.display()))
            .args(&self.sbatch_args)
            .arg(&script_path);
        let out = sbatch.output().map_err(|source| ExecError::Spawn { program: "sbatch".into(), source })?;
        if !out.status.success() {
            return Err(ExecError::Submit { status: out.status.to_string(), stderr: String::from_utf8_lossy(&out.stderr).trim().to_string() });
        }
        let job = String::from_utf8_lossy(&out.stdout).trim().split(';').next().unwrap_or_default().to_string();
        if !self.wait {
            return Ok(Submitted::Queued { job });
        }
        loop {
            let q = Command::new("squeue").args(["-h", "-j", &job, "-o", "%i"]).output().map_err(|source| ExecError::Spawn { program: "squeue".into(), source })?;
            if !q.status.success() {
                let stderr = String::from_utf8_lossy(&q.stderr).trim().to_string();
                // squeue forgets a finished job after MinJobAge: that is done, not an error.
                if stderr.contains("Invalid job id") {
                    return Ok(Submitted::Done);
                }
                return Err(ExecError::Wait { job, stderr });
            }
            if String::from_utf8_lossy(&q.stdout).trim().is_empty() {
                return Ok(Submitted::Done);
            }
            std::thread::sleep(self.poll);
        }
    }
}

