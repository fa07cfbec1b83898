//! A run's weights for the device: `lflow export` (a streaming run as an
//! LFW1 blob with its velocity decoder, and what the quantisation costs),
//! `lflow eval --blob` (a blob's metrics as the device reads its weights) and
//! `lflow eval --stream` (decoding without resets).

use crate::data::{DataError, Dataset, Split};
use crate::deploy::blob::{aligned, blob, read_blob};
use crate::deploy::stream::{decoded_quality, evaluate_streams, fit_velocity_streamed, StreamOptions, StreamReport};
use crate::deploy::stream::{DecodedQuality, StreamError};
use crate::deploy::velocity::{fit_velocity, velocity_rows, VelocityReadout};
use crate::eval::evaluate::{evaluate, EvalReport};
use crate::io::{write_atomically, WriteError};
use crate::metrics::r2_uniform;
use crate::train::backend::{Backend, BackendError};
use crate::train::device::{AnyBackend, Device, OpenError};
use crate::train::predictor::{PredictError, Predictor};
use crate::train::run::{RunDir, RunError};
use lflow_core::{BlobError, Kernel, StorageFormat};
use std::path::{Path, PathBuf};

/// Why a run cannot be exported or its blob evaluated.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The run folder.
    #[error(transparent)]
    Run(#[from] RunError),
    /// The data set.
    #[error(transparent)]
    Data(#[from] DataError),
    /// The run's weights could not predict.
    #[error(transparent)]
    Predict(#[from] PredictError),
    /// A pass failed on the backend.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// A paper-mode run: it cannot decode bin by bin.
    #[error(
        "{} was trained in paper mode (attention over the whole trial, previous-bin input); a device decodes \
         causally bin by bin: train with `--mode streaming` and export that run",
        run.display()
    )]
    PaperMode {
        /// The run folder.
        run: PathBuf,
    },
    /// A run in paper mode asked to decode bin by bin.
    #[error(
        "{} is a paper-mode run (attention over the whole trial): only a streaming run decodes bin by bin",
        run.display()
    )]
    PaperModeStream {
        /// The run folder.
        run: PathBuf,
    },
    /// The blob could not be made from the run's weights.
    #[error("cannot make the run's blob")]
    Write(#[source] lflow_core::blob::WriteError),
    /// A blob was refused (as `lflow-core` refuses it).
    #[error("blob rejected")]
    Blob(#[source] BlobError),
    /// The CPU backend could not start.
    #[error("cannot start the CPU backend")]
    Open(#[source] OpenError),
    /// The blob's neurons are not the data set's.
    #[error(
        "the blob reads {blob_in} held-in and predicts {blob_out} neurons; the data set has {data_in} and {data_out}"
    )]
    Neurons {
        /// Held-in neurons of the blob.
        blob_in: usize,
        /// Neurons of the blob.
        blob_out: usize,
        /// Held-in neurons of the data set.
        data_in: usize,
        /// Neurons of the data set.
        data_out: usize,
    },
    /// Decoding through `lflow-core`.
    #[error(transparent)]
    Stream(#[from] StreamError),
    /// A file could not be written.
    #[error(transparent)]
    File(#[from] WriteError),
}

/// The device's velocity decoder for `p`'s model: fit on the training trials
/// decoded one by one ([`fit_velocity`]), or for a re-anchored model (a
/// decoder that is never reset) on the training trials decoded back to back
/// by `lflow-core` ([`fit_velocity_streamed`]).
pub fn fit_mcu_velocity<B: Backend>(
    p: &mut Predictor<B>,
    data: &Dataset,
) -> Result<Option<VelocityReadout>, ExportError> {
    if p.model.anchor_every == 0 {
        return Ok(fit_velocity(p, data)?);
    }
    let bytes = blob(&p.model, &p.params, StorageFormat::F32, None).map_err(ExportError::Write)?;
    Ok(fit_velocity_streamed(aligned(&bytes).bytes(), data)?)
}

/// Mean-mode metrics of `p` on `data`, with the behaviour R² of `velocity` (the device's decoder).
pub fn mean_mode_metrics<B: Backend>(
    p: &mut Predictor<B>,
    data: &Dataset,
    velocity: Option<&VelocityReadout>,
) -> Result<EvalReport, BackendError> {
    let all: Vec<usize> = (0..data.trials()).collect();
    let rates: Vec<f32> = p.log_rates(data, &all, 0, 0)?.iter().map(|l| l.exp()).collect();
    let mut report = evaluate(data, &rates, 50.0);
    if let (Some(v), Some(beh)) = (velocity, data.behavior.as_deref()) {
        let eval = data.indices(Split::Eval);
        if !eval.is_empty() {
            let (x, y) = velocity_rows(p, data, &eval, beh)?;
            report.decoder_vel_r2 = Some(r2_uniform(&y, &v.apply(&x), v.n_beh));
        }
    }
    Ok(report)
}

/// The metrics of a blob's weights (dequantised as `lflow-core` reads them),
/// mean mode, on the CPU in batches of `batch_size` trials.
pub fn blob_metrics(
    bytes: &[u8],
    data: &Dataset,
    batch_size: usize,
    threads: usize,
) -> Result<EvalReport, ExportError> {
    let m = read_blob(bytes).map_err(ExportError::Blob)?;
    if m.config.n_in != data.n_in || m.config.n_out != data.n_out {
        return Err(ExportError::Neurons {
            blob_in: m.config.n_in,
            blob_out: m.config.n_out,
            data_in: data.n_in,
            data_out: data.n_out,
        });
    }
    let backend = AnyBackend::open(Device::Cpu, threads).map_err(ExportError::Open)?;
    let mut p = Predictor::new(m.config, m.params, backend).with_batch_size(batch_size);
    Ok(mean_mode_metrics(&mut p, data, m.velocity.as_ref())?)
}

/// What `lflow export` made and measured.
#[derive(Clone, Debug)]
pub struct ExportSummary {
    /// The blob file.
    pub out: PathBuf,
    /// Its size, bytes.
    pub bytes: usize,
    /// Weight storage.
    pub storage: StorageFormat,
    /// Outputs of its velocity decoder.
    pub n_beh: usize,
    /// The host's f32 model, mean mode.
    pub host: EvalReport,
    /// The host's model with the blob's weights.
    pub blob: EvalReport,
    /// `lflow-core` with f32 activations (int8 blobs only).
    pub core_f32: Option<DecodedQuality>,
    /// `lflow-core` as the device decodes (a reset per trial).
    pub core: DecodedQuality,
}

/// Export the best weights of the streaming run in `run` as a blob in
/// `storage` to `out`, with the velocity decoder fitted on `data` (the run's
/// own data set when `None`); measure what it costs.
pub fn export_run(
    run: &Path,
    storage: StorageFormat,
    out: &Path,
    data: Option<&Path>,
    threads: usize,
) -> Result<ExportSummary, ExportError> {
    let (dir, record) = RunDir::open(run)?;
    let mut p = Predictor::open_run(&dir, Device::Cpu, threads)?;
    if !p.model.mode.is_streaming() {
        return Err(ExportError::PaperMode { run: run.to_path_buf() });
    }
    let data = crate::data::load(&record.data_or(&dir.path, data)?)?;
    p.check(&data)?;
    let velocity = fit_mcu_velocity(&mut p, &data)?;
    let bytes = blob(&p.model, &p.params, storage, velocity.as_ref()).map_err(ExportError::Write)?;
    write_atomically(out, &bytes)?;
    let host = mean_mode_metrics(&mut p, &data, velocity.as_ref())?;
    let blob = blob_metrics(&bytes, &data, record.config.train.batch_size, threads)?;
    let a = aligned(&bytes);
    let decode = |kernel| decoded_quality(a.bytes(), &data, kernel).map_err(ExportError::Blob);
    let core = decode(Kernel::Tuned)?;
    let core_f32 = if storage == StorageFormat::I8 { Some(decode(Kernel::Naive)?) } else { None };
    let n_beh = velocity.as_ref().map_or(0, |v| v.n_beh);
    Ok(ExportSummary { out: out.to_path_buf(), bytes: bytes.len(), storage, n_beh, host, blob, core_f32, core })
}

impl std::fmt::Display for ExportSummary {
    /// The blob's quality against the host's f32 model, and as `lflow-core`
    /// decodes it; for int8, with f32 and with int16 activations and what the
    /// int16 activations cost.
    fn fmt(&self, out: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (host, blob, naive, tuned) = (&self.host, &self.blob, self.core_f32, self.core);
        let storage = self.storage;
        let f = |v: Option<f64>| v.map_or("-".to_string(), |x| format!("{x:.4}"));
        let d = |a: Option<f64>, b: Option<f64>| a.zip(b).map_or("-".to_string(), |(a, b)| format!("{:+.1e}", a - b));
        write!(
            out,
            "{}: {} bytes, {storage:?} weights, {} velocity outputs\n\
             mean mode, eval trials; \"host model\": the host's f32 model with the blob's weights; \"lflow-core\":\n\
             the blob decoded bin by bin as the device decodes it (a reset per trial)\n",
            self.out.display(),
            self.bytes,
            self.n_beh,
        )?;
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
            writeln!(
                out,
                "{:<22} {:>10} {:>14} {:>16} {:>18} {:>12}",
                "", "host f32", "I8, host model", "lflow-core, f32", "lflow-core, int16", "int16 cost"
            )?;
            writeln!(out, "{:<22} {:>10} {:>14} {:>16} {:>18} {:>12}", "", "", "", "activations", "activations", "")?;
            for (name, h, b, n, t) in rows {
                writeln!(out, "{name:<22} {:>10} {:>14} {:>16} {:>18} {:>12}", f(h), f(b), f(n), f(t), d(t, n))?;
            }
        } else {
            let blob_col = format!("{storage:?}, host model");
            writeln!(out, "{:<22} {:>10} {:>16} {:>12}", "", "host f32", blob_col, "lflow-core")?;
            for (name, h, b, _, t) in rows {
                writeln!(out, "{name:<22} {:>10} {:>16} {:>12}", f(h), f(b), f(t))?;
            }
        }
        Ok(())
    }
}

/// `lflow eval RUN --blob FILE`: the blob's metrics in mean mode on `data`
/// (the run's own when `None`), written to `RUN/eval_blob.json`.
pub fn blob_report(run: &Path, file: &Path, data: Option<&Path>, threads: usize) -> Result<EvalReport, ExportError> {
    let (dir, record) = RunDir::open(run)?;
    let data = crate::data::load(&record.data_or(&dir.path, data)?)?;
    let bytes = std::fs::read(file).map_err(|source| RunError::Io { path: file.into(), source })?;
    let report = blob_metrics(&bytes, &data, record.config.train.batch_size, threads)?;
    dir.write(&dir.path.join("eval_blob.json"), serde_json::to_string_pretty(&report).unwrap_or_default().as_bytes())?;
    Ok(report)
}

/// `lflow eval RUN --stream`: decode the eval trials of `data` (the run's own
/// when `None`) without resets through `lflow-core`, with the blob `file` or
/// the run's best weights in f32; writes `RUN/eval_stream.json`.
pub fn stream_report(
    run: &Path,
    file: Option<&Path>,
    data: Option<&Path>,
    options: &StreamOptions,
    threads: usize,
) -> Result<(RunDir, StreamReport), ExportError> {
    let (dir, record) = RunDir::open(run)?;
    let data = crate::data::load(&record.data_or(&dir.path, data)?)?;
    let bytes = match file {
        Some(file) => std::fs::read(file).map_err(|source| RunError::Io { path: file.to_path_buf(), source })?,
        None => {
            let mut p = Predictor::open_run(&dir, Device::Cpu, threads)?;
            if !p.model.mode.is_streaming() {
                return Err(ExportError::PaperModeStream { run: run.to_path_buf() });
            }
            p.check(&data)?;
            let velocity = fit_mcu_velocity(&mut p, &data)?;
            blob(&p.model, &p.params, StorageFormat::F32, velocity.as_ref()).map_err(ExportError::Write)?
        }
    };
    // The decoder borrows the blob in place: give it 16-byte alignment.
    let report = evaluate_streams(aligned(&bytes).bytes(), &data, options)?;
    dir.write(
        &dir.path.join("eval_stream.json"),
        serde_json::to_string_pretty(&report).unwrap_or_default().as_bytes(),
    )?;
    Ok((dir, report))
}
