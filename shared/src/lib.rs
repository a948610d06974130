//! Vigil's core: the domain model, parsers, detection engine, handlers, ports and their adapters.
//! Every function binary and the local host `vigil` are thin wiring around this crate.

pub mod access_log;
pub mod adapters;
pub mod aggregates;
pub mod alert;
pub mod analytics;
pub mod api;
pub mod auth;
pub mod clock;
pub mod config;
#[cfg(feature = "contract")]
pub mod contract;
pub mod detect;
pub mod error;
pub mod hec;
pub mod ingest;
#[cfg(feature = "lambda")]
pub mod lambda;
pub mod messages;
pub mod metrics;
pub mod model;
pub mod notify;
pub mod pack;
pub mod parse;
pub mod ports;
pub mod schema;
pub mod score;
pub mod stats;
pub mod telemetry;
pub mod ticket_flow;
pub mod tickets;
