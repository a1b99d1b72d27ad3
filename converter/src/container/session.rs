//! One running container VM: QEMU started, its serial sockets accepted, the
//! container's stdout/stderr streamed to ours, our SIGINT/SIGTERM passed to
//! the entrypoint through PID 1, and the exit status PID 1 reports collected.
//!
//! Stopping: the first SIGINT/SIGTERM is sent on as `signal N`; QEMU is
//! killed when the grace period ends without the VM stopping, or at a second
//! signal. A signal that comes while the VM still boots (before PID 1 got
//! `start`) kills QEMU at once: the entrypoint never starts.

use super::control::{self, GuestMessage};
use super::vm::Channels;
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How to run the session.
pub struct SessionConfig {
    /// QEMU's argv (see [`super::vm::command_line`]).
    pub argv: Vec<String>,
    pub channels: Channels,
    /// Sent on the control channel when PID 1 is ready ([`control::override_block`]).
    pub overrides: String,
    /// The token in `overrides`: only an exit report carrying it is PID 1's.
    pub token: control::RunToken,
    /// After forwarding a stop signal, how long the VM gets to stop itself.
    pub stop_grace: Duration,
    /// Kill the VM after this long (None: run until it stops).
    pub timeout: Option<Duration>,
    /// Where the container's stdout and stderr go.
    pub stdout: Box<dyn Write + Send>,
    pub stderr: Box<dyn Write + Send>,
}

