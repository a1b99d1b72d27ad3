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
//! guest -> host: `XC-EXIT N` when the entrypoint has exited, N as a
//! shell reports it (128+signal when a signal killed it).

use super::spec::escape;

/// The override block sent before `start`. `network` replaces the spec's
/// slirp addressing (eth0's address, gateway, resolver) for a run on a tap;
/// an empty `gateway`/`dns` value clears the spec's.
pub fn override_block(args: &[String], env: &[String], network: Option<&super::vm::GuestAddress>) -> String {
    let mut s = String::new();
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

/// Parse one line from PID 1 (None: not ours, ignored).
pub fn parse_guest(line: &str) -> Option<GuestMessage> {
    if line.trim() == READY {
        return Some(GuestMessage::Ready);
    }
    parse_exit(line).map(GuestMessage::Exit)
}

/// The entrypoint's status from an `XC-EXIT N` line.
pub fn parse_exit(line: &str) -> Option<i32> {
    line.trim().strip_prefix("XC-EXIT ")?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_escape_values_and_end_with_start() {
        let b = override_block(&["sh".into(), "-c".into(), "echo a\nb".into()], &["K=v w".into()], None);
        assert_eq!(b, "arg sh\narg -c\narg echo a\\nb\nenv K=v w\nstart\n");
        assert_eq!(override_block(&[], &[], None), "start\n");
        let tap = super::super::vm::GuestAddress::parse("192.168.7.2/24", None, Some("192.168.7.1")).unwrap();
        assert_eq!(override_block(&[], &[], Some(&tap)), "address 192.168.7.2/24\ngateway \ndns 192.168.7.1\nstart\n");
    }

    #[test]
    fn exit_lines_parse_and_others_do_not() {
        assert_eq!(parse_exit("XC-EXIT 7\r"), Some(7));
        assert_eq!(parse_exit("XC-EXIT 143"), Some(143));
        assert_eq!(parse_exit("XC-EXIT x"), None);
        assert_eq!(parse_exit("hello"), None);
        assert_eq!(signal_line(15), "signal 15\n");
        assert_eq!(parse_guest("XC-READY\r"), Some(GuestMessage::Ready));
        assert_eq!(parse_guest("XC-EXIT 0"), Some(GuestMessage::Exit(0)));
    }
}
