//! Parse a guest's serial console log into a structured report.
//!
//! The log mixes kernel messages with the output of the test `/init` (see
//! `crate::guest::init_script`). Markers are searched anywhere in a line, not
//! only at its start, because a printk can land on the same line as
//! userspace output on a shared serial port.

use serde::{Deserialize, Serialize};

const BOOT_MARKER: &str = "XC-BOOT ok";
const DONE_MARKER: &str = "XC-DONE";
const RUN_BEGIN: &str = "XC-RUN-BEGIN ";
const RUN_END: &str = "XC-RUN-END ";
const PROBE: &str = "XC-PROBE ";
const VERSION: &str = "Linux version ";
/// `smp: Brought up 1 node, 2 CPUs` (only SMP kernels print it).
const SMP_UP: &str = "smp: Brought up ";

/// Everything the host learned from one boot.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConsoleReport {
    /// `/init` started (saw `XC-BOOT ok`).
    pub booted: bool,
    /// `/init` ran every program (saw `XC-DONE`).
    pub done: bool,
    pub runs: Vec<ProgramRun>,
    pub probes: Vec<ProbeResult>,
    pub problems: Vec<Problem>,
    /// The kernel's `Linux version ...` banner, without the timestamp.
    pub kernel_version_line: Option<String>,
    /// CPUs an SMP kernel brought up; `None` when it did not say (not SMP).
    #[serde(default)]
    pub cpus_up: Option<u32>,
}

impl ConsoleReport {
    /// Booted, finished, every program exited 0 and the kernel complained
    /// about nothing.
    pub fn is_clean(&self) -> bool {
        self.booted
            && self.done
            && !self.problems.iter().any(|p| p.kind.is_kernel_fault())
            && self.runs.iter().all(|r| r.rc == Some(0))
    }
}

/// One program run by `/init`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgramRun {
    pub name: String,
    /// `None` when the log ends before `XC-RUN-END` (hang, panic, timeout).
    pub rc: Option<i32>,
    /// Console lines between the begin and end markers (kernel messages
    /// included, since they are interleaved).
    pub lines: Vec<String>,
}

/// The `XC-PROBE` line printed by `guest/probe.c`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeResult {
    /// Privilege level user code runs at: 3 on a stock kernel, 0 on a
    /// library-OS kernel.
    pub cpl: u8,
    pub cs: u16,
    pub sysname: String,
    pub release: String,
    pub machine: String,
    /// Mean cost of one raw getppid syscall (best of three batches).
    pub getppid_ns: f64,
    pub iters: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    pub kind: ProblemKind,
    /// The offending console line (trimmed).
    pub line: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ProblemKind {
    Panic,
    Oops,
    Bug,
    Warning,
    GeneralProtection,
    CallTrace,
    Segfault,
    Trap,
    Lockup,
    /// A line with an `XC-` marker that could not be parsed.
    MalformedMarker,
}

impl ProblemKind {
    /// True for trouble in the kernel itself. A process killed by its own
    /// segfault or trap (logged by show_unhandled_signals) is the kernel
    /// doing its job: the behaviour suite provokes those on purpose.
    pub fn is_kernel_fault(&self) -> bool {
        !matches!(self, ProblemKind::Segfault | ProblemKind::Trap)
    }
}

/// Substrings that identify kernel trouble, checked in order; the first match
/// classifies the line (e.g. a panic line mentioning "BUG" stays a panic).
const PROBLEM_PATTERNS: &[(&str, ProblemKind)] = &[
    ("Kernel panic", ProblemKind::Panic),
    // A process's own fault ("traps: prog[12] general protection fault ip:...")
    // is the kernel working as intended; check it before the kernel's GP.
    ("traps: ", ProblemKind::Trap),
    (": segfault at ", ProblemKind::Segfault),
    ("general protection fault", ProblemKind::GeneralProtection),
    ("Oops:", ProblemKind::Oops),
    // Lockup reports also say "BUG:", so they must be checked first.
    ("soft lockup", ProblemKind::Lockup),
    ("hard LOCKUP", ProblemKind::Lockup),
    ("detected stalls", ProblemKind::Lockup),
    ("self-detected stall", ProblemKind::Lockup),
    ("blocked for more than", ProblemKind::Lockup),
    ("kernel BUG at", ProblemKind::Bug),
    ("BUG:", ProblemKind::Bug),
    ("WARNING:", ProblemKind::Warning),
    ("Call Trace:", ProblemKind::CallTrace),
    ("XC-WARN", ProblemKind::Warning),
];

/// Parse a whole console log.
pub fn parse_console(text: &str) -> ConsoleReport {
    let mut parser = Parser::default();
    for line in text.lines() {
        parser.line(line);
    }
    parser.finish()
}

