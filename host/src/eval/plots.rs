//! PNGs of a run (plotters): the loss curves, inferred against true rates,
//! a spike raster, the latents' first principal components and the decoded
//! behaviour. Every file is drawn beside its place and renamed into it.

use crate::data::{DataError, Dataset, Split};
use crate::metrics::ridge_cv;
use crate::train::backend::BackendError;
use crate::train::device::Device;
use crate::train::predictor::{PredictError, Predictor};
use crate::train::run::{RunDir, RunError};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};

/// Why the plots of a run cannot be drawn.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// A plot could not be drawn or written.
    #[error("{}: cannot draw the plot: {reason}", path.display())]
    Draw {
        /// The PNG.
        path: PathBuf,
        /// What the drawing library said.
        reason: String,
    },
    /// The run folder or its plots folder.
    #[error(transparent)]
    Run(#[from] RunError),
    /// The data set.
    #[error(transparent)]
    Data(#[from] DataError),
    /// The run's weights.
    #[error(transparent)]
    Predict(#[from] PredictError),
    /// A pass failed on the backend.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// A drawing area of a bitmap.
pub type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

/// A named, coloured line.
pub type Series = (String, RGBColor, Vec<(f64, f64)>);

/// Draw into `name` under `dir` through a temporary file, then rename (no half-written PNG).
pub fn draw(
    dir: &Path,
    name: &str,
    size: (u32, u32),
    f: impl FnOnce(&Area<'_>) -> Result<(), String>,
) -> Result<PathBuf, PlotError> {
    let path = dir.join(name);
    let tmp = dir.join(format!(".partial-{name}"));
    let err = |reason: String| PlotError::Draw { path: path.clone(), reason };
    {
        let root = BitMapBackend::new(&tmp, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
        f(&root).map_err(err)?;
        root.present().map_err(|e| err(e.to_string()))?;
    }
    std::fs::rename(&tmp, &path).map_err(|e| err(e.to_string()))?;
    Ok(path)
}

fn range(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    if !lo.is_finite() || !hi.is_finite() {
        return 0.0..1.0;
    }
    let pad = ((hi - lo) * 0.05).max(1e-6);
    (lo - pad)..(hi + pad)
}

/// Line series `(name, color, points)` in one panel, with a legend.
pub fn lines(area: &Area<'_>, title: &str, xlabel: &str, series: &[Series]) -> Result<(), String> {
    let xs = range(series.iter().flat_map(|s| s.2.iter().map(|p| p.0)));
    let ys = range(series.iter().flat_map(|s| s.2.iter().map(|p| p.1)));
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18))
        .margin(8)
        .x_label_area_size(30)
        .y_label_area_size(50)
        .build_cartesian_2d(xs, ys)
        .map_err(|e| e.to_string())?;
    chart.configure_mesh().x_desc(xlabel).draw().map_err(|e| e.to_string())?;
    for (name, color, points) in series {
        let color = *color;
        chart
            .draw_series(LineSeries::new(points.iter().copied(), color.stroke_width(2)))
            .map_err(|e| e.to_string())?
            .label(name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// Top two principal components of rows `[n, dim]`: the projected rows `[n, 2]`.
fn pca2(x: &[f32], dim: usize) -> Vec<(f64, f64)> {
    let n = x.len() / dim.max(1);
    let mean: Vec<f64> =
        (0..dim).map(|j| (0..n).map(|r| x[r * dim + j] as f64).sum::<f64>() / n.max(1) as f64).collect();
    let mut cov = vec![0.0f64; dim * dim];
    for r in 0..n {
        for i in 0..dim {
            let a = x[r * dim + i] as f64 - mean[i];
            for j in 0..dim {
                cov[i * dim + j] += a * (x[r * dim + j] as f64 - mean[j]);
            }
        }
    }
    let mut comps: Vec<Vec<f64>> = Vec::new();
    for c in 0..2 {
        let mut v: Vec<f64> = (0..dim).map(|i| 1.0 + ((i * 7 + c * 3) % 5) as f64).collect();
        for _ in 0..200 {
            let mut w: Vec<f64> = (0..dim).map(|i| (0..dim).map(|j| cov[i * dim + j] * v[j]).sum()).collect();
            for p in &comps {
                let d: f64 = w.iter().zip(p).map(|(a, b)| a * b).sum();
                w.iter_mut().zip(p).for_each(|(a, b)| *a -= d * b);
            }
            let norm = w.iter().map(|a| a * a).sum::<f64>().sqrt().max(1e-30);
            v = w.iter().map(|a| a / norm).collect();
        }
        comps.push(v);
    }
    (0..n)
        .map(|r| {
            let p = |c: &Vec<f64>| (0..dim).map(|j| (x[r * dim + j] as f64 - mean[j]) * c[j]).sum::<f64>();
            (p(&comps[0]), p(&comps[1]))
        })
        .collect()
}

/// The series' colours, in order.
pub const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// Draw every plot of the run in `run` into `RUN/plots/` on `data` (the
/// run's own data set when `None`), mean mode on the CPU; returns the files written.
pub fn plot_run(run: &Path, data: Option<&Path>, threads: usize) -> Result<Vec<PathBuf>, PlotError> {
    let (dir, record) = RunDir::open(run)?;
    let data = crate::data::load(&record.data_or(&dir.path, data)?)?;
    let out = dir.plots();
    std::fs::create_dir_all(&out).map_err(|source| RunError::Io { path: out.clone(), source })?;
    let mut written = Vec::new();
    written.push(loss_plot(&dir, &out)?);
    let mut p = Predictor::open_run(&dir, Device::Cpu, threads)?;
    let rates = p.rates(&data, 0)?;
    let eval = data.indices(Split::Eval);
    let first = *eval.first().unwrap_or(&0);
    written.push(rates_plot(&data, &rates, first, &out)?);
    written.push(raster_plot(&data, &rates, first, &out)?);
    let shown: Vec<usize> = eval.iter().copied().take(8).collect();
    let latents = p.latents(&data, &shown)?;
    written.push(latent_plot(&latents, p.model.hidden, data.bins(), &out)?);
    if data.behavior.is_some() {
        written.push(behavior_plot(&data, &rates, &out)?);
    }
    Ok(written)
}

fn loss_plot(dir: &RunDir, out: &Path) -> Result<PathBuf, PlotError> {
    let text = std::fs::read_to_string(dir.metrics()).unwrap_or_default();
    let mut train = Vec::new();
    let mut valid = Vec::new();
    let mut co_bps = Vec::new();
    for line in text.lines().skip(1) {
        let f: Vec<f64> = line.split(',').map(|x| x.parse().unwrap_or(f64::NAN)).collect();
        if f.len() >= 5 {
            train.push((f[0], f[2]));
            if f[3].is_finite() {
                valid.push((f[0], f[3]));
            }
            if f[4].is_finite() {
                co_bps.push((f[0], f[4]));
            }
        }
    }
    draw(out, "loss.png", (1100, 450), |root| {
        let (left, right) = root.split_horizontally(550);
        let series = vec![
            ("training Poisson NLL".to_string(), COLORS[0], train),
            ("validation Poisson NLL (mean mode)".to_string(), COLORS[1], valid),
        ];
        lines(&left, "Loss per element", "epoch", &series)?;
        lines(&right, "Validation co-bps (mean mode)", "epoch", &[("co-bps".to_string(), COLORS[2], co_bps)])
    })
}

fn rates_plot(d: &Dataset, rates: &[f32], trial: usize, out: &Path) -> Result<PathBuf, PlotError> {
    let (tt, n) = (d.bins(), d.n_out);
    let neurons: Vec<usize> = [0, 1, d.n_in, d.n_in + 1].into_iter().filter(|&j| j < n).collect();
    draw(out, "rates.png", (1000, 700), |root| {
        for (area, &j) in root.split_evenly((2, 2)).iter().zip(&neurons) {
            let at = |v: &[f32], t: usize| v[(trial * tt + t) * n + j] as f64;
            let mut series =
                vec![("inferred".to_string(), COLORS[0], (0..tt).map(|t| (t as f64, at(rates, t))).collect())];
            if let Some(truth) = &d.true_rates {
                series.push(("true".to_string(), COLORS[3], (0..tt).map(|t| (t as f64, at(truth, t))).collect()));
            }
            let kind = if j < d.n_in { "held-in" } else { "held-out" };
            lines(area, &format!("neuron {j} ({kind}), trial {trial}: spikes/bin"), "bin", &series)?;
        }
        Ok(())
    })
}

fn raster_plot(d: &Dataset, rates: &[f32], trial: usize, out: &Path) -> Result<PathBuf, PlotError> {
    let (tt, n) = (d.bins(), d.n_out);
    let spikes = d.trial_spikes(trial);
    let max_rate = rates[trial * tt * n..(trial + 1) * tt * n].iter().fold(1e-6f32, |m, r| m.max(*r));
    draw(out, "raster.png", (1100, 500), |root| {
        let (left, right) = root.split_horizontally(550);
        for (area, title, heat) in [(&left, "spikes", false), (&right, "inferred rates", true)] {
            let mut chart = ChartBuilder::on(area)
                .caption(format!("trial {trial}: {title}"), ("sans-serif", 18))
                .margin(8)
                .x_label_area_size(30)
                .y_label_area_size(40)
                .build_cartesian_2d(0f64..tt as f64, 0f64..n as f64)
                .map_err(|e| e.to_string())?;
            chart.configure_mesh().x_desc("bin").y_desc("neuron").draw().map_err(|e| e.to_string())?;
            if heat {
                chart
                    .draw_series((0..tt).flat_map(|t| (0..n).map(move |j| (t, j))).map(|(t, j)| {
                        let v = rates[(trial * tt + t) * n + j] / max_rate;
                        let c = RGBColor(255, (255.0 * (1.0 - v)) as u8, (255.0 * (1.0 - v)) as u8);
                        Rectangle::new([(t as f64, j as f64), (t as f64 + 1.0, j as f64 + 1.0)], c.filled())
                    }))
                    .map_err(|e| e.to_string())?;
            } else {
                chart
                    .draw_series(
                        (0..tt)
                            .flat_map(|t| (0..n).map(move |j| (t, j)))
                            .filter(|&(t, j)| spikes[t * n + j] > 0.0)
                            .map(|(t, j)| Circle::new((t as f64 + 0.5, j as f64 + 0.5), 2, BLACK.filled())),
                    )
                    .map_err(|e| e.to_string())?;
            }
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(0.0, d.n_in as f64), (tt as f64, d.n_in as f64)],
                    COLORS[0].stroke_width(1),
                )))
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    })
}

fn latent_plot(latents: &[f32], h: usize, bins: usize, out: &Path) -> Result<PathBuf, PlotError> {
    let d = 3 * h;
    let rows = latents.len() / d;
    let take = |offset: usize| -> Vec<f32> {
        (0..rows).flat_map(|r| latents[r * d + offset..r * d + offset + h].to_vec()).collect()
    };
    let (z, hh) = (pca2(&take(0), h), pca2(&take(2 * h), h));
    draw(out, "latents.png", (1100, 500), |root| {
        let (left, right) = root.split_horizontally(550);
        for (area, name, pts) in [(&left, "z (Langevin position)", &z), (&right, "h (GRU encoder)", &hh)] {
            let series: Vec<Series> = pts
                .chunks(bins.max(1))
                .enumerate()
                .map(|(i, c)| (format!("trial {i}"), COLORS[i % COLORS.len()], c.to_vec()))
                .collect();
            let xs = range(pts.iter().map(|p| p.0));
            let ys = range(pts.iter().map(|p| p.1));
            let mut chart = ChartBuilder::on(area)
                .caption(format!("{name}: first two principal components"), ("sans-serif", 16))
                .margin(8)
                .x_label_area_size(30)
                .y_label_area_size(50)
                .build_cartesian_2d(xs, ys)
                .map_err(|e| e.to_string())?;
            chart.configure_mesh().x_desc("PC 1").y_desc("PC 2").draw().map_err(|e| e.to_string())?;
            for (_, color, p) in &series {
                chart
                    .draw_series(LineSeries::new(p.iter().copied(), color.stroke_width(1)))
                    .map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    })
}

fn behavior_plot(d: &Dataset, rates: &[f32], out: &Path) -> Result<PathBuf, PlotError> {
    let (t_obs, tt, n, k) = (d.observed, d.bins(), d.n_out, d.n_beh);
    let beh = d.behavior.as_deref().unwrap_or(&[]);
    let rows = |trials: &[usize]| -> (Vec<f64>, Vec<f64>) {
        let x = trials
            .iter()
            .flat_map(|&i| (0..t_obs).flat_map(move |t| (0..n).map(move |j| rates[(i * tt + t) * n + j] as f64)))
            .collect();
        let y =
            trials.iter().flat_map(|&i| beh[i * t_obs * k..(i + 1) * t_obs * k].iter().map(|v| *v as f64)).collect();
        (x, y)
    };
    let (xt, yt) = rows(&d.indices(Split::Train));
    let (model, _) = ridge_cv(&xt, &yt, n, k);
    let shown: Vec<usize> = d.indices(Split::Eval).into_iter().take(3).collect();
    let (xe, ye) = rows(&shown);
    let pred = model.predict(&xe);
    draw(out, "behavior.png", (1000, 350 * k.min(3) as u32), |root| {
        for (dim, area) in root.split_evenly((k.min(3), 1)).iter().enumerate() {
            let line = |v: &[f64]| (0..v.len() / k).map(|r| (r as f64, v[r * k + dim])).collect::<Vec<_>>();
            let series = vec![
                ("true".to_string(), COLORS[3], line(&ye)),
                ("decoded from rates".to_string(), COLORS[0], line(&pred)),
            ];
            lines(
                area,
                &format!("behaviour dimension {dim}, {} eval trials back to back", shown.len()),
                "bin",
                &series,
            )?;
        }
        Ok(())
    })
}
