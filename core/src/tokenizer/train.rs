//! Tokenizer training: byte-level BPE (GPT-2 style) and WordPiece (BERT
//! style) vocabularies learned from text, written as a `tokenizer.json` that
//! Python `tokenizers` and transformers load.
//!
//! The pipeline around the model (normaliser, pre-tokeniser, decoder,
//! post-processor) is the `tokenizers` library's own, configured as
//! `Tokenizer(BPE())` + `ByteLevel(add_prefix_space=False)` for BPE and as
//! `BertWordPieceTokenizer` for WordPiece. The learning is cairn's and follows
//! `tokenizers`' `BpeTrainer` rule for rule, so the same corpus and settings
//! give the same vocabulary:
//!
//! 1. words are the pre-tokeniser's splits of the normalised text, counted;
//! 2. the vocabulary starts with the special tokens, then the alphabet — every
//!    character seen (or, with `limit_alphabet`, the most frequent ones; for
//!    byte-level BPE all 256 byte characters), in code-point order; WordPiece
//!    then adds `##c` for each character seen inside a word;
//! 3. repeatedly the most frequent adjacent pair is merged (ties: the pair
//!    of smaller ids), until the vocabulary has `vocab_size` entries or no
//!    pair occurs `min_frequency` times. Like `tokenizers`, counts are kept in
//!    a priority queue of (count, pair, words) entries refreshed lazily, and a
//!    merge is applied to the words its entry lists — so a pair whose count
//!    rose after a merge can be merged in two steps, as there (it then
//!    appears once in the merges, at its last rank).
//!
//! One difference is by design: `tokenizers` numbers WordPiece's `##c`
//! tokens in its hash map's iteration order (random per run); cairn numbers
//! them in the order of the sorted word list, so a run is reproducible. The
//! vocabulary can then differ where merges tie on count (the tie is broken by
//! ids), which `bench/scripts/tokenizer_train_vs_hf.py` measures.

// Symbol ids index the vocabulary this module builds.
#![allow(clippy::indexing_slicing)]

use std::collections::{BTreeMap, BinaryHeap, HashMap};

use serde_json::{Value, json};
use tokenizers::{
    AddedToken, Normalizer, OffsetReferential, OffsetType, PreTokenizedString, PreTokenizer,
    Tokenizer,
};

use crate::error::{Error, Result};

/// Which model to learn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenizerKind {
    /// Byte-level BPE: any text encodes, no unknown token.
    ByteLevelBpe,
    /// WordPiece with `##` continuation pieces, lowercasing BERT normaliser, `[UNK]`.
    WordPiece,
}

/// Training settings (`tokenizers`' `BpeTrainer` / `WordPieceTrainer` options).
#[derive(Debug, Clone, PartialEq)]
pub struct TokenizerTrainConfig {
    /// Model kind.
    pub kind: TokenizerKind,
    /// Target vocabulary size, special tokens and alphabet included.
    pub vocab_size: usize,
    /// A pair merged must occur at least this often.
    pub min_frequency: u64,
    /// Special tokens, given the first ids in this order.
    pub special_tokens: Vec<String>,
    /// Keep only this many of the most frequent characters in the alphabet.
    pub limit_alphabet: Option<usize>,
    /// WordPiece: lowercase (and strip accents) in the normaliser.
    pub lowercase: bool,
}

impl TokenizerTrainConfig {
    /// Byte-level BPE defaults: no special tokens but `<|endoftext|>`, min frequency 2.
    pub fn byte_level_bpe(vocab_size: usize) -> Self {
        Self {
            kind: TokenizerKind::ByteLevelBpe,
            vocab_size,
            min_frequency: 2,
            special_tokens: vec!["<|endoftext|>".into()],
            limit_alphabet: None,
            lowercase: false,
        }
    }

