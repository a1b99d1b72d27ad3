//! The control channel between `run` and PID 1, on ttyS3, one text line per
//! message.
//!
//! guest -> host first: `XC-READY` once PID 1 has the port in raw mode
//! (bytes sent earlier could be lost while the driver sets the UART up).
//!
//! host -> guest, once, after that and before anything runs: the run-time overrides as
//! spec lines (`arg V` lines replace the spec's argv, `env K=V` lines set a
//! variable), then `start`. Later, any number of `signal N` (run's SIGINT or
//! SIGTERM, for the entrypoint). The spec inside the rootfs stays as wrapped:
//! overrides exist only for the run that sent them.
//!
//! guest -> host: `XC-EXIT TOKEN N` when the entrypoint has exited, N as a
//! shell reports it (128+signal when a signal killed it).
//!
//! The guest is untrusted. The container's processes can open ttyS3 (as
//! root they can make the device node; on a libOS kernel they could drive
//! the UART themselves), so a line's shape proves nothing. `run` sends a
//! random [`RunToken`] as the first override line, before the entrypoint
//! exists; PID 1 keeps it in its own memory (not dumpable, wiped in the
//! entrypoint before exec) and puts it in its exit report. The host takes
//! the first `XC-EXIT` that carries the token and nothing else: a
//! container that writes `XC-EXIT 0` and exits 7 exits 7. What remains: a
//! process that reads PID 1's memory (CAP_SYS_PTRACE, or kernel privilege,
//! which every process of a libOS container has) can learn the token; it
//! then controls its own VM's report, which is what owning the VM means, and
//! still nothing outside it.
//!
//! The reader of guest lines is bounded ([`GuestReader`]): a line longer
//! than [`MAX_LINE`] is dropped whole, and after [`MAX_LINES`] lines the
//! channel is no longer read, so a flooding guest costs the host a fixed
//! amount of memory and work.

use super::spec::escape;

/// A secret for one run, 128 random bits as 32 lowercase hex digits.
#[derive(Clone, PartialEq, Eq)]
pub struct RunToken(String);

impl RunToken {
    /// A fresh token from the OS's random source.
    pub fn new() -> Result<Self, std::io::Error> {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(Self(hex::encode(bytes)))
    }

    /// A fixed token, for tests.
    pub fn from_hex(hex: &str) -> Self {
        Self(hex.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for RunToken {
    // Never printed: run's --json output and logs are the host's, but a
    // token in a log would be a token anyone reading it could replay.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RunToken(..)")
    }
}

/// The override block sent before `start`, the run's token first.
/// `network` replaces the spec's slirp addressing (eth0's address,
/// gateway, resolver) for a run on a tap; an empty `gateway`/`dns` value
/// clears the spec's.
pub fn override_block(token: &RunToken, args: &[String], env: &[String], network: Option<&super::vm::GuestAddress>) -> String {
    let mut s = format!("token {}\n", token.as_str());
    if let Some(n) = network {
        s.push_str(&format!("address {}\n", escape(&n.address)));
        s.push_str(&format!("gateway {}\n", n.gateway.map(|g| g.to_string()).unwrap_or_default()));
        s.push_str(&format!("dns {}\n", n.dns.map(|g| g.to_string()).unwrap_or_default()));
    }
    for a in args {
        s.push_str(&format!("arg {}\n", escape(a)));
    }
    for e in env {
        s.push_str(&format!("env {}\n", escape(e)));
    }
    s.push_str("start\n");
    s
}

/// Ask PID 1 to send `signal` to the entrypoint.
pub fn signal_line(signal: i32) -> String {
    format!("signal {signal}\n")
}

/// PID 1's first line: the port is ready for the overrides.
pub const READY: &str = "XC-READY";

/// What PID 1 says on the control channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuestMessage {
    Ready,
    Exit(i32),
}

/// Longest control line read (PID 1's are under 64 bytes).
pub const MAX_LINE: usize = 256;
/// Lines read from one guest before the channel is left unread.
pub const MAX_LINES: usize = 10_000;

/// Reads PID 1's messages from untrusted bytes: bounded (see the module
/// doc), `XC-READY` taken once, `XC-EXIT` only with the run's token and
/// only once.
#[derive(Debug)]
pub struct GuestReader {
    token: RunToken,
    line: Vec<u8>,
    /// Inside a line already longer than MAX_LINE: skip to its newline.
    overlong: bool,
    lines: usize,
    ready_seen: bool,
    exit_seen: bool,
    /// Lines that were not a message of ours (forged exits among them).
    pub ignored: usize,
}

impl GuestReader {
    pub fn new(token: RunToken) -> Self {
        Self { token, line: Vec::with_capacity(MAX_LINE), overlong: false, lines: 0, ready_seen: false, exit_seen: false, ignored: 0 }
    }

    /// Bytes held of a line not yet ended.
    pub fn buffered(&self) -> usize {
        self.line.len()
    }

