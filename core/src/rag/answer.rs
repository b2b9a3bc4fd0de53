//! Grounded answering: numbered sources in the prompt, the answer streamed
//! from the decoder, citations `[n]` mapped back to file and page. Decoding
//! is constrained ([`crate::generate::CitationConstraint`]) so that a `[n]`
//! can only name a source the prompt gave.
//!
//! When does cairn say it does not know? Before generating: when no
//! retrieved passage is semantically close to the question (best cosine
//! between the question and a matched chunk below `min_cosine`, default
//! 0.35 for all-MiniLM-L6-v2, where unrelated sentence pairs sit below ~0.2
//! and paraphrases above ~0.5) — the model is then not asked at all. After
//! generating: when the model itself answers that it does not know (the
//! system prompt tells it to). Either way [`Answer::grounded`] is false.

use serde::{Deserialize, Serialize};

use super::index::Hit;
use crate::backend::Backend;
use crate::error::Result;
use crate::generate::{ChatMessage, GenerationConfig, Generator};

/// The answer given when the sources do not support one.
pub const NO_ANSWER: &str = "I don't know: the indexed documents do not answer this question.";

/// The instruction the model gets.
pub const SYSTEM_PROMPT: &str = "You answer questions using only the numbered sources given by the user. Cite the sources you use with their numbers in square brackets, like [1]. If the sources do not contain the answer, reply exactly: I don't know.";

/// Answering settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AskOptions {
    /// Decoding settings (greedy, 256 new tokens by default).
    pub generation: GenerationConfig,
    /// Below this best question–passage cosine, answer [`NO_ANSWER`] without generating.
    pub min_cosine: f32,
    /// Which text of each hit the prompt shows.
    #[serde(default)]
    pub source_text: SourceText,
}

/// Which text of a retrieved hit goes into the prompt.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceText {
    /// The child chunk that matched the question (128 tokens by default):
    /// short, focused prompts — what a small model answers from best
    /// (SmolLM2-135M copies the relevant sentence instead of wandering).
    #[default]
    Matched,
    /// The whole parent passage (512 tokens by default), for larger models.
    Passage,
}

impl SourceText {
    /// The text of `h` this choice shows.
    pub fn of(self, h: &Hit) -> &str {
        match self {
            SourceText::Matched => &h.matched.text,
            SourceText::Passage => &h.chunk.text,
        }
    }
}

impl Default for AskOptions {
    fn default() -> Self {
        AskOptions {
            generation: GenerationConfig::default(),
            min_cosine: 0.35,
            source_text: SourceText::default(),
        }
    }
}

/// A grounded answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    /// The answer text.
    pub text: String,
    /// The sources in the prompt, numbered from 1 in this order.
    pub sources: Vec<Hit>,
    /// Source numbers the answer cites (1-based, ascending, only valid ones).
    pub cited: Vec<usize>,
    /// Whether the answer rests on the sources (see the module docs).
    pub grounded: bool,
    /// Tokens in the prompt.
    pub prompt_tokens: usize,
    /// Tokens generated (0 when the model was not asked).
    pub generated_tokens: usize,
}

impl Answer {
    /// [`NO_ANSWER`]: nothing retrieved supports an answer.
    pub fn no_answer() -> Answer {
        Answer {
            text: NO_ANSWER.into(),
            sources: Vec::new(),
            cited: Vec::new(),
            grounded: false,
            prompt_tokens: 0,
            generated_tokens: 0,
        }
    }
}

fn label(h: &Hit) -> String {
    let file = h.chunk.source.rsplit('/').next().unwrap_or(&h.chunk.source);
    match h.chunk.page {
        Some(p) => format!("{file}, page {p}"),
        None if !h.chunk.headings.is_empty() => format!("{file}, {}", h.chunk.headings.join(" > ")),
        None => file.to_string(),
    }
}