    /// `BertWordPieceTokenizer` defaults: `[PAD] [UNK] [CLS] [SEP] [MASK]`,
    /// alphabet limited to 1,000, lowercase, min frequency 2.
    pub fn wordpiece(vocab_size: usize) -> Self {
        Self {
            kind: TokenizerKind::WordPiece,
            vocab_size,
            min_frequency: 2,
            special_tokens: ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
                .map(String::from)
                .to_vec(),
            limit_alphabet: Some(1000),
            lowercase: true,
        }
    }

    fn prefix(&self) -> Option<&'static str> {
        (self.kind == TokenizerKind::WordPiece).then_some("##")
    }
}

/// What training produced.
#[derive(Debug)]
pub struct TrainedTokenizer {
    /// The tokenizer, ready to encode and to save.
    pub tokenizer: Tokenizer,
    /// Vocabulary, by id.
    pub vocab: Vec<String>,
    /// BPE merges in rank order (byte-level BPE; WordPiece keeps none).
    pub merges: Vec<(String, String)>,
    /// Distinct words counted.
    pub words: usize,
}

/// The `tokenizer.json` pipeline around an empty model of `kind`.
fn pipeline(cfg: &TokenizerTrainConfig) -> Value {
    match cfg.kind {
        TokenizerKind::ByteLevelBpe => json!({
            "version": "1.0",
            "truncation": null,
            "padding": null,
            "added_tokens": [],
            "normalizer": null,
            "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
            "post_processor": null,
            "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        }),
        TokenizerKind::WordPiece => json!({
            "version": "1.0",
            "truncation": null,
            "padding": null,
            "added_tokens": [],
            "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true,
                           "strip_accents": null, "lowercase": cfg.lowercase},
            "pre_tokenizer": {"type": "BertPreTokenizer"},
            "post_processor": null,
            "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true},
        }),
    }
}

fn model_json(cfg: &TokenizerTrainConfig, vocab: &[String], merges: &[(String, String)]) -> Value {
    let vocab: serde_json::Map<String, Value> = vocab
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), json!(i)))
        .collect();
    match cfg.kind {
        TokenizerKind::ByteLevelBpe => json!({
            "type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
            "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
            "vocab": vocab,
            "merges": merges.iter().map(|(a, b)| json!([a, b])).collect::<Vec<_>>(),
        }),
        TokenizerKind::WordPiece => json!({
            "type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
            "max_input_chars_per_word": 100, "vocab": vocab,
        }),
    }
}

fn tok_err(what: &str) -> impl Fn(tokenizers::Error) -> Error + '_ {
    move |e| Error::Input(format!("tokenizer training: {what}: {e}"))
}

/// Counts the pre-tokenised words of `texts` through `shell`'s normaliser and pre-tokeniser.
fn count_words<'a>(
    shell: &Tokenizer,
    texts: impl Iterator<Item = &'a str>,
) -> Result<HashMap<String, u64>> {
    let mut counts: HashMap<String, u64> = HashMap::new();
    for text in texts {
        let mut normalized = tokenizers::NormalizedString::from(text);
        if let Some(n) = shell.get_normalizer() {
            n.normalize(&mut normalized)
                .map_err(tok_err("normalising"))?;
        }
        let mut pre = PreTokenizedString::from(normalized);
        if let Some(p) = shell.get_pre_tokenizer() {
            p.pre_tokenize(&mut pre)
                .map_err(tok_err("pre-tokenising"))?;
        }
        for (word, _, _) in pre.get_splits(OffsetReferential::Original, OffsetType::Byte) {
            *counts.entry(word.to_string()).or_default() += 1;
        }
    }
    Ok(counts)
}

type Pair = (u32, u32);

/// A queue entry: a pair, its count when queued, and the words to merge it in.
#[derive(Debug, PartialEq, Eq)]
struct Merge {
    count: u64,
    pair: Pair,
    pos: Vec<usize>,
}

impl Ord for Merge {
    /// Larger count first; on a tie the smaller pair first (`tokenizers`' order).
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.count
            .cmp(&o.count)
            .then_with(|| o.pair.cmp(&self.pair))
            .then_with(|| o.pos.cmp(&self.pos))
    }
}

