//! Build-farm plumbing shared by every pipeline stage.
//!
//! * [`fingerprint`]: the identity of a stage's result is a hash of its
//!   inputs (never of timestamps or absolute paths), in the manner of cargo's
//!   fingerprints, so nobody bumps a version number by hand.
//! * [`layout`]: the cache's directory names, owned by one type.
//! * [`entry`]: lookup, per-key lock and publication of one cache entry,
//!   the same for every cached stage.
//! * [`publish`]: results are assembled in a staging directory beside their
//!   final place and renamed into it, so a crash or an error never leaves a
//!   half-written cache entry that a later run would trust.

pub mod entry;
pub mod fingerprint;
pub mod io;
pub mod layout;
pub mod publish;

pub use entry::{get_or_create, Entry, EntryError, EntryLock, Outcome};
pub use fingerprint::Fingerprint;
pub use io::{at, PathError};
pub use layout::{Layout, Stage};
pub use fingerprint::sha256_hex;
pub use publish::{publish_dir, write_atomic, write_atomic_with_mode, write_json_atomic, PublishError, Staging};
