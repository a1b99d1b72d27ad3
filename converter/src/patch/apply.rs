//! Turning a clean plan into files: unified diffs, and a patched copy of a tree.

use std::fs;
use std::io;
use std::path::Path;

/// A unified diff of one file (`--- a/f`/`+++ b/f`, or from /dev/null for a
/// new file) that `patch -p1` and `git apply` accept.
pub fn unified_diff(file: &str, old: Option<&str>, new: &str) -> String {
    let old_text = old.unwrap_or("");
    let diff = similar::TextDiff::from_lines(old_text, new);
    let from = if old.is_some() { format!("a/{file}") } else { "/dev/null".to_string() };
    let mut out = format!("diff --git a/{file} b/{file}\n");
    if old.is_none() {
        out.push_str("new file mode 100644\n");
    }
    out.push_str(&diff.unified_diff().context_radius(3).header(&from, &format!("b/{file}")).to_string());
    out
}

/// Copy `src` to `dest` (which must not exist) with hard links for files
/// and copies of symlinks, then replace `files` (relative path -> content)
/// by fresh files. Writing a new file (not through the link) is what keeps
/// the cached original untouched.
pub fn patched_copy(src: &Path, dest: &Path, files: &std::collections::BTreeMap<String, String>) -> io::Result<u64> {
    let mut n = 0;
    for entry in walkdir::WalkDir::new(src).follow_links(false) {
        let entry = entry.map_err(io::Error::other)?;
        let rel = entry.path().strip_prefix(src).map_err(io::Error::other)?;
        let to = dest.join(rel);
        let ft = entry.file_type();
        if ft.is_dir() {
            fs::create_dir_all(&to)?;
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(entry.path())?, &to)?;
        } else {
            fs::hard_link(entry.path(), &to)?;
            n += 1;
        }
    }
    for (rel, content) in files {
        let to = dest.join(rel);
        let perms = fs::metadata(src.join(rel)).ok().map(|m| m.permissions());
        if to.exists() {
            fs::remove_file(&to)?;
        }
        if let Some(parent) = to.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(&to, content)?;
        if let Some(p) = perms {
            fs::set_permissions(&to, p)?;
        }
    }
    Ok(n)
}
