//! `lflow nlb import | submit | score`: the Neural Latents Benchmark's files.

use super::CliError;
use clap::{Args, Subcommand, ValueEnum};
use lflow_host::train::Device;
use std::path::PathBuf;

/// The `nlb` subcommands.
#[derive(Subcommand, Debug, Clone)]
pub enum NlbCommand {
    /// Read the tensor files nlb_tools writes into one data set.
    ///
    /// DIR holds train_input.h5, eval_input.h5 and, for the val phase, the eval
    /// target file (eval_target.h5 or nlb_tools' default target_data.h5), as
    /// `nlb_tools.make_tensors` writes them (make_train_input_tensors with
    /// include_behavior and include_forward_pred, make_eval_input_tensors,
    /// make_eval_target_tensors with include_psth).
    ///
    /// Example:
    ///
    ///     lflow nlb import nlb/mc_maze_small --dataset mc_maze_small --bin-ms 20 --out maze_small.safetensors
    ///     lflow train --data maze_small.safetensors --config configs/mc_maze_small.toml --out runs/maze_small
    #[command(verbatim_doc_comment)]
    Import(ImportArgs),
    /// Write a run's rates as an EvalAI submission file (HDF5).
    ///
    /// Rates of every train and eval trial (observed and forward bins) averaged
    /// over the run's noise samples (MODEL.md section 7), in spikes per bin. In
    /// the val phase it also scores the file against the stored targets.
    ///
    /// Example:
    ///
    ///     lflow nlb submit runs/maze_small --out submission.h5
    #[command(verbatim_doc_comment)]
    Submit(SubmitArgs),
    /// Score any submission file against eval targets exactly as nlb_tools does.
    ///
    /// Example:
    ///
    ///     lflow nlb score submission.h5 --target nlb/mc_maze_small/eval_target.h5 --json
    #[command(verbatim_doc_comment)]
    Score(ScoreArgs),
}

/// `--phase`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum PhaseArg {
    /// Eval trials come with targets (eval_target.h5): scored locally.
    Val,
    /// No eval targets: only EvalAI scores the eval trials.
    Test,
}

/// Arguments of `lflow nlb import`.
#[derive(Args, Debug, Clone)]
pub struct ImportArgs {
    /// The folder of the tensor files.
    pub dir: PathBuf,
    /// The benchmark dataset: mc_maze, mc_rtt, area2_bump, dmfc_rsg, mc_maze_large, mc_maze_medium, mc_maze_small.
    #[arg(long)]
    pub dataset: String,
    /// Bin width of the files, 5 or 20 ms.
    #[arg(long)]
    pub bin_ms: u32,
    /// Val (targets known) or test phase.
    #[arg(long, value_enum, default_value_t = PhaseArg::Val)]
    pub phase: PhaseArg,
    /// Every N-th train trial validates (early stopping, learning-rate plateau); 0: none.
    #[arg(long, default_value_t = 10)]
    pub valid_every: usize,
    /// The data set file to write.
    #[arg(long)]
    pub out: PathBuf,
}

/// Arguments of `lflow nlb submit`.
#[derive(Args, Debug, Clone)]
pub struct SubmitArgs {
    /// The run folder (trained on an imported NLB data set).
    pub run: PathBuf,
    /// The imported data set (default: the one the run trained on).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// The submission file to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Noisy passes averaged (default: the run's [eval] samples, 50); 0 = mean mode.
    #[arg(long)]
    pub samples: Option<usize>,
    /// Worker threads (0: one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Where to run the model: cpu, or cuda / cuda:N.
    #[arg(long, default_value_t = Device::Cpu)]
    pub device: Device,
}

/// Arguments of `lflow nlb score`.
#[derive(Args, Debug, Clone)]
pub struct ScoreArgs {
    /// The submission file (ours or any other tool's).
    pub submission: PathBuf,
    /// The eval target file (make_eval_target_tensors).
    #[arg(long)]
    pub target: PathBuf,
    /// Print the metrics as JSON, keyed as nlb_tools returns them.
    #[arg(long)]
    pub json: bool,
}

/// Run an `nlb` subcommand; returns what to print.
pub fn run(c: &NlbCommand) -> Result<String, CliError> {
    imp::run(c)
}

#[cfg(feature = "nlb")]
mod imp {
    use super::*;
    use lflow_host::data::nlb::import::{import, ImportSpec, Phase};
    use lflow_host::data::nlb::layout::score_files;
    use lflow_host::data::nlb::score::format_results;
    use lflow_host::eval::nlb_submit::submit_run;

    pub fn run(c: &NlbCommand) -> Result<String, CliError> {
        match c {
            NlbCommand::Import(a) => {
                let spec = ImportSpec {
                    dir: a.dir.clone(),
                    dataset: a.dataset.clone(),
                    bin_ms: a.bin_ms,
                    phase: match a.phase {
                        PhaseArg::Val => Phase::Val,
                        PhaseArg::Test => Phase::Test,
                    },
                    valid_every: a.valid_every,
                };
                let imported = import(&spec)?;
                lflow_host::data::save(&a.out, &imported.data)?;
                Ok(format!("{}: {imported}", a.out.display()))
            }
            NlbCommand::Submit(a) => Ok(submit_run(&a.run, a.data.as_deref(), &a.out, a.samples, a.device, a.threads)?),
            NlbCommand::Score(a) => {
                let results = score_files(&a.submission, &a.target)?;
                Ok(format_results(&results, a.json))
            }
        }
    }
}

#[cfg(not(feature = "nlb"))]
mod imp {
    use super::*;

    pub fn run(_: &NlbCommand) -> Result<String, CliError> {
        Err(CliError::Usage(
            "this lflow was built without HDF5 support: install libhdf5-dev (Debian/Ubuntu) and rebuild with \
             `cargo build --release -p lflow-host --features nlb`"
                .into(),
        ))
    }
}
