//! `lflow export`: a streaming run into an `LFW1` blob for `lflow-core`, with
//! its velocity decoder, and the quantisation's cost.

use super::eval::table;
use super::train::{load_best, predictor};
use super::CliError;
use clap::{Args, ValueEnum};
use lflow_core::{Kernel, StorageFormat};
use lflow_host::data::{Dataset, Split};
use lflow_host::deploy::export::{blob, fit_device_velocity, read_blob, velocity_rows, VelocityReadout};
use lflow_host::deploy::stream::decoded_quality;
use lflow_host::eval::evaluate::{evaluate, EvalReport};
use lflow_host::io::write_atomically;
use lflow_host::metrics::r2_uniform;
use lflow_host::train::backend::{Backend, Device};
use lflow_host::train::run::RunDir;
use lflow_host::train::trainer::Trainer;
use lflow_host::Mode;
use std::path::PathBuf;

/// `--format`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum FormatArg {
    /// 4 bytes per weight.
    F32,
    /// 2 bytes per weight.
    F16,
    /// 1 byte per weight plus an f32 scale per row.
    I8,
}

impl From<FormatArg> for StorageFormat {
    fn from(f: FormatArg) -> StorageFormat {
        match f {
            FormatArg::F32 => StorageFormat::F32,
            FormatArg::F16 => StorageFormat::F16,
            FormatArg::I8 => StorageFormat::I8,
        }
    }
}

/// Arguments of `lflow export`.
#[derive(Args, Debug, Clone)]
pub struct ExportArgs {
    /// The run folder of a streaming-mode run.
    pub run: PathBuf,
    /// Weight storage of the blob.
    #[arg(long, value_enum, default_value_t = FormatArg::I8)]
    pub format: FormatArg,
    /// The blob to write.
    #[arg(long, default_value = "model.lfw")]
    pub out: PathBuf,
    /// Fit the velocity decoder and measure on this data set instead of the run's.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Worker threads (0: one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
}

/// Mean-mode metrics of `t` on `data`, with the behaviour R² of `velocity` (the device's decoder).
pub fn device_metrics<B: Backend>(
    t: &mut Trainer<B>,
    data: &Dataset,
    velocity: Option<&VelocityReadout>,
) -> EvalReport {
    let all: Vec<usize> = (0..data.trials()).collect();
    let rates: Vec<f32> = t.predict(data, &all, 0, 0).iter().map(|lr| lr.exp()).collect();
    let mut report = evaluate(data, &rates, 50.0);
    if let (Some(v), Some(beh)) = (velocity, data.behavior.as_deref()) {
        let eval = data.indices(Split::Eval);
        if !eval.is_empty() {
            let (x, y) = velocity_rows(t, data, &eval, beh);
            report.decoder_vel_r2 = Some(r2_uniform(&y, &v.apply(&x), v.n_beh));
        }
    }
    report
}

/// Export; returns the summary to print.
pub fn export(a: &ExportArgs) -> Result<String, CliError> {
    let (dir, record) = RunDir::open(&a.run)?;
    let mut t = load_best(&dir, a.threads, Device::Cpu)?;
    if t.model.mode == Mode::Paper {
        return Err(CliError::Usage(format!(
            "{} was trained in paper mode (attention over the whole trial, previous-bin input); a device decodes causally \
             bin by bin: train with `--mode streaming` and export that run",
            a.run.display()
        )));
    }
    let data = lflow_host::data::load(&record.data_or(&dir.path, a.data.as_deref())?)?;
    let velocity = fit_device_velocity(&mut t, &data).map_err(|e| CliError::Usage(e.to_string()))?;
    let storage: StorageFormat = a.format.into();
    let bytes = blob(&t.model, &t.state.params, storage, velocity.as_ref())
        .map_err(|e| CliError::Usage(format!("cannot write the blob: {e}")))?;
    write_atomically(&a.out, &bytes)?;
    let host = device_metrics(&mut t, &data, velocity.as_ref());
    let device = blob_metrics(&bytes, &data, record.config.train.clone(), a.threads)?;
    quality_table(&a.out, &bytes, storage, velocity.as_ref().map_or(0, |v| v.n_beh), &host, &device, &data)
}

