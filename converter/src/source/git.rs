//! Git inputs: a commit of a local repository, exported with `git archive`.
//!
//! The commit id (not the ref name) is the identity, so `main` moving on
//! yields a new cache entry while re-pulling the same commit is a hit.
//! `git archive` output goes through the same safe extractor as tarballs:
//! a repository is as untrusted as any archive.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;

use super::extract::{extract_tar_safely_with_progress, ExtractStats};
use super::{PullEvent, SourceError};

/// Resolve `rev` in `repo` to a full commit id.
pub(crate) fn resolve_commit(repo: &Path, rev: &str) -> Result<String, SourceError> {
    if rev.is_empty() || rev.starts_with('-') {
        return Err(git_error(repo, format!("invalid revision `{rev}`")));
    }
    // Tell a wrong repository from a wrong ref: `rev-parse --verify` below
    // fails the same way for both.
    if !repo.is_dir() {
        return Err(SourceError::NoSuchInput { what: "git repository", path: repo.to_path_buf() });
    }
    let probe = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["rev-parse", "--git-dir"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| git_error(repo, format!("cannot run git: {e}")))?;
    if !probe.status.success() {
        let why = String::from_utf8_lossy(&probe.stderr).trim().to_string();
        return Err(git_error(repo, format!("not a git repository ({why})")));
    }
    let output = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["rev-parse", "--verify", "--quiet"])
        .arg(format!("{rev}^{{commit}}"))
        .stdin(Stdio::null())
        .output()
        .map_err(|e| git_error(repo, format!("cannot run git: {e}")))?;
    let commit = String::from_utf8_lossy(&output.stdout).trim().to_string();
    let is_hex = commit.bytes().all(|b| b.is_ascii_hexdigit());
    if !output.status.success() || !is_hex || !(commit.len() == 40 || commit.len() == 64) {
        // `--quiet` makes git say nothing for a plain unknown name.
        let said = String::from_utf8_lossy(&output.stderr).trim().to_string();
        let detail = if said.is_empty() { "no branch, tag or commit of that name in this repository".to_string() } else { said };
        return Err(git_error(repo, format!("`{rev}` is not a commit: {detail}")));
    }
    Ok(commit)
}

/// Stream `git archive COMMIT` into `dest` through the safe extractor.
pub(crate) fn archive_into(
    repo: &Path,
    commit: &str,
    dest: &Path,
    progress: &dyn Fn(PullEvent),
) -> Result<ExtractStats, SourceError> {
    let mut child = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["archive", "--format=tar", commit])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| git_error(repo, format!("cannot run git archive: {e}")))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| git_error(repo, "git archive has no stdout".into()))?;
    // Drain stderr concurrently so a chatty git cannot block on a full pipe.
    let stderr_reader = child.stderr.take().map(|mut err| {
        thread::spawn(move || {
            let mut text = String::new();
            let _ = err.read_to_string(&mut text);
            text
        })
    });
    let extracted = extract_tar_safely_with_progress(stdout, dest, &|s| {
        progress(PullEvent::Extracting {
            entries: s.entries,
            bytes: s.bytes,
        })
    });
    // On an extraction error the pipe is closed by now, so git exits (SIGPIPE).
    let status = child.wait();
    let stderr = stderr_reader
        .and_then(|h| h.join().ok())
        .unwrap_or_default();
    let stats = extracted.map_err(|source| SourceError::Extract {
        archive: format!("git archive {commit} of {}", repo.display()),
        source,
    })?;
    match status {
        Ok(s) if s.success() => Ok(stats),
        Ok(s) => Err(git_error(
            repo,
            format!("git archive failed ({s}): {}", stderr.trim()),
        )),
        Err(e) => Err(git_error(repo, format!("waiting for git archive: {e}"))),
    }
}

fn git_error(repo: &Path, message: String) -> SourceError {
    SourceError::Git {
        repo: repo.to_path_buf(),
        message,
    }
}
