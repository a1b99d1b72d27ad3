//! Build-farm plumbing shared by every pipeline stage.
//!
//! * [`fingerprint`]: the identity of a stage's result is a hash of its
//!   inputs (never of timestamps or absolute paths), in the manner of cargo's
//!   fingerprints, so nobody bumps a version number by hand.
//! * [`publish`]: results are assembled in a staging directory beside their
//!   final place and renamed into it, so a crash or an error never leaves a
//!   half-written cache entry that a later run would trust.

pub mod fingerprint;
pub mod publish;

pub use fingerprint::Fingerprint;
pub use fingerprint::sha256_hex;
pub use publish::{publish_dir, write_atomic, write_atomic_with_mode, write_json_atomic, PublishError, Staging};
