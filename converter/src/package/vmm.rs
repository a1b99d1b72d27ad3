//! The VMM configurations that travel with every image: how to boot it under
//! QEMU (the line `xc-convert boot` uses), Firecracker, Cloud Hypervisor and
//! Kata Containers. Written twice from one function: into the image
//! directory at build time (paths relative to that directory) and into a
//! guest-kernel package (absolute paths where the package installs).

use crate::pipeline::build::Manifest;
use crate::qemu::{self, QemuConfig};
use std::path::PathBuf;

/// The file names, in the order they are written.
pub const FILES: &[&str] = &["qemu.sh", "firecracker.json", "cloud-hypervisor.sh", "kata-configuration.toml"];

/// Where the kernel files are, as the configurations name them.
#[derive(Debug, Clone)]
pub struct KernelPaths {
    /// Directory prefix for JSON and TOML (which cannot compute one): `""`
    /// for "relative to the current directory", else an absolute directory
    /// ending in `/`.
    pub dir: String,
    /// The compressed image's file name (`bzImage` in an image directory,
    /// `vmlinuz` in a package).
    pub bzimage: String,
}

/// One configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmmFile {
    /// File name (one of [`FILES`]).
    pub name: &'static str,
    /// Its bytes.
    pub text: String,
    /// Whether it is a script (mode 0755).
    pub executable: bool,
}

/// The kernel arguments every VMM gets: the ones `xc-convert boot` passes
/// (console on the first serial port, panic reboots, which with QEMU's
/// `-no-reboot` ends the VM).
pub fn kernel_args() -> String {
    qemu::kernel_cmdline(&QemuConfig::new(PathBuf::new(), PathBuf::new(), PathBuf::new()))
}

/// The four configurations for the image `manifest` describes.
pub fn files(manifest: &Manifest, paths: &KernelPaths) -> Vec<VmmFile> {
    let args = kernel_args();
    let memory = QemuConfig::new(PathBuf::new(), PathBuf::new(), PathBuf::new()).memory_mb;
    let cpus = if manifest.options.get("CONFIG_SMP").map(String::as_str) == Some("y") { 2 } else { 1 };
    let what = format!(
        "Linux {} ({} kernel, profile {}), build {}, written by xc-convert {}",
        release(manifest),
        manifest.mode,
        manifest.profile,
        &manifest.build_key[..16.min(manifest.build_key.len())],
        env!("CARGO_PKG_VERSION")
    );
    let libos_note = if manifest.mode.process_cpl() == 0 {
        "# A library-OS kernel: its processes run at the kernel's privilege. Boot it\n# only as a guest, one container per VM, never on a host.\n"
    } else {
        ""
    };
    let qemu_sh = format!(
        r#"#!/bin/sh
# Boot this kernel under QEMU with the command line `xc-convert boot` uses.
# {what}
{libos_note}#   ./qemu.sh INITRAMFS [KERNEL ARGS...]
# Environment: XC_ACCEL=tcg|kvm (default tcg), XC_CPUS (default {cpus}), XC_MEMORY_MB (default {memory}).
set -eu
here=$(dirname "$(readlink -f "$0")")
[ $# -ge 1 ] || {{ echo "usage: $0 INITRAMFS [KERNEL ARGS...]" >&2; exit 2; }}
initrd=$1
shift
accel=${{XC_ACCEL:-tcg}}
case $accel in kvm) cpu=host ;; *) cpu=max ;; esac
exec qemu-system-x86_64 -accel "$accel" -cpu "$cpu" -m "${{XC_MEMORY_MB:-{memory}}}" -smp "${{XC_CPUS:-{cpus}}}" \
    -serial stdio -display none -kernel "$here/{bz}" -initrd "$initrd" \
    -append "{args} $*" -nodefaults -no-reboot
"#,
        bz = paths.bzimage,
    );
    // Firecracker and Cloud Hypervisor load the uncompressed ELF (Cloud
    // Hypervisor through its PVH note), so they name vmlinux.
    let firecracker = serde_json::json!({
        "boot-source": {
            "kernel_image_path": format!("{}vmlinux", paths.dir),
            "boot_args": format!("{args} reboot=k pci=off"),
        },
        "drives": [],
        "machine-config": { "vcpu_count": cpus, "mem_size_mib": memory, "smt": false },
    });
    let ch = format!(
        r#"#!/bin/sh
# Boot this kernel under Cloud Hypervisor (PVH entry of vmlinux).
# {what}
{libos_note}#   ./cloud-hypervisor.sh INITRAMFS [KERNEL ARGS...]
set -eu
here=$(dirname "$(readlink -f "$0")")
[ $# -ge 1 ] || {{ echo "usage: $0 INITRAMFS [KERNEL ARGS...]" >&2; exit 2; }}
initrd=$1
shift
exec cloud-hypervisor --kernel "$here/vmlinux" --initramfs "$initrd" --cmdline "{args} $*" \
    --cpus boot={cpus} --memory size={memory}M --serial tty --console off
"#
    );
    let kata = format!(
        "# Kata Containers: merge into the [hypervisor.qemu] table of configuration.toml.\n# {what}\n{libos_note}[hypervisor.qemu]\nkernel = {}\nkernel_params = {}\ndefault_vcpus = {cpus}\ndefault_memory = {memory}\n",
        toml_string(&format!("{}vmlinux", paths.dir)),
        toml_string(&args),
    );
    vec![
        VmmFile { name: FILES[0], text: qemu_sh, executable: true },
        VmmFile { name: FILES[1], text: serde_json::to_string_pretty(&firecracker).expect("json") + "\n", executable: false },
        VmmFile { name: FILES[2], text: ch, executable: true },
        VmmFile { name: FILES[3], text: kata, executable: false },
    ]
}

