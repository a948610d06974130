//! The `vigil` local host as a library, so end-to-end tests drive the same code the binary runs.

pub mod host;
pub mod send;
pub mod serve;
pub mod token;