impl PartialOrd for Merge {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}

/// Merges `(a, b)` into `new` in `word`, recording the pair-count changes
/// exactly as `tokenizers`' `Word::merge` does.
fn merge_word(word: &mut Vec<u32>, (a, b): Pair, new: u32, changes: &mut Vec<(Pair, i32)>) {
    let mut i = 0;
    while i < word.len() {
        if word[i] == a && i + 1 < word.len() && word[i + 1] == b {
            if i > 0 {
                changes.push(((word[i - 1], a), -1));
                changes.push(((word[i - 1], new), 1));
            }
            word[i] = new;
            word.remove(i + 1);
            if i + 1 < word.len() {
                changes.push(((b, word[i + 1]), -1));
                changes.push(((new, word[i + 1]), 1));
            }
        }
        i += 1;
    }
}

/// The 256 characters byte-level BPE maps bytes to (GPT-2's table).
fn byte_level_alphabet() -> Vec<char> {
    let mut bs: Vec<u32> = (b'!' as u32..=b'~' as u32)
        .chain(0xA1..=0xAC)
        .chain(0xAE..=0xFF)
        .collect();
    let mut cs = bs.clone();
    let mut n = 0;
    for b in 0..256u32 {
        if !bs.contains(&b) {
            bs.push(b);
            cs.push(256 + n);
            n += 1;
        }
    }
    cs.into_iter().filter_map(char::from_u32).collect()
}