/// What happened.
#[derive(Debug)]
pub struct SessionOutcome {
    /// The entrypoint's status as PID 1 reported it (None: it never did).
    pub exit_status: Option<i32>,
    pub qemu_status: ExitStatus,
    /// QEMU's own diagnostics.
    pub qemu_stderr: String,
    /// From QEMU's start to the container's first byte on stdout or stderr.
    pub first_output: Option<Duration>,
    /// The signal `run` received and forwarded, if any.
    pub stop_signal: Option<i32>,
    /// QEMU had to be killed (grace period over, second signal, timeout).
    pub killed: bool,
    pub timed_out: bool,
    pub duration: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("cannot listen on {path}")]
    Listen { path: PathBuf, #[source] source: std::io::Error },
    #[error("cannot start `{command}` (Debian: apt-get install qemu-system-x86)")]
    Spawn { command: String, #[source] source: std::io::Error },
    #[error("QEMU exited ({status}) before connecting its serial port to {path}: {stderr}")]
    QemuGaveUp { path: PathBuf, status: ExitStatus, stderr: String },
    #[error("QEMU did not connect its serial port to {path} within {secs} s")]
    NoConnection { path: PathBuf, secs: u64 },
    #[error("control channel {path}")]
    Control { path: PathBuf, #[source] source: std::io::Error },
    #[error("waiting for QEMU")]
    Wait(#[source] std::io::Error),
    #[error("cannot watch SIGINT/SIGTERM")]
    Signals(#[source] std::io::Error),
}

const CONNECT_WAIT: Duration = Duration::from_secs(30);
/// After PID 1 said `XC-EXIT`, the VM resets at once; if QEMU is still up
/// after this, something hangs and it is killed (the status is known).
const AFTER_EXIT_WAIT: Duration = Duration::from_secs(10);

fn listen(path: &Path) -> Result<UnixListener, SessionError> {
    let l = UnixListener::bind(path).map_err(|source| SessionError::Listen { path: path.to_owned(), source })?;
    l.set_nonblocking(true).map_err(|source| SessionError::Listen { path: path.to_owned(), source })?;
    Ok(l)
}

/// Boot, stream, stop; see the module doc.
pub fn run(mut cfg: SessionConfig) -> Result<SessionOutcome, SessionError> {
    let ch = cfg.channels.clone();
    let listeners = [listen(&ch.console_sock)?, listen(&ch.stdout_sock)?, listen(&ch.stderr_sock)?, listen(&ch.control_sock)?];
    let console_file = std::fs::File::create(&ch.console_log).map_err(|source| SessionError::Listen { path: ch.console_log.clone(), source })?;
    let signals = watch_signals()?;
    let command = argv_text(&cfg.argv);
    let start = Instant::now();
    // Its own process group: a terminal's Ctrl-C reaches the whole
    // foreground group, and QEMU would quit at once instead of letting the
    // entrypoint stop through PID 1.
    let mut child = crate::qemu::command(&cfg.argv)
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| SessionError::Spawn { command: command.clone(), source })?;
    let qemu_stderr = {
        let mut e = child.stderr.take().expect("stderr is piped");
        thread::spawn(move || {
            let mut s = String::new();
            let _ = e.read_to_string(&mut s);
            s
        })
    };
    let paths = [&ch.console_sock, &ch.stdout_sock, &ch.stderr_sock, &ch.control_sock];
    let mut streams = Vec::new();
    for (l, path) in listeners.iter().zip(paths) {
        match accept(l, path, &mut child) {
            Ok(s) => streams.push(s),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(match e {
                    SessionError::QemuGaveUp { path, status, .. } => {
                        SessionError::QemuGaveUp { path, status, stderr: qemu_stderr.join().unwrap_or_default().trim().to_owned() }
                    }
                    e => e,
                });
            }
        }
    }
    let ctl = streams.pop().expect("four streams");
    let err = streams.pop().expect("four streams");
    let out = streams.pop().expect("four streams");
    let con = streams.pop().expect("four streams");
    let ctl_err = |source| SessionError::Control { path: ch.control_sock.clone(), source };
    let mut ctl_writer = ctl.try_clone().map_err(ctl_err)?;

    let first = Arc::new(OnceLock::new());
    let pumps = [
        pump(out, std::mem::replace(&mut cfg.stdout, Box::new(std::io::sink())), start, first.clone()),
        pump(err, std::mem::replace(&mut cfg.stderr, Box::new(std::io::sink())), start, first.clone()),
    ];
    let exits = read_control(ctl, cfg.token.clone());
    let console = log_console(con, console_file, super::vm::CONSOLE_LOG_MAX);

    let mut stop_signal = None;
    let mut stop_deadline: Option<Instant> = None;
    let mut exit_status = None;
    let mut exit_seen: Option<Instant> = None;
    let (mut killed, mut timed_out) = (false, false);
    // Whether the overrides (and so `start`) went to PID 1.
    let mut started = false;
    let qemu_status = loop {
        if let Some(st) = child.try_wait().map_err(SessionError::Wait)? {
            break st;
        }
        match exits.try_recv() {
            Ok(GuestMessage::Ready) if stop_signal.is_none() => {
                // The VM may die before reading it; its exit says why.
                let _ = ctl_writer.write_all(cfg.overrides.as_bytes());
                started = true;
            }
            Ok(GuestMessage::Ready) => {}
            Ok(GuestMessage::Exit(code)) => {
                exit_status = Some(code);
                exit_seen = Some(Instant::now());
            }
            Err(_) => {}
        }
        let mut kill_now = false;
        if let Ok(sig) = signals.try_recv() {
            if stop_signal.is_none() && !started {
                // Still booting: nothing of the container runs yet, so there
                // is nothing to stop gracefully and it must not start.
                stop_signal = Some(sig);
                kill_now = true;
            } else if stop_signal.is_none() {
                stop_signal = Some(sig);
                stop_deadline = Some(Instant::now() + cfg.stop_grace);
                // The VM may already be gone; the grace period covers that.
                let _ = ctl_writer.write_all(control::signal_line(sig).as_bytes());
            } else {
                kill_now = true;
            }
        }
        let now = Instant::now();
        if stop_deadline.is_some_and(|d| now >= d) || exit_seen.is_some_and(|t| now >= t + AFTER_EXIT_WAIT) {
            kill_now = true;
        }
        if cfg.timeout.is_some_and(|t| now >= start + t) {
            kill_now = true;
            timed_out = true;
        }
        if kill_now {
            killed = true;
            let _ = child.kill();
        }
        thread::sleep(Duration::from_millis(10));
    };
    let duration = start.elapsed();
    for p in pumps {
        let _ = p.join();
    }
    let _ = console.join();
    if exit_status.is_none() {
        // The line may have arrived just before QEMU exited.
        while let Ok(m) = exits.recv_timeout(Duration::from_secs(1)) {
            if let GuestMessage::Exit(code) = m {
                exit_status = Some(code);
                break;
            }
        }
    }
    Ok(SessionOutcome {
        exit_status,
        qemu_status,
        qemu_stderr: qemu_stderr.join().unwrap_or_default(),
        first_output: first.get().copied(),
        stop_signal,
        killed,
        timed_out,
        duration,
    })
}

fn accept(l: &UnixListener, path: &Path, child: &mut Child) -> Result<UnixStream, SessionError> {
    let started = Instant::now();
    loop {
        match l.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false).map_err(|source| SessionError::Listen { path: path.to_owned(), source })?;
                return Ok(s);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(source) => return Err(SessionError::Listen { path: path.to_owned(), source }),
        }
        if let Some(status) = child.try_wait().map_err(SessionError::Wait)? {
            return Err(SessionError::QemuGaveUp { path: path.to_owned(), status, stderr: String::new() });
        }
        if started.elapsed() > CONNECT_WAIT {
            return Err(SessionError::NoConnection { path: path.to_owned(), secs: CONNECT_WAIT.as_secs() });
        }
        thread::sleep(Duration::from_millis(2));
    }
}

