//! The QEMU command line of a container VM.
//!
//! Four legacy serial ports carry four streams so none has to be picked out
//! of another: ttyS0 the kernel console (to a file), ttyS1 the entrypoint's
//! stdout, ttyS2 its stderr, ttyS3 the control channel between `run` and
//! PID 1 (see [`super::control`]). ttyS1-3 are Unix sockets that `run`
//! listens on and QEMU connects to. The NIC is virtio-net, on QEMU's user
//! network (slirp: no root, no bridge) with one `hostfwd` per `-p`, or on a
//! tap device the host has set up (`--network tap:IFNAME`, see [`Network`]).

use super::pack::RootfsFormat;
use crate::qemu::Accel;
use serde::{Deserialize, Serialize};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};

/// TCP or UDP, as in docker's `-p 53:53/udp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

/// One `-p [IP:]HOST:GUEST[/tcp|/udp]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortForward {
    pub host_ip: Ipv4Addr,
    pub host_port: u16,
    pub guest_port: u16,
    pub proto: Proto,
}

#[derive(Debug, thiserror::Error)]
pub enum VmError {
    #[error("-p {spec:?}: {why} (expected [IP:]HOST:GUEST[/tcp|/udp], e.g. 8080:80 or 127.0.0.1:6380:6379)")]
    BadPort { spec: String, why: &'static str },
    #[error("host port {ip}:{port}/{proto} is already in use; pick another with -p {ip}:OTHER:{guest}", proto = if *.proto == Proto::Tcp { "tcp" } else { "udp" })]
    PortTaken { ip: Ipv4Addr, port: u16, guest: u16, proto: Proto, #[source] source: std::io::Error },
    #[error("--network {spec:?}: expected `user` or `tap:IFNAME` (a tap device the host already has, e.g. on a bridge)")]
    BadNetwork { spec: String },
    #[error("--{flag} {value:?}: {why}")]
    BadAddress { flag: &'static str, value: String, why: &'static str },
    #[error("{0}")]
    NetworkFlags(&'static str),
    #[error("-p {first} and -p {second} both take host port {port}/{proto}; each host port can be forwarded once", proto = if *.proto == Proto::Tcp { "tcp" } else { "udp" })]
    DuplicatePort { first: String, second: String, port: u16, proto: Proto },
    #[error("tap device {ifname:?} does not exist; create it first, e.g.: ip tuntap add dev {ifname} mode tap && ip link set {ifname} up (then add it to a bridge, or give it an address)")]
    NoTap { ifname: String },
    #[error("network interface {ifname:?} is not a tap device ({path} is missing); QEMU needs a tap (ip tuntap add dev NAME mode tap)")]
    NotTap { ifname: String, path: PathBuf },
}

/// How the container's NIC (virtio-net, eth0 in the guest) reaches the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Network {
    /// QEMU's user network (slirp): no root, no bridge; the host reaches
    /// the container only through `-p` forwards on its own addresses.
    /// Without `outbound` the container opens no connection out at all
    /// (slirp's `restrict=on`): slirp maps 10.0.2.2 to the host's loopback,
    /// so an open user network lets a container reach every service bound
    /// to the host's 127.0.0.1 (docker and podman refuse that by default).
    User {
        ports: Vec<PortForward>,
        #[serde(default)]
        outbound: bool,
    },
    /// A tap device the host already has (on a bridge, or with an address
    /// of its own): the container has an address on that network (`--ip`)
    /// and is reached there directly, as any machine on the bridge is.
    Tap { ifname: String, guest: GuestAddress },
}

/// The guest's side of `--network tap:IFNAME`: eth0's address, and the
/// gateway and resolver if the network has them. Sent to PID 1 as
/// overrides, so a wrapped image runs on slirp or a bridge unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestAddress {
    /// `A.B.C.D/PREFIX`.
    pub address: String,
    pub gateway: Option<Ipv4Addr>,
    pub dns: Option<Ipv4Addr>,
}

/// `--network user` or `--network tap:IFNAME` as typed, before the tap is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetworkChoice {
    User,
    Tap(String),
}

impl std::str::FromStr for NetworkChoice {
    type Err = VmError;

