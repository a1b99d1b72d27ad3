//! xc-convert: turn a stock Linux kernel tree into a library-OS kernel.
//!
//! The pipeline is a sequence of stages with typed hand-offs (see
//! [`pipeline`]): source tree -> (patched tree) -> configured tree -> image ->
//! boot report. Each stage's result lives in a content-addressed cache and is
//! published atomically, so a stage that fails leaves nothing behind.

pub mod cli;
pub mod container;
#[doc(hidden)]
pub mod fuzzing;
pub mod guest;
pub mod host;
pub mod kconfig;
pub mod matrix;
pub mod names;
pub mod kselftest;
pub mod oci;
pub mod package;
pub mod patch;
pub mod pipeline;
pub mod profile;
pub mod qemu;
pub mod shell;
pub mod source;
pub mod ui;
pub mod abom;
