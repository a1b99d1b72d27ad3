//! Build the test initramfs: busybox, the guest programs and an `/init` that
//! runs them between console markers the host parses
//! (see `crate::qemu::parse_console`).

use std::collections::HashSet;
use std::fmt::Write as _;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use super::busybox::{ensure_static, BUSYBOX_APPLETS};
use super::cpio::{CpioWriter, Entry};
use super::{validate_name, ExtraFile, GuestError, GuestPayload, GUARD, GUEST_LIBC_DIR};

/// Directories created in the archive, parents first.
const DIRS: &[&str] = &["bin", "dev", "proc", "sys", "tmp", "xc"];

/// What goes into the initramfs.
#[derive(Debug, Clone)]
pub struct InitramfsSpec {
    /// Installed as `/xc/<name>` and run by `/init` in this order.
    pub programs: Vec<GuestPayload>,
    /// Host path of a statically linked busybox (see `guest::find_busybox`).
    pub busybox: PathBuf,
    /// More files at fixed guest paths (their parent directories are created).
    pub files: Vec<ExtraFile>,
    /// The programs were rewritten for the entry table: `/init` refuses to
    /// run them unless `/proc/xc_libos` announces it (see `guest::translate`).
    pub require_entry_table: bool,
}

impl InitramfsSpec {
    /// What `/init` runs, in order: the names of its `XC-RUN-*` markers.
    pub fn run_order(&self) -> Vec<String> {
        let guard = self.require_entry_table.then(|| GUARD.to_owned());
        guard.into_iter().chain(self.programs.iter().map(|p| p.name.clone())).collect()
    }
}

/// Write the initramfs for `spec` to `out`.
///
/// The archive is written to a temporary file next to `out` and renamed into
/// place, so a reader never sees a half-written image and a failure leaves
/// any previous file untouched.
pub fn write_initramfs(spec: &InitramfsSpec, out: &Path) -> Result<(), GuestError> {
    check_names(&spec.programs)?;
    ensure_static(&spec.busybox)?;
    let busybox = std::fs::read(&spec.busybox)
        .map_err(|source| GuestError::ReadBusybox { path: spec.busybox.clone(), source })?;
    if let Some(p) = spec.programs.iter().find(|p| u32::try_from(p.bytes.len()).is_err()) {
        return Err(GuestError::EntryTooLarge { name: p.name.clone(), size: p.bytes.len() as u64 });
    }
    let write_err = |source| GuestError::WriteInitramfs { path: out.to_owned(), source };
    let dir = out.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let tmp = tempfile::NamedTempFile::new_in(dir).map_err(write_err)?;
    let file = write_archive(BufWriter::new(tmp.as_file()), spec, &busybox).map_err(write_err)?;
    file.into_inner().map_err(|e| write_err(e.into_error()))?.sync_all().map_err(write_err)?;
    tmp.persist(out).map_err(|e| write_err(e.error))?;
    Ok(())
}

fn check_names(programs: &[GuestPayload]) -> Result<(), GuestError> {
    let mut seen = HashSet::new();
    for p in programs {
        validate_name(&p.name)?;
        if !seen.insert(p.name.as_str()) {
            return Err(GuestError::DuplicateName { name: p.name.clone() });
        }
    }
    Ok(())
}

fn write_archive<W: Write>(out: W, spec: &InitramfsSpec, busybox: &[u8]) -> io::Result<W> {
    let mut cpio = CpioWriter::new(out);
    for dir in DIRS {
        cpio.append(&Entry::dir(dir))?;
    }
    // The kernel opens /dev/console for init's stdio before /init can mount
    // devtmpfs; without this node early output (and errors) would be lost.
    cpio.append(&Entry::char_dev("dev/console", 0o600, 5, 1))?;
    cpio.append(&Entry::file("bin/busybox", 0o755, busybox))?;
    for applet in BUSYBOX_APPLETS {
        let name = format!("bin/{applet}");
        cpio.append(&Entry::symlink(&name, "busybox"))?;
    }
    for program in &spec.programs {
        let name = format!("xc/{}", program.name);
        cpio.append(&Entry::file(&name, 0o755, &program.bytes))?;
    }
    let mut made: HashSet<String> = DIRS.iter().map(|d| d.to_string()).collect();
    for file in &spec.files {
        // each parent directory once, outermost first
        let parents: Vec<&Path> = Path::new(&file.path).ancestors().skip(1).filter(|p| !p.as_os_str().is_empty()).collect();
        for dir in parents.into_iter().rev() {
            let dir = dir.to_string_lossy().into_owned();
            if made.insert(dir.clone()) {
                cpio.append(&Entry::dir(&dir))?;
            }
        }
        cpio.append(&Entry::file(&file.path, file.mode, &file.bytes))?;
    }
    let names: Vec<&str> = spec.programs.iter().map(|p| p.name.as_str()).collect();
    cpio.append(&Entry::file("init", 0o755, init_script(&names, spec.require_entry_table).as_bytes()))?;
    cpio.finish()
}

