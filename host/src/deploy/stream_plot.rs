//! `plots/stream.png` of `lflow eval --stream`.

use crate::deploy::stream::{Metrics, StreamReport};
use crate::eval::plots::{draw, lines, PlotError, COLORS};
use crate::train::run::RunError;
use plotters::prelude::RGBColor;
use std::path::{Path, PathBuf};

/// `plots/stream.png` of `lflow eval --stream`: per stretch of stream time,
/// how much the decoding without resets beats (above 0) or trails (below 0)
/// the same bins decoded with a reset at each trial start, for co-bps, rate
/// R² and behaviour R², with the -0.02 line of the target. Values beyond the
/// 1st-99th percentile are drawn at that edge.
pub fn stream_plot(r: &StreamReport, out: &Path) -> Result<PathBuf, PlotError> {
    std::fs::create_dir_all(out).map_err(|source| RunError::Io { path: out.into(), source })?;
    let time_s = |start: usize, bins: usize| (start as f64 + bins as f64 / 2.0) * f64::from(r.bin_ms) / 1000.0;
    type Pick = fn(&Metrics) -> Option<f64>;
    let panels: [(&str, Pick); 3] =
        [("co-bps", |m| m.co_bps), ("rate R2", |m| m.rate_r2), ("behaviour R2 (device decoder)", |m| m.behavior_r2)];
    // The first stream only: stretch starts restart at each stream.
    let restart = r.stretches.windows(2).position(|w| w[1].start <= w[0].start).map_or(r.stretches.len(), |i| i + 1);
    let first = &r.stretches[..restart];
    let bins = first.first().map_or(0, |s| s.bins);
    draw(out, "stream.png", (1500, 450), |root| {
        for (area, (name, pick)) in root.split_evenly((1, 3)).iter().zip(panels) {
            let gaps: Vec<(f64, f64)> = first
                .iter()
                .filter_map(|s| Some((time_s(s.start, s.bins), pick(&s.continuous)? - pick(&s.reset)?)))
                .collect();
            let mut sorted: Vec<f64> = gaps.iter().map(|p| p.1).collect();
            sorted.sort_by(f64::total_cmp);
            let q = |f: f64| sorted.get(((sorted.len().max(1) - 1) as f64 * f) as usize).copied().unwrap_or(0.0);
            let (lo, hi) = (q(0.01).min(-0.03), q(0.99).max(0.03));
            let clamped = gaps.iter().map(|&(x, y)| (x, y.clamp(lo, hi))).collect();
            let (x0, x1) = (gaps.first().map_or(0.0, |p| p.0), gaps.last().map_or(1.0, |p| p.0));
            let series = vec![
                ("no reset minus reset".to_string(), COLORS[0], clamped),
                ("target: -0.02".to_string(), COLORS[1], vec![(x0, -0.02), (x1, -0.02)]),
                ("0".to_string(), RGBColor(128, 128, 128), vec![(x0, 0.0), (x1, 0.0)]),
            ];
            lines(area, &format!("{name}, per {bins} bins"), "stream time (s)", &series)?;
        }
        Ok(())
    })
}
