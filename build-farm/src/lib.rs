//! Build farm plumbing: fingerprints and atomic cache entries.