/// Incremental parser, so a caller streaming the console could also feed it
/// line by line.
#[derive(Debug, Default)]
struct Parser {
    report: ConsoleReport,
    /// The run between `XC-RUN-BEGIN` and `XC-RUN-END`, if any.
    current: Option<ProgramRun>,
}

impl Parser {
    fn line(&mut self, raw: &str) {
        let line = raw.trim_end_matches(['\r', '\n']).trim_end();
        if self.report.kernel_version_line.is_none() {
            if let Some(at) = line.find(VERSION) {
                self.report.kernel_version_line = Some(line[at..].to_owned());
            }
        }
        if let Some(rest) = after(line, SMP_UP) {
            // "1 node, 2 CPUs": the number before "CPU"
            let words: Vec<&str> = rest.split([' ', ',']).filter(|w| !w.is_empty()).collect();
            self.report.cpus_up = words.windows(2).find(|w| w[1].starts_with("CPU")).and_then(|w| w[0].parse().ok());
        }
        if let Some(kind) = classify_problem(line) {
            self.report.problems.push(Problem { kind, line: line.trim().to_owned() });
        }
        if line.contains(BOOT_MARKER) {
            self.report.booted = true;
        } else if line.contains(DONE_MARKER) {
            self.close_run();
            self.report.done = true;
        } else if let Some(rest) = after(line, RUN_BEGIN) {
            self.close_run();
            let name = rest.split_whitespace().next().unwrap_or_default().to_owned();
            self.current = Some(ProgramRun { name, rc: None, lines: Vec::new() });
        } else if let Some(rest) = after(line, RUN_END) {
            self.end_run(line, rest);
        } else {
            self.content(line);
        }
    }

    /// A line that is not a run marker: may be a probe, belongs to the run.
    fn content(&mut self, line: &str) {
        if let Some(rest) = after(line, PROBE) {
            match parse_probe(rest) {
                Some(probe) => self.report.probes.push(probe),
                None => self.malformed(line),
            }
        }
        if let Some(run) = &mut self.current {
            run.lines.push(line.to_owned());
        }
    }

    fn end_run(&mut self, line: &str, rest: &str) {
        let mut words = rest.split_whitespace();
        let name = words.next().unwrap_or_default();
        let rc = words.find_map(|w| w.strip_prefix("rc=")).and_then(|v| v.parse::<i32>().ok());
        match self.current.take() {
            Some(mut run) if run.name == name && rc.is_some() => {
                run.rc = rc;
                self.report.runs.push(run);
            }
            other => {
                self.current = other;
                self.malformed(line);
            }
        }
    }

    fn malformed(&mut self, line: &str) {
        let problem = Problem { kind: ProblemKind::MalformedMarker, line: line.trim().to_owned() };
        self.report.problems.push(problem);
    }

    /// An unfinished run stays in the report with `rc: None`.
    fn close_run(&mut self) {
        if let Some(run) = self.current.take() {
            self.report.runs.push(run);
        }
    }

    fn finish(mut self) -> ConsoleReport {
        self.close_run();
        self.report
    }
}

fn after<'a>(line: &'a str, marker: &str) -> Option<&'a str> {
    line.find(marker).map(|at| &line[at + marker.len()..])
}

fn classify_problem(line: &str) -> Option<ProblemKind> {
    PROBLEM_PATTERNS.iter().find(|(pat, _)| line.contains(pat)).map(|&(_, kind)| kind)
}

/// Parse the `key=value` words after `XC-PROBE `; all keys are required.
fn parse_probe(rest: &str) -> Option<ProbeResult> {
    let get = |key: &str| {
        rest.split_whitespace()
            .filter_map(|w| w.split_once('='))
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
    };
    let cs = get("cs")?;
    let cs = u16::from_str_radix(cs.strip_prefix("0x").unwrap_or(cs), 16).ok()?;
    Some(ProbeResult {
        cpl: get("cpl")?.parse().ok()?,
        cs,
        sysname: get("sysname")?.to_owned(),
        release: get("release")?.to_owned(),
        machine: get("machine")?.to_owned(),
        getppid_ns: get("getppid_ns")?.parse().ok()?,
        iters: get("iters")?.parse().ok()?,
    })
}

#[cfg(test)]
mod process_fault_tests {
    use super::*;

    #[test]
    fn cpus_brought_up_are_read_from_the_smp_line() {
        let r = parse_console("[    0.41] smp: Brought up 1 node, 2 CPUs\n");
        assert_eq!(r.cpus_up, Some(2));
        assert_eq!(parse_console("[ 0.1] smp: Brought up 1 node, 1 CPU\n").cpus_up, Some(1));
        assert_eq!(parse_console("Linux version 6.1\n").cpus_up, None);
    }

