//! The documented exit codes, and which error means which: 0 ok, 1 checks
//! failed, 2 bad request, 3 stage failed, 4 host problem. Each library error
//! type classifies its own variants here, so the table is in one place and
//! tested (tests/tests/exit_codes.rs runs the real binary for each row).

use crate::pipeline::bench::BenchError;
use crate::pipeline::boot::BootError;
use crate::pipeline::build::BuildError;
use crate::pipeline::configure::ConfigError;
use crate::pipeline::image::ImageError;
use crate::pipeline::patch::PatchStageError;
use crate::source::SourceError;

/// Exit code classes.
pub mod exit {
    /// A boot check failed.
    pub const CHECK_FAILED: i32 = 1;
    /// The request is wrong.
    pub const USAGE: i32 = 2;
    /// A stage failed.
    pub const STAGE: i32 = 3;
    /// Host or I/O problem.
    pub const HOST: i32 = 4;
}
use exit::*;

fn source(e: &SourceError) -> i32 {
    match e {
        SourceError::PackageInstall { .. } | SourceError::BadPackage { .. } | SourceError::Io { .. } | SourceError::Cache(_) | SourceError::CacheCorrupt { .. } => HOST,
        _ => USAGE,
    }
}

fn config(e: &ConfigError) -> i32 {
    match e {
        ConfigError::UnknownOptions { .. } | ConfigError::UnknownBase { .. } => USAGE,
        ConfigError::OptionsLost { .. } | ConfigError::Make(_) | ConfigError::Kconfig { .. } => STAGE,
        ConfigError::Host(_) | ConfigError::Io(_) | ConfigError::Cache(_) => HOST,
    }
}

fn patch_stage(e: &PatchStageError) -> i32 {
    match e {
        PatchStageError::Patch(crate::patch::PatchError::NotApplicable { .. }) | PatchStageError::Kconfig { .. } => STAGE,
        PatchStageError::Patch(_) | PatchStageError::ExportExists { .. } => USAGE,
        PatchStageError::Io(_) | PatchStageError::Cache(_) => HOST,
    }
}

fn build(e: &BuildError) -> i32 {
    match e {
        BuildError::NotAnImage { .. } => USAGE,
        BuildError::Make(_) | BuildError::Damaged { .. } => STAGE,
        BuildError::Host(_) | BuildError::Io(_) | BuildError::Cache(_) => HOST,
    }
}

fn image(e: &ImageError) -> i32 {
    match e {
        ImageError::Source(e) => source(e),
        ImageError::Profile(_) | ImageError::PatchSet(_) => USAGE,
        ImageError::Patch(e) => patch_stage(e),
        ImageError::Config(e) => config(e),
        ImageError::Build(e) => build(e),
    }
}

fn boot(e: &BootError) -> i32 {
    match e {
        BootError::Image(e) => build(e),
        BootError::Program { .. } | BootError::Translate(_) => USAGE,
        BootError::Guest(_) | BootError::Qemu(_) | BootError::Host(_) | BootError::Io(_) | BootError::Record(_) => HOST,
    }
}

fn bench(e: &BenchError) -> i32 {
    match e {
        BenchError::WrongMode { .. } | BenchError::Mismatch { .. } => USAGE,
        BenchError::BootFailed { .. } | BenchError::CoarseClock { .. } | BenchError::Output { .. } | BenchError::Trace { .. } => STAGE,
        BenchError::Image(e) => build(e),
        BenchError::Boot { source, .. } => boot(source),
        BenchError::Tsc(_) => HOST,
    }
}

/// What the user asked to pack is wrong (too big for the memory, ext4
/// with --translate, a name cpio cannot hold), or the host failed.
fn pack(e: &crate::container::pack::PackError) -> i32 {
    use crate::container::pack::PackError;
    match e {
        PackError::InitramfsTooBig { .. } | PackError::TranslateExt4 | PackError::TooLargeForCpio { .. } => USAGE,
        _ => HOST,
    }
}

fn wrap(e: &crate::pipeline::wrap::WrapError) -> i32 {
    use crate::container::rootfs::RootfsError;
    use crate::pipeline::wrap::WrapError;
    match e {
        // Writing the unpacked layers failed (ENOSPC, EIO): the host's problem.
        WrapError::Image { source: crate::oci::OciError::Layer(crate::oci::layers::LayerError::Io { .. }) | crate::oci::OciError::Staging { .. }, .. } => HOST,
        WrapError::TranslateNeedsLibos { .. } | WrapError::KernelLacks { .. } | WrapError::Image { .. } | WrapError::Wrapped(_) => USAGE,
        WrapError::Pack(p) => pack(p),
        WrapError::Rootfs(RootfsError::NotADirectory { .. }) => USAGE,
        WrapError::Rootfs(_) | WrapError::CopyKernel { .. } | WrapError::Host(_) | WrapError::Cache(_) | WrapError::Io(_) => HOST,
    }
}