/// The chat prompt for `question` over `hits` (each shown by its
/// `source_text`), keeping as many sources (in order) as fit in `max_tokens`
/// prompt tokens; returns the prompt, the hits
/// used and the prompt's token count. A source too long for the remaining
/// budget is cut at a token boundary; sources that do not fit at all are dropped.
pub fn build_prompt<B: Backend>(
    generator: &Generator<B>,
    question: &str,
    hits: &[Hit],
    source_text: SourceText,
    max_tokens: usize,
) -> Result<(String, Vec<Hit>, usize)> {
    let render = |sources: &[(String, Hit)]| -> Result<String> {
        let mut user = String::from("Sources:\n");
        for (i, (text, h)) in sources.iter().enumerate() {
            user.push_str(&format!("[{}] ({})\n{}\n\n", i + 1, label(h), text));
        }
        user.push_str(&format!("Question: {question}"));
        generator.apply_chat_template(
            &[
                ChatMessage::new("system", SYSTEM_PROMPT),
                ChatMessage::new("user", &user),
            ],
            true,
        )
    };
    let count = |p: &str| -> Result<usize> { Ok(generator.encode(p)?.len()) };
    let mut used: Vec<(String, Hit)> = Vec::new();
    for h in hits {
        let mut candidate = used.clone();
        candidate.push((source_text.of(h).to_string(), h.clone()));
        let n = count(&render(&candidate)?)?;
        if n <= max_tokens {
            used = candidate;
            continue;
        }
        // Cut this source to what is left of the budget, by tokens.
        let base = count(&render(&used)?)?;
        let room = max_tokens.saturating_sub(base + 16);
        if room >= 32 {
            let ids = generator.tokenizer().encode(source_text.of(h), false)?.ids;
            let cut = generator.decode(ids.get(..room).unwrap_or(&ids));
            let mut candidate = used.clone();
            candidate.push((cut, h.clone()));
            if count(&render(&candidate)?)? <= max_tokens {
                used = candidate;
            }
        }
        break;
    }
    let prompt = render(&used)?;
    let n = count(&prompt)?;
    if n > max_tokens {
        return Err(crate::Error::Input(format!(
            "the question alone needs {n} prompt tokens, more than the {max_tokens} available"
        )));
    }
    Ok((prompt, used.into_iter().map(|(_, h)| h).collect(), n))
}

/// Source numbers cited as `[n]`, `[n, m]` or `[n][m]`, limited to `1..=sources`.
pub fn parse_citations(text: &str, sources: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        let after = &rest[open + 1..];
        let Some(close) = after.find(']') else { break };
        let inner = &after[..close];
        if !inner.is_empty()
            && inner
                .chars()
                .all(|c| c.is_ascii_digit() || c == ',' || c == ' ')
        {
            for n in inner
                .split(',')
                .filter_map(|p| p.trim().parse::<usize>().ok())
            {
                if (1..=sources).contains(&n) && !out.contains(&n) {
                    out.push(n);
                }
            }
        }
        rest = &after[close + 1..];
    }
    out.sort_unstable();
    out
}

/// Lines of at least this many characters end the answer when repeated.
const REPEAT_MIN: usize = 16;

/// Forwards streamed answer text, ending the answer when the model starts
/// looping: a whole line (of [`REPEAT_MIN`]+ characters) equal to an earlier
/// line stops generation. A line is held back only while it could still be
/// such a repeat (it is a prefix of an earlier line), so novel text streams
/// at once and what was streamed is exactly the answer.
struct RepeatGuard {
    /// Earlier complete lines (trimmed).
    lines: Vec<String>,
    /// The current line so far, and how many of its bytes were forwarded.
    line: String,
    sent: usize,
    /// Everything forwarded.
    text: String,
    /// A repeated line was seen.
    looped: bool,
}

impl RepeatGuard {
    fn new() -> Self {
        RepeatGuard {
            lines: Vec::new(),
            line: String::new(),
            sent: 0,
            text: String::new(),
            looped: false,
        }
    }

    fn could_repeat(&self, partial: &str) -> bool {
        let p = partial.trim();
        !p.is_empty()
            && self
                .lines
                .iter()
                .any(|l| l.len() >= REPEAT_MIN && l.starts_with(p))
    }

