//! `xc-convert run`

use crate::container::vm::{Machine, Network, NetworkChoice, PortForward};
use crate::pipeline::container_run::{self, RunRequest};
use super::Session;
use crate::qemu::Accel;
use std::path::PathBuf;
use std::time::Duration;

/// Run a wrapped container in its own VM, on its own kernel.
///
/// Boots the directory `xc-convert wrap` printed with QEMU (direct kernel
/// boot, user networking), streams the container's stdout and stderr to
/// ours, and exits with the entrypoint's exit status (128+N when signal N
/// killed it; 127/126 when it is missing or not executable). Ctrl-C (SIGINT)
/// or SIGTERM is forwarded to the entrypoint; QEMU is killed if the VM has
/// not stopped after --stop-timeout, or at a second Ctrl-C.
///
/// -e, --entrypoint and the arguments after `--` override the wrapped spec
/// for this run only (they travel on the control channel, the rootfs is not
/// changed). As with `docker run IMAGE ARGS`, ARGS replace the image's Cmd
/// and keep its Entrypoint; --entrypoint replaces the Entrypoint.
/// Every run is its own VM: start `run` several times, with different
/// --name, for several containers; none sees another's processes or files.
/// On the user network a container opens no connection out (not to the
/// host's 127.0.0.1, not to another container, not to the internet) and
/// is reached only through its -p forwards; --outbound opens it.
///
/// A kernel panic, oops, BUG or warning on the kernel console is reported
/// with the console log's path and exit code 3; the run directory
/// (<cache>/runs/<name>/) is then kept. Example:
///
///   xc-convert run "$dir" -p 6380:6379 -e REDIS_ARGS=--save -- redis-server --port 6379
///
/// On a bridge instead of QEMU's user network (as root, a tap you made):
///
///   ip tuntap add dev xctap0 mode tap && ip link set xctap0 master br0 up
///   xc-convert run "$dir" --network tap:xctap0 --ip 192.168.100.2/24 --gateway 192.168.100.1
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// A wrapped container directory (the last line `xc-convert wrap` prints),
    /// or an image, which is wrapped first with wrap's defaults.
    #[arg(value_name = "WRAPPED|IMAGE")]
    pub wrapped: PathBuf,
    /// The kernel profile an IMAGE is wrapped with [default: wrap's,
    /// container]; a directory wrap already made has its kernel.
    #[arg(long, value_name = "PROFILE")]
    pub profile: Option<String>,
    /// Forward a host port: [IP:]HOST:GUEST[/tcp|/udp], IP defaults to 127.0.0.1
    /// (user network only).
    #[arg(short = 'p', long = "publish", value_name = "[IP:]HOST:GUEST")]
    pub ports: Vec<PortForward>,
    /// user: QEMU's user network, no root needed, reached through -p.
    /// tap:IFNAME: a tap device you created (ip tuntap add dev IFNAME mode tap),
    /// on a bridge or with an address; the container is reached at its --ip.
    #[arg(long, value_name = "user|tap:IFNAME", default_value = "user")]
    pub network: NetworkChoice,
    /// Let the container open connections out through the user network:
    /// to whatever the host reaches (the internet, DNS at 10.0.2.3) and to
    /// every service bound to the host's 127.0.0.1, which slirp shows the
    /// guest as 10.0.2.2 (other containers' -p ports among them). Off by
    /// default: a container then talks only through its -p forwards, as
    /// podman's slirp4netns with allow_host_loopback=false.
    #[arg(long)]
    pub outbound: bool,
    /// The container's address on the tap's network, with prefix (192.168.100.2/24).
    #[arg(long, value_name = "A.B.C.D/N")]
    pub ip: Option<String>,
    /// Default route on the tap's network (none if not given).
    #[arg(long, value_name = "A.B.C.D")]
    pub gateway: Option<String>,
    /// Name server written to the container's /etc/resolv.conf on a tap.
    #[arg(long, value_name = "A.B.C.D")]
    pub dns: Option<String>,
    /// Set an environment variable (K=V), or pass ours on (K).
    #[arg(short = 'e', long = "env", value_name = "K=V")]
    pub env: Vec<String>,
    /// Guest memory in MiB [default: what wrap recorded, 512].
    #[arg(long, value_name = "MIB", value_parser = clap::value_parser!(u32).range(64..))]
    pub memory: Option<u32>,
    /// Virtual CPUs (more than one needs an SMP kernel).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub cpus: u32,
    /// Name of this run (its directory under <cache>/runs/) [default: <image>-<pid>].
    /// Names are [A-Za-z0-9][A-Za-z0-9_.-]*, at most 128 bytes (docker's rule).
    #[arg(long)]
    pub name: Option<crate::names::ContainerName>,
    /// Tenant label recorded with the run.
    #[arg(long)]
    pub tenant: Option<String>,
    /// Accelerator: tcg works everywhere; kvm needs a KVM that runs ordinary guests.
    #[arg(long, value_enum, default_value_t = Accel::Tcg)]
    pub accel: Accel,
    /// QEMU machine type: microvm (no PCI or firmware tables: faster start) or pc (PCI, as `boot` uses).
    #[arg(long, value_enum, default_value_t = Machine::Microvm)]
    pub machine: Machine,
    /// Seconds the container gets to stop after SIGINT/SIGTERM before QEMU is killed.
    #[arg(long, value_name = "S", default_value_t = 10)]
    pub stop_timeout: u64,
    /// Kill the VM after this many seconds (0: never).
    #[arg(long, value_name = "S", default_value_t = 0)]
    pub timeout: u64,
    /// Keep the run directory (console.log, run.json) after a clean run.
    #[arg(long)]
    pub keep: bool,
    /// Run PROGRAM instead of the image's Entrypoint (its Cmd is dropped;
    /// ARGS after `--` become PROGRAM's arguments), as docker's --entrypoint.
    #[arg(long, value_name = "PROGRAM")]
    pub entrypoint: Option<String>,
    /// Replace the image's Cmd, as `docker run IMAGE ARGS` does: the
    /// Entrypoint stays and gets ARGS. A container wrapped from a rootfs
    /// and a spec has no Entrypoint part: ARGS replace its whole argv.
    #[arg(last = true, value_name = "ARGS")]
    pub args: Vec<String>,
}

