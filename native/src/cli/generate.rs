//! `cairn generate`: one continuation of a prompt, streamed to stdout.

use std::path::{Path, PathBuf};

use cairn_core::backend::Backend;
use cairn_core::generate::{ChatMessage, Generation, GenerationConfig, Generator};

use super::args::{BackendArgs, DEFAULT_DECODER, DecodingArgs};
use crate::cache::resolve_model;
use crate::error::Result;
use crate::generate::load_adapted;
use crate::on_backend;

/// The decoder a command runs: model, adapter and backend.
#[derive(clap::Args, Clone, Debug)]
pub struct DecoderArgs {
    /// Decoder: model name or GGUF path.
    #[arg(short, long, default_value = DEFAULT_DECODER)]
    pub model: String,
    /// A LoRA adapter directory in PEFT's layout (adapter_config.json +
    /// adapter_model.safetensors), applied unmerged.
    #[arg(long)]
    pub adapter: Option<PathBuf>,
    /// The compute backend.
    #[command(flatten)]
    pub backend: BackendArgs,
}

/// Arguments of `cairn generate`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The prompt (raw text unless --chat).
    pub prompt: String,
    /// Wrap the prompt as one user turn with the model's chat template.
    #[arg(long)]
    pub chat: bool,
    /// System prompt for --chat (default: the template's own).
    #[arg(long)]
    pub system: Option<String>,
    /// The decoder.
    #[command(flatten)]
    pub decoder: DecoderArgs,
    /// Decoding options.
    #[command(flatten)]
    pub decoding: DecodingArgs,
}

/// Runs `cairn generate`.
pub fn run(a: Args, cache: &Path) -> Result<()> {
    let config = a.decoding.config()?;
    let path = resolve_model(&a.decoder.model, cache)?;
    let messages = a.chat.then(|| {
        let mut msgs: Vec<ChatMessage> = a
            .system
            .iter()
            .map(|s| ChatMessage::new("system", s))
            .collect();
        msgs.push(ChatMessage::new("user", &a.prompt));
        msgs
    });
    let adapter = a.decoder.adapter.as_deref();
    on_backend!(a.decoder.backend.pick()?, b => {
        let generator = load_adapted(b, &path, adapter)?;
        let prompt = match &messages {
            Some(m) => generator.apply_chat_template(m, true)?,
            None => a.prompt.clone(),
        };
        stream_to_stdout(&generator, &prompt, &config)?;
    });
    Ok(())
}

/// Streams one generation to stdout and logs its speed.
pub fn stream_to_stdout<B: Backend>(
    generator: &Generator<B>,
    prompt: &str,
    config: &GenerationConfig,
) -> Result<Generation> {
    use std::io::Write;
    let started = std::time::Instant::now();
    let out = pollster::block_on(generator.generate_stream(prompt, config, |piece| {
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
