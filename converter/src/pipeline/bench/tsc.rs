//! The TSC frequency to pin in TCG guests.
//!
//! Under TCG the guest's TSC is the host's (QEMU reads the host's counter),
//! but the guest kernel calibrates it against the emulated PIT, a race
//! against wall-clock time that a loaded host often loses; the kernel then
//! falls back to the jiffies clocksource and every benchmark row times in
//! 4 ms steps. `tsc_early_khz=` on the command line skips that calibration,
//! so the host measures the frequency once, the same way for every column.
//!
//! Measured by running the embedded `xc_bench --tsc-khz` on the host (the
//! guest programs are built for the host's architecture): rdtsc needs
//! unsafe code in Rust, which this workspace forbids.

use super::{BenchError, PROGRAM};
use std::os::unix::fs::PermissionsExt;

const MARKER: &str = "XC-BENCH-TSC-KHZ ";

/// The `tsc_early_khz=` to give every guest: `requested` (0: none), else
/// under TCG the host's TSC, measured; under KVM none (the guest's TSC is
/// the CPU's and calibrates well).
pub fn pinned(requested: Option<u64>, accel: crate::qemu::Accel) -> Result<Option<u64>, BenchError> {
    match (requested, accel) {
        (Some(0), _) | (None, crate::qemu::Accel::Kvm) => Ok(None),
        (Some(k), _) => Ok(Some(k)),
        (None, crate::qemu::Accel::Tcg) => host_tsc_khz().map(Some),
    }
}

/// The host's TSC frequency in kHz.
pub fn host_tsc_khz() -> Result<u64, BenchError> {
    let fail = |what: &str, e: &dyn std::fmt::Display| BenchError::Tsc(format!("{what}: {e}"));
    let program = crate::guest::find(PROGRAM).ok_or_else(|| BenchError::Tsc("xc_bench is not embedded in this binary".into()))?;
    let mut file = tempfile::Builder::new().prefix("xc-bench-tsc-").tempfile().map_err(|e| fail("creating a temporary file", &e))?;
    std::io::Write::write_all(&mut file, program.bytes).map_err(|e| fail("writing xc_bench to a temporary file", &e))?;
    // Closed before exec: running a file still open for writing fails with ETXTBSY.
    let path = file.into_temp_path();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700)).map_err(|e| fail("making it executable", &e))?;
    // Another thread forking while our file was still open for writing
    // holds a copy of that descriptor until it execs: ETXTBSY, briefly.
    let mut tries = 0;
    let out = loop {
        match std::process::Command::new(&path).arg("--tsc-khz").output() {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy && tries < 40 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            other => break other.map_err(|e| fail("running it", &e))?,
        }
    };
    let text = String::from_utf8_lossy(&out.stdout);
    parse(&text).ok_or_else(|| BenchError::Tsc(format!("it printed no frequency ({}): {text}{}", out.status, String::from_utf8_lossy(&out.stderr))))
}

/// The frequency in `XC-BENCH-TSC-KHZ <n>`, when plausible (10 MHz..100 GHz).
fn parse(text: &str) -> Option<u64> {
    let khz: u64 = text.lines().find_map(|l| l.strip_prefix(MARKER))?.trim().parse().ok()?;
    (10_000..100_000_000).contains(&khz).then_some(khz)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_marker_and_refuses_nonsense() {
        assert_eq!(parse("XC-BENCH-TSC-KHZ 2600001\n"), Some(2_600_001));
        assert_eq!(parse("noise\nXC-BENCH-TSC-KHZ 3000000"), Some(3_000_000));
        assert_eq!(parse("XC-BENCH-TSC-KHZ 0\n"), None);
        assert_eq!(parse("XC-BENCH-TSC-KHZ fast\n"), None);
        assert_eq!(parse(""), None);
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn the_host_has_a_plausible_tsc() {
        let khz = host_tsc_khz().unwrap();
        assert!((100_000..20_000_000).contains(&khz), "{khz}");
    }
}