/// The `/init` shell script.
///
/// Markers are printed on their own lines so the host can find them among
/// kernel messages; `reboot -f` with QEMU's `-no-reboot` ends the VM. If
/// reboot ever fails, init exits, the kernel panics ("Attempted to kill
/// init") and `panic=-1` reboots, so QEMU still exits.
///
/// With `require_entry_table`, a step named [`GUARD`] runs first and, on a
/// kernel without the entry table, fails with the reason and skips the
/// programs (they were rewritten and would crash there).
pub fn init_script(programs: &[&str], require_entry_table: bool) -> String {
    let mut s = String::from(
        "#!/bin/sh\n\
         # Generated by xc-convert: boot test init.\n\
         export PATH=/bin\n\
         mount -t proc proc /proc || echo 'XC-WARN mount proc failed'\n\
         mount -t sysfs sysfs /sys || echo 'XC-WARN mount sysfs failed'\n\
         mount -t devtmpfs devtmpfs /dev || echo 'XC-WARN mount devtmpfs failed'\n\
         echo 'XC-BOOT ok'\n",
    );
    let indent = if require_entry_table {
        writeln!(s, "export LD_LIBRARY_PATH=/{GUEST_LIBC_DIR}").expect("write to String");
        s.push_str(&format!(
            "echo 'XC-RUN-BEGIN {GUARD}'\n\
             f=$(awk '$1 == \"features\" {{ print $2 }}' /proc/xc_libos 2>/dev/null)\n\
             if [ -n \"$f\" ] && [ $(( f & {table} )) -ne 0 ]; then\n\
             \techo \"XC-CHECK {GUARD} entry_table PASS features=$f\"\n\
             \techo 'XC-RUN-END {GUARD} rc=0'\n",
            table = pv_interface::abi::XC_FEATURE_ENTRY_TABLE,
        ));
        "\t"
    } else {
        ""
    };
    for name in programs {
        writeln!(s, "{indent}echo 'XC-RUN-BEGIN {name}'").expect("write to String");
        writeln!(s, "{indent}/xc/{name}").expect("write to String");
        writeln!(s, "{indent}echo \"XC-RUN-END {name} rc=$?\"").expect("write to String");
    }
    if require_entry_table {
        s.push_str(&format!(
            "else\n\
             \techo 'XC-CHECK {GUARD} entry_table FAIL this kernel does not map the system-call entry table \
             (no /proc/xc_libos or its features lack it): the programs were rewritten by abom and would crash here, not running them'\n\
             \techo 'XC-RUN-END {GUARD} rc=1'\n\
             fi\n"
        ));
    }
    s.push_str("echo 'XC-DONE'\nreboot -f\nsleep 5\necho 'XC-WARN reboot failed'\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guest::find;
    use std::process::{Command, Stdio};

    /// Needs busybox-static, which scripts/install-deps installs: a missing
    /// one fails the test (it used to return early and pass).
    fn spec() -> InitramfsSpec {
        let busybox = crate::guest::find_busybox().expect("a static busybox (apt-get install busybox-static)");
        let probe = GuestPayload::from(find("probe").unwrap());
        let extra = GuestPayload { name: "second".into(), bytes: b"#!/bin/sh\nexit 3\n".to_vec() };
        InitramfsSpec { programs: vec![probe, extra], busybox, files: vec![], require_entry_table: false }
    }

    fn have_cpio() -> bool {
        Command::new("cpio").arg("--version").output().is_ok()
    }

    #[test]
    fn init_script_runs_programs_in_order() {
        let s = init_script(&["a", "b"], false);
        assert!(s.starts_with("#!/bin/sh\n"));
        let a = s.find("XC-RUN-BEGIN a").unwrap();
        let b = s.find("XC-RUN-BEGIN b").unwrap();
        assert!(s.find("XC-BOOT ok").unwrap() < a && a < b);
        assert!(s.contains("XC-RUN-END a rc=$?"));
        assert!(s.find("XC-DONE").unwrap() < s.find("reboot -f").unwrap());
    }

    #[test]
    fn rejects_duplicate_and_bad_names() {
        let mut spec = spec();
        spec.programs.push(spec.programs[0].clone());
        let out = tempfile::tempdir().unwrap();
        let err = write_initramfs(&spec, &out.path().join("i.cpio")).unwrap_err();
        assert!(matches!(err, GuestError::DuplicateName { .. }), "{err}");
        assert!(!out.path().join("i.cpio").exists());
    }

    #[test]
    fn host_cpio_lists_and_extracts_archive() {
        let spec = spec();
        assert!(have_cpio(), "host cpio missing (apt-get install cpio)");
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("initramfs.cpio");
        write_initramfs(&spec, &archive).unwrap();

        let listing = run_cpio(&archive, &["-it"], dir.path());
        let entries: Vec<&str> = listing.lines().collect();
        for want in ["bin", "bin/busybox", "bin/sh", "bin/reboot", "dev/console", "proc", "sys",
                     "tmp", "xc", "xc/probe", "xc/second", "init"] {
            assert!(entries.contains(&want), "missing {want} in {entries:?}");
        }

        let root = dir.path().join("root");
        std::fs::create_dir(&root).unwrap();
        // Extracting dev/console needs root; cpio reports it but goes on.
        run_cpio(&archive, &["-idm", "--no-absolute-filenames"], &root);
        let init = std::fs::read_to_string(root.join("init")).unwrap();
        assert_eq!(init, init_script(&["probe", "second"], false));
        assert_eq!(std::fs::read(root.join("xc/probe")).unwrap(), find("probe").unwrap().bytes);
        let link = std::fs::read_link(root.join("bin/sh")).unwrap();
        assert_eq!(link, Path::new("busybox"));
        assert_eq!(std::fs::read(root.join("bin/busybox")).unwrap(),
                   std::fs::read(&spec.busybox).unwrap());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(root.join("xc/probe")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o755);
    }

    fn run_cpio(archive: &Path, args: &[&str], cwd: &Path) -> String {
        let input = std::fs::File::open(archive).unwrap();
        let out = Command::new("cpio")
            .args(args)
            .current_dir(cwd)
            .stdin(input)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert!(out.status.success() || args[0] != "-it", "cpio {args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    }
}