    #[test]
    fn a_process_fault_is_not_a_kernel_fault_but_a_kernel_gp_is() {
        let user = "[    1.5] traps: xc_signals[95] general protection fault ip:402a35 sp:7ffe error:0 in xc_signals[401000+7b000]";
        assert_eq!(classify_problem(user), Some(ProblemKind::Trap));
        assert!(!ProblemKind::Trap.is_kernel_fault());
        let seg = "[    1.5] xc_signals[93]: segfault at 10 ip 00000000004021b7 sp 00007ffed8a825f8 error 6";
        assert_eq!(classify_problem(seg), Some(ProblemKind::Segfault));
        let kernel = "[    2.0] general protection fault, probably for non-canonical address 0xdead: 0000 [#1] PREEMPT";
        assert_eq!(classify_problem(kernel), Some(ProblemKind::GeneralProtection));
        assert!(ProblemKind::GeneralProtection.is_kernel_fault());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(r: &ConsoleReport) -> Vec<ProblemKind> {
        r.problems.iter().map(|p| p.kind).collect()
    }

    #[test]
    fn good_boot() {
        let r = parse_console(include_str!("testdata/good_boot.log"));
        assert!(r.booted && r.done, "{r:#?}");
        assert!(r.problems.is_empty(), "{:#?}", r.problems);
        assert!(r.is_clean());
        let version = r.kernel_version_line.as_deref().unwrap();
        assert!(version.starts_with("Linux version 6.1.0-xc"), "{version}");
        assert_eq!(r.runs.len(), 1);
        assert_eq!(r.runs[0].name, "probe");
        assert_eq!(r.runs[0].rc, Some(0));
        assert_eq!(r.runs[0].lines.len(), 1);
        let p = &r.probes[0];
        assert_eq!((p.cpl, p.cs), (0, 0x10));
        assert_eq!(p.release, "6.1.0-xc");
        assert_eq!((p.sysname.as_str(), p.machine.as_str()), ("Linux", "x86_64"));
        assert!((p.getppid_ns - 12.4).abs() < 1e-9);
        assert_eq!(p.iters, 200_000);
    }

    #[test]
    fn panic_without_root() {
        let r = parse_console(include_str!("testdata/panic_no_root.log"));
        assert!(!r.booted && !r.done);
        assert!(r.runs.is_empty());
        assert_eq!(r.problems[0].kind, ProblemKind::Panic);
        assert!(r.problems[0].line.contains("VFS: Unable to mount root fs"));
        assert!(kinds(&r).contains(&ProblemKind::CallTrace));
        assert!(!r.is_clean());
    }

    #[test]
    fn oops_during_program() {
        let r = parse_console(include_str!("testdata/oops.log"));
        assert!(r.booted && !r.done);
        let k = kinds(&r);
        assert_eq!(k[..3], [ProblemKind::Bug, ProblemKind::Oops, ProblemKind::CallTrace]);
        assert!(k.contains(&ProblemKind::Panic));
        assert_eq!(r.runs.len(), 1);
        assert_eq!(r.runs[0].rc, None);
        assert!(r.runs[0].lines.iter().any(|l| l.contains("RIP:")));
    }

    #[test]
    fn truncated_log() {
        let r = parse_console(include_str!("testdata/timeout_truncated.log"));
        assert!(r.booted && !r.done);
        let names: Vec<_> = r.runs.iter().map(|r| (r.name.as_str(), r.rc)).collect();
        assert_eq!(names, [("probe", Some(0)), ("hang", None)]);
        assert_eq!(r.probes.len(), 1);
        assert_eq!(r.probes[0].cpl, 3);
        assert!(kinds(&r).contains(&ProblemKind::Lockup));
    }

    #[test]
    fn markers_survive_crlf_and_interleaving() {
        let log = "[    1.0] foo XC-BOOT ok\r\nXC-RUN-BEGIN a\r\nx\r\nXC-RUN-END a rc=7\r\nXC-DONE\r\n";
        let r = parse_console(log);
        assert!(r.booted && r.done);
        assert_eq!(r.runs[0].rc, Some(7));
        assert_eq!(r.runs[0].lines, ["x"]);
    }

    #[test]
    fn malformed_probe_and_end_are_reported() {
        let log = "XC-RUN-BEGIN a\nXC-PROBE cpl=x\nXC-RUN-END b rc=0\n";
        let r = parse_console(log);
        assert!(r.probes.is_empty());
        assert_eq!(kinds(&r), [ProblemKind::MalformedMarker, ProblemKind::MalformedMarker]);
        assert_eq!(r.runs[0].rc, None);
    }

    #[test]
    fn report_serializes() {
        let r = parse_console(include_str!("testdata/good_boot.log"));
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<ConsoleReport>(&json).unwrap(), r);
    }
}
