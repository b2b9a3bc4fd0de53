//! Argument groups shared by several commands, defined once: the compute
//! backend, decoding options, retrieval options, and the handling of old
//! flag spellings kept for one release.

use std::path::PathBuf;

use cairn_core::backend::cpu::CpuBackend;
use cairn_core::backend::gpu;
use cairn_core::generate::GenerationConfig;
use cairn_core::rag::Method;
use clap::ValueEnum;

use crate::error::{Error, Result};

pub use crate::rag::DEFAULT_EMBEDDER;
/// The bundled decoder (generation, chat, answers, LoRA base).
pub const DEFAULT_DECODER: &str = "smollm2-135m-instruct";

/// Which compute backend runs the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BackendChoice {
    /// The CPU backend (candle-core and cairn's quantized kernels).
    Cpu,
    /// The GPU backend (wgpu: Vulkan, Metal, DX12); an error when no adapter works.
    Gpu,
    /// A hardware GPU when wgpu finds one, else the CPU (the reason is logged).
    Auto,
}

/// `--backend`, on every command that runs a model.
#[derive(clap::Args, Clone, Debug)]
pub struct BackendArgs {
    /// Compute backend: cpu, gpu (wgpu; an error when no adapter works) or
    /// auto (a hardware GPU when there is one, else the CPU, saying why).
    #[arg(long, value_enum, default_value = "cpu")]
    pub backend: BackendChoice,
    /// GPU: keep weight matrices in f16 where the adapter has shader-f16
    /// (half the memory; arithmetic stays f32); `false` keeps them f32.
    #[arg(long, env = "CAIRN_GPU_F16", value_name = "BOOL", default_value = "true",
          value_parser = clap::builder::BoolishValueParser::new())]
    pub gpu_f16: bool,
    /// GPU: the largest storage buffer to bind, in bytes (default: the
    /// adapter's limit); larger weight matrices are split into row ranges.
    /// 134217728 loads a model as a phone's WebGPU would.
    #[arg(long, env = "CAIRN_GPU_MAX_BINDING", value_name = "BYTES")]
    pub gpu_max_binding: Option<u64>,
}

/// A backend chosen by `--backend`.
#[derive(Clone)]
pub enum Picked {
    /// The CPU backend.
    Cpu(CpuBackend),
    /// The GPU backend.
    Gpu(gpu::GpuBackend),
}

/// Runs `$body` with `$b` bound to the picked backend, whichever it is
/// (the model code is generic over the backend, so the body is compiled
/// once per backend).
#[macro_export]
macro_rules! on_backend {
    ($picked:expr, $b:ident => $body:expr) => {
        match $picked {
            $crate::cli::args::Picked::Cpu($b) => $body,
            $crate::cli::args::Picked::Gpu($b) => $body,
        }
    };
}

impl BackendArgs {
    /// The backend: `cpu`; `gpu` (an error naming what failed when no
    /// adapter works); or `auto`: the GPU when wgpu finds a hardware adapter,
    /// otherwise the CPU, with the reason logged (a software adapter such as
    /// lavapipe is slower than the CPU backend, so `auto` does not pick it).
    pub fn pick(&self) -> Result<Picked> {
        let options = gpu::GpuOptions {
            f16_weights: self.gpu_f16,
            max_binding: self.gpu_max_binding.unwrap_or(u64::MAX),
        };
        match self.backend {
            BackendChoice::Cpu => Ok(Picked::Cpu(CpuBackend::new())),
            BackendChoice::Gpu => {
                let g = pollster::block_on(gpu::GpuBackend::new_with(options))?;
                tracing::info!(adapter = %g.adapter(), "GPU backend");
                Ok(Picked::Gpu(g))
            }
            BackendChoice::Auto => match pollster::block_on(gpu::GpuBackend::new_with(options)) {
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
        }
    }
}

/// The value of a flag that has a new spelling and an old one kept for one
/// release: the new one wins; the old one works with a deprecation warning.
pub fn renamed<T>(new: Option<T>, old: Option<T>, old_flag: &str, new_flag: &str) -> Option<T> {
    match (new, old) {
        (Some(v), _) => Some(v),
        (None, Some(v)) => {
            tracing::warn!(
                "{old_flag} is deprecated and will be removed in the next release; use {new_flag}"
            );
            Some(v)
        }
        (None, None) => None,
    }
}

/// Like [`renamed`] for a value the command needs: missing both spellings is
/// a usage error naming the new one.
pub fn renamed_required<T>(
    new: Option<T>,
    old: Option<T>,
    old_flag: &str,
    new_flag: &str,
) -> Result<T> {
    renamed(new, old, old_flag, new_flag)
        .ok_or_else(|| Error::Usage(format!("the argument {new_flag} is required")))
}

/// Decoding options (names as in transformers' `generate`; `--temperature 0`
/// means greedy, as in llama.cpp and the OpenAI API).
#[derive(clap::Args, Clone, Debug)]
pub struct DecodingArgs {
    /// Most tokens to generate.
    #[arg(long, default_value_t = 256)]
    pub max_new_tokens: usize,
    /// Sample instead of greedy decoding (temperature/top-k/top-p apply only then).
    #[arg(long)]
    pub sample: bool,
    /// Sampling temperature (> 0; 0 means greedy decoding).
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    pub temperature: f32,
    /// Keep the k most likely tokens (0 = off).
    #[arg(long, default_value_t = 50)]
    pub top_k: usize,
    /// Nucleus sampling mass in (0, 1].
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    pub top_p: f32,
    /// Repetition penalty (> 1 discourages repeats; 1 = off).
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    pub repetition_penalty: f32,
    /// Forbid repeating n-grams of this size (0 = off).
    #[arg(long, default_value_t = 0)]
    pub no_repeat_ngram_size: usize,
    /// Beam search width (1 = off).
    #[arg(long, default_value_t = 1)]
    pub num_beams: usize,
    /// Beam length penalty exponent.
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    pub length_penalty: f32,
    /// Stop beam search once num_beams hypotheses have finished.
    #[arg(long)]
    pub early_stopping: bool,
    /// Stop when this text appears (repeatable).
    #[arg(long)]
    pub stop: Vec<String>,
    /// Sampling seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Stop when the output starts repeating one unit of tokens back to back
    /// (a degenerate loop; always on for `ask`).
    #[arg(long)]
    pub stop_on_loop: bool,
}

impl DecodingArgs {
    /// The generation config these flags describe, validated.
    pub fn config(&self) -> Result<GenerationConfig> {
        let greedy_by_temperature = self.temperature == 0.0;
        if !self.sample && !greedy_by_temperature && (self.temperature != 1.0 || self.top_p != 1.0)
        {
            tracing::warn!(
                "--temperature/--top-p only apply with --sample; decoding greedily (--temperature 0 says so without this warning)"
            );
        }
        let config = GenerationConfig {
            max_new_tokens: self.max_new_tokens,
            do_sample: self.sample && !greedy_by_temperature,
            // Unused when greedy; 1.0 keeps the config valid.
            temperature: if greedy_by_temperature {
                1.0
            } else {
                self.temperature
            },
            top_k: self.top_k,
            top_p: self.top_p,
            repetition_penalty: self.repetition_penalty,
            no_repeat_ngram_size: self.no_repeat_ngram_size,
            frequency_penalty: 0.0,
            presence_penalty: 0.0,
            num_beams: self.num_beams,
            length_penalty: self.length_penalty,
            early_stopping: self.early_stopping,
            stop: self.stop.clone(),
            eos_token_ids: Vec::new(),
            ignore_eos: false,
            seed: self.seed,
            stop_on_loop: self.stop_on_loop,
        };
        config.validate()?;
        Ok(config)
    }
}

/// Retrieval method of the RAG index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum MethodArg {
    /// BM25 and dense top candidates fused by reciprocal rank.
    Hybrid,
    /// BM25 over the chunks' words.
    Bm25,
    /// Cosine between the question's and the chunks' embeddings.
    Dense,
}

