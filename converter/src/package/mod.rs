//! Packages for distributions: the files that travel with an image (VMM
//! configurations) and the Debian packages made from it.

pub mod vmm;
