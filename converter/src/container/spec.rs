//! What the container's PID 1 needs to start the entrypoint: the process
//! (argv, env, cwd, uid/gid), the hostname and the network.
//!
//! It travels *inside the rootfs* at [`SPEC_PATH`], not on the kernel command
//! line (which is short, and visible in /proc/cmdline to every process). The
//! file is line-oriented so a small static C program can read it without a
//! JSON parser: each line is `KEY VALUE`, VALUE escaped with
//! [`escape`] (`\\`, `\n`, `\t` and `\0`-free by construction: a NUL cannot
//! be in argv or environ anyway).

use serde::{Deserialize, Serialize};

/// Where the spec lives inside the rootfs.
pub const SPEC_PATH: &str = ".xc/spec";
/// Where our PID 1 lives inside the rootfs.
pub const INIT_PATH: &str = ".xc/init";

/// Network settings PID 1 applies to eth0 (QEMU user networking's defaults
/// unless the VM is given another network).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSpec {
    /// Address with prefix length, e.g. 10.0.2.15/24.
    pub address: String,
    /// Default gateway, e.g. 10.0.2.2.
    pub gateway: String,
    /// Name server written to /etc/resolv.conf, e.g. 10.0.2.3.
    pub dns: String,
}

impl Default for NetworkSpec {
    /// QEMU's user-mode network (slirp): guest 10.0.2.15, host/gateway .2, DNS .3.
    fn default() -> Self {
        Self { address: "10.0.2.15/24".into(), gateway: "10.0.2.2".into(), dns: "10.0.2.3".into() }
    }
}

/// The container's process and environment, from the image config and the
/// user's overrides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContainerSpec {
    /// Entrypoint + Cmd (argv[0] first; a path inside the rootfs or a name looked up in PATH).
    pub args: Vec<String>,
    /// How many of `args` are the image's Entrypoint: `run IMAGE ARGS`
    /// replaces the rest (Cmd), as `docker run` does. 0 for a spec
    /// written by hand (`wrap --rootfs --spec`): ARGS replace all of argv.
    #[serde(default)]
    pub entrypoint_len: usize,
    /// Environment, `KEY=VALUE`.
    pub env: Vec<String>,
    /// Working directory inside the rootfs.
    pub cwd: String,
    /// Numeric user id the entrypoint runs as.
    pub uid: u32,
    /// Numeric primary group id.
    pub gid: u32,
    /// Supplementary group ids.
    pub groups: Vec<u32>,
    /// Hostname.
    pub hostname: String,
    /// TCP/UDP ports the image exposes (`80/tcp`), informational.
    pub exposed_ports: Vec<String>,
    /// eth0's settings; None: only lo.
    pub network: Option<NetworkSpec>,
}

/// Escape a value for one line of the spec file.
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out
}

/// Undo [`escape`] (None for a dangling or unknown escape).
pub fn unescape(value: &str) -> Option<String> {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next()? {
            '\\' => out.push('\\'),
            'n' => out.push('\n'),
            't' => out.push('\t'),
            _ => return None,
        }
    }
    Some(out)
}

impl ContainerSpec {
    /// argv for one run, by docker's rules: `entrypoint` replaces the
    /// Entrypoint and drops Cmd; `args` (if any) replace Cmd.
    pub fn run_argv(&self, entrypoint: Option<&str>, args: &[String]) -> Vec<String> {
        match entrypoint {
            Some(e) => std::iter::once(e.to_owned()).chain(args.iter().cloned()).collect(),
            None if args.is_empty() => self.args.clone(),
            None => self.args[..self.entrypoint_len.min(self.args.len())].iter().cloned().chain(args.iter().cloned()).collect(),
        }
    }

    /// The file PID 1 reads: `arg`, `env`, `group` and `port` lines repeat, in order.
    pub fn to_init_file(&self) -> String {
        let mut s = String::from("version 1\n");
        let mut line = |k: &str, v: &str| {
            s.push_str(k);
            s.push(' ');
            s.push_str(&escape(v));
            s.push('\n');
        };
        for a in &self.args {
            line("arg", a);
        }
        for e in &self.env {
            line("env", e);
        }
        line("cwd", &self.cwd);
        line("uid", &self.uid.to_string());
        line("gid", &self.gid.to_string());
        for g in &self.groups {
            line("group", &g.to_string());
        }
        line("hostname", &self.hostname);
        for p in &self.exposed_ports {
            line("port", p);
        }
        if let Some(n) = &self.network {
            line("address", &n.address);
            line("gateway", &n.gateway);
            line("dns", &n.dns);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_argv_follows_docker() {
        let mut spec: ContainerSpec = serde_json::from_value(serde_json::json!({
            "args": ["nginx", "-g", "daemon off;"], "entrypoint_len": 1, "env": [], "cwd": "/", "uid": 0, "gid": 0,
            "groups": [], "hostname": "h", "exposed_ports": [], "network": null
        }))
        .unwrap();
        let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(spec.run_argv(None, &[]), v(&["nginx", "-g", "daemon off;"]));
        assert_eq!(spec.run_argv(None, &v(&["-t"])), v(&["nginx", "-t"]));
        assert_eq!(spec.run_argv(Some("sh"), &v(&["-c", "x"])), v(&["sh", "-c", "x"]));
        assert_eq!(spec.run_argv(Some("sh"), &[]), v(&["sh"]));
        spec.entrypoint_len = 0;
        assert_eq!(spec.run_argv(None, &v(&["ls"])), v(&["ls"]));
        spec.entrypoint_len = 99;
        assert_eq!(spec.run_argv(None, &v(&["x"])), v(&["nginx", "-g", "daemon off;", "x"]));
    }

    #[test]
    fn escaping_round_trips_backslashes_and_newlines() {
        for v in ["plain", "a\\b", "two\nlines", "tab\there", "\\n literal", ""] {
            assert_eq!(unescape(&escape(v)).as_deref(), Some(v));
            assert!(!escape(v).contains('\n'));
        }
        assert_eq!(unescape("dangling\\"), None);
        assert_eq!(unescape("bad\\q"), None);
    }

    #[test]
    fn init_file_keeps_argument_order_and_one_value_per_line() {
        let spec = ContainerSpec {
            entrypoint_len: 0,
            args: vec!["/bin/sh".into(), "-c".into(), "echo a\nb".into()],
            env: vec!["PATH=/bin".into()],
            cwd: "/".into(),
            uid: 0,
            gid: 0,
            groups: vec![],
            hostname: "c1".into(),
            exposed_ports: vec!["80/tcp".into()],
            network: Some(NetworkSpec::default()),
        };
        let f = spec.to_init_file();
        let args: Vec<String> = f.lines().filter_map(|l| l.strip_prefix("arg ")).map(|v| unescape(v).unwrap()).collect();
        assert_eq!(args, spec.args);
        assert!(f.lines().any(|l| l == "address 10.0.2.15/24"));
    }
}