    /// Whether [`MAX_LINES`] lines were read: the caller stops reading.
    pub fn exhausted(&self) -> bool {
        self.lines >= MAX_LINES
    }

    /// Feed bytes as they arrive; the messages they complete, in order.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<GuestMessage> {
        let mut out = Vec::new();
        for &b in bytes {
            if self.exhausted() {
                break;
            }
            if b == b'\n' {
                self.lines += 1;
                if !std::mem::take(&mut self.overlong) {
                    let line = String::from_utf8_lossy(&self.line).into_owned();
                    match self.message(&line) {
                        Some(m) => out.push(m),
                        None => self.ignored += 1,
                    }
                } else {
                    self.ignored += 1;
                }
                self.line.clear();
            } else if self.overlong {
            } else if self.line.len() == MAX_LINE {
                self.overlong = true;
                self.line.clear();
            } else {
                self.line.push(b);
            }
        }
        out
    }

    fn message(&mut self, line: &str) -> Option<GuestMessage> {
        let line = line.trim();
        if line == READY && !self.ready_seen {
            self.ready_seen = true;
            return Some(GuestMessage::Ready);
        }
        if self.exit_seen {
            return None;
        }
        let mut w = line.strip_prefix("XC-EXIT ")?.split(' ');
        let (token, status) = (w.next()?, w.next()?);
        if w.next().is_some() || token != self.token.as_str() {
            return None;
        }
        let status: i32 = status.parse().ok()?;
        self.exit_seen = true;
        Some(GuestMessage::Exit(status))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> RunToken {
        RunToken::from_hex("0123456789abcdef0123456789abcdef")
    }

    #[test]
    fn overrides_start_with_the_token_escape_values_and_end_with_start() {
        let t = token();
        let b = override_block(&t, &["sh".into(), "-c".into(), "echo a\nb".into()], &["K=v w".into()], None);
        assert_eq!(b, "token 0123456789abcdef0123456789abcdef\narg sh\narg -c\narg echo a\\nb\nenv K=v w\nstart\n");
        assert_eq!(override_block(&t, &[], &[], None), "token 0123456789abcdef0123456789abcdef\nstart\n");
        let tap = super::super::vm::GuestAddress::parse("192.168.7.2/24", None, Some("192.168.7.1")).unwrap();
        assert!(override_block(&t, &[], &[], Some(&tap)).ends_with("\naddress 192.168.7.2/24\ngateway \ndns 192.168.7.1\nstart\n"));
        assert_eq!(signal_line(15), "signal 15\n");
        let fresh = (RunToken::new().unwrap(), RunToken::new().unwrap());
        assert_ne!(fresh.0, fresh.1);
        assert!(fresh.0.as_str().len() == 32 && fresh.0.as_str().bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(format!("{:?}", fresh.0), "RunToken(..)");
    }

    /// Issue 21.3: a container writing `XC-EXIT 0` (with or without a
    /// guessed token) is ignored; only the first exit with the token counts.
    #[test]
    fn guest_cannot_forge_exit_status() {
        let mut r = GuestReader::new(token());
        let got = r.feed(b"XC-READY\r\nXC-EXIT 0\nXC-EXIT - 0\nXC-EXIT 00000000000000000000000000000000 0\nXC-EXIT 0123456789abcdef0123456789abcdef 7\r\nXC-EXIT 0123456789abcdef0123456789abcdef 0\nXC-READY\n");
        assert_eq!(got, [GuestMessage::Ready, GuestMessage::Exit(7)]);
        assert_eq!(r.ignored, 5);
        let mut r = GuestReader::new(token());
        assert_eq!(r.feed(b"XC-EXIT 0123456789abcdef0123456789abcdef x\nXC-EXIT 0123456789abcdef0123456789abcdef 7 8\n"), []);
    }

    #[test]
    fn the_guest_reader_is_bounded_and_lines_may_arrive_in_pieces() {
        let mut r = GuestReader::new(token());
        // A line split across reads.
        assert_eq!(r.feed(b"XC-EX"), []);
        assert_eq!(r.feed(b"IT 0123456789abcdef0123456789abcdef 3"), []);
        assert_eq!(r.feed(b"\n"), [GuestMessage::Exit(3)]);
        // An overlong line that ends in a valid message is dropped whole.
        let mut r = GuestReader::new(token());
        let mut long = vec![b'x'; MAX_LINE * 4];
        long.extend_from_slice(b"XC-EXIT 0123456789abcdef0123456789abcdef 0\n");
        assert_eq!(r.feed(&long), []);
        assert!(r.line.capacity() <= MAX_LINE * 2, "the line buffer grew to {}", r.line.capacity());
        assert_eq!(r.feed(b"XC-READY\n"), [GuestMessage::Ready]);
        // After MAX_LINES lines nothing more is read.
        let mut r = GuestReader::new(token());
        r.feed(&b"junk\n".repeat(MAX_LINES));
        assert!(r.exhausted());
        assert_eq!(r.feed(b"XC-EXIT 0123456789abcdef0123456789abcdef 0\n"), []);
    }
}
