//! `cairn train classify`, `lora`, `tokenizer` and `word2vec`: native training on the CPU.

use std::path::{Path, PathBuf};

use cairn_core::train::schedule::Decay;

use super::args::{DEFAULT_DECODER, DEFAULT_EMBEDDER, renamed, renamed_required};
use crate::cache::resolve_model;
use crate::error::{Error, Result};

/// Arguments of `cairn train`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// What to fine-tune.
    #[command(subcommand)]
    pub what: TrainCmd,
}

/// What `cairn train` fine-tunes.
#[derive(clap::Subcommand, Debug)]
pub enum TrainCmd {
    /// Fine-tune an encoder with a sequence-classification head (single- or
    /// multi-label) into a transformers-layout model directory.
    Classify(Box<ClassifyArgs>),
    /// LoRA supervised fine-tuning of a GGUF decoder (completion-only loss,
    /// packing); writes a PEFT adapter directory.
    Lora(Box<LoraArgs>),
    /// Learn a byte-level BPE or WordPiece tokenizer from text files; writes a
    /// tokenizer.json (the vocabulary `tokenizers`' own trainer learns).
    Tokenizer(Box<super::train_tokenizer::TokenizerArgs>),
    /// Learn word vectors (skip-gram or CBOW with negative sampling, as
    /// gensim) from tokenised text; writes the word2vec text format.
    Word2vec(Box<super::words::Word2VecArgs>),
}

/// A `--schedule` value: cosine, linear or constant.
fn decay_arg(s: &str) -> std::result::Result<Decay, String> {
    s.parse().map_err(|e: cairn_core::Error| e.to_string())
}

/// The model, data and output of a training run (shared by both kinds).
#[derive(clap::Args, Debug)]
pub struct TrainIo {
    /// Base model: name, directory or GGUF path [default: all-minilm-l6-v2
    /// for classify, smollm2-135m-instruct for lora].
    #[arg(short, long)]
    pub model: Option<String>,
    /// Deprecated spelling of --model.
    #[arg(long = "base", hide = true)]
    pub base_deprecated: Option<String>,
    /// Training data (JSONL; see the command's help for the fields).
    #[arg(long)]
    pub data: PathBuf,
    /// Validation data (same format).
    #[arg(long)]
    pub val: Option<PathBuf>,
    /// Output directory.
    #[arg(short, long, value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// Deprecated spelling of --output.
    #[arg(long = "out", hide = true)]
    pub out_deprecated: Option<PathBuf>,
}

impl TrainIo {
    /// The base model path and the output directory.
    fn resolve(&self, default_model: &str, cache: &Path) -> Result<(PathBuf, PathBuf)> {
        let model = renamed(
            self.model.clone(),
            self.base_deprecated.clone(),
            "--base",
            "--model",
        )
        .unwrap_or_else(|| default_model.to_string());
        let out = renamed_required(
            self.output.clone(),
            self.out_deprecated.clone(),
            "--out",
            "--output",
        )?;
        Ok((resolve_model(&model, cache)?, out))
    }
}

/// Options of `cairn train lora` (names as in PEFT's `LoraConfig` and TRL's `SFTConfig`).
/// Data: JSONL with {"messages": [...]} or {"prompt", "completion"}; --val
/// reports the perplexity of its completions before and after.
#[derive(clap::Args, Debug)]
pub struct LoraArgs {
    /// Model, data and output.
    #[command(flatten)]
    pub io: TrainIo,
    /// LoRA rank.
    #[arg(long, default_value_t = 8)]
    pub r: usize,
    /// LoRA alpha (scaling alpha / r).
    #[arg(long, default_value_t = 16.0)]
    pub alpha: f32,
    /// Dropout on the LoRA branch input.
    #[arg(long, default_value_t = 0.05)]
    pub dropout: f32,
    /// Targeted projections.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"
    )]
    pub target_modules: Vec<String>,
    /// rsLoRA scaling (alpha / sqrt(r)).
    #[arg(long)]
    pub use_rslora: bool,
    /// Epochs.
    #[arg(long, default_value_t = 1)]
    pub epochs: usize,
    /// Peak learning rate.
    #[arg(long, default_value_t = 2e-4)]
    pub lr: f64,
    /// Decay after warm-up: cosine, linear or constant.
    #[arg(long, default_value = "cosine", value_parser = decay_arg)]
    pub schedule: Decay,
    /// Share of steps spent warming up.
    #[arg(long, default_value_t = 0.03)]
    pub warmup_ratio: f64,
    /// Sequences per optimizer step.
    #[arg(long, default_value_t = 1)]
    pub grad_accum: usize,
    /// Tokens per (packed) sequence.
    #[arg(long, default_value_t = 256)]
    pub seq_len: usize,
    /// One example per sequence instead of packing.
    #[arg(long)]
    pub no_packing: bool,
    /// Gradient-norm clip (0 = off).
    #[arg(long, default_value_t = 1.0)]
    pub max_grad_norm: f64,
    /// Seed of A's initialisation, shuffles and dropout.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Stop after this many optimizer steps.
    #[arg(long)]
    pub max_steps: Option<u64>,
}

