//! Containers on their own library-OS kernels.
//!
//! The hand-offs of `wrap` and `run`:
//! an OCI image -> (crate::oci) a rootfs directory + [`spec::ContainerSpec`]
//! -> ([`rootfs::walk`], [`pack::pack`]) a wrapped directory (kernel image +
//! packed rootfs + [`wrapped::WrappedManifest`])
//! -> ([`vm::command_line`], [`session::run`]) a running VM whose PID 1
//! (`guest/init/xc_init.c`) reads the spec from [`spec::SPEC_PATH`] inside
//! the rootfs, takes run-time overrides over [`control`], and execs the
//! entrypoint.

pub mod control;
pub mod pack;
pub mod rootfs;
pub mod session;
pub mod spec;
pub mod translate;
pub mod vm;
pub mod wrapped;