/// The export's summary: the blob's quality against the host's f32 model, and
/// as `lflow-core` decodes it; for int8, with f32 and with int16 activations
/// and what the int16 activations cost.
fn quality_table(
    out: &std::path::Path,
    bytes: &[u8],
    storage: StorageFormat,
    n_beh: usize,
    host: &EvalReport,
    blob: &EvalReport,
    data: &Dataset,
) -> Result<String, CliError> {
    let aligned = lflow_host::deploy::export::aligned(bytes);
    let decode = |kernel| {
        decoded_quality(aligned.bytes(), data, kernel).map_err(|e| CliError::Usage(format!("blob rejected: {e}")))
    };
    let tuned = decode(Kernel::Tuned)?;
    let naive = if storage == StorageFormat::I8 { Some(decode(Kernel::Naive)?) } else { None };
    let f = |v: Option<f64>| v.map_or("-".to_string(), |x| format!("{x:.4}"));
    let d = |a: Option<f64>, b: Option<f64>| a.zip(b).map_or("-".to_string(), |(a, b)| format!("{:+.1e}", a - b));
    let mut s = format!(
        "{}: {} bytes, {storage:?} weights, {n_beh} velocity outputs\n\
         mean mode, eval trials; \"host model\": the host's f32 model with the blob's weights; \"lflow-core\":\n\
         the blob decoded bin by bin as the device decodes it (a reset per trial)\n",
        out.display(),
        bytes.len(),
    );
    // name, host f32, blob in the host model, lflow-core with f32 activations (int8 only), lflow-core
    type Row<'a> = (&'a str, Option<f64>, Option<f64>, Option<f64>, Option<f64>);
    let rows: [Row<'_>; 3] = [
        ("co-bps", host.co_bps, blob.co_bps, naive.and_then(|q| q.co_bps), tuned.co_bps),
        ("fp-bps", host.fp_bps, blob.fp_bps, naive.and_then(|q| q.fp_bps), tuned.fp_bps),
        (
            "behaviour R2 (device)",
            host.decoder_vel_r2,
            blob.decoder_vel_r2,
            naive.and_then(|q| q.behaviour_r2),
            tuned.behaviour_r2,
        ),
    ];
    if naive.is_some() {
        s += &format!(
            "{:<22} {:>10} {:>14} {:>16} {:>18} {:>12}\n",
            "", "host f32", "I8, host model", "lflow-core, f32", "lflow-core, int16", "int16 cost"
        );
        s += &format!("{:<22} {:>10} {:>14} {:>16} {:>18} {:>12}\n", "", "", "", "activations", "activations", "");
        for (name, h, b, n, t) in rows {
            s += &format!("{name:<22} {:>10} {:>14} {:>16} {:>18} {:>12}\n", f(h), f(b), f(n), f(t), d(t, n));
        }
    } else {
        let blob_col = format!("{storage:?}, host model");
        s += &format!("{:<22} {:>10} {:>16} {:>12}\n", "", "host f32", blob_col, "lflow-core");
        for (name, h, b, _, t) in rows {
            s += &format!("{name:<22} {:>10} {:>16} {:>12}\n", f(h), f(b), f(t));
        }
    }
    Ok(s)
}

/// The metrics of a blob's weights (dequantised as `lflow-core` reads them), mean mode.
pub fn blob_metrics(
    bytes: &[u8],
    data: &Dataset,
    train: lflow_host::train::trainer::TrainConfig,
    threads: usize,
) -> Result<EvalReport, CliError> {
    let m = read_blob(bytes).map_err(|e| CliError::Usage(format!("blob rejected: {e}")))?;
    if m.config.n_in != data.n_in || m.config.n_out != data.n_out {
        return Err(CliError::Usage(format!(
            "the blob reads {} held-in and predicts {} neurons; the data set has {} and {}",
            m.config.n_in, m.config.n_out, data.n_in, data.n_out
        )));
    }
    let mut t = predictor(m.config, m.params, train, threads, Device::Cpu)?;
    Ok(device_metrics(&mut t, data, m.velocity.as_ref()))
}

/// `lflow eval RUN --blob FILE`: the blob's metrics as a table.
pub fn eval_blob(
    run: &std::path::Path,
    file: &std::path::Path,
    data: Option<&PathBuf>,
    threads: usize,
) -> Result<String, CliError> {
    let (dir, record) = RunDir::open(run)?;
    let data = lflow_host::data::load(&record.data_or(&dir.path, data.map(|p| p.as_path()))?)?;
    let bytes =
        std::fs::read(file).map_err(|source| lflow_host::train::run::RunError::Io { path: file.into(), source })?;
    let report = blob_metrics(&bytes, &data, record.config.train, threads)?;
    dir.write(&dir.path.join("eval_blob.json"), serde_json::to_string_pretty(&report).unwrap_or_default().as_bytes())?;
    let extra = report
        .decoder_vel_r2
        .map_or(String::new(), |v| format!("behaviour R2 of the blob's velocity decoder: {v:.4}\n"));
    Ok(format!("{} (mean mode)\n{}{extra}", file.display(), table(&report)))
}
