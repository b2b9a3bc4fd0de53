//! Text generation on a decoder: `Generator::generate(prompt, GenerationConfig)`.
//!
//! - [`config`]: [`GenerationConfig`] (names and defaults of `transformers`).
//! - [`processors`]: logits processors in `transformers`' order.
//! - [`sampler`]: argmax and seeded sampling.
//! - [`chat_template`]: Jinja chat templates (ChatML for SmolLM2).
//! - [`stop`]: stop sequences over a text stream.
//! - [`constraint`]: constrained decoding (valid source citations).
//! - [`regex_constraint`], [`json_schema`]: output held to a regex, a choice list or a JSON Schema.
//! - [`batch`]: continuous batching ([`Sequence`], [`Generator::step`]).
//!
//! Greedy and sampled decoding stream text through a callback as soon as it
//! is whole UTF-8 and cannot be the start of a stop sequence; beam search
//! delivers its best hypothesis at the end.

pub mod batch;
pub mod chat_template;
pub mod config;
pub mod constraint;
pub mod json_schema;
pub mod processors;
pub mod regex_constraint;
pub mod sampler;
pub mod stop;

pub use batch::Sequence;
pub use chat_template::{ChatMessage, ChatTemplate};
pub use config::GenerationConfig;
pub use constraint::{CitationConstraint, TokenConstraint};
pub use regex_constraint::{RegexConstraint, RegexGrammar, TriggeredConstraint};

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::formats::gguf::{Gguf, Value};
use crate::models::llama::{KvCache, Llama, Logits};
use crate::tokenizer::{TokenStream, Tokenizer};

/// Why generation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FinishReason {
    /// The model produced an end-of-sequence token.
    Eos,
    /// A stop sequence appeared (it is not part of the text).
    Stop(String),
    /// `max_new_tokens` were generated.
    Length,
    /// The streaming callback asked to stop.
    Cancelled,
    /// The output began to repeat itself (`stop_on_loop`): the loop's
    /// copies generated so far stay in the text.
    Loop,
}

/// The period of a repetition loop at the end of `ids`: the smallest unit of
/// `p` ≤ 32 tokens that the tail repeats back to back at least
/// `max(4, ⌈32 / p⌉)` times (32 copies of one token, 16 of a pair, 8 of four
/// tokens, 4 of anything longer). Ordinary text, lists and tables do not
/// repeat one unit that often; a degenerate loop does within a few lines.
pub fn loop_period(ids: &[u32]) -> Option<usize> {
    (1..=32usize).find(|&p| {
        let need = p * 4usize.max(32usize.div_ceil(p));
        ids.len() >= need
            && ids
                .get(ids.len() - need..)
                .is_some_and(|tail| tail.chunks_exact(p).all(|c| Some(c) == tail.get(..p)))
    })
}

/// The result of one generation.
#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    /// The generated text (without the prompt, EOS or stop sequence).
    pub text: String,
    /// Generated token ids (EOS included when it ended the text).
    pub token_ids: Vec<u32>,
    /// Tokens in the prompt.
    pub prompt_tokens: usize,
    /// Why it ended.
    pub finish_reason: FinishReason,
}

/// Perplexity of a text under the model.
#[derive(Debug, Clone, PartialEq)]
pub struct Perplexity {
    /// `exp(mean negative log-likelihood)` over the scored tokens.
    pub perplexity: f64,
    /// Mean negative log-likelihood in nats per token.
    pub mean_nll: f64,
    /// Tokens scored (all but the first).
    pub tokens: usize,
    /// Forward windows run (more than one when the text exceeds the window).
    pub windows: usize,
}

/// A decoder with its tokenizer and chat template, ready to generate.
pub struct Generator<B: Backend> {
    model: Llama<B>,
    tokenizer: Tokenizer,
    template: Option<ChatTemplate>,
    bos_id: Option<u32>,
    eos_ids: Vec<u32>,
    byte_table: Vec<Vec<u8>>,
    special: Vec<bool>,
}

impl<B: Backend> std::fmt::Debug for Generator<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Generator")
            .field("model", &self.model)
            .field("eos_ids", &self.eos_ids)
            .finish()
    }
}