/// Options of `cairn train classify` (names as in transformers' `TrainingArguments`).
/// Data: JSONL with {"text", "label"} (or "labels": [...] with --multi-label);
/// early stopping and the best epoch use the validation macro-F1 (MRR with --listwise).
#[derive(clap::Args, Debug)]
pub struct ClassifyArgs {
    /// Model, data and output.
    #[command(flatten)]
    pub io: TrainIo,
    /// Multi-label: a sigmoid per label and binary cross-entropy.
    #[arg(long)]
    pub multi_label: bool,
    /// Epochs.
    #[arg(long, default_value_t = 3)]
    pub epochs: usize,
    /// Examples per batch (query groups with --listwise).
    #[arg(long, default_value_t = 16)]
    pub batch_size: usize,
    /// Batches per optimizer step.
    #[arg(long, default_value_t = 1)]
    pub grad_accum: usize,
    /// Peak learning rate.
    #[arg(long, default_value_t = 5e-5)]
    pub lr: f64,
    /// Decay after warm-up: linear, cosine or constant.
    #[arg(long, default_value = "linear", value_parser = decay_arg)]
    pub schedule: Decay,
    /// Share of steps spent warming up.
    #[arg(long, default_value_t = 0.1)]
    pub warmup_ratio: f64,
    /// AdamW weight decay (not applied to biases and LayerNorm weights).
    #[arg(long, default_value_t = 0.01)]
    pub weight_decay: f64,
    /// Gradient-norm clip (0 = off).
    #[arg(long, default_value_t = 1.0)]
    pub max_grad_norm: f64,
    /// Dropout on the pooled output.
    #[arg(long, default_value_t = 0.1)]
    pub dropout: f32,
    /// Class weights in the loss: none, balanced, or comma-separated values in label order.
    #[arg(long, default_value = "none")]
    pub class_weights: String,
    /// Stop after this many epochs without a better validation macro-F1 (MRR with --listwise).
    #[arg(long)]
    pub patience: Option<usize>,
    /// Seed of shuffles, dropout and head initialisation.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Longest input in tokens (longer texts are truncated).
    #[arg(long, default_value_t = 128)]
    pub max_length: usize,
    /// Continue from OUTPUT/checkpoint (written after every epoch).
    #[arg(long)]
    pub resume: bool,
    /// Train only the head (BERT's pooler, DistilBERT's pre-classifier, and
    /// the classifier); the encoder stays frozen and runs forward only.
    #[arg(long)]
    pub freeze_encoder: bool,
    /// Listwise cross-encoder training: consecutive examples with the same
    /// `text` (the query) form a group with exactly one relevant `text_pair`
    /// (`"labels": ["relevant"]`) and negatives (`"labels": []`); the loss is
    /// the softmax cross-entropy of the relevant one within its group,
    /// --batch-size counts groups, and validation reports MRR.
    #[arg(long)]
    pub listwise: bool,
}

/// Runs `cairn train`.
pub fn run(a: Args, cache: &Path) -> Result<()> {
    match a.what {
        TrainCmd::Classify(a) => classify(*a, cache),
        TrainCmd::Lora(a) => lora(*a, cache),
        TrainCmd::Tokenizer(a) => super::train_tokenizer::run(*a),
        TrainCmd::Word2vec(a) => super::words::train(*a),
    }
}

