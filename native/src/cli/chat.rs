//! `cairn chat`: one user turn per line of stdin.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use cairn_core::generate::ChatMessage;

use super::args::DecodingArgs;
use super::generate::{DecoderArgs, stream_to_stdout};
use crate::cache::resolve_model;
use crate::error::{Error, Result};
use crate::generate::load_adapted;
use crate::on_backend;

/// Arguments of `cairn chat`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// System prompt (default: the template's own).
    #[arg(long)]
    pub system: Option<String>,
    /// The decoder.
    #[command(flatten)]
    pub decoder: DecoderArgs,
    /// Decoding options.
    #[command(flatten)]
    pub decoding: DecodingArgs,
}

/// Runs `cairn chat`.
pub fn run(a: Args, cache: &Path) -> Result<()> {
    let config = a.decoding.config()?;
    let path = resolve_model(&a.decoder.model, cache)?;
    let adapter = a.decoder.adapter.as_deref();
    on_backend!(a.decoder.backend.pick()?, b => {
        let generator = load_adapted(b, &path, adapter)?;
        let mut msgs: Vec<ChatMessage> = a
            .system
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
            let out = stream_to_stdout(&generator, &prompt, &config)?;
            msgs.push(ChatMessage::new("assistant", &out.text));
        }
    });
    Ok(())
}