/// Copy a serial stream to `sink` as it arrives (no line buffering: a
/// prompt without a newline shows at once), noting the first byte's time.
fn pump(mut from: UnixStream, mut sink: Box<dyn Write + Send>, start: Instant, first: Arc<OnceLock<Duration>>) -> JoinHandle<()> {
    thread::spawn(move || {
        let mut buf = [0u8; 16384];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let _ = first.set(start.elapsed());
                    if sink.write_all(&buf[..n]).and_then(|()| sink.flush()).is_err() {
                        break;
                    }
                }
            }
        }
    })
}

/// Write the kernel console to `log`, at most `max` bytes; past that, one
/// line says it was cut and the rest is read and dropped (QEMU must not
/// block on a full socket, and the host's disk must not fill).
fn log_console(mut from: UnixStream, mut log: std::fs::File, max: u64) -> JoinHandle<()> {
    thread::spawn(move || {
        let mut buf = [0u8; 16384];
        let mut written = 0u64;
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let room = max.saturating_sub(written) as usize;
                    let take = n.min(room);
                    if take > 0 && log.write_all(&buf[..take]).is_err() {
                        break;
                    }
                    if take < n && written <= max {
                        let _ = writeln!(log, "\n[xc-convert: console log cut at {max} bytes; the rest was dropped]");
                        written = max + 1;
                    } else {
                        written += take as u64;
                    }
                }
            }
        }
    })
}

/// PID 1's messages, read through the bounded [`control::GuestReader`]:
/// a guest that floods the channel is left unread, not buffered.
fn read_control(mut ctl: UnixStream, token: control::RunToken) -> Receiver<GuestMessage> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut reader = control::GuestReader::new(token);
        let mut buf = [0u8; 4096];
        while !reader.exhausted() {
            match ctl.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    for m in reader.feed(&buf[..n]) {
                        let _ = tx.send(m);
                    }
                }
            }
        }
    });
    rx
}

/// SIGINT and SIGTERM as messages, so the loop above decides what they do.
fn watch_signals() -> Result<Receiver<i32>, SessionError> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]).map_err(SessionError::Signals)?;
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for s in signals.forever() {
            if tx.send(s).is_err() {
                break;
            }
        }
    });
    Ok(rx)
}

/// argv as one copy-pasteable line.
pub fn argv_text(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if !a.is_empty() && a.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c)) {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod console_tests {
    use super::*;

    /// Issue 21: a guest printing without end gets its console log cut at
    /// the bound, and the reader keeps draining (QEMU never blocks).
    #[test]
    fn the_console_log_is_cut_at_its_bound_and_the_rest_drained() {
        let dir = tempfile::tempdir().unwrap();
        let log_path = dir.path().join("console.log");
        let (mut guest, host) = UnixStream::pair().unwrap();
        let reader = log_console(host, std::fs::File::create(&log_path).unwrap(), 1000);
        let line = [b'x'; 100];
        for _ in 0..100 {
            guest.write_all(&line).unwrap();
        }
        drop(guest);
        reader.join().unwrap();
        let log = std::fs::read_to_string(&log_path).unwrap();
        assert!(log.starts_with(&"x".repeat(1000)), "{}", log.len());
        assert!(log.ends_with("console log cut at 1000 bytes; the rest was dropped]\n"), "{log}");
        assert_eq!(log.matches("cut at").count(), 1);
        assert!(log.len() < 1100, "{}", log.len());
    }
}