/// A taken port, a bad -e or --name, a directory that is not wrapped: 2;
/// QEMU or the host failing: 4.
fn run(e: &crate::pipeline::container_run::RunError) -> i32 {
    use crate::pipeline::container_run::RunError;
    match e {
        RunError::NameInUse { .. } | RunError::ProfileOfWrapped { .. } | RunError::NotARunDir { .. } | RunError::BadEnv { .. } | RunError::MemoryTooLarge { .. } | RunError::NoSmp { .. } | RunError::Wrapped(_) | RunError::Vm(_) => USAGE,
        RunError::Pack(p) => pack(p),
        RunError::NoKernel { .. } | RunError::Token(_) | RunError::RunDir { .. } | RunError::Session(_) | RunError::Host(_) | RunError::Record(_) => HOST,
    }
}

/// A spec or report that is wrong, or a named cell that does not exist: 2;
/// Slurm not answering, files not written: 4.
fn matrix(cause: &(dyn std::error::Error + 'static)) -> Option<i32> {
    use crate::matrix::{executor::ExecError, report::ReportError, spec::SpecError};
    if let Some(e) = cause.downcast_ref::<SpecError>() {
        return Some(match e {
            SpecError::Kernel { source: e, .. } => source(e),
            _ => USAGE,
        });
    }
    if let Some(e) = cause.downcast_ref::<ReportError>() {
        return Some(match e {
            ReportError::Parse { .. } | ReportError::Empty { .. } => USAGE,
            ReportError::Io(_) | ReportError::Publish(_) => HOST,
        });
    }
    (cause.is::<ExecError>() || cause.is::<crate::matrix::cell::CellError>()).then_some(HOST)
}

/// A suite or report the user named is wrong: 2; the selftests' make
/// failed: 3; the host or cache: 4.
fn kselftest(e: &crate::kselftest::KselftestError) -> i32 {
    use crate::kselftest::KselftestError as K;
    match e {
        K::UnknownSuite { .. } | K::BadSuiteName(_) | K::BadReport { .. } | K::BadExpected { .. } | K::WrongMode { .. } | K::TreeMissing { .. } => USAGE,
        K::Make { .. } => STAGE,
        K::Spawn { .. } | K::Read { .. } | K::Io(_) | K::Entry(_) => HOST,
    }
}

fn package(e: &crate::pipeline::package::PackageStageError) -> i32 {
    use crate::package::PackageError as P;
    use crate::pipeline::package::PackageStageError as S;
    match e {
        S::Image(e) => build(e),
        S::Out { .. } => USAGE,
        S::Package(P::TreeMissing { .. }) => USAGE,
        S::Package(P::Make(_) | P::Tool { .. } | P::Lint { .. } | P::NotTheImage { .. } | P::NoImagePackage { .. }) => STAGE,
        S::Package(P::Host(_) | P::Io(_) | P::Publish(_)) | S::Cache(_) | S::Io(_) => HOST,
    }
}

/// The exit code for an error that reached the CLI: the first cause in the
/// chain that has a class decides; anything unclassified is a host problem.
pub fn exit_code(err: &anyhow::Error) -> i32 {
    for cause in err.chain() {
        if cause.is::<super::ChecksFailed>() {
            return CHECK_FAILED;
        }
        if let Some(super::ExitWith(code)) = cause.downcast_ref::<super::ExitWith>() {
            return *code;
        }
        // `run`'s kernel misbehaved or the VM ended without a status.
        if cause.is::<super::run::KernelProblem>() || cause.is::<super::run::NoStatus>() {
            return STAGE;
        }
        let class = if let Some(c) = matrix(cause) {
            Some(c)
        } else if let Some(e) = cause.downcast_ref::<crate::pipeline::wrap::WrapError>() {
            Some(wrap(e))
        } else if let Some(e) = cause.downcast_ref::<crate::pipeline::container_run::RunError>() {
            Some(run(e))
        } else if cause.is::<super::wrap::BadSpec>() || cause.is::<super::wrap::EmptyArgs>() {
            Some(USAGE)
        } else if let Some(e) = cause.downcast_ref::<ImageError>() {
            Some(image(e))
        } else if let Some(e) = cause.downcast_ref::<SourceError>() {
            Some(source(e))
        } else if let Some(e) = cause.downcast_ref::<ConfigError>() {
            Some(config(e))
        } else if let Some(e) = cause.downcast_ref::<PatchStageError>() {
            Some(patch_stage(e))
        } else if let Some(e) = cause.downcast_ref::<crate::pipeline::package::PackageStageError>() {
            Some(package(e))
        } else if let Some(e) = cause.downcast_ref::<BuildError>() {
            Some(build(e))
        } else if let Some(e) = cause.downcast_ref::<BootError>() {
            Some(boot(e))
        } else if let Some(e) = cause.downcast_ref::<BenchError>() {
            Some(bench(e))
        } else if let Some(e) = cause.downcast_ref::<crate::kselftest::KselftestError>() {
            Some(kselftest(e))
        } else if cause.is::<crate::profile::ProfileError>() || cause.is::<crate::abom::AbomError>() || cause.is::<crate::patch::PatchError>() {
            Some(USAGE)
        } else if cause.is::<crate::pipeline::make::MakeError>() || cause.is::<crate::kconfig::KconfigError>() {
            Some(STAGE)
        } else {
            None
        };
        if let Some(c) = class {
            return c;
        }
    }
    HOST
}