impl From<MethodArg> for Method {
    fn from(m: MethodArg) -> Method {
        match m {
            MethodArg::Hybrid => Method::Hybrid,
            MethodArg::Bm25 => Method::Bm25,
            MethodArg::Dense => Method::Dense,
        }
    }
}

/// The RAG index file and the embedder it was built with (`index`, `ask`,
/// `eval retrieval`).
#[derive(clap::Args, Clone, Debug)]
pub struct IndexArgs {
    /// RAG index file, `.cidx` (default: <cache>/index/rag.cidx).
    #[arg(long, value_name = "FILE")]
    pub index: Option<PathBuf>,
    /// Embedder of the index (name or directory; must be the one it was built with).
    #[arg(long, default_value = DEFAULT_EMBEDDER)]
    pub embedder: String,
}

impl IndexArgs {
    /// The index file: `--index`, else the default under the cache.
    pub fn path(&self, cache: &std::path::Path) -> PathBuf {
        self.index
            .clone()
            .unwrap_or_else(|| crate::rag::default_index_path(cache))
    }
}

/// Retrieval options of `ask`.
#[derive(clap::Args, Clone, Debug)]
pub struct RetrieveArgs {
    /// The RAG index and its embedder.
    #[command(flatten)]
    pub index: IndexArgs,
    /// Search only these collections (repeatable; default all).
    #[arg(long)]
    pub collection: Vec<String>,
    /// Retrieval method.
    #[arg(long, value_enum, default_value = "hybrid")]
    pub method: MethodArg,
    /// Candidates per retriever before fusion.
    #[arg(long, default_value_t = 20)]
    pub candidates: usize,
    /// Passages given to the model.
    #[arg(long, default_value_t = 5)]
    pub k: usize,
    /// Diversify with MMR at this λ (0..1; off by default).
    #[arg(long)]
    pub mmr: Option<f32>,
    /// A classifier directory whose labels are collection names (`cairn
    /// train classify`): the question is searched only in the collections
    /// the router picks (ignored when --collection is given).
    #[arg(long)]
    pub router: Option<PathBuf>,
    /// The router picks the fewest collections whose probabilities sum to
    /// this (most probable first); when that takes every label, every
    /// collection is searched.
    #[arg(long, default_value_t = 0.9)]
    pub router_threshold: f32,
    /// A cross-encoder directory (one-label pair classifier from `cairn
    /// train classify`): the `--candidates` fused hits are reranked by it
    /// and the best `--k` kept.
    #[arg(long)]
    pub reranker: Option<PathBuf>,
    /// With --reranker: fuse the first stage's ranking and the reranker's
    /// (reciprocal rank fusion, c = 60) instead of trusting the reranker alone.
    #[arg(long)]
    pub rerank_fusion: bool,
}

impl RetrieveArgs {
    /// The search these flags describe (collections, method, sizes, MMR).
    pub fn search_options(&self) -> cairn_core::rag::SearchOptions {
        cairn_core::rag::SearchOptions {
            method: self.method.into(),
            candidates: self.candidates,
            k: self.k,
            mmr_lambda: self.mmr,
            collections: self.collection.clone(),
            ..Default::default()
        }
    }
}
