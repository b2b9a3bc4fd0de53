//! `cairn generate`: one continuation of a prompt, streamed to stdout.

use std::path::{Path, PathBuf};

use cairn_core::backend::Backend;
use cairn_core::generate::{
    ChatMessage, Generation, GenerationConfig, Generator, RegexGrammar, TokenConstraint,
};

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
    /// Output format: the text is held to a JSON Schema, a regex or a choice list.
    #[command(flatten)]
    pub format: FormatArgs,
}

/// Constrained output: at most one of the three.
#[derive(clap::Args, Clone, Debug, Default)]
#[group(multiple = false)]
pub struct FormatArgs {
    /// A JSON Schema file the output must validate against (compact JSON;
    /// see docs for the supported keywords; an unsupported one is an error).
    #[arg(long, value_name = "FILE")]
    pub json_schema: Option<PathBuf>,
    /// A regular expression the whole output must match.
    #[arg(long, value_name = "REGEX")]
    pub regex: Option<String>,
    /// Comma-separated choices: the output is exactly one of them.
    #[arg(long, value_name = "A,B,...", value_delimiter = ',')]
    pub choice: Vec<String>,
}

impl FormatArgs {
    /// The compiled output grammar, when a format was given.
    pub fn grammar(&self) -> Result<Option<RegexGrammar>> {
        let pattern = if let Some(path) = &self.json_schema {
            let bytes = std::fs::read(path).map_err(crate::error::Error::io("reading", path))?;
            let schema: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
                crate::error::Error::Model(format!("{}: not JSON: {e}", path.display()))
            })?;
            cairn_core::generate::json_schema::schema_to_regex(&schema)
                .map_err(|e| crate::error::Error::Model(format!("{}: {e}", path.display())))?
        } else if let Some(r) = &self.regex {
            r.clone()
        } else if !self.choice.is_empty() {
            cairn_core::generate::regex_constraint::choice_pattern(&self.choice)?
        } else {
            return Ok(None);
        };
        Ok(Some(RegexGrammar::new(&pattern)?))
    }
}

/// Runs `cairn generate`.
pub fn run(a: Args, cache: &Path) -> Result<()> {
    let config = a.decoding.config()?;
    let grammar = a.format.grammar()?;
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
        match grammar {
            Some(g) => {
                let mut c = generator.grammar_constraint(g, &config);
                stream_constrained(&generator, &prompt, &config, Some(&mut c))?
            }
            None => stream_to_stdout(&generator, &prompt, &config)?,
        };
    });
    Ok(())
}

/// Streams one generation to stdout and logs its speed.
pub fn stream_to_stdout<B: Backend>(
    generator: &Generator<B>,
    prompt: &str,
    config: &GenerationConfig,
) -> Result<Generation> {
    stream_constrained(generator, prompt, config, None)
}

/// [`stream_to_stdout`] with an optional constraint on the tokens.
fn stream_constrained<B: Backend>(
    generator: &Generator<B>,
    prompt: &str,
    config: &GenerationConfig,
    constraint: Option<&mut dyn TokenConstraint>,
) -> Result<Generation> {
    use std::io::Write;
    let started = std::time::Instant::now();
    let print = |piece: &str| {
        let mut o = std::io::stdout().lock();
        let _ = o.write_all(piece.as_bytes());
        let _ = o.flush();
        true
    };
    let out = match constraint {
        Some(c) => {
            pollster::block_on(generator.generate_constrained_stream(prompt, config, c, print))?
        }
        None => pollster::block_on(generator.generate_stream(prompt, config, print))?,
    };
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
