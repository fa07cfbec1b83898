//! `lflow`: make or load data, train LangevinFlow, evaluate, plot, benchmark.

mod cli;

use clap::{Parser, Subcommand};
use cli::{bench, closed_loop, demo, eval, export, generate, nlb, plot, quality, train};
use std::process::ExitCode;

/// LangevinFlow: from binned spike counts to firing rates and behaviour, on a
/// workstation and on a Cortex-M.
///
/// Start with `lflow demo`: it generates a synthetic Lorenz data set, trains
/// the streaming model, evaluates and plots it.
#[derive(Parser)]
#[command(name = "lflow", version, verbatim_doc_comment)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// The firmware's sources for the commands that build it (closed-loop,
    /// demo, bench device): a langevin-bci checkout's firmware/ folder, beside
    /// its core/. Default: $LFLOW_FIRMWARE, else the checkout lflow was built from.
    #[arg(long, global = true, value_name = "DIR")]
    firmware: Option<std::path::PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// The whole job on synthetic data: generate Lorenz, train, evaluate, plot.
    ///
    /// Example (writes demo/lorenz.safetensors, demo/run-streaming/...):
    ///
    ///     lflow demo --out demo
    #[command(verbatim_doc_comment)]
    Demo(demo::DemoArgs),
    /// Make a synthetic data set.
    #[command(subcommand)]
    Generate(GenerateCommand),
    /// Train a model on a data set into a run folder.
    ///
    /// Example:
    ///
    ///     lflow generate lorenz --out lorenz.safetensors
    ///     lflow train --data lorenz.safetensors --config configs/lorenz.toml --out runs/lorenz
    ///     lflow train --data lorenz.safetensors --out runs/lorenz --resume --epochs 300
    ///     lflow train --data lorenz.safetensors --out runs/lorenz-gpu --device cuda:0
    ///
    /// Ctrl-C stops after the current epoch with a resumable checkpoint.
    #[command(verbatim_doc_comment)]
    Train(train::TrainArgs),
    /// Evaluate a run: co-bps, fp-bps, velocity R2, PSTH R2, rate R2 (written to RUN/eval.json).
    ///
    /// Example:
    ///
    ///     lflow eval runs/lorenz
    ///     lflow eval runs/lorenz --samples 0      # mean mode, as a device decodes
    ///     lflow eval runs/lorenz --blob model.lfw # an exported blob's weights
    ///     lflow eval runs/lorenz --stream --blob model.lfw  # no resets, as a BCI decodes
    #[command(verbatim_doc_comment)]
    Eval(eval::EvalArgs),
    /// Neural Latents Benchmark files: import nlb_tools tensors, write EvalAI submissions, score them.
    #[command(subcommand)]
    Nlb(nlb::NlbCommand),
    /// Write a streaming run as an LFW1 blob for the device, with its velocity decoder.
    ///
    /// Fits the velocity (behaviour) decoder from the model's decoder output on the
    /// training trials (a re-anchored model's on the training trials decoded back
    /// to back, as a decoder that is never reset sees them), writes the blob, and
    /// prints what quantisation costs.
    ///
    /// Example:
    ///
    ///     lflow export runs/lorenz --format i8 --out model.lfw
    ///     lflow eval runs/lorenz --blob model.lfw
    #[command(verbatim_doc_comment)]
    Export(export::ExportArgs),
    /// Stream eval trials bin by bin through the firmware under QEMU and compare
    /// every decoded bin with lflow-core on the host, bit for bit.
    ///
    /// Example (builds the firmware with the blob when --qemu is not given):
    ///
    ///     lflow closed-loop --blob model.lfw --data lorenz.safetensors --trials 20 --json
    #[command(verbatim_doc_comment)]
    ClosedLoop(closed_loop::ClosedLoopArgs),
    /// Draw a run's plots into RUN/plots (loss, rates, raster, latents, behaviour).
    ///
    /// Example:
    ///
    ///     lflow plot runs/lorenz
    #[command(verbatim_doc_comment)]
    Plot(plot::PlotArgs),
    /// Measure speed.
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Subcommand)]
enum GenerateCommand {
    /// LFADS-style Lorenz latents driving Poisson neurons, seeded.
    ///
    /// Example (the defaults: 1000 trials, 50+10 bins of 10 ms, 40+10 neurons):
    ///
    ///     lflow generate lorenz --out lorenz.safetensors --seed 1
    #[command(verbatim_doc_comment)]
    Lorenz(generate::LorenzArgs),
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Training throughput: trials per second of forward + backward + Adam.
    ///
    /// Example, the reference configuration at H=64 on 2 threads:
    ///
    ///     lflow bench train --hidden 64 --batch 256 --threads 2 --json
    ///     lflow bench train --hidden 64 --batch 256 --device cuda --json
    #[command(verbatim_doc_comment)]
    Train(bench::TrainBenchArgs),
    /// Instructions per decoded bin on the Cortex-M7 under QEMU (-icount) for
    /// f32, f16 and int8 blobs of the reference MCU configuration, with RAM and flash.
    ///
    /// Example (builds the firmware three times; needs qemu-system-arm):
    ///
    ///     lflow bench device --json
    #[command(verbatim_doc_comment)]
    Device(bench::McuBenchArgs),
    /// Wall time to a good model: train a configuration on one or more data
    /// sets for an epoch or time budget, scoring rate R² (against the true
    /// rates) and co-bps of the eval trials every few epochs in mean mode;
    /// print the training time to rate R² 0.90 and 0.93 and the final metrics
    /// of the best-validation parameters (eval.samples noisy passes, and mean
    /// mode), with mean and spread over the data sets. Scoring is not timed.
    ///
    /// Example, the Lorenz recipe on three sparse data seeds (about 12 Hz):
    ///
    ///     for s in 1 2 3; do lflow generate lorenz --base-hz 7.5 --seed $s --out l$s.safetensors; done
    ///     lflow bench quality --data l1.safetensors l2.safetensors l3.safetensors --json
    ///     lflow bench quality --config configs/lorenz.toml --mode paper --data l1.safetensors
    #[command(verbatim_doc_comment)]
    Quality(quality::QualityBenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(dir) = &cli.firmware {
        // Before any thread starts: every firmware build reads it (`deploy::link::firmware_dir`).
        std::env::set_var(lflow_host::deploy::link::FIRMWARE_ENV, dir);
    }
    let result = match cli.command {
        Command::Demo(a) => demo::demo(&a).map(|s| print!("{s}")),
        Command::Generate(GenerateCommand::Lorenz(a)) => generate::lorenz(&a).map(|s| println!("{s}")),
        Command::Train(a) => train::train(&a).map(|dir| println!("run: {}", dir.path.display())),
        Command::Eval(a) => match &a.blob {
            _ if a.stream => eval::eval_stream(&a).map(|s| print!("{s}")),
            Some(b) => eval::eval_blob(&a, b).map(|s| print!("{s}")),
            None => eval::eval(&a).map(|r| print!("{}", r.table())),
        },
        Command::Nlb(c) => nlb::run(&c).map(|s| println!("{}", s.trim_end())),
        Command::Export(a) => export::export(&a).map(|s| print!("{s}")),
        Command::ClosedLoop(a) => closed_loop::closed_loop(&a).map(|r| {
            if a.json {
                println!("{}", serde_json::to_string(&r).unwrap_or_default());
            } else {
                print!("{}", r.summary());
            }
        }),
        Command::Plot(a) => plot::plot(&a).map(|files| files.iter().for_each(|f| println!("{}", f.display()))),
        Command::Bench(BenchCommand::Train(a)) => bench::train(&a).map(|s| println!("{s}")),
        Command::Bench(BenchCommand::Device(a)) => bench::mcu(&a).map(|s| println!("{s}")),
        Command::Bench(BenchCommand::Quality(a)) => quality::quality(&a).map(|s| print!("{s}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", chain(&e));
            ExitCode::FAILURE
        }
    }
}

/// An error and its sources, one per line (a source whose words the line
/// before already holds is left out).
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut last = text.clone();
    let mut source = e.source();
    while let Some(s) = source {
        let words = s.to_string();
        if !last.contains(&words) {
            text += &format!("\n  because: {words}");
        }
        last = words;
        source = s.source();
    }
    text
}
