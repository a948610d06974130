//! The `vigil` local host as a library, so end-to-end tests drive the same code the binary runs.

pub mod alerts_cmd;
pub mod client;
pub mod console;
pub mod eval;
pub mod host;
pub mod output;
pub mod rules_cmd;
pub mod send;
pub mod serve;
pub mod simulate;
pub mod status_cmd;
pub mod tickets_cmd;
pub mod token;