impl<B: Backend> Generator<B> {
    /// Loads model, tokenizer and chat template from one GGUF file.
    pub fn from_gguf(backend: B, g: &Gguf<'_>) -> Result<Self> {
        let model = Llama::load(backend, g)?;
        let tokenizer = Tokenizer::from_gguf(&g.header)?;
        if tokenizer.vocab_size() != model.config().vocab_size {
            return Err(Error::Model {
                file: g.name().into(),
                detail: format!(
                    "tokenizer has {} tokens but token_embd.weight has {} rows",
                    tokenizer.vocab_size(),
                    model.config().vocab_size
                ),
            });
        }
        let h = &g.header;
        let id = |k: &str| h.get(k).and_then(Value::as_u64).map(|v| v as u32);
        let add_bos = h
            .get("tokenizer.ggml.add_bos_token")
            .map(|v| matches!(v, Value::Bool(true)))
            .unwrap_or(false);
        let mut eos_ids: Vec<u32> = id("tokenizer.ggml.eos_token_id").into_iter().collect();
        // Chat models end a turn with their end-of-turn marker; llama.cpp treats
        // `tokenizer.ggml.eot_token_id` and `<|im_end|>`-style tokens as end of generation too.
        if let Some(eot) = id("tokenizer.ggml.eot_token_id") {
            eos_ids.push(eot);
        }
        for marker in ["<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>"] {
            if let Some(i) = tokenizer.token_to_id(marker)
                && tokenizer.is_special(i)
            {
                eos_ids.push(i);
            }
        }
        eos_ids.sort_unstable();
        eos_ids.dedup();
        let byte_table = tokenizer.byte_level_table()?;
        let mut special = tokenizer.special_flags();
        special.resize(byte_table.len(), false);
        Ok(Generator {
            model,
            template: ChatTemplate::from_gguf(h)?,
            bos_id: if add_bos {
                id("tokenizer.ggml.bos_token_id")
            } else {
                None
            },
            tokenizer,
            eos_ids,
            byte_table,
            special,
        })
    }

    /// The decoder.
    pub fn model(&self) -> &Llama<B> {
        &self.model
    }

    /// The decoder, mutably (to set or swap a LoRA adapter).
    pub fn model_mut(&mut self) -> &mut Llama<B> {
        &mut self.model
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// The ids that end generation by default.
    pub fn eos_ids(&self) -> &[u32] {
        &self.eos_ids
    }

    /// The model's chat template (ChatML when the file has none).
    pub fn chat_template(&self) -> Result<ChatTemplate> {
        match &self.template {
            Some(t) => Ok(t.clone()),
            None => ChatTemplate::new(chat_template::CHATML, "", ""),
        }
    }

    /// Renders a conversation with the model's chat template.
    pub fn apply_chat_template(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<String> {
        self.chat_template()?
            .render(messages, add_generation_prompt)
    }

    /// Token ids of a prompt (BOS first when the model asks for it; special
    /// tokens such as `<|im_start|>` in the text are matched whole).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let mut ids: Vec<u32> = self.bos_id.into_iter().collect();
        ids.extend(self.tokenizer.encode(text, false)?.ids);
        Ok(ids)
    }

    /// Decodes generated ids to text (special tokens dropped).
    pub fn decode(&self, ids: &[u32]) -> String {
        let mut s = TokenStream::new(&self.byte_table, &self.special);
        let mut out: String = ids.iter().map(|&i| s.push(i)).collect();
        out.push_str(&s.finish());
        out
    }

    /// Logits of the position after `ids` (one prefill pass).
    pub async fn next_logits(&self, ids: &[u32]) -> Result<Vec<f32>> {
        let mut cache = self.model.new_cache(self.check_len(ids.len(), 0)?)?;
        let logits = self.model.forward(ids, &mut cache, Logits::Last)?;
        self.model.backend().read_f32(&logits).await
    }

    fn check_len(&self, prompt: usize, new: usize) -> Result<usize> {
        let ctx = self.model.config().context_length;
        if prompt == 0 {
            return Err(Error::Input("the prompt is empty".into()));
        }
        if prompt >= ctx {
            return Err(Error::Input(format!(
                "the prompt has {prompt} tokens, but the model's context is {ctx} (leave room for at least one new token)"
            )));
        }
        // Saturating: `--max-new-tokens` of usize::MAX means "up to the context".
        Ok(prompt.saturating_add(new.max(1)).min(ctx))
    }

    /// Generates a continuation of `prompt` (already formatted, e.g. by
    /// [`Generator::apply_chat_template`]).
    pub async fn generate(&self, prompt: &str, config: &GenerationConfig) -> Result<Generation> {
        self.generate_stream(prompt, config, |_| true).await
    }

    /// Like [`Generator::generate`], calling `on_text` with each new piece of
    /// text as soon as it is final; returning `false` from it stops generation.
    pub async fn generate_stream(
        &self,
        prompt: &str,
        config: &GenerationConfig,
        on_text: impl FnMut(&str) -> bool,
    ) -> Result<Generation> {
        let ids = self.encode(prompt)?;
        self.generate_ids_stream(&ids, config, on_text).await
    }

    /// Like [`Generator::generate_stream`] with `constraint` banning tokens
    /// at each step (greedy or sampled decoding; not beam search).
    pub async fn generate_constrained_stream(
        &self,
        prompt: &str,
        config: &GenerationConfig,
        constraint: &mut dyn TokenConstraint,
        on_text: impl FnMut(&str) -> bool,
    ) -> Result<Generation> {
        config.validate()?;
        if config.num_beams > 1 {
            return Err(Error::Input(
                "constrained decoding runs greedy or sampled decoding, not beam search (num_beams 1)"
                    .into(),
            ));
        }
        // decode_loop checks the prompt against the context length.
        let ids = self.encode(prompt)?;
        self.decode_loop(&ids, config, Some(constraint), on_text)
            .await
    }

    /// A [`RegexConstraint`] over this model's vocabulary: the output stays
    /// within `grammar` and ends (with the EOS ids `config` uses) only where
    /// it matches.
    pub fn grammar_constraint(
        &self,
        grammar: RegexGrammar,
        config: &GenerationConfig,
    ) -> RegexConstraint<'_> {
        RegexConstraint::new(
            grammar,
            &self.byte_table,
            &self.special,
            self.eos_for(config),
        )
    }