    fn from_str(s: &str) -> Result<Self, VmError> {
        match s.split_once(':') {
            None if s == "user" => Ok(NetworkChoice::User),
            // Linux interface names: at most 15 bytes, no `/`, no spaces.
            Some(("tap", ifname)) if !ifname.is_empty() && ifname.len() <= 15 && !ifname.contains(['/', ' ', ',', ':']) => {
                Ok(NetworkChoice::Tap(ifname.to_owned()))
            }
            _ => Err(VmError::BadNetwork { spec: s.to_owned() }),
        }
    }
}

impl GuestAddress {
    /// From `--ip`, `--gateway`, `--dns` (the address must carry its prefix).
    pub fn parse(ip: &str, gateway: Option<&str>, dns: Option<&str>) -> Result<Self, VmError> {
        let bad = |flag, value: &str, why| VmError::BadAddress { flag, value: value.to_owned(), why };
        let (addr, prefix) = ip.split_once('/').ok_or_else(|| bad("ip", ip, "give the prefix length too, e.g. 192.168.100.2/24"))?;
        addr.parse::<Ipv4Addr>().map_err(|_| bad("ip", ip, "not an IPv4 address"))?;
        prefix.parse::<u8>().ok().filter(|p| (1..=32).contains(p)).ok_or_else(|| bad("ip", ip, "the prefix length must be 1-32"))?;
        let v4 = |flag, v: Option<&str>| v.map(|v| v.parse::<Ipv4Addr>().map_err(|_| bad(flag, v, "not an IPv4 address"))).transpose();
        Ok(GuestAddress { address: ip.to_owned(), gateway: v4("gateway", gateway)?, dns: v4("dns", dns)? })
    }
}

impl Network {
    /// Check what can be checked before QEMU starts: every `-p` host port
    /// is free, or the tap device exists.
    pub fn check(&self) -> Result<(), VmError> {
        match self {
            Network::User { ports, .. } => {
                for (i, a) in ports.iter().enumerate() {
                    for b in &ports[i + 1..] {
                        let unspecified = Ipv4Addr::UNSPECIFIED;
                        if a.proto == b.proto && a.host_port == b.host_port && (a.host_ip == b.host_ip || a.host_ip == unspecified || b.host_ip == unspecified) {
                            let show = |p: &PortForward| format!("{}:{}:{}", p.host_ip, p.host_port, p.guest_port);
                            return Err(VmError::DuplicatePort { first: show(a), second: show(b), port: a.host_port, proto: a.proto });
                        }
                    }
                }
                ports.iter().try_for_each(PortForward::check_free)
            }
            Network::Tap { ifname, .. } => check_tap(ifname),
        }
    }

    /// What PID 1 must be told instead of the spec's slirp addressing.
    pub fn guest_override(&self) -> Option<&GuestAddress> {
        match self {
            Network::User { .. } => None,
            Network::Tap { guest, .. } => Some(guest),
        }
    }

    /// From `run`'s flags: `-p` only with the user network, `--ip` (and
    /// `--gateway`, `--dns`) only, and always, with a tap.
    pub fn from_flags(choice: &NetworkChoice, ports: &[PortForward], outbound: bool, ip: Option<&str>, gateway: Option<&str>, dns: Option<&str>) -> Result<Network, VmError> {
        match choice {
            NetworkChoice::User => {
                if ip.is_some() || gateway.is_some() || dns.is_some() {
                    return Err(VmError::NetworkFlags("--ip, --gateway and --dns address the container on a tap; they need --network tap:IFNAME (on the user network it is always 10.0.2.15)"));
                }
                Ok(Network::User { ports: ports.to_vec(), outbound })
            }
            NetworkChoice::Tap(ifname) => {
                if !ports.is_empty() {
                    return Err(VmError::NetworkFlags("-p forwards through QEMU's user network; on a tap the container is reached at its --ip directly"));
                }
                if outbound {
                    return Err(VmError::NetworkFlags("--outbound opens QEMU's user network; on a tap what the container reaches is the tap's network's business"));
                }
                let ip = ip.ok_or(VmError::NetworkFlags("--network tap:IFNAME needs --ip A.B.C.D/PREFIX: the container's address on the tap's network"))?;
                Ok(Network::Tap { ifname: ifname.clone(), guest: GuestAddress::parse(ip, gateway, dns)? })
            }
        }
    }
}

