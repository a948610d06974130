//! Helpers for the end-to-end scenarios.

pub mod moto;
pub mod scenario;
pub mod served;
