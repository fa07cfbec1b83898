//! Evaluation: the benchmark's metrics of predicted rates (co-bps, fp-bps,
//! velocity, PSTH and rate R², [`evaluate`]), a run's best model scored as
//! the benchmark scores it ([`score_run`]), the time-to-quality benchmark
//! ([`quality`]), the plots of a run ([`plots`]) and NLB submissions
//! (`nlb_submit`, with the `nlb` feature).
//!
//! Uses [`crate::train`] (to predict from a run), [`crate::data`] and the
//! foundation; nothing of deployment.

pub mod evaluate;
#[cfg(feature = "nlb")]
pub mod nlb_submit;
pub mod plots;
pub mod quality;
pub mod score_run;