    fn send(&mut self, s: &str, out: &mut impl FnMut(&str) -> bool) -> bool {
        if s.is_empty() {
            return true;
        }
        self.text.push_str(s);
        out(s)
    }

    /// Takes a piece of generated text; `false` stops generation.
    fn push(&mut self, piece: &str, out: &mut impl FnMut(&str) -> bool) -> bool {
        let mut go_on = true;
        for part in piece.split_inclusive('\n') {
            self.line.push_str(part);
            if !self.line.ends_with('\n') {
                if !self.could_repeat(&self.line) {
                    let rest = self.line[self.sent..].to_string();
                    self.sent = self.line.len();
                    go_on &= self.send(&rest, out);
                }
                continue;
            }
            let whole = self.line.trim().to_string();
            if whole.len() >= REPEAT_MIN && self.lines.contains(&whole) {
                self.looped = true;
                return false;
            }
            let rest = self.line[self.sent..].to_string();
            go_on &= self.send(&rest, out);
            if !whole.is_empty() {
                self.lines.push(whole);
            }
            self.line.clear();
            self.sent = 0;
        }
        go_on
    }

    /// Forwards a held tail unless it is the start of a repeat; the answer text.
    fn finish(mut self, out: &mut impl FnMut(&str) -> bool) -> String {
        let truncated_repeat =
            self.could_repeat(&self.line) && self.line.trim().len() >= REPEAT_MIN;
        if !self.looped && !truncated_repeat {
            let rest = self.line[self.sent..].to_string();
            self.send(&rest, out);
        }
        self.text
    }
}

/// Answers `question` from `hits` (already retrieved), streaming the text
/// through `on_text`. The prompt never exceeds the model's context minus the
/// tokens reserved for the answer.
pub async fn answer<B: Backend>(
    generator: &Generator<B>,
    question: &str,
    hits: &[Hit],
    opts: &AskOptions,
    mut on_text: impl FnMut(&str) -> bool,
) -> Result<Answer> {
    let best = hits
        .iter()
        .map(|h| h.cosine)
        .fold(f32::NEG_INFINITY, f32::max);
    if hits.is_empty() || best < opts.min_cosine {
        on_text(NO_ANSWER);
        return Ok(Answer::no_answer());
    }
    let ctx = generator.model().config().context_length;
    let budget = ctx.saturating_sub(opts.generation.max_new_tokens.max(1));
    let (prompt, sources, prompt_tokens) =
        build_prompt(generator, question, hits, opts.source_text, budget)?;
    // Citations can only name the sources in the prompt (constrained
    // decoding; beam search runs unconstrained and keeps only valid numbers).
    // A line the model repeats ends the answer (small models loop), and so
    // does a loop within a line (`stop_on_loop`).
    let generation = GenerationConfig {
        stop_on_loop: true,
        ..opts.generation.clone()
    };
    let mut guard = RepeatGuard::new();
    let forward = |piece: &str| guard.push(piece, &mut on_text);
    let out = if opts.generation.num_beams > 1 {
        generator
            .generate_stream(&prompt, &generation, forward)
            .await?
    } else {
        let mut citations = generator.citation_constraint(sources.len());
        generator
            .generate_constrained_stream(&prompt, &generation, &mut citations, forward)
            .await?
    };
    let text = guard.finish(&mut on_text).trim().to_string();
    let cited = parse_citations(&text, sources.len());
    let grounded = !text.to_lowercase().starts_with("i don't know");
    Ok(Answer {
        text,
        sources,
        cited,
        grounded,
        prompt_tokens,
        generated_tokens: out.token_ids.len(),
    })
}

/// Sentences shorter than this many characters are not quoted (headings,
/// page furniture).
const QUOTE_MIN_CHARS: usize = 24;

/// Most sentences an extractive answer quotes by default (`ask --answer
/// quote`, `/v1/ask` and the npm `ask` with `answer: "quote"`).
pub const QUOTE_SENTENCES: usize = 3;

