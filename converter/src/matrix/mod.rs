//! Regression matrix: kernels x profiles x modes, each cell running the
//! pipeline's stages and recording PASS / FAIL / SKIP per stage.
//!
//! * [`spec`]: the TOML spec and its expansion into [`spec::CellSpec`]s;
//! * [`cell`]: one cell through the pipeline library, its log and record;
//! * [`metadata`]: the record (`cell.json`, tuxmake's groups);
//! * [`schedule`]: cores and memory divided between cells, the local pool;
//! * [`executor`]: the engines (local, Slurm job array) behind one trait;
//! * [`report`]: matrix.json / .md / .html from the records, and regressions
//!   against an older report.

pub mod cell;
pub mod executor;
pub mod metadata;
pub mod report;
pub mod schedule;
pub mod spec;
