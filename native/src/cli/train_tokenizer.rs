//! `cairn train tokenizer`: a byte-level BPE or WordPiece vocabulary learned
//! from text files, written as a `tokenizer.json`.

use std::path::PathBuf;

use cairn_core::tokenizer::train::{TokenizerKind, TokenizerTrainConfig, train_tokenizer};
use clap::ValueEnum;

use crate::atomic::write_atomic;
use crate::error::{Error, Result};

/// Tokenizer model to learn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum KindArg {
    /// Byte-level BPE (GPT-2 style; any text encodes).
    Bpe,
    /// WordPiece (BERT style: lowercase, `##` continuations, `[UNK]`).
    Wordpiece,
}

/// Arguments of `cairn train tokenizer`.
#[derive(clap::Args, Debug)]
pub struct TokenizerArgs {
    /// Text files to learn from, read line by line (each line keeps its
    /// newline, as Python `tokenizers`' `train(files)` reads them).
    #[arg(value_name = "FILE", required = true, num_args = 1..)]
    pub files: Vec<PathBuf>,
    /// Model kind.
    #[arg(long, value_enum, default_value = "bpe")]
    pub kind: KindArg,
    /// Vocabulary size, special tokens and alphabet included.
    #[arg(long, default_value_t = 30_000)]
    pub vocab_size: usize,
    /// A pair is merged only if it occurs at least this often.
    #[arg(long, default_value_t = 2)]
    pub min_frequency: u64,
    /// Special tokens, comma-separated, given the first ids [default:
    /// `<|endoftext|>` for bpe; `[PAD],[UNK],[CLS],[SEP],[MASK]` for wordpiece].
    #[arg(long, value_delimiter = ',')]
    pub special_tokens: Option<Vec<String>>,
    /// Keep only this many of the most frequent characters in the initial
    /// alphabet [default: all for bpe, 1000 for wordpiece].
    #[arg(long)]
    pub limit_alphabet: Option<usize>,
    /// WordPiece: keep case (the normaliser lowercases by default).
    #[arg(long)]
    pub cased: bool,
    /// Where to write the tokenizer.json (atomically).
    #[arg(short, long, value_name = "PATH")]
    pub output: PathBuf,
}

/// Runs `cairn train tokenizer`.
pub fn run(a: TokenizerArgs) -> Result<()> {
    let mut cfg = match a.kind {
        KindArg::Bpe => TokenizerTrainConfig::byte_level_bpe(a.vocab_size),
        KindArg::Wordpiece => TokenizerTrainConfig::wordpiece(a.vocab_size),
    };
    cfg.min_frequency = a.min_frequency;
    if let Some(s) = a.special_tokens {
        cfg.special_tokens = s;
    }
    if a.limit_alphabet.is_some() {
        cfg.limit_alphabet = a.limit_alphabet;
    }
    cfg.lowercase = cfg.kind == TokenizerKind::WordPiece && !a.cased;
    let mut text = String::new();
    for f in &a.files {
        let bytes = std::fs::read(f).map_err(Error::io("reading", f))?;
        let s = String::from_utf8(bytes).map_err(|e| {
            Error::Usage(format!(
                "{}: not UTF-8 text (invalid byte at offset {})",
                f.display(),
                e.utf8_error().valid_up_to()
            ))
        })?;
        text.push_str(&s);
        if !text.ends_with('\n') && !text.is_empty() {
            text.push('\n');
        }
    }
    let started = std::time::Instant::now();
    let t = train_tokenizer(text.split_inclusive('\n'), &cfg)?;
    let secs = started.elapsed().as_secs_f64();
    let json = t
        .tokenizer
        .to_string(true)
        .map_err(|e| Error::Usage(format!("serialising the tokenizer: {e}")))?;
    write_atomic(&a.output, json.as_bytes())?;
    println!(
        "{}: {} tokenizer, {} tokens ({} merges) from {} distinct words in {secs:.2} s",
        a.output.display(),
        match cfg.kind {
            TokenizerKind::ByteLevelBpe => "byte-level BPE",
            TokenizerKind::WordPiece => "WordPiece",
        },
        t.vocab.len(),
        t.merges.len(),
        t.words
    );
    if t.vocab.len() < a.vocab_size {
        eprintln!(
            "note: the corpus yields only {} tokens at --min-frequency {} (asked for {})",
            t.vocab.len(),
            a.min_frequency,
            a.vocab_size
        );
    }
    Ok(())
}