/// Least question–sentence cosine for a quote, by default.
pub const QUOTE_MIN_COSINE: f32 = 0.5;

/// An extractive answer, faithful by construction: the sentences of the
/// retrieved sources (`source_text` of each hit) closest to the question —
/// cosine of their embeddings, at least `min_cosine` — at most
/// `max_sentences` of them, best first, each quoted verbatim (whitespace
/// joined) and followed by its source number `[n]` as the sources are
/// numbered (the hits' order). No sentence close enough: [`NO_ANSWER`].
pub async fn quote<B: Backend>(
    embedder: &crate::embedder::Embedder<B>,
    question: &str,
    hits: &[Hit],
    source_text: SourceText,
    max_sentences: usize,
    min_cosine: f32,
) -> Result<Answer> {
    let candidates = quote_candidates(hits, source_text);
    let mut texts: Vec<&str> = vec![question];
    texts.extend(candidates.iter().map(|(_, t)| t.as_str()));
    let e = embedder.encode_async(&texts, true).await?;
    let vectors: Vec<&[f32]> = e.iter().collect();
    Ok(quote_pick(
        hits,
        &candidates,
        &vectors,
        max_sentences,
        min_cosine,
    ))
}

/// The sentences [`quote`] may quote: `(source number, sentence)` for every
/// sentence of the hits' `source_text` of at least [`QUOTE_MIN_CHARS`]
/// characters, whitespace joined, each once.
pub fn quote_candidates(hits: &[Hit], source_text: SourceText) -> Vec<(usize, String)> {
    let mut out: Vec<(usize, String)> = Vec::new();
    for (n, h) in hits.iter().enumerate() {
        let text = source_text.of(h);
        let joined: Vec<String> = sentences(text)
            .into_iter()
            .map(|r| {
                let s = text.get(r).unwrap_or_default();
                s.split_whitespace().collect::<Vec<_>>().join(" ")
            })
            .collect();
        let mut i = 0;
        while let Some(first) = joined.get(i) {
            // A sentence that announces what follows ("… with the following
            // command:") is quoted together with it.
            let mut sentence = first.clone();
            i += 1;
            if announces(&sentence)
                && let Some(next) = joined.get(i)
            {
                sentence = format!("{sentence} {next}");
                i += 1;
            }
            if sentence.chars().count() >= QUOTE_MIN_CHARS
                && !out.iter().any(|(_, t)| *t == sentence)
            {
                out.push((n + 1, sentence));
            }
        }
    }
    out
}

/// Whether a sentence introduces the next one (ends with `:`, or with
/// "the following …").
fn announces(sentence: &str) -> bool {
    let s = sentence.trim_end_matches(['.', ' ']);
    s.ends_with(':')
        || s.rsplit(' ')
            .take(3)
            .any(|w| w.eq_ignore_ascii_case("following"))
}