/// Check that `ifname` is a tap device QEMU can open, naming what to do if not.
pub fn check_tap(ifname: &str) -> Result<(), VmError> {
    let dev = Path::new("/sys/class/net").join(ifname);
    if !dev.exists() {
        return Err(VmError::NoTap { ifname: ifname.to_owned() });
    }
    // Only tun/tap devices have tun_flags.
    let flags = dev.join("tun_flags");
    if !flags.exists() {
        return Err(VmError::NotTap { ifname: ifname.to_owned(), path: flags });
    }
    Ok(())
}

impl std::str::FromStr for PortForward {
    type Err = VmError;

    fn from_str(s: &str) -> Result<Self, VmError> {
        let bad = |why| VmError::BadPort { spec: s.to_owned(), why };
        let (ports, proto) = match s.rsplit_once('/') {
            Some((p, "tcp")) => (p, Proto::Tcp),
            Some((p, "udp")) => (p, Proto::Udp),
            Some(_) => return Err(bad("the protocol must be tcp or udp")),
            None => (s, Proto::Tcp),
        };
        let parts: Vec<&str> = ports.split(':').collect();
        let (ip, host, guest) = match parts[..] {
            [h, g] => (Ipv4Addr::LOCALHOST, h, g),
            [ip, h, g] => (ip.parse().map_err(|_| bad("the host address is not an IPv4 address"))?, h, g),
            _ => return Err(bad("wrong number of `:`")),
        };
        let port = |p: &str| p.parse::<u16>().ok().filter(|&n| n > 0);
        Ok(PortForward {
            host_ip: ip,
            host_port: port(host).ok_or_else(|| bad("the host port is not a number in 1-65535"))?,
            guest_port: port(guest).ok_or_else(|| bad("the guest port is not a number in 1-65535"))?,
            proto,
        })
    }
}

impl PortForward {
    /// Bind the host side for a moment: a port someone else holds is an
    /// error that names it *before* QEMU starts (slirp would only print a
    /// warning and run without the forward).
    pub fn check_free(&self) -> Result<(), VmError> {
        let addr = SocketAddrV4::new(self.host_ip, self.host_port);
        let taken = |source| VmError::PortTaken { ip: self.host_ip, port: self.host_port, guest: self.guest_port, proto: self.proto, source };
        match self.proto {
            Proto::Tcp => TcpListener::bind(addr).map(drop).map_err(taken),
            Proto::Udp => UdpSocket::bind(addr).map(drop).map_err(taken),
        }
    }

    /// QEMU's `hostfwd=` value.
    pub fn hostfwd(&self) -> String {
        let p = if self.proto == Proto::Tcp { "tcp" } else { "udp" };
        format!("{p}:{}:{}-:{}", self.host_ip, self.host_port, self.guest_port)
    }
}

/// The most of a container's kernel console `run` keeps on disk.
pub const CONSOLE_LOG_MAX: u64 = 64 << 20;

/// Where QEMU connects the serial ports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Channels {
    /// ttyS0's log, written by `run` from [`Channels::console_sock`] and cut
    /// at [`CONSOLE_LOG_MAX`] bytes: what the guest prints is untrusted, and
    /// a QEMU file chardev would let it fill the host's disk.
    pub console_log: PathBuf,
    /// ttyS0: a socket `run` listens on.
    #[serde(default)]
    pub console_sock: PathBuf,
    /// ttyS1 (stdout), ttyS2 (stderr), ttyS3 (control): sockets `run` listens on.
    pub stdout_sock: PathBuf,
    pub stderr_sock: PathBuf,
    pub control_sock: PathBuf,
}

/// QEMU's machine type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Machine {
    /// The i440FX PC the rest of the project boots: PCI, virtio-*-pci.
    Pc,
    /// QEMU's minimal machine: no PCI, no firmware tables to scan; virtio
    /// on MMIO announced on the kernel command line (VIRTIO_MMIO_CMDLINE_DEVICES).
    /// The default: it starts faster (docs/containers.md, "Start time").
    #[default]
    Microvm,
}

