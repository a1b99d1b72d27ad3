//! Containers on their own library-OS kernels.
//!
//! The hand-offs of `wrap` and `run`:
//! an OCI image -> (crate::oci) a rootfs directory + [`spec::ContainerSpec`]
//! -> a wrapped directory (kernel image + packed rootfs + spec + QEMU line)
//! -> a running VM whose PID 1 (`guest/init/xc_init.c`) reads the spec from
//! [`spec::SPEC_PATH`] inside the rootfs and execs the entrypoint.

pub mod spec;