/// The release an image's files are named by (older manifests lack it).
pub fn release(manifest: &Manifest) -> &str {
    if manifest.kernel_release.is_empty() {
        &manifest.kernel_version
    } else {
        &manifest.kernel_release
    }
}

fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(mode: &str, smp: bool) -> Manifest {
        let mut v: serde_json::Value = serde_json::from_str(include_str!("testdata/manifest.json")).unwrap();
        v["mode"] = mode.into();
        if smp {
            v["options"]["CONFIG_SMP"] = "y".into();
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn qemu_script_boots_with_the_arguments_of_boot() {
        let f = files(&manifest("libos", false), &KernelPaths { dir: String::new(), bzimage: "bzImage".into() });
        let sh = &f[0].text;
        let cfg = QemuConfig::new("K".into(), "I".into(), "L".into());
        // The words of the line `boot` runs, apart from the file names and
        // what the script lets the environment choose.
        for w in qemu::command_line(&cfg) {
            if ["K", "I", "tcg", "max", "512", "1"].contains(&w.as_str()) || w == kernel_args() || w.starts_with("qemu-system") {
                continue;
            }
            assert!(sh.contains(&format!(" {w} ")) || sh.contains(&format!(" {w}\n")), "qemu.sh lacks {w}:\n{sh}");
        }
        assert!(sh.contains(&format!("-append \"{} $*\"", kernel_args())), "{sh}");
        assert!(sh.contains("never on a host"), "a libos kernel says what it is");
        assert!(f[0].executable && f[2].executable && !f[1].executable);
    }

    #[test]
    fn firecracker_and_kata_name_their_documented_fields_and_the_install_dir() {
        let paths = KernelPaths { dir: "/usr/share/xc-convert/kernels/6.1.192-xc-stock-minimal/".into(), bzimage: "vmlinuz".into() };
        let f = files(&manifest("stock", true), &paths);
        let fc: serde_json::Value = serde_json::from_str(&f[1].text).unwrap();
        assert_eq!(fc["boot-source"]["kernel_image_path"], "/usr/share/xc-convert/kernels/6.1.192-xc-stock-minimal/vmlinux");
        assert!(fc["boot-source"]["boot_args"].as_str().unwrap().contains("console=ttyS0"));
        assert_eq!(fc["machine-config"]["vcpu_count"], 2);
        assert_eq!(fc["machine-config"]["mem_size_mib"], 512);
        let kata: toml::Value = toml::from_str(&f[3].text).unwrap();
        let q = &kata["hypervisor"]["qemu"];
        assert_eq!(q["kernel"].as_str().unwrap(), "/usr/share/xc-convert/kernels/6.1.192-xc-stock-minimal/vmlinux");
        assert_eq!(q["kernel_params"].as_str().unwrap(), kernel_args());
        assert!(!f[0].text.contains("never on a host"), "a stock kernel is not called libos");
        assert!(f[2].text.contains("--kernel \"$here/vmlinux\"") && f[2].text.contains("--cpus boot=2"));
    }
}