/// The kernel options a container needs from its kernel on `machine`:
/// four 8250 serial ports (console, stdout, stderr, control), the rootfs's
/// way in, a NIC when the spec has a network, and the machine's virtio
/// transport. The ones `config` lacks, `CONFIG_` names, empty when none.
pub fn missing_kernel_options(config: &crate::kconfig::DotConfig, machine: Machine, format: RootfsFormat, network: bool) -> Vec<String> {
    let mut need: Vec<&str> = vec!["SERIAL_8250", "SERIAL_8250_CONSOLE"];
    match format {
        RootfsFormat::Initramfs => need.push("BLK_DEV_INITRD"),
        RootfsFormat::Ext4 => need.extend(["VIRTIO_BLK", "EXT4_FS"]),
    }
    if network {
        need.extend(["NET", "INET", "VIRTIO_NET"]);
    }
    if network || format == RootfsFormat::Ext4 {
        need.extend(match machine {
            Machine::Microvm => &["VIRTIO_MMIO", "VIRTIO_MMIO_CMDLINE_DEVICES"][..],
            Machine::Pc => &["PCI", "VIRTIO_PCI"][..],
        });
    }
    let mut missing: Vec<String> = need.into_iter().filter(|o| !matches!(config.get(o), Some("y"))).map(|o| format!("CONFIG_{o}")).collect();
    if config.get("SERIAL_8250_RUNTIME_UARTS").and_then(|n| n.parse::<u32>().ok()).unwrap_or(0) < 4 {
        missing.push("CONFIG_SERIAL_8250_RUNTIME_UARTS=4".to_owned());
    }
    missing
}

/// Everything the command line is made of.
#[derive(Debug, Clone)]
pub struct VmConfig {
    pub kernel: PathBuf,
    pub rootfs: PathBuf,
    pub rootfs_format: RootfsFormat,
    pub memory_mb: u32,
    pub cpus: u32,
    pub accel: Accel,
    pub machine: Machine,
    pub channels: Channels,
    pub network: Network,
}

/// The kernel command line: PID 1 is ours, on either root.
///
/// `loglevel=5` keeps warnings, oopses and panics on the console (what
/// `run` checks for) but not the informational boot chatter, which costs
/// start time on an emulated UART. `panic=-1` with QEMU's `-no-reboot` ends
/// the VM on a panic instead of hanging it.
///
/// On microvm there is no keyboard controller or ACPI to reset through:
/// `reboot=t` resets by triple fault, which QEMU's -no-reboot also ends on.
///
/// Under TCG, `noapictimer`: the kernel spends about 230 ms of the boot
/// calibrating the local APIC timer against the PIT, and under TCG that
/// calibration fails its own verification and the kernel falls back to the
/// PIT anyway ("APIC timer disabled due to verification failure"); this
/// skips straight to the end state. With KVM the APIC timer (or the TSC
/// deadline timer of `-cpu host`) works and is kept.
pub fn kernel_cmdline(format: RootfsFormat, machine: Machine, accel: Accel) -> String {
    let root = match format {
        RootfsFormat::Initramfs => "rdinit=/.xc/init",
        RootfsFormat::Ext4 => "root=/dev/vda rw rootfstype=ext4 init=/.xc/init",
    };
    let reboot = if machine == Machine::Microvm { " reboot=t" } else { "" };
    let timer = if accel == Accel::Tcg { " noapictimer" } else { "" };
    format!("console=ttyS0 8250.nr_uarts=4 panic=-1 loglevel=5{reboot}{timer} {root}")
}