fn class_weights(spec: &str) -> Result<crate::train::ClassWeights> {
    Ok(match spec {
        "none" => crate::train::ClassWeights::None,
        "balanced" => crate::train::ClassWeights::Balanced,
        list => crate::train::ClassWeights::Given(
            list.split(',')
                .map(|v| {
                    v.trim().parse::<f32>().map_err(|_| {
                        Error::Usage(format!(
                            "--class-weights: '{v}' is not a number (none, balanced, or comma-separated weights)"
                        ))
                    })
                })
                .collect::<Result<_>>()?,
        ),
    })
}

fn classify(a: ClassifyArgs, cache: &Path) -> Result<()> {
    let (base, out) = a.io.resolve(DEFAULT_EMBEDDER, cache)?;
    let opts = crate::train::TrainClassifyOptions {
        base,
        data: a.io.data.clone(),
        val: a.io.val.clone(),
        out: out.clone(),
        multi_label: a.multi_label || a.listwise,
        listwise: a.listwise,
        class_weights: class_weights(&a.class_weights)?,
        max_length: a.max_length,
        resume: a.resume,
        train: cairn_core::train::classify::TrainConfig {
            epochs: a.epochs,
            batch_size: a.batch_size,
            grad_accum: a.grad_accum,
            lr: a.lr,
            decay: a.schedule,
            warmup_ratio: a.warmup_ratio,
            adamw: cairn_core::train::optim::AdamWConfig {
                weight_decay: a.weight_decay,
                ..Default::default()
            },
            max_grad_norm: a.max_grad_norm,
            dropout: a.dropout,
            class_weights: None,
            patience: a.patience,
            seed: a.seed,
            freeze_encoder: a.freeze_encoder,
        },
    };
    let s = crate::train::train_classifier(&opts)?;
    if let Some(mrr) = s.val_mrr {
        println!("validation MRR of the relevant candidate: {mrr:.4}");
    }
    if let Some(r) = &s.val_report {
        println!(
            "validation ({}):\n{r}",
            a.io.val
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        );
    }
    println!(
        "trained {} parameters for {} epochs in {:.1} s ({:.1} examples/s); model in {}",
        s.parameters,
        s.epochs.len(),
        s.seconds,
        s.examples_per_second,
        out.display()
    );
    Ok(())
}

fn lora(a: LoraArgs, cache: &Path) -> Result<()> {
    let (base, out) = a.io.resolve(DEFAULT_DECODER, cache)?;
    for m in &a.target_modules {
        if cairn_core::lora::module_index(m).is_none() {
            return Err(Error::Usage(format!(
                "--target-modules: '{m}' is not one of {:?}",
                cairn_core::lora::MODULES
            )));
        }
    }
    let opts = crate::lora::TrainLoraOptions {
        base,
        data: a.io.data.clone(),
        val: a.io.val.clone(),
        out: out.clone(),
        lora: cairn_core::lora::LoraConfig {
            r: a.r,
            alpha: a.alpha,
            dropout: a.dropout,
            target_modules: a.target_modules.clone(),
            use_rslora: a.use_rslora,
            base_model: None,
        },
        packing: !a.no_packing,
        sft: cairn_core::train::sft::SftConfig {
            epochs: a.epochs,
            lr: a.lr,
            decay: a.schedule,
            warmup_ratio: a.warmup_ratio,
            max_grad_norm: a.max_grad_norm,
            grad_accum: a.grad_accum,
            seq_len: a.seq_len,
            seed: a.seed,
            max_steps: a.max_steps,
            ..Default::default()
        },
    };
    let s = crate::lora::train_lora(&opts)?;
    if let Some((b, after)) = s.val_perplexity {
        println!("validation perplexity of the completions: {b:.3} → {after:.3}");
    }
    println!(
        "{} epochs, {:.2} s/step, {:.1} target tokens/s; adapter in {}",
        s.epochs.len(),
        s.seconds_per_step,
        s.tokens_per_second,
        out.display()
    );
    Ok(())
}