/// [`quote`]'s choice from unit vectors computed elsewhere (the service's
/// embedder thread): `vectors[0]` is the question's, `vectors[1..]` the
/// candidates' in order.
pub fn quote_pick(
    hits: &[Hit],
    candidates: &[(usize, String)],
    vectors: &[&[f32]],
    max_sentences: usize,
    min_cosine: f32,
) -> Answer {
    let q = vectors.first().copied().unwrap_or_default();
    let mut scored: Vec<(f32, usize, &str)> = vectors
        .iter()
        .skip(1)
        .zip(candidates)
        .map(|(v, (n, t))| (crate::util::dot(q, v), *n, t.as_str()))
        .filter(|(c, _, _)| *c >= min_cosine)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    scored.truncate(max_sentences);
    if scored.is_empty() {
        return Answer::no_answer();
    }
    let text = scored
        .iter()
        .map(|(_, n, t)| format!("\"{t}\" [{n}]"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut cited: Vec<usize> = scored.iter().map(|s| s.1).collect();
    cited.sort_unstable();
    cited.dedup();
    Answer {
        text,
        sources: hits.to_vec(),
        cited,
        grounded: true,
        prompt_tokens: 0,
        generated_tokens: 0,
    }
}

/// One answer sentence traced to the source that supports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attribution {
    /// Byte range of the sentence in the answer text.
    pub sentence: std::ops::Range<usize>,
    /// The supporting source (1-based, as numbered in the prompt).
    pub source: usize,
    /// Cosine similarity between the sentence and the source's closest sentence.
    pub cosine: f32,
}

/// Abbreviations whose period does not end a sentence (compared lowercase).
const ABBREVIATIONS: [&str; 6] = ["e.g", "i.e", "cf", "vs", "etc.,", "resp"];

/// Sentences of `text` as byte ranges: cut after `.`, `!` or `?` followed
/// by whitespace (not after an abbreviation such as "e.g."), and at line
/// breaks before a blank line or a list item (`-`, `*`, a digit); pieces are
/// trimmed, ones without letters or digits dropped.
pub fn sentences(text: &str) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let bytes = text.as_bytes();
    let abbreviation = |from: usize, i: usize| {
        let word = text
            .get(from..i)
            .and_then(|t| t.rsplit(|c: char| c.is_whitespace() || c == '(').next())
            .unwrap_or_default()
            .to_lowercase();
        ABBREVIATIONS.contains(&word.as_str())
    };
    for (i, &c) in bytes.iter().enumerate() {
        let next = bytes.get(i + 1);
        let end_here = matches!(c, b'.' | b'!' | b'?')
            && next.is_none_or(u8::is_ascii_whitespace)
            && !(c == b'.' && abbreviation(start, i))
            // A line break ends a sentence only before a blank line or a
            // list item: PDF text breaks lines inside sentences.
            || c == b'\n' && next.is_some_and(|n| matches!(n, b'\n' | b'-' | b'*' | b'0'..=b'9'));
        if end_here {
            out.push(start..i + 1);
            start = i + 1;
        }
    }
    out.push(start..text.len());
    out.into_iter()
        .map(|r| {
            let piece = &text[r.clone()];
            let lead = piece.len() - piece.trim_start().len();
            r.start + lead..r.start + piece.trim_end().len()
        })
        .filter(|r| r.end > r.start && text[r.clone()].chars().any(char::is_alphanumeric))
        .collect()
}

