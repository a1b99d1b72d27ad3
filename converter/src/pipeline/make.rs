//! Running the kernel's own make, with the whole log kept on disk.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A make invocation that failed.
#[derive(Debug, thiserror::Error)]
#[error("`make {target}` failed ({status}); full log: {log}\nlast errors:\n{tail}")]
pub struct MakeError {
    /// The make target(s).
    pub target: String,
    /// Exit status text.
    pub status: String,
    /// The log file.
    pub log: PathBuf,
    /// The most relevant last lines of the log.
    pub tail: String,
}

/// One make invocation on a kernel tree, out of tree (`O=`).
#[derive(Debug, Clone)]
pub struct Make {
    /// The kernel source root (never written to: `O=` keeps it pristine).
    pub tree: PathBuf,
    /// The object directory.
    pub objdir: PathBuf,
    /// Extra `VAR=value` arguments.
    pub vars: Vec<String>,
    /// Parallel jobs.
    pub jobs: usize,
    /// Extra environment.
    pub env: Vec<(String, String)>,
}

impl Make {
    /// A make for ARCH=x86_64 with one job.
    pub fn new(tree: &Path, objdir: &Path) -> Make {
        Make { tree: tree.to_path_buf(), objdir: objdir.to_path_buf(), vars: Vec::new(), jobs: 1, env: Vec::new() }
    }

    /// The argument list, for logs and reproducers.
    pub fn args(&self, targets: &[&str]) -> Vec<String> {
        let mut a = vec![
            "-C".to_string(),
            self.tree.display().to_string(),
            format!("O={}", self.objdir.display()),
            "ARCH=x86_64".to_string(),
            format!("-j{}", self.jobs.max(1)),
        ];
        a.extend(self.prefix_maps());
        a.extend(self.vars.iter().cloned());
        a.extend(targets.iter().map(|t| t.to_string()));
        a
    }

    /// Compiler flags that strip the source and object directories from
    /// every path the compiler records (`__FILE__` in WARN/BUG strings,
    /// debug info). Both directories hold cache paths (the object directory
    /// also the build key), so without this one key built in two caches
    /// would differ in bytes. Kbuild resolves its tree with `realpath`, hence
    /// the canonical forms as well.
    fn prefix_maps(&self) -> Vec<String> {
        let mut dirs = Vec::new();
        for dir in [&self.tree, &self.objdir] {
            dirs.push(dir.clone());
            if let Ok(real) = dir.canonicalize() {
                dirs.push(real);
            }
        }
        dirs.dedup();
        let flags = dirs.iter().map(|d| format!("-ffile-prefix-map={}/=", d.display())).collect::<Vec<_>>().join(" ");
        vec![format!("KCFLAGS={flags}"), format!("KAFLAGS={flags}")]
    }

    /// Run `targets`, appending all output to `log` and passing each line to
    /// `on_line`. On failure the error carries the log path and its last
    /// error lines.
    pub fn run(&self, targets: &[&str], log: &Path, on_line: &mut dyn FnMut(&str)) -> Result<(), MakeError> {
        let target = targets.join(" ");
        let fail = |status: String, tail: String| MakeError { target: target.clone(), status, log: log.to_path_buf(), tail };
        std::fs::create_dir_all(&self.objdir).map_err(|e| fail(format!("cannot create {}: {e}", self.objdir.display()), String::new()))?;
        let mut logf = File::options()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| fail(format!("cannot open log: {e}"), String::new()))?;
        let _ = writeln!(logf, "$ make {}", self.args(targets).join(" "));
        // stderr is merged into stdout through a shell-free pipe: make's
        // errors interleave with the lines that caused them.
        let mut cmd = Command::new("make");
        cmd.args(self.args(targets)).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().map_err(|e| fail(format!("cannot run make: {e}"), String::new()))?;
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let tx2 = tx.clone();
        let t_err = std::thread::spawn(move || {
            for l in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx2.send(l);
            }
        });
        let stdout = child.stdout.take().expect("piped stdout");
        let t_out = std::thread::spawn(move || {
            for l in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
        let mut recent: std::collections::VecDeque<String> = Default::default();
        for line in rx {
            let _ = writeln!(logf, "{line}");
            on_line(&line);
            recent.push_back(line);
            if recent.len() > 400 {
                recent.pop_front();
            }
        }
        let _ = t_err.join();
        let _ = t_out.join();
        let status = child.wait().map_err(|e| fail(format!("waiting for make: {e}"), String::new()))?;
        if status.success() {
            Ok(())
        } else {
            Err(fail(status.to_string(), error_tail(recent.iter().map(String::as_str))))
        }
    }
}

/// The lines worth showing from a failed build: those that say `error` (with
/// the line before each, often the file), else the last 15 lines.
pub fn error_tail<'a>(lines: impl Iterator<Item = &'a str>) -> String {
    let lines: Vec<&str> = lines.collect();
    let mut picked: Vec<&str> = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if l.contains("error") || l.contains("Error ") || l.contains("*** ") {
            if i > 0 && !picked.contains(&lines[i - 1]) {
                picked.push(lines[i - 1]);
            }
            picked.push(l);
        }
    }
    if picked.is_empty() {
        picked = lines.iter().rev().take(15).rev().copied().collect();
    }
    let n = picked.len();
    picked.into_iter().skip(n.saturating_sub(20)).map(|l| format!("  {l}")).collect::<Vec<_>>().join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_tail_prefers_error_lines_with_their_context() {
        let log = "  CC kernel/a.o\nkernel/b.c: In function 'f':\nkernel/b.c:3:1: error: expected ';'\nmake[2]: *** [b.o] Error 1\n  CC kernel/c.o";
        let t = error_tail(log.lines());
        assert!(t.contains("kernel/b.c:3:1: error"), "{t}");
        assert!(t.contains("In function"), "{t}");
        assert!(!t.contains("kernel/c.o"), "{t}");
    }

    #[test]
    fn compiler_paths_are_mapped_away_from_the_cache() {
        let m = Make::new(Path::new("/c/sources/ab/tree"), Path::new("/c/work/6.1-minimal-stock-0123"));
        let args = m.args(&["bzImage"]);
        let kcflags = args.iter().find(|a| a.starts_with("KCFLAGS=")).expect("KCFLAGS");
        assert!(kcflags.contains("-ffile-prefix-map=/c/sources/ab/tree/="), "{kcflags}");
        assert!(kcflags.contains("-ffile-prefix-map=/c/work/6.1-minimal-stock-0123/="), "{kcflags}");
        assert!(args.iter().any(|a| a.starts_with("KAFLAGS=") && a.contains("-ffile-prefix-map=/c/sources/ab/tree/=")));
    }

    #[test]
    fn failing_make_reports_log_and_tail() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Makefile"), "all:\n\t@echo building\n\t@echo 'x.c:1: error: boom' >&2\n\t@false\n").unwrap();
        let m = Make::new(dir.path(), &dir.path().join("obj"));
        let log = dir.path().join("log");
        let mut seen = Vec::new();
        let e = m.run(&["all"], &log, &mut |l| seen.push(l.to_string())).unwrap_err();
        assert!(e.tail.contains("x.c:1: error: boom"), "{e}");
        assert!(std::fs::read_to_string(&log).unwrap().contains("building"));
        assert!(seen.iter().any(|l| l == "building"));
    }
}