/// QEMU's argv, binary first.
pub fn command_line(cfg: &VmConfig) -> Vec<String> {
    let mut argv: Vec<String> = vec![crate::qemu::DEFAULT_QEMU_BINARY.to_owned()];
    let mut push = |a: &str, b: String| argv.extend([a.to_owned(), b]);
    let (virtio, machine) = match cfg.machine {
        Machine::Pc => ("pci", "pc"),
        // The legacy PIC/PIT and an RTC keep the kernel's boot path the one
        // the pc machine takes; no ACPI (the kernel has none), no option ROMs.
        Machine::Microvm => ("device", "microvm,x-option-roms=off,isa-serial=off,pit=on,pic=on,rtc=on,acpi=off"),
    };
    push("-M", machine.to_owned());
    push("-accel", cfg.accel.qemu_name().to_owned());
    push("-cpu", if cfg.accel == Accel::Kvm { "host" } else { "max" }.to_owned());
    push("-m", cfg.memory_mb.to_string());
    push("-smp", cfg.cpus.max(1).to_string());
    push("-display", "none".to_owned());
    push("-kernel", cfg.kernel.display().to_string());
    let c = &cfg.channels;
    for (id, sock) in [("con", &c.console_sock), ("out", &c.stdout_sock), ("err", &c.stderr_sock), ("ctl", &c.control_sock)] {
        push("-chardev", format!("socket,id={id},path={}", sock.display()));
    }
    // ttyS0..3 at the standard I/O ports, in this order.
    for (index, id) in ["con", "out", "err", "ctl"].iter().enumerate() {
        push("-device", format!("isa-serial,chardev={id},index={index}"));
    }
    let netdev = match &cfg.network {
        Network::User { ports, outbound } => {
            // restrict=on isolates the guest but keeps the hostfwd rules.
            let mut netdev = format!("user,id=net0,restrict={}", if *outbound { "off" } else { "on" });
            for p in ports {
                netdev.push_str(",hostfwd=");
                netdev.push_str(&p.hostfwd());
            }
            netdev
        }
        // script=no: the host set the tap up (bridge, address) already;
        // QEMU must not run /etc/qemu-ifup on it.
        Network::Tap { ifname, .. } => format!("tap,id=net0,ifname={ifname},script=no,downscript=no"),
    };
    push("-netdev", netdev);
    push("-device", format!("virtio-net-{virtio},netdev=net0"));
    match cfg.rootfs_format {
        RootfsFormat::Initramfs => push("-initrd", cfg.rootfs.display().to_string()),
        RootfsFormat::Ext4 => {
            // snapshot=on: each run writes to its own throw-away overlay, so
            // the wrapped image stays as wrapped and runs do not share state.
            push("-drive", format!("file={},format=raw,if=none,id=root,snapshot=on", cfg.rootfs.display()));
            push("-device", format!("virtio-blk-{virtio},drive=root"));
        }
    }
    push("-append", kernel_cmdline(cfg.rootfs_format, cfg.machine, cfg.accel));
    argv.extend(["-nodefaults".to_owned(), "-no-user-config".to_owned(), "-no-reboot".to_owned()]);
    argv
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_options_are_checked_against_the_machine() {
        use crate::kconfig::DotConfig;
        let net = DotConfig::parse("CONFIG_SERIAL_8250=y\nCONFIG_SERIAL_8250_CONSOLE=y\nCONFIG_SERIAL_8250_RUNTIME_UARTS=4\nCONFIG_BLK_DEV_INITRD=y\nCONFIG_NET=y\nCONFIG_INET=y\nCONFIG_VIRTIO_NET=y\nCONFIG_PCI=y\nCONFIG_VIRTIO_PCI=y\n");
        assert_eq!(missing_kernel_options(&net, Machine::Microvm, RootfsFormat::Initramfs, true), ["CONFIG_VIRTIO_MMIO", "CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES"]);
        assert!(missing_kernel_options(&net, Machine::Pc, RootfsFormat::Initramfs, true).is_empty());
        assert!(missing_kernel_options(&net, Machine::Microvm, RootfsFormat::Initramfs, false).is_empty(), "no network, no disk: no transport needed");
        assert_eq!(missing_kernel_options(&net, Machine::Pc, RootfsFormat::Ext4, false), ["CONFIG_VIRTIO_BLK", "CONFIG_EXT4_FS"]);
        let two_uarts = DotConfig::parse("CONFIG_SERIAL_8250=y\nCONFIG_SERIAL_8250_CONSOLE=y\nCONFIG_SERIAL_8250_RUNTIME_UARTS=2\nCONFIG_BLK_DEV_INITRD=y\n");
        assert_eq!(missing_kernel_options(&two_uarts, Machine::Microvm, RootfsFormat::Initramfs, false), ["CONFIG_SERIAL_8250_RUNTIME_UARTS=4"]);
    }

    #[test]
    fn ports_read_as_dockers_do() {
        let p: PortForward = "8080:80".parse().unwrap();
        assert_eq!((p.host_ip, p.host_port, p.guest_port, p.proto), (Ipv4Addr::LOCALHOST, 8080, 80, Proto::Tcp));
        assert_eq!(p.hostfwd(), "tcp:127.0.0.1:8080-:80");
        let p: PortForward = "0.0.0.0:53:5353/udp".parse().unwrap();
        assert_eq!(p.hostfwd(), "udp:0.0.0.0:53-:5353");
        for bad in ["80", "a:80", "1:2:3:4", "80:0", "80:80/sctp", "300.1.1.1:1:2"] {
            assert!(bad.parse::<PortForward>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_taken_port_is_named() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let p: PortForward = format!("{port}:80").parse().unwrap();
        let err = p.check_free().unwrap_err().to_string();
        assert!(err.contains(&format!("127.0.0.1:{port}/tcp")), "{err}");
        drop(l);
    }

    #[test]
    fn command_line_wires_the_four_ports_and_the_root() {
        let ch = Channels { console_log: "/r/console.log".into(), console_sock: "/s/con".into(), stdout_sock: "/s/out".into(), stderr_sock: "/s/err".into(), control_sock: "/s/ctl".into() };
        let mut cfg = VmConfig {
            kernel: "/w/bzImage".into(),
            rootfs: "/w/rootfs.cpio".into(),
            rootfs_format: RootfsFormat::Initramfs,
            memory_mb: 256,
            cpus: 1,
            accel: Accel::Tcg,
            machine: Machine::Pc,
            channels: ch,
            network: Network::User { ports: vec!["6380:6379".parse().unwrap()], outbound: false },
        };
        let j = command_line(&cfg).join(" ");
        let serials: Vec<&str> = j.split(" -device isa-serial,").skip(1).map(|s| s.split(' ').next().unwrap()).collect();
        assert_eq!(serials, ["chardev=con,index=0", "chardev=out,index=1", "chardev=err,index=2", "chardev=ctl,index=3"], "ttyS0..3 in order: {j}");
        assert!(j.contains("-initrd /w/rootfs.cpio") && j.contains("rdinit=/.xc/init"), "{j}");
        assert!(j.contains("-netdev user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:6380-:6379") && j.contains("-no-reboot"), "no outbound by default (the host's loopback is 10.0.2.2 on slirp): {j}");
        cfg.rootfs_format = RootfsFormat::Ext4;
        cfg.rootfs = "/w/rootfs.ext4".into();
        let j = command_line(&cfg).join(" ");
        assert!(j.contains("snapshot=on") && j.contains("root=/dev/vda") && !j.contains("-initrd"), "{j}");
        assert!(j.contains("virtio-blk-pci") && j.contains("-M pc "), "{j}");
        cfg.machine = Machine::Microvm;
        let j = command_line(&cfg).join(" ");
        assert!(j.contains("-M microvm") && j.contains("virtio-blk-device") && j.contains("virtio-net-device"), "{j}");
        cfg.network = Network::Tap { ifname: "xctap0".into(), guest: GuestAddress::parse("192.168.7.2/24", None, None).unwrap() };
        let j = command_line(&cfg).join(" ");
        assert!(j.contains("-netdev tap,id=net0,ifname=xctap0,script=no,downscript=no") && !j.contains("hostfwd"), "{j}");
    }

    #[test]
    fn network_flags_parse_and_bad_ones_are_named() {
        assert_eq!("user".parse::<NetworkChoice>().unwrap(), NetworkChoice::User);
        assert_eq!("tap:br0tap".parse::<NetworkChoice>().unwrap(), NetworkChoice::Tap("br0tap".into()));
        for bad in ["tap", "tap:", "bridge:br0", "tap:a/b", "tap:0123456789abcdef"] {
            assert!(bad.parse::<NetworkChoice>().is_err(), "{bad}");
        }
        let g = GuestAddress::parse("192.168.7.2/24", Some("192.168.7.1"), None).unwrap();
        assert_eq!((g.address.as_str(), g.gateway, g.dns), ("192.168.7.2/24", Some(Ipv4Addr::new(192, 168, 7, 1)), None));
        for (ip, gw) in [("192.168.7.2", None), ("192.168.7.2/33", None), ("x/24", None), ("10.0.0.2/8", Some("10.0.0"))] {
            let e = GuestAddress::parse(ip, gw, None).unwrap_err().to_string();
            assert!(e.starts_with("--ip") || e.starts_with("--gateway"), "{e}");
        }
        let e = check_tap("no-such-if0").unwrap_err().to_string();
        assert!(e.contains("ip tuntap add dev no-such-if0 mode tap"), "{e}");
        assert!(matches!(check_tap("lo"), Err(VmError::NotTap { .. })));
    }
}