/// Learns a tokenizer from `texts` (see the module docs for the rules).
pub fn train_tokenizer<'a>(
    texts: impl Iterator<Item = &'a str>,
    cfg: &TokenizerTrainConfig,
) -> Result<TrainedTokenizer> {
    if cfg.vocab_size == 0 {
        return Err(Error::Input(
            "tokenizer training: vocab_size must be positive".into(),
        ));
    }
    let prefix = cfg.prefix();
    let mut shell_json = pipeline(cfg);
    shell_json["model"] = model_json(cfg, &[], &[]);
    if cfg.kind == TokenizerKind::WordPiece {
        shell_json["model"]["vocab"] = json!({"[UNK]": 0});
    }
    let shell: Tokenizer = shell_json
        .to_string()
        .parse()
        .map_err(tok_err("building the pipeline"))?;
    let counts = count_words(&shell, texts)?;
    // Sorted words: a reproducible numbering of WordPiece's `##c` tokens.
    let mut word_list: Vec<(&String, u64)> = counts.iter().map(|(w, &c)| (w, c)).collect();
    word_list.sort_unstable();

    let mut vocab: Vec<String> = Vec::new();
    let mut ids: HashMap<String, u32> = HashMap::new();
    let mut intern = |s: String, vocab: &mut Vec<String>| -> u32 {
        *ids.entry(s.clone()).or_insert_with(|| {
            vocab.push(s);
            (vocab.len() - 1) as u32
        })
    };
    for s in &cfg.special_tokens {
        intern(s.clone(), &mut vocab);
    }
    // The alphabet.
    let mut alphabet: HashMap<char, u64> = HashMap::new();
    for (w, c) in &word_list {
        for ch in w.chars() {
            *alphabet.entry(ch).or_default() += c;
        }
    }
    if cfg.kind == TokenizerKind::ByteLevelBpe {
        for ch in byte_level_alphabet() {
            alphabet.insert(ch, u64::MAX);
        }
    }
    let mut kept: Vec<(char, u64)> = alphabet.into_iter().collect();
    if let Some(limit) = cfg.limit_alphabet {
        let remove = kept.len().saturating_sub(limit);
        if remove > 0 {
            // Least frequent first (ties: the larger character first, for reproducibility).
            kept.sort_unstable_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)));
            kept.drain(..remove);
        }
    }
    kept.sort_unstable_by_key(|k| k.0 as u32);
    for (ch, _) in &kept {
        intern(ch.to_string(), &mut vocab);
    }
    let in_alphabet: std::collections::HashSet<char> = kept.iter().map(|k| k.0).collect();
    // Words as symbol ids.
    let mut words: Vec<Vec<u32>> = Vec::with_capacity(word_list.len());
    let wcounts: Vec<u64> = word_list.iter().map(|w| w.1).collect();
    for (w, _) in &word_list {
        let mut syms = Vec::with_capacity(w.len());
        for (i, ch) in w.chars().enumerate() {
            if !in_alphabet.contains(&ch) {
                continue;
            }
            let s = match prefix {
                Some(p) if i > 0 => format!("{p}{ch}"),
                _ => ch.to_string(),
            };
            syms.push(intern(s, &mut vocab));
        }
        words.push(syms);
    }
    // Pair counts and where they occur.
    let mut pair_counts: HashMap<Pair, i64> = HashMap::new();
    let mut where_to: BTreeMap<Pair, Vec<usize>> = BTreeMap::new();
    for (i, w) in words.iter().enumerate() {
        for p in w.windows(2) {
            let pair = (p[0], p[1]);
            *pair_counts.entry(pair).or_default() += wcounts[i] as i64;
            let at = where_to.entry(pair).or_default();
            if at.last() != Some(&i) {
                at.push(i);
            }
        }
    }
    let mut queue: BinaryHeap<Merge> = BinaryHeap::new();
    let push_all = |where_to: &mut BTreeMap<Pair, Vec<usize>>,
                    queue: &mut BinaryHeap<Merge>,
                    pair_counts: &HashMap<Pair, i64>| {
        for (pair, mut pos) in std::mem::take(where_to) {
            let count = pair_counts.get(&pair).copied().unwrap_or(0);
            if count > 0 {
                pos.sort_unstable();
                pos.dedup();
                queue.push(Merge {
                    count: count as u64,
                    pair,
                    pos,
                });
            }
        }
    };
    push_all(&mut where_to, &mut queue, &pair_counts);
    let mut merges: Vec<(Pair, u32)> = Vec::new();
    let mut changes = Vec::new();
    while vocab.len() < cfg.vocab_size {
        let Some(mut top) = queue.pop() else { break };
        let current = pair_counts.get(&top.pair).copied().unwrap_or(0).max(0) as u64;
        if top.count != current {
            top.count = current;
            queue.push(top);
            continue;
        }
        if top.count < 1 || cfg.min_frequency > top.count {
            break;
        }
        let a = vocab[top.pair.0 as usize].clone();
        let b = &vocab[top.pair.1 as usize];
        let b = match prefix {
            Some(p) => b.strip_prefix(p).unwrap_or(b),
            None => b,
        };
        let new_id = intern(format!("{a}{b}"), &mut vocab);
        merges.push((top.pair, new_id));
        for &i in &top.pos {
            changes.clear();
            merge_word(&mut words[i], top.pair, new_id, &mut changes);
            for &(pair, change) in &changes {
                *pair_counts.entry(pair).or_default() += change as i64 * wcounts[i] as i64;
                if change > 0 {
                    where_to.entry(pair).or_default().push(i);
                }
            }
        }
        push_all(&mut where_to, &mut queue, &pair_counts);
    }
    // A pair merged twice keeps its last rank (as `tokenizers`' merge map does).
    let mut last_rank: HashMap<Pair, usize> = HashMap::new();
    for (rank, (pair, _)) in merges.iter().enumerate() {
        last_rank.insert(*pair, rank);
    }
    let merge_strings: Vec<(String, String)> = merges
        .iter()
        .enumerate()
        .filter(|(rank, (pair, _))| last_rank.get(pair) == Some(rank))
        .map(|(_, ((a, b), _))| (vocab[*a as usize].clone(), vocab[*b as usize].clone()))
        .collect();
    let mut doc = pipeline(cfg);
    let model_merges: &[(String, String)] = if cfg.kind == TokenizerKind::ByteLevelBpe {
        &merge_strings
    } else {
        &[]
    };
    doc["model"] = model_json(cfg, &vocab, model_merges);
    if cfg.kind == TokenizerKind::WordPiece {
        let id = |t: &str| ids.get(t).copied();
        if let (Some(sep), Some(cls)) = (id("[SEP]"), id("[CLS]")) {
            doc["post_processor"] =
                json!({"type": "BertProcessing", "sep": ["[SEP]", sep], "cls": ["[CLS]", cls]});
        }
        if !ids.contains_key("[UNK]") {
            return Err(Error::Input(
                "tokenizer training: WordPiece needs [UNK] among the special tokens".into(),
            ));
        }
    }
    let mut tokenizer: Tokenizer = doc
        .to_string()
        .parse()
        .map_err(tok_err("building the trained tokenizer"))?;
    let specials: Vec<AddedToken> = cfg
        .special_tokens
        .iter()
        .map(|s| AddedToken::from(s.clone(), true))
        .collect();
    tokenizer
        .add_special_tokens(specials)
        .map_err(tok_err("adding the special tokens"))?;
    Ok(TrainedTokenizer {
        tokenizer,
        vocab,
        merges: if cfg.kind == TokenizerKind::ByteLevelBpe {
            merge_strings
        } else {
            Vec::new()
        },
        words: word_list.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_follow_counts_and_ties_break_by_ids() {
        // "ab" ×3, "abc" ×2, "bc" ×1: (a,b) 5 > (b,c) 3 → "ab"; then (ab,c) 2 vs (b,c) 1 → "abc".
        let texts = ["ab ab ab abc abc bc"];
        let cfg = TokenizerTrainConfig {
            kind: TokenizerKind::WordPiece,
            vocab_size: 100,
            min_frequency: 1,
            special_tokens: vec!["[UNK]".into()],
            limit_alphabet: None,
            lowercase: true,
        };
        let t = train_tokenizer(texts.into_iter(), &cfg).unwrap();
        // [UNK], alphabet a b c, then ## pieces in sorted-word order.
        assert_eq!(&t.vocab[..4], ["[UNK]", "a", "b", "c"]);
        assert!(t.vocab.contains(&"ab".to_string()) && t.vocab.contains(&"abc".to_string()));
        let enc = t.tokenizer.encode("abc ab bc", false).unwrap();
        assert_eq!(enc.get_tokens(), ["abc", "ab", "bc"]);
    }

    #[test]
    fn byte_level_bpe_starts_from_256_bytes_and_round_trips_any_text() {
        let text = "héllo wörld, hello world! 🎉 hello";
        let cfg = TokenizerTrainConfig {
            min_frequency: 1,
            ..TokenizerTrainConfig::byte_level_bpe(300)
        };
        let t = train_tokenizer(std::iter::once(text), &cfg).unwrap();
        assert_eq!(t.vocab[0], "<|endoftext|>");
        assert_eq!(t.vocab.len(), 300.min(t.vocab.len()));
        assert!(t.vocab.len() > 257);
        // Any text — even characters never seen — encodes and decodes back exactly.
        for s in ["hello world", "日本語 ✓ \u{0}tab\there"] {
            let enc = t.tokenizer.encode(s, false).unwrap();
            assert_eq!(t.tokenizer.decode(enc.get_ids(), false).unwrap(), s);
        }
        let enc = t.tokenizer.encode("hello", false).unwrap();
        assert_eq!(enc.get_tokens(), ["hello"]);
    }

    #[test]
    fn min_frequency_stops_merging() {
        let cfg = TokenizerTrainConfig {
            min_frequency: 3,
            ..TokenizerTrainConfig::byte_level_bpe(10_000)
        };
        let t = train_tokenizer(std::iter::once("aa aa bb"), &cfg).unwrap();
        // (a,a) occurs twice: below 3, so nothing is merged.
        assert!(t.merges.is_empty(), "{:?}", t.merges);
        assert_eq!(t.vocab.len(), 257);
    }
}
