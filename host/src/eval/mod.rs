//! Evaluation: the benchmark's metrics of predicted rates (co-bps, fp-bps,
//! velocity, PSTH and rate R², [`evaluate`]), the time-to-quality benchmark
//! ([`quality`]) and the plots of a run ([`plots`]).
//!
//! Uses [`crate::train`] (to predict from a run), [`crate::data`] and the
//! foundation; nothing of deployment.

pub mod evaluate;
pub mod quality;