/// Post-hoc attribution for answers that cite nothing: each answer sentence
/// is embedded and compared with every sentence of every source; it is
/// attributed to the source holding its closest sentence when that cosine
/// reaches `min_cosine`. This is evidence of support by similarity, not the
/// model's own citation, and callers should say so.
pub async fn attribute<B: Backend>(
    embedder: &crate::embedder::Embedder<B>,
    answer: &str,
    sources: &[Hit],
    min_cosine: f32,
) -> Result<Vec<Attribution>> {
    let spans = sentences(answer);
    if spans.is_empty() || sources.is_empty() {
        return Ok(Vec::new());
    }
    let mut texts: Vec<&str> = spans.iter().map(|r| &answer[r.clone()]).collect();
    let mut owner = Vec::new();
    for (n, h) in sources.iter().enumerate() {
        for r in sentences(&h.chunk.text) {
            texts.push(&h.chunk.text[r]);
            owner.push(n + 1);
        }
    }
    let e = embedder.encode_async(&texts, true).await?;
    let mut out = Vec::new();
    for (i, span) in spans.iter().enumerate() {
        let best = owner
            .iter()
            .enumerate()
            .map(|(j, &src)| (crate::util::dot(e.row(i), e.row(spans.len() + j)), src))
            .max_by(|a, b| a.0.total_cmp(&b.0));
        if let Some((cosine, source)) = best
            && cosine >= min_cosine
        {
            out.push(Attribution {
                sentence: span.clone(),
                source,
                cosine,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_are_cut_at_terminators_and_trimmed() {
        let t = "Use install.packages(). Then load it!\n- a list item\n- another\nv1.2 stays whole? yes";
        let got: Vec<&str> = sentences(t).into_iter().map(|r| &t[r]).collect();
        assert_eq!(
            got,
            vec![
                "Use install.packages().",
                "Then load it!",
                "- a list item",
                "- another\nv1.2 stays whole?",
                "yes"
            ]
        );
        assert!(sentences("  ... ").is_empty());
        // Abbreviations do not end a sentence.
        let t = "Run it as a user, e.g. foo by crontab -e. Done (i.e. all of it).";
        let got: Vec<&str> = sentences(t).into_iter().map(|r| &t[r]).collect();
        assert_eq!(
            got,
            vec![
                "Run it as a user, e.g. foo by crontab -e.",
                "Done (i.e. all of it)."
            ]
        );
    }

    #[test]
    fn quote_candidates_join_an_announcing_sentence_with_what_follows() {
        let chunk = |text: &str| crate::text::chunk::Chunk {
            text: text.into(),
            source: "d.pdf".into(),
            page: Some(3),
            headings: Vec::new(),
            segment: 0,
            start: 0,
            parent: None,
        };
        let text = "Configure all partially installed packages with the following command.\n\n\
                    $ sudo dpkg --configure -a\n\nShort one.\nAn ordinary sentence that stands alone here.";
        let hit = Hit {
            collection: "c".into(),
            chunk: chunk(text),
            matched: chunk(text),
            score: 1.0,
            cosine: 0.5,
            bm25: 0.0,
        };
        let got = quote_candidates(&[hit.clone(), hit], SourceText::Matched);
        assert_eq!(
            got,
            vec![
                (
                    1,
                    "Configure all partially installed packages with the following command. \
                     $ sudo dpkg --configure -a"
                        .to_string()
                ),
                (
                    1,
                    "An ordinary sentence that stands alone here.".to_string()
                ),
            ]
        );
        assert!(announces("Run this:") && !announces("The following were removed early on."));
    }

    #[test]
    fn a_repeated_line_ends_the_answer_and_is_not_streamed() {
        let mut streamed = String::new();
        let mut out = |s: &str| {
            streamed.push_str(s);
            true
        };
        let mut g = RepeatGuard::new();
        let line = "You can install it with R CMD INSTALL.\n";
        let mut go = true;
        for piece in [
            "You can ",
            "install it with R CMD INSTALL.\n",
            "\n",
            "Short\n",
            "You can ",
            "inst",
        ] {
            go &= g.push(piece, &mut out);
        }
        assert!(go);
        // The second "You can inst…" is held: it may be a repeat.
        assert_eq!(g.text, format!("{line}\nShort\n"));
        assert!(!g.push("all it with R CMD INSTALL.\nMore", &mut out));
        let text = g.finish(&mut out);
        assert_eq!(text, format!("{line}\nShort\n"));
        assert_eq!(streamed, text);
        // A line that diverges from the earlier one is streamed once it does.
        let mut streamed = String::new();
        let mut out = |s: &str| {
            streamed.push_str(s);
            true
        };
        let mut g = RepeatGuard::new();
        for piece in [
            "You can install it with R CMD INSTALL.\n",
            "You can ",
            "also use install.packages()",
        ] {
            assert!(g.push(piece, &mut out));
        }
        assert_eq!(
            g.finish(&mut out),
            format!("{line}You can also use install.packages()")
        );
        assert_eq!(
            streamed,
            format!("{line}You can also use install.packages()")
        );
        // Short repeated lines (code fences, blank lines) are kept.
        let mut g = RepeatGuard::new();
        let mut sink = |_: &str| true;
        for piece in ["```\n", "x <- 1\n", "```\n"] {
            assert!(g.push(piece, &mut sink));
        }
        assert_eq!(g.finish(&mut sink), "```\nx <- 1\n```\n");
    }

    #[test]
    fn citations_are_parsed_and_bounded() {
        assert_eq!(
            parse_citations("See [2] and [1, 3][3]; not [x] or [9] or [].", 3),
            vec![1, 2, 3]
        );
        assert_eq!(parse_citations("no cites", 3), Vec::<usize>::new());
        assert_eq!(parse_citations("[1", 3), Vec::<usize>::new());
    }
}