/// Run `run`.
pub fn exec(ctx: &Session, args: &Args) -> anyhow::Result<()> {
    // Flags first: a wrong --network should not wait for a wrap.
    let network = Network::from_flags(&args.network, &args.ports, args.outbound, args.ip.as_deref(), args.gateway.as_deref(), args.dns.as_deref())
        .map_err(crate::pipeline::container_run::RunError::Vm)?;
    let wrapped = if args.wrapped.join(crate::container::wrapped::WRAPPED_JSON).is_file() {
        if let Some(profile) = &args.profile {
            return Err(crate::pipeline::container_run::RunError::ProfileOfWrapped { profile: profile.clone(), dir: args.wrapped.clone() }.into());
        }
        args.wrapped.clone()
    } else {
        let profile = args.profile.as_deref().unwrap_or(super::wrap::DEFAULT_PROFILE);
        super::wrap::wrap_with_defaults(ctx, &args.wrapped, args.memory.unwrap_or(512), profile)?
    };
    super::prepare_host(ctx, crate::host::RUN_PACKAGES, "running containers")?;
    let req = RunRequest {
        wrapped,
        network,
        env: args.env.clone(),
        args: args.args.clone(),
        entrypoint: args.entrypoint.clone(),
        memory_mb: args.memory,
        cpus: args.cpus,
        name: args.name.clone(),
        tenant: args.tenant.clone(),
        accel: args.accel,
        machine: args.machine,
        stop_grace: Duration::from_secs(args.stop_timeout),
        timeout: (args.timeout > 0).then(|| Duration::from_secs(args.timeout)),
        keep: args.keep,
        stdout_to_stderr: ctx.ui.json,
    };
    let r = container_run::run(ctx, &req)?;
    if let Some(t) = r.first_output_seconds {
        ctx.detail(format!("first output {t:.2}s after QEMU started; VM ran {:.2}s", r.seconds));
    }
    if ctx.ui.json {
        super::emit(&ctx.ui, &r, "");
    }
    if let Some(p) = r.kernel_problems.first() {
        anyhow::bail!(KernelProblem {
            what: format!("{:?}", p.kind),
            line: p.line.clone(),
            more: r.kernel_problems.len() - 1,
            status: r.exit_status,
            console: r.console_log.clone(),
        });
    }
    match (r.exit_status, r.stop_signal) {
        (Some(0), _) => Ok(()),
        (Some(code), _) => Err(super::ExitWith(code).into()),
        (None, Some(sig)) => {
            ctx.status(format!("stopped by signal {sig}: the VM was killed before PID 1 reported a status; console: {}", r.console_log.display()));
            Err(super::ExitWith(128 + sig).into())
        }
        (None, None) => anyhow::bail!(NoStatus {
            why: if r.timed_out { "timed out (--timeout)".into() } else { format!("QEMU exited ({}) {}", r.qemu_stderr.trim(), "") },
            console: r.console_log.clone(),
        }),
    }
}

/// The kernel complained: the container's result is not to be trusted.
#[derive(Debug, thiserror::Error)]
#[error("the container's kernel reported {what}: {line}{}{}; console log: {}", if *.more > 0 { format!(" (and {} more)", .more) } else { String::new() }, .status.map(|s| format!(" (the entrypoint exited {s})")).unwrap_or_default(), .console.display())]
pub struct KernelProblem {
    pub what: String,
    pub line: String,
    pub more: usize,
    pub status: Option<i32>,
    pub console: PathBuf,
}

/// The VM ended without PID 1 reporting the entrypoint's status.
#[derive(Debug, thiserror::Error)]
#[error("the VM stopped without an exit status from PID 1: {why}; console log: {}", .console.display())]
pub struct NoStatus {
    pub why: String,
    pub console: PathBuf,
}
