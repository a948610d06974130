//! The `vigil` local host as a library, so end-to-end tests drive the same code the binary runs.

pub mod eval;
pub mod host;
pub mod rules_cmd;
pub mod send;
pub mod serve;
pub mod simulate;
pub mod token;
