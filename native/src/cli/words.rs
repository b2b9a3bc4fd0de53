//! `cairn train word2vec` (skip-gram / CBOW word vectors from text) and
//! `cairn words` (nearest words, analogies and similarities in such vectors).

use std::path::PathBuf;

use cairn_core::word2vec::{Architecture, Word2VecConfig, WordVectors};

use crate::atomic::write_atomic;
use crate::error::{Error, Result};

/// Arguments of `cairn train word2vec`.
#[derive(clap::Args, Debug)]
pub struct Word2VecArgs {
    /// Text files: one sentence per line, words separated by whitespace (as
    /// gensim's `LineSentence` reads them; tokenise and lowercase beforehand).
    #[arg(value_name = "FILE", required = true, num_args = 1..)]
    pub files: Vec<PathBuf>,
    /// CBOW instead of skip-gram.
    #[arg(long)]
    pub cbow: bool,
    /// Vector dimension.
    #[arg(long, default_value_t = 100)]
    pub dim: usize,
    /// Maximum context distance each side.
    #[arg(long, default_value_t = 5)]
    pub window: usize,
    /// Drop words seen fewer times.
    #[arg(long, default_value_t = 5)]
    pub min_count: u64,
    /// Down-sampling threshold for frequent words (0 disables).
    #[arg(long, default_value_t = 1e-3)]
    pub sample: f64,
    /// Negative samples per positive.
    #[arg(long, default_value_t = 5)]
    pub negative: usize,
    /// Starting learning rate (decays linearly to 0.0001).
    #[arg(long, default_value_t = 0.025)]
    pub alpha: f32,
    /// Passes over the corpus.
    #[arg(long, default_value_t = 5)]
    pub epochs: usize,
    /// Worker threads (default: every core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Random seed (one thread: the run is exactly reproducible).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Where to write the vectors, word2vec text format (atomically).
    #[arg(short, long, value_name = "PATH")]
    pub output: PathBuf,
}

/// Reads whitespace-tokenised sentences, one per line.
fn sentences(files: &[PathBuf]) -> Result<Vec<Vec<String>>> {
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f).map_err(Error::io("reading", f))?;
        out.extend(
            text.lines()
                .map(|l| l.split_whitespace().map(String::from).collect::<Vec<_>>())
                .filter(|s| !s.is_empty()),
        );
    }
    Ok(out)
}

/// Runs `cairn train word2vec`.
pub fn train(a: Word2VecArgs) -> Result<()> {
    let cfg = Word2VecConfig {
        architecture: if a.cbow {
            Architecture::Cbow
        } else {
            Architecture::SkipGram
        },
        dim: a.dim,
        window: a.window,
        min_count: a.min_count,
        sample: a.sample,
        negative: a.negative,
        alpha: a.alpha,
        epochs: a.epochs,
        threads: a
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        seed: a.seed,
        ..Word2VecConfig::default()
    };
    let sents = sentences(&a.files)?;
    let (wv, stats) = WordVectors::train(&sents, &cfg)?;
    write_atomic(&a.output, wv.to_text().as_bytes())?;
    println!(
        "{}: {} words × {} ({}), {} corpus words, {} trained over {} epochs in {:.2} s ({:.0} words/s, {} threads)",
        a.output.display(),
        stats.vocab,
        cfg.dim,
        if a.cbow { "CBOW" } else { "skip-gram" },
        stats.corpus_words,
        stats.trained_words,
        cfg.epochs,
        stats.seconds,
        (stats.corpus_words * cfg.epochs as u64) as f64 / stats.seconds.max(1e-9),
        cfg.threads
    );
    Ok(())
}

/// Arguments of `cairn words`.
#[derive(clap::Args, Debug)]
pub struct WordsArgs {
    /// Word vectors in word2vec text format (`cairn train word2vec`, gensim's
    /// `save_word2vec_format`).
    #[arg(long, value_name = "FILE")]
    pub vectors: PathBuf,
    /// Number of neighbours.
    #[arg(short, long, default_value_t = 10)]
    pub k: usize,
    /// Treat the three words as an analogy: A is to B as C is to …
    #[arg(long)]
    pub analogy: bool,
    /// Print the cosine similarity of the two words instead.
    #[arg(long)]
    pub similarity: bool,
    /// Words (one for neighbours, two for --similarity, three for --analogy).
    #[arg(required = true, num_args = 1..)]
    pub words: Vec<String>,
}

/// Runs `cairn words`.
pub fn words(a: WordsArgs) -> Result<()> {
    let text = std::fs::read_to_string(&a.vectors).map_err(Error::io("reading", &a.vectors))?;
    let wv = WordVectors::from_text(&text, &a.vectors.display().to_string())?;
    let w: Vec<&str> = a.words.iter().map(String::as_str).collect();
    let hits = match (a.analogy, a.similarity, w.as_slice()) {
        (false, true, [x, y]) => {
            println!("{:.4}", wv.similarity(x, y)?);
            return Ok(());
        }
        (true, false, [x, y, z]) => wv.analogy(x, y, z, a.k)?,
        (false, false, [x]) => wv.most_similar(&[x], &[], a.k)?,
        _ => {
            return Err(Error::Usage(
                "give one word (neighbours), two with --similarity, or three with --analogy".into(),
            ));
        }
    };
    for (word, score) in hits {
        println!("{score:.4}  {word}");
    }
    Ok(())
}