    /// A [`CitationConstraint`] over this model's vocabulary for a prompt
    /// with `sources` numbered sources.
    pub fn citation_constraint(&self, sources: usize) -> CitationConstraint<'_> {
        CitationConstraint::new(&self.byte_table, &self.special, sources)
    }

    /// Like [`Generator::generate_stream`] from prompt token ids (no
    /// tokenization: exactly these ids are the prompt).
    pub async fn generate_ids_stream(
        &self,
        ids: &[u32],
        config: &GenerationConfig,
        on_text: impl FnMut(&str) -> bool,
    ) -> Result<Generation> {
        config.validate()?;
        if ids.is_empty() {
            return Err(Error::Input("the prompt has no tokens".into()));
        }
        let vocab = self.model.config().vocab_size;
        if let Some(&bad) = ids.iter().find(|&&i| i as usize >= vocab) {
            return Err(Error::Input(format!(
                "prompt token id {bad} is outside the vocabulary (size {vocab})"
            )));
        }
        let ids = ids.to_vec();
        if config.num_beams > 1 {
            let mut on_text = on_text;
            let g = self.beam_search(&ids, config).await?;
            on_text(&g.text);
            return Ok(g);
        }
        self.decode_loop(&ids, config, None, on_text).await
    }

    fn eos_for(&self, config: &GenerationConfig) -> Vec<u32> {
        if config.ignore_eos {
            Vec::new()
        } else if config.eos_token_ids.is_empty() {
            self.eos_ids.clone()
        } else {
            config.eos_token_ids.clone()
        }
    }

    async fn decode_loop<'a>(
        &'a self,
        prompt: &[u32],
        config: &GenerationConfig,
        constraint: Option<&'a mut dyn TokenConstraint>,
        mut on_text: impl FnMut(&str) -> bool,
    ) -> Result<Generation> {
        let boxed = constraint.map(|c| Box::new(c) as Box<dyn TokenConstraint + 'a>);
        let mut seq = self.start(prompt, config, boxed)?;
        while !seq.is_finished() {
            self.step(&mut [&mut seq]).await?;
            let piece = seq.take_text();
            if !piece.is_empty() && !on_text(&piece) && !seq.is_finished() {
                seq.cancel();
            }
        }
        Ok(seq.into_generation())
    }

    /// Beam search as in `transformers` (`num_beams`, `length_penalty`,
    /// `early_stopping`): log-probabilities are processed (repetition
    /// penalty, no-repeat n-gram), 2·beams candidates are ranked per step,
    /// finished hypotheses are scored `sum_logprobs / len^length_penalty`
    /// with `len` the generated tokens including EOS.
    // Indices are the search's own bookkeeping: `bi` ranges over `beams`
    // (as long as `pending` and `caches`), `t` over the vocabulary row just
    // computed, `keep ≥ 1` (num_beams ≥ 1 is validated), `finished[nb − 1]`
    // is read only once `finished.len() ≥ nb`.
    #[allow(clippy::indexing_slicing)]
    async fn beam_search(&self, prompt: &[u32], config: &GenerationConfig) -> Result<Generation> {
        let b = self.model.backend();
        let nb = config.num_beams;
        let capacity = self.check_len(prompt.len(), config.max_new_tokens)?;
        let eos = self.eos_for(config);
        let score_of = |sum: f32, len: usize| sum / (len.max(1) as f32).powf(config.length_penalty);
        // Prefill once and copy the cache into every beam.
        let mut first = self.model.new_cache(capacity)?;
        let logits = self.model.forward(prompt, &mut first, Logits::Last)?;
        let mut pending: Vec<Vec<f32>> = vec![b.read_f32(&logits).await?];
        let mut caches = vec![first];
        let mut spare: Vec<KvCache<B>> = Vec::new();
        for _ in 0..nb {
            spare.push(self.model.new_cache(capacity)?);
        }
        for _ in 1..nb {
            caches.push(self.model.new_cache(capacity)?);
        }
        // Running beams: (generated ids, summed log-prob). One beam until the first step.
        let mut beams: Vec<(Vec<u32>, f32)> = vec![(Vec::new(), 0.0)];
        let mut finished: Vec<(Vec<u32>, f32)> = Vec::new();
        let mut step = 0;
        while step < config.max_new_tokens && !beams.is_empty() {
            let mut cands: Vec<(f32, usize, u32)> = Vec::new();
            for (bi, (ids, sum)) in beams.iter().enumerate() {
                let mut lp = processors::log_softmax(&pending[bi]);
                let mut seq = prompt.to_vec();
                seq.extend(ids);
                processors::repetition_penalty(&mut lp, &seq, config.repetition_penalty);
                processors::no_repeat_ngram(&mut lp, &seq, config.no_repeat_ngram_size);
                let mut idx: Vec<usize> = (0..lp.len()).collect();
                let keep = (2 * nb).min(idx.len());
                idx.select_nth_unstable_by(keep - 1, |&x, &y| lp[y].total_cmp(&lp[x]));
                for &t in &idx[..keep] {
                    if lp[t].is_finite() {
                        cands.push((sum + lp[t], bi, t as u32));
                    }
                }
            }
            cands.sort_by(|x, y| y.0.total_cmp(&x.0));
            let mut next: Vec<(Vec<u32>, f32, usize)> = Vec::new();
            for (rank, &(s, bi, t)) in cands.iter().enumerate() {
                if eos.contains(&t) {
                    // As in transformers, an EOS ranked below the first num_beams is ignored.
                    if rank < nb {
                        let mut ids = beams[bi].0.clone();
                        ids.push(t);
                        let len = ids.len();
                        finished.push((ids, score_of(s, len)));
                    }
                } else {
                    let mut ids = beams[bi].0.clone();
                    ids.push(t);
                    next.push((ids, s, bi));
                }
                if next.len() == nb {
                    break;
                }
            }
            step += 1;
            finished.sort_by(|x, y| y.1.total_cmp(&x.1));
            finished.truncate(nb);
            let done = finished.len() >= nb
                && (config.early_stopping
                    || next
                        .first()
                        .is_none_or(|(ids, s, _)| score_of(*s, ids.len()) <= finished[nb - 1].1));
            if done || next.is_empty() || step >= config.max_new_tokens {
                for (ids, s, _) in next {
                    let len = ids.len();
                    finished.push((ids, score_of(s, len)));
                }
                beams.clear();
                break;
            }
            if prompt.len() + step >= capacity {
                for (ids, s, _) in next {
                    let len = ids.len();
                    finished.push((ids, score_of(s, len)));
                }
                beams.clear();
                break;
            }
            // Reorder caches: beam i continues from its parent's cache.
            for (i, (_, _, parent)) in next.iter().enumerate() {
                spare[i].copy_from(b, &caches[*parent])?;
            }
            std::mem::swap(&mut caches, &mut spare);
            pending.clear();
            for (i, (ids, _, _)) in next.iter().enumerate() {
                let Some(&last) = ids.last() else {
                    return Err(Error::Input("a beam without tokens".into()));
                };
                let logits = self.model.forward(&[last], &mut caches[i], Logits::Last)?;
                pending.push(b.read_f32(&logits).await?);
            }
            beams = next.into_iter().map(|(ids, s, _)| (ids, s)).collect();
        }
        finished.sort_by(|x, y| y.1.total_cmp(&x.1));
        let (ids, _) = finished
            .into_iter()
            .next()
            .ok_or_else(|| Error::Input("beam search produced no hypothesis".into()))?;
        let ended_eos = ids.last().is_some_and(|t| eos.contains(t));
        let body: Vec<u32> = if ended_eos {
            ids.iter()
                .take(ids.len().saturating_sub(1))
                .copied()
                .collect()
        } else {
            ids.clone()
        };
        let mut text = self.decode(&body);
        let mut finish = if ended_eos {
            FinishReason::Eos
        } else {
            FinishReason::Length
        };
        if let Some((at, s)) = stop::first_stop(&text, &config.stop) {
            text.truncate(at);
            finish = FinishReason::Stop(s);
        }
        Ok(Generation {
            text,
            token_ids: ids,
            prompt_tokens: prompt.len(),
            finish_reason: finish,
        })
    }

    /// Perplexity of `text`, scoring every token after the first. Texts longer
    /// than `window` tokens (default: the context length) are scored with a
    /// sliding window advancing by `stride` tokens; each window conditions on
    /// up to `window − stride` earlier tokens (`transformers`' recipe).
    pub async fn perplexity(
        &self,
        text: &str,
        window: Option<usize>,
        stride: Option<usize>,
    ) -> Result<Perplexity> {
        let b = self.model.backend();
        let ids = self.encode(text)?;
        if ids.len() < 2 {
            return Err(Error::Input(format!(
                "perplexity needs at least 2 tokens, the text has {}",
                ids.len()
            )));
        }
        let ctx = self.model.config().context_length;
        let window = window.unwrap_or(ctx);
        let stride = stride.unwrap_or(window / 2).max(1);
        if window < 2 || window > ctx || stride > window {
            return Err(Error::Input(format!(
                "perplexity window {window} must be in 2..={ctx} and stride {stride} at most the window"
            )));
        }
        let mut cache = self.model.new_cache(window)?;
        let vocab = self.model.config().vocab_size;
        let (mut nll, mut scored, mut windows) = (0f64, 0usize, 0usize);
        // `done` = index of the last token already scored.
        let mut done = 0usize;
        let mut begin = 0usize;
        loop {
            let end = (begin + window).min(ids.len());
            cache.truncate(0);
            let span = ids.get(begin..end).unwrap_or_default();
            let logits = self.model.forward(span, &mut cache, Logits::All)?;
            let logits = b.read_f32(&logits).await?;
            windows += 1;
            // Position p predicts token p + 1; score targets done+1..end.
            let rows = logits.chunks_exact(vocab.max(1));
            // Row r predicts span[r + 1] = ids[begin + r + 1]; the first
            // `done − begin` of those were scored by the previous window.
            for (row, &target) in rows
                .zip(span.iter().skip(1))
                .skip(done.saturating_sub(begin))
            {
                let lp = processors::log_softmax(row);
                nll -= f64::from(
                    lp.get(target as usize)
                        .copied()
                        .unwrap_or(f32::NEG_INFINITY),
                );
                scored += 1;
            }
            done = end - 1;
            if end == ids.len() {
                break;
            }
            begin += stride;
        }
        let mean_nll = nll / scored as f64;
        Ok(Perplexity {
            perplexity: mean_nll.exp(),
            mean_nll,
            tokens: scored,
            windows,
        })
    }
}
