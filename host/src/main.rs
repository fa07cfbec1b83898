//! `lflow`: train, evaluate and benchmark LangevinFlow.

use clap::{Parser, Subcommand, ValueEnum};
use lflow_host::bench::{self, TrainBench};
use lflow_host::Mode;
use std::process::ExitCode;

/// LangevinFlow from spike counts to a Cortex-M.
#[derive(Parser)]
#[command(name = "lflow", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Measure speed.
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Clone, Copy, ValueEnum)]
enum ModeArg {
    Paper,
    Streaming,
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Training throughput: trials per second of forward + backward + Adam on
    /// random spikes of the given shape.
    ///
    /// Example, the reference configuration at H=64 on 2 threads:
    ///
    ///     lflow bench train --hidden 64 --batch 256 --threads 2 --json
    #[command(verbatim_doc_comment)]
    Train {
        /// Latent size H (the decoder is 3H wide).
        #[arg(long, default_value_t = 64)]
        hidden: usize,
        /// Trials per batch.
        #[arg(long, default_value_t = 256)]
        batch: usize,
        /// Worker threads (0: one per core).
        #[arg(long, default_value_t = 2)]
        threads: usize,
        /// Paper (full attention) or streaming (causal window) mode.
        #[arg(long, value_enum, default_value_t = ModeArg::Paper)]
        mode: ModeArg,
        /// Observed bins per trial.
        #[arg(long, default_value_t = 50)]
        bins: usize,
        /// Forward (prediction) bins per trial.
        #[arg(long, default_value_t = 10)]
        forward: usize,
        /// Held-in neurons.
        #[arg(long, default_value_t = 40)]
        n_in: usize,
        /// All neurons (held-in + held-out).
        #[arg(long, default_value_t = 50)]
        n_out: usize,
        /// Feed-forward width.
        #[arg(long, default_value_t = 512)]
        ff: usize,
        /// Causal window in bins (streaming mode).
        #[arg(long, default_value_t = 32)]
        window: usize,
        /// Timed batches.
        #[arg(long, default_value_t = 5)]
        batches: usize,
        /// The gemm crate to multiply with.
        #[arg(long, value_enum, default_value_t = GemmArg::Gemm)]
        gemm: GemmArg,
        /// Print one JSON object instead of a sentence.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum GemmArg {
    Gemm,
    Matrixmultiply,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Bench(BenchCommand::Train {
            hidden,
            batch,
            threads,
            mode,
            bins,
            forward,
            n_in,
            n_out,
            ff,
            window,
            batches,
            gemm,
            json,
        }) => {
            lflow_host::gemm::set_impl(match gemm {
                GemmArg::Gemm => lflow_host::gemm::GemmImpl::Gemm,
                GemmArg::Matrixmultiply => lflow_host::gemm::GemmImpl::MatrixMultiply,
            });
            if hidden == 0 || hidden % 4 != 0 {
                eprintln!("error: --hidden {hidden}: the latent size must be a positive multiple of 4");
                return ExitCode::from(2);
            }
            if n_in == 0 || n_out < n_in || batch == 0 || bins == 0 {
                eprintln!("error: need --batch > 0, --bins > 0 and 0 < --n-in <= --n-out");
                return ExitCode::from(2);
            }
            let mode = match mode {
                ModeArg::Paper => Mode::Paper,
                ModeArg::Streaming => Mode::Streaming,
            };
            let spec =
                TrainBench { hidden, batch, threads, mode, observed: bins, forward, n_in, n_out, ff, window, batches };
            match bench::run(&spec) {
                Ok(r) if json => println!("{}", serde_json::to_string(&r).unwrap_or_default()),
                Ok(r) => println!(
                    "{:.0} trials/s ({} threads, H={}, batch {}, {:?}): {:.1} MFLOP/trial, {:.1} GFLOP/s, gemm {:.0}% of thread time",
                    r.trials_per_s,
                    r.threads,
                    r.hidden,
                    r.batch,
                    r.mode,
                    r.flops_per_trial * 1e-6,
                    r.gflops_per_s,
                    100.0 * r.gemm_share
                ),
                Err(e) => {
                    eprintln!("error: cannot start {threads} threads: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
    }
    ExitCode::SUCCESS
}
