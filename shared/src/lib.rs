//! Vigil's core: the domain model, parsers, detection engine, handlers, ports and their adapters.
//! Every function binary and the local host `vigil` are thin wiring around this crate.

pub mod adapters;
pub mod api;
pub mod auth;
pub mod clock;
pub mod config;
#[cfg(feature = "contract")]
pub mod contract;
pub mod detect;
pub mod error;
pub mod model;
pub mod parse;
pub mod ports;
pub mod schema;
