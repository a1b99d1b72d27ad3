//! A minimal client of QEMU's gdbstub (the GDB remote serial protocol), for
//! `bench --path`: set a breakpoint, continue, single-step, read a register
//! and guest memory. Nothing else of the protocol is used.
//!
//! Why our own client and not `gdb -batch` with a Python script: the tracer
//! needs a few thousand round trips per system call and has to decode every
//! stepped instruction; done in-process it is one typed loop with iced-x86
//! (already a dependency), no extra Debian package, no Python, and no
//! scraping of gdb's text output whose format varies between gdb versions.
//!
//! The connection is a Unix socket QEMU listens on
//! (`-chardev socket,server=on,wait=off` + `-gdb chardev:`), so no TCP port
//! can clash with another VM on the host.

use std::io::{BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// x86-64 register numbers in QEMU's gdb register file (gdb's amd64 order).
pub mod reg {
    /// rcx: WRMSR's MSR index.
    pub const RCX: u32 = 2;
    /// rsi: the second argument.
    pub const RSI: u32 = 4;
    /// rdi: the first argument.
    pub const RDI: u32 = 5;
    /// rip.
    pub const RIP: u32 = 16;
}

/// Why the gdbstub conversation failed.
#[derive(Debug, thiserror::Error)]
pub enum GdbError {
    /// QEMU never opened the socket.
    #[error("QEMU's gdbstub socket {path} did not appear within {seconds} s")]
    NoSocket { path: PathBuf, seconds: u64 },
    /// Connecting, reading or writing failed.
    #[error("gdbstub {path}: {what}")]
    Io { path: PathBuf, what: &'static str, #[source] source: std::io::Error },
    /// QEMU closed the connection (the VM exited or was killed).
    #[error("gdbstub {path}: QEMU closed the connection (the guest exited, crashed or timed out) while waiting for the reply to `{command}`")]
    Closed { path: PathBuf, command: String },
    /// A reply that is not what the command should get.
    #[error("gdbstub {path}: `{command}` got the reply `{reply}`")]
    Unexpected { path: PathBuf, command: String, reply: String },
}

/// One gdbstub connection.
pub struct GdbClient {
    path: PathBuf,
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl GdbClient {
    /// Connect to the socket at `path`, waiting up to `wait` for QEMU to create it.
    pub fn connect(path: &Path, wait: Duration) -> Result<Self, GdbError> {
        let deadline = Instant::now() + wait;
        let stream = loop {
            match UnixStream::connect(path) {
                Ok(s) => break s,
                Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
                Err(_) => return Err(GdbError::NoSocket { path: path.to_owned(), seconds: wait.as_secs() }),
            }
        };
        let io = |what| move |source| GdbError::Io { path: path.to_owned(), what, source };
        let writer = stream.try_clone().map_err(io("clone socket"))?;
        // Acknowledgement mode stays on: QEMU 7.2 does not offer
        // QStartNoAckMode (it answers the empty packet).
        Ok(Self { path: path.to_owned(), reader: BufReader::new(stream), writer })
    }

    fn unexpected(&self, command: &str, reply: &str) -> GdbError {
        GdbError::Unexpected { path: self.path.clone(), command: command.to_owned(), reply: reply.to_owned() }
    }

    fn send(&mut self, body: &str) -> Result<(), GdbError> {
        let sum: u8 = body.bytes().fold(0u8, |a, b| a.wrapping_add(b));
        let packet = format!("${body}#{sum:02x}");
        self.writer
            .write_all(packet.as_bytes())
            .map_err(|source| GdbError::Io { path: self.path.clone(), what: "write", source })
    }

    fn byte(&mut self, command: &str) -> Result<u8, GdbError> {
        let mut b = [0u8; 1];
        match self.reader.read(&mut b) {
            Ok(0) => Err(GdbError::Closed { path: self.path.clone(), command: command.to_owned() }),
            Ok(_) => Ok(b[0]),
            Err(source) => Err(GdbError::Io { path: self.path.clone(), what: "read", source }),
        }
    }

    /// Read one packet, skipping acks and console output (`O...`) packets.
    fn reply_acked(&mut self, command: &str) -> Result<String, GdbError> {
        loop {
            // Skip to the start of a packet (acks `+`, stray bytes).
            while self.byte(command)? != b'$' {}
            let mut body = Vec::new();
            loop {
                match self.byte(command)? {
                    b'#' => break,
                    b => body.push(b),
                }
            }
            // the two checksum digits: a Unix socket does not corrupt bytes
            self.byte(command)?;
            self.byte(command)?;
            // acknowledge it, as the protocol asks outside no-ack mode
            self.writer.write_all(b"+").map_err(|source| GdbError::Io { path: self.path.clone(), what: "write", source })?;
            let body = String::from_utf8_lossy(&body).into_owned();
            if body.starts_with('O') && body != "OK" {
                continue;
            }
            return Ok(body);
        }
    }

    /// Send a command and return its reply.
    pub fn request(&mut self, command: &str) -> Result<String, GdbError> {
        self.send(command)?;
        self.reply_acked(command)
    }

    fn expect_ok(&mut self, command: &str) -> Result<(), GdbError> {
        let reply = self.request(command)?;
        if reply == "OK" {
            Ok(())
        } else {
            Err(self.unexpected(command, &reply))
        }
    }

    /// A hardware breakpoint at `addr` (a virtual address, hit in whichever
    /// address space runs it; QEMU's TCG treats it like a software one, KVM
    /// gives it a debug register).
    pub fn set_breakpoint(&mut self, addr: u64) -> Result<(), GdbError> {
        self.expect_ok(&format!("Z1,{addr:x},1"))
    }

    /// Remove the breakpoint at `addr`.
    pub fn remove_breakpoint(&mut self, addr: u64) -> Result<(), GdbError> {
        self.expect_ok(&format!("z1,{addr:x},1"))
    }

    fn expect_stop(&mut self, command: &str) -> Result<(), GdbError> {
        let reply = self.request(command)?;
        if reply.starts_with('T') || reply.starts_with('S') {
            Ok(())
        } else {
            Err(self.unexpected(command, &reply))
        }
    }

    /// Run until a breakpoint (blocks while the guest runs).
    pub fn cont(&mut self) -> Result<(), GdbError> {
        self.expect_stop("c")
    }

    /// Execute one instruction.
    pub fn step(&mut self) -> Result<(), GdbError> {
        self.expect_stop("s")
    }

    /// One 64-bit register (see [`reg`]), from the `g` packet: QEMU answers
    /// `p` only after the client has read its target.xml, and `g`'s first
    /// 17 slots are rax..r15, rip in gdb's amd64 order either way.
    pub fn register(&mut self, n: u32) -> Result<u64, GdbError> {
        let reply = self.request("g")?;
        let at = n as usize * 16;
        let bytes = reply.get(at..at + 16).and_then(decode_hex).ok_or_else(|| self.unexpected("g", &reply))?;
        let mut le = [0u8; 8];
        le.copy_from_slice(&bytes);
        Ok(u64::from_le_bytes(le))
    }

    /// `len` bytes of guest virtual memory at `addr`, through the current
    /// page tables; None when QEMU cannot read them (not mapped).
    pub fn memory(&mut self, addr: u64, len: usize) -> Result<Option<Vec<u8>>, GdbError> {
        let reply = self.request(&format!("m{addr:x},{len:x}"))?;
        if reply.starts_with('E') {
            return Ok(None);
        }
        Ok(decode_hex(&reply))
    }

    /// Detach: the VM runs on without the debugger.
    pub fn detach(mut self) -> Result<(), GdbError> {
        self.expect_ok("D")
    }
}

/// `"0a1b"` -> `[0x0a, 0x1b]`; None for odd length or a non-hex digit.
pub fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    #[test]
    fn hex_decodes_and_refuses_garbage() {
        assert_eq!(decode_hex("0a1bff"), Some(vec![0x0a, 0x1b, 0xff]));
        assert_eq!(decode_hex("0a1"), None);
        assert_eq!(decode_hex("zz"), None);
    }

    /// A fake stub: checks the framing and checksums we send and answers
    /// like QEMU (with a console packet in between to be skipped).
    #[test]
    fn talks_the_remote_protocol_to_a_fake_stub() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("gdb.sock");
        let listener = UnixListener::bind(&sock).unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 256];
            // `g`: rax..r15 zero, then rip 0xdeadbeef (little-endian), eflags
            let g = format!("${}efbeadde0000000002020000#00", "0".repeat(16 * 16));
            let answers: [&[u8]; 3] = [b"+$O6869#00$T05thread:01;#00", g.as_bytes(), b"+$E14#00"];
            for a in answers {
                // one whole packet; the client's acks (`+`) of earlier replies
                // come in between
                let mut packet = String::new();
                while packet.find('#').is_none_or(|h| packet.len() < h + 3) {
                    let n = s.read(&mut buf).unwrap();
                    packet.push_str(&String::from_utf8_lossy(&buf[..n]));
                }
                got.push(packet.trim_start_matches('+').to_owned());
                s.write_all(a).unwrap();
            }
            // the last ack, then the client hangs up
            while s.read(&mut buf).unwrap() > 0 {}
            got
        });
        let mut c = GdbClient::connect(&sock, Duration::from_secs(5)).unwrap();
        c.step().unwrap();
        assert_eq!(c.register(reg::RIP).unwrap(), 0xdeadbeef);
        assert_eq!(c.memory(0x1000, 4).unwrap(), None);
        drop(c);
        let sent = server.join().unwrap();
        assert_eq!(sent, ["$s#73", "$g#67", "$m1000,4#8e"]);
    }

    #[test]
    fn a_missing_socket_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("none.sock");
        let err = GdbClient::connect(&sock, Duration::from_millis(100)).err().unwrap();
        assert!(err.to_string().contains("none.sock"), "{err}");
    }
}
