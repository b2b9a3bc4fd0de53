//! Continuous batching: many sequences, each with its own KV cache, advanced
//! one token per step in one forward pass.
//!
//! A [`Sequence`] holds everything one generation needs (cache, sampler,
//! stop matcher, text decoder); [`Generator::step`] advances any set of
//! them. Sequences may join or leave between steps — a server admits new
//! requests and drops cancelled ones there (vLLM's and llama.cpp's
//! scheduling loop). A sequence's first step runs its prompt alone
//! (prefill); every later step shares one batched pass
//! ([`crate::models::llama::Llama::forward_batch`]) whose rows are computed
//! exactly as they would be alone, so batching changes no token.
//! Single-request generation ([`Generator::generate_stream`]) is the same
//! loop with one sequence.

use super::processors;
use super::sampler::{self, Rng};
use super::stop::StopMatcher;
use super::{FinishReason, Generation, GenerationConfig, Generator, TokenConstraint};
use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::models::llama::{KvCache, Logits};
use crate::tokenizer::TokenStream;

/// One generation in progress (see the module docs).
pub struct Sequence<'a, B: Backend> {
    cache: KvCache<B>,
    config: GenerationConfig,
    eos: Vec<u32>,
    rng: Rng,
    constraint: Option<Box<dyn TokenConstraint + 'a>>,
    prompt_tokens: usize,
    /// Prompt and generated ids.
    all: Vec<u32>,
    generated: Vec<u32>,
    /// Ids the next step feeds the model (the prompt, then the last token).
    next_input: Vec<u32>,
    stream: TokenStream<'a>,
    stops: StopMatcher,
    /// All text so far, and how much of it [`Sequence::take_text`] returned.
    text: String,
    taken: usize,
    finish: Option<FinishReason>,
}

impl<B: Backend> std::fmt::Debug for Sequence<'_, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sequence")
            .field("prompt_tokens", &self.prompt_tokens)
            .field("generated", &self.generated.len())
            .field("finish", &self.finish)
            .finish()
    }
}

impl<'a, B: Backend> Sequence<'a, B> {
    /// Why the sequence ended, once it has.
    pub fn finish_reason(&self) -> Option<&FinishReason> {
        self.finish.as_ref()
    }

    /// Whether the sequence has ended.
    pub fn is_finished(&self) -> bool {
        self.finish.is_some()
    }

    /// Text that became final since the last call (whole UTF-8, never the
    /// start of a stop sequence).
    pub fn take_text(&mut self) -> String {
        let s = self.text[self.taken..].to_string();
        self.taken = self.text.len();
        s
    }

    /// Tokens in the prompt.
    pub fn prompt_tokens(&self) -> usize {
        self.prompt_tokens
    }

    /// Tokens generated so far (EOS included when it ended the text).
    pub fn generated_tokens(&self) -> usize {
        self.generated.len()
    }

    /// Ends the sequence now ([`FinishReason::Cancelled`]), e.g. when its
    /// client went away; the next step skips it.
    pub fn cancel(&mut self) {
        if self.finish.is_none() {
            self.finish = Some(FinishReason::Cancelled);
        }
    }

    /// The whole result.
    pub fn into_generation(self) -> Generation {
        Generation {
            text: self.text,
            token_ids: self.generated,
            prompt_tokens: self.prompt_tokens,
            finish_reason: self.finish.unwrap_or(FinishReason::Length),
        }
    }

    fn emit(&mut self, piece: &str) {
        self.text.push_str(piece);
    }

    /// Ends the sequence with `reason`, flushing held-back text unless a
    /// stop sequence or a cancel ended it.
    fn end(&mut self, reason: FinishReason) {
        let mut reason = reason;
        if !matches!(reason, FinishReason::Stop(_) | FinishReason::Cancelled) {
            let tail = self.stream.finish();
            let (piece, hit) = self.stops.push(&tail);
            self.emit(&piece);
            if let Some(s) = hit {
                reason = FinishReason::Stop(s);
            } else {
                let rest = self.stops.finish();
                self.emit(&rest);
            }
        }
        self.finish = Some(reason);
    }

    /// Takes the chosen token: EOS, stop sequences and the token budget end
    /// the sequence.
    fn accept(&mut self, id: u32) {
        self.generated.push(id);
        self.all.push(id);
        if self.eos.contains(&id) {
            self.end(FinishReason::Eos);
            return;
        }
        let piece = self.stream.push(id);
        let (piece, hit) = self.stops.push(&piece);
        self.emit(&piece);
        if let Some(s) = hit {
            self.finish = Some(FinishReason::Stop(s));
            return;
        }
        if self.config.stop_on_loop && super::loop_period(&self.generated).is_some() {
            self.end(FinishReason::Loop);
            return;
        }
        self.next_input = vec![id];
        if self.generated.len() >= self.config.max_new_tokens {
            self.end(FinishReason::Length);
        }
    }

    /// Whether the next step's input still fits the cache.
    fn fits(&self) -> bool {
        self.cache.len() + self.next_input.len() <= self.cache.capacity()
    }

    /// Whether picking the next token needs the whole logits row.
    fn needs_logits(&self) -> bool {
        !self.config.is_plain_greedy() || self.constraint.is_some()
    }

    /// The next token from a logits row.
    fn choose(&mut self, mut logits: Vec<f32>) -> u32 {
        // The constraint first (as transformers' prefix-constrained processor
        // before its warpers): top-k / top-p then choose among the allowed
        // tokens, and can never leave none.
        if let Some(c) = self.constraint.as_deref_mut() {
            c.constrain(&mut logits, &self.generated);
        }
        processors::process(&mut logits, &self.all, self.generated.len(), &self.config);
        (if self.config.do_sample {
            sampler::sample(&logits, &mut self.rng)
        } else {
            sampler::argmax(&logits)
        }) as u32
    }
}

impl<B: Backend> Generator<B> {
    /// A sequence for `prompt` (token ids, e.g. from
    /// [`Generator::encode`]) under `config` — greedy or sampled decoding
    /// (beam search runs through [`Generator::generate_ids_stream`]).
    /// `constraint` bans tokens at each step (e.g. a boxed
    /// [`Generator::grammar_constraint`], or `&mut` to one the caller keeps).
    pub fn start<'a>(
        &'a self,
        prompt: &[u32],
        config: &GenerationConfig,
        constraint: Option<Box<dyn TokenConstraint + 'a>>,
    ) -> Result<Sequence<'a, B>> {
        config.validate()?;
        if config.num_beams > 1 {
            return Err(Error::Input(
                "num_beams: batched decoding runs greedy or sampled decoding, not beam search"
                    .into(),
            ));
        }
        let vocab = self.model.config().vocab_size;
        if let Some(&bad) = prompt.iter().find(|&&i| i as usize >= vocab) {
            return Err(Error::Input(format!(
                "prompt token id {bad} is outside the vocabulary (size {vocab})"
            )));
        }
        let capacity = self.check_len(prompt.len(), config.max_new_tokens)?;
        let finish = (config.max_new_tokens == 0).then_some(FinishReason::Length);
        Ok(Sequence {
            cache: self.model.new_cache(capacity)?,
            eos: self.eos_for(config),
            rng: Rng::new(config.seed),
            config: config.clone(),
            constraint,
            prompt_tokens: prompt.len(),
            all: prompt.to_vec(),
            generated: Vec::new(),
            next_input: prompt.to_vec(),
            stream: TokenStream::new(&self.byte_table, &self.special),
            stops: StopMatcher::new(&config.stop),
            text: String::new(),
            taken: 0,
            finish,
        })
    }

    /// Advances every unfinished sequence by one token. Sequences not yet
    /// started run their prompt alone (prefill); the others share one
    /// batched forward pass. Finished sequences are skipped.
    pub async fn step(&self, seqs: &mut [&mut Sequence<'_, B>]) -> Result<()> {
        let b = self.model.backend();
        for s in seqs.iter_mut() {
            if s.finish.is_none() && !s.fits() {
                s.end(FinishReason::Length);
            }
        }
        let (mut fresh, mut running): (Vec<_>, Vec<_>) = seqs
            .iter_mut()
            .filter(|s| s.finish.is_none())
            .partition(|s| s.cache.is_empty());
        for s in fresh.iter_mut() {
            let logits = self
                .model
                .forward(&s.next_input, &mut s.cache, Logits::Last)?;
            let id = if s.needs_logits() {
                let row = b.read_f32(&logits).await?;
                s.choose(row)
            } else {
                first_id(b.read_argmax(&logits).await?)?
            };
            s.accept(id);
        }
        if running.is_empty() {
            return Ok(());
        }
        let ids: Vec<u32> = running
            .iter()
            .map(|s| s.next_input.first().copied().unwrap_or(0))
            .collect();
        let mut caches: Vec<&mut KvCache<B>> = running.iter_mut().map(|s| &mut s.cache).collect();
        let logits = self.model.forward_batch(&ids, &mut caches)?;
        if running.iter().all(|s| !s.needs_logits()) {
            let best = b.read_argmax(&logits).await?;
            for (s, id) in running.iter_mut().zip(best) {
                s.accept(id);
            }
        } else {
            let all = b.read_f32(&logits).await?;
            let vocab = self.model.config().vocab_size;
            for (s, row) in running.iter_mut().zip(all.chunks(vocab)) {
                let id = if s.needs_logits() {
                    s.choose(row.to_vec())
                } else {
                    crate::util::argmax(row) as u32
                };
                s.accept(id);
            }
        }
        Ok(())
    }
}

fn first_id(ids: Vec<u32>) -> Result<u32> {
    ids.first()
        .copied()
        .ok_or_else(|| Error::Input("the model returned no logits".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::cpu::CpuBackend;
    use crate::formats::gguf::{GgmlType, Gguf};
    use crate::testing::{TinyLlama, tiny_llama_gguf};

    fn generator(ty: GgmlType) -> Generator<CpuBackend> {
        // Wide enough that a decode step has ≥ 8 rows in every projection
        // (where plain qlinear would switch to the GEMM path).
        let bytes = tiny_llama_gguf(&TinyLlama {
            matrix_type: ty,
            hidden: 128,
            ffn: 160,
            context: 96,
            ..TinyLlama::default()
        })
        .unwrap();
        let g = Gguf::parse(&bytes, "tiny.gguf").unwrap();
        Generator::from_gguf(CpuBackend::new(), &g).unwrap()
    }

    fn prompts(n: usize) -> Vec<Vec<u32>> {
        (0..n)
            .map(|i| {
                (0..3 + (i * 5) % 17)
                    .map(|j| ((i * 31 + j * 7) % 250) as u32)
                    .collect()
            })
            .collect()
    }

    fn config(i: usize) -> GenerationConfig {
        GenerationConfig {
            max_new_tokens: 6 + i % 9,
            // Every third sequence samples (its own seed), one has a penalty.
            do_sample: i % 3 == 1,
            temperature: 0.9,
            seed: 100 + i as u64,
            repetition_penalty: if i == 4 { 1.3 } else { 1.0 },
            // Ids 0..256 are bytes: the tiny model's EOS must not end every run early.
            eos_token_ids: vec![u32::MAX],
            ..Default::default()
        }
    }

    #[test]
    fn forward_batch_rows_equal_single_sequence_logits_bitwise() {
        for ty in [GgmlType::Q8_0, GgmlType::Q4_1, GgmlType::Q4_0] {
            let g = generator(ty);
            let m = g.model();
            let ps = prompts(12);
            let mut alone = Vec::new();
            let mut caches = Vec::new();
            for p in &ps {
                let mut c = m.new_cache(64).unwrap();
                m.forward(p, &mut c, Logits::Last).unwrap();
                let mut c2 = m.new_cache(64).unwrap();
                c2.copy_from(m.backend(), &c).unwrap();
                let l = m.forward(&[7], &mut c, Logits::Last).unwrap();
                alone.push(pollster::block_on(m.backend().read_f32(&l)).unwrap());
                caches.push(c2);
            }
            let mut refs: Vec<&mut KvCache<CpuBackend>> = caches.iter_mut().collect();
            let ids = vec![7u32; ps.len()];
            let l = m.forward_batch(&ids, &mut refs).unwrap();
            let all = pollster::block_on(m.backend().read_f32(&l)).unwrap();
            let vocab = m.config().vocab_size;
            for (i, row) in all.chunks(vocab).enumerate() {
                assert_eq!(row, alone[i].as_slice(), "{ty:?} row {i}");
                assert_eq!(caches[i].len(), ps[i].len() + 1);
            }
        }
    }

    #[test]
    fn batched_generation_equals_each_sequence_alone_with_staggered_joins() {
        let g = generator(GgmlType::Q4_1);
        let ps = prompts(10);
        let alone: Vec<Generation> = ps
            .iter()
            .enumerate()
            .map(|(i, p)| {
                pollster::block_on(g.generate_ids_stream(p, &config(i), |_| true)).unwrap()
            })
            .collect();
        // Sequences join two at a time, one per step, and leave when done.
        let mut waiting: Vec<(usize, Sequence<'_, CpuBackend>)> = ps
            .iter()
            .enumerate()
            .map(|(i, p)| (i, g.start(p, &config(i), None).unwrap()))
            .collect();
        waiting.reverse();
        let mut active: Vec<(usize, Sequence<'_, CpuBackend>)> = Vec::new();
        let mut texts = vec![String::new(); ps.len()];
        let mut done: Vec<Option<Generation>> = vec![None; ps.len()];
        let mut max_batch = 0;
        while !waiting.is_empty() || !active.is_empty() {
            for _ in 0..2 {
                if let Some(s) = waiting.pop() {
                    active.push(s);
                }
            }
            max_batch = max_batch.max(active.len());
            let mut seqs: Vec<&mut Sequence<'_, CpuBackend>> =
                active.iter_mut().map(|(_, s)| s).collect();
            pollster::block_on(g.step(&mut seqs)).unwrap();
            for (i, s) in active.iter_mut() {
                texts[*i].push_str(&s.take_text());
            }
            let (fin, rest): (Vec<_>, Vec<_>) =
                active.into_iter().partition(|(_, s)| s.is_finished());
            active = rest;
            for (i, s) in fin {
                done[i] = Some(s.into_generation());
            }
        }
        assert!(
            max_batch >= 8,
            "the test must batch ≥ 8 sequences, got {max_batch}"
        );
        for (i, a) in alone.iter().enumerate() {
            let b = done[i].as_ref().unwrap();
            assert_eq!(b, a, "sequence {i}");
            assert_eq!(texts[i], a.text, "streamed text of sequence {i}");
        }
    }

    #[test]
    fn a_cancelled_sequence_is_skipped_and_the_others_continue() {
        let g = generator(GgmlType::Q8_0);
        let ps = prompts(3);
        let mut seqs: Vec<Sequence<'_, CpuBackend>> = ps
            .iter()
            .enumerate()
            .map(|(i, p)| g.start(p, &config(i * 3), None).unwrap())
            .collect();
        let mut refs: Vec<&mut Sequence<'_, CpuBackend>> = seqs.iter_mut().collect();
        pollster::block_on(g.step(&mut refs)).unwrap();
        refs[1].cancel();
        pollster::block_on(g.step(&mut refs)).unwrap();
        assert_eq!(seqs[1].generated_tokens(), 1);
        assert_eq!(seqs[1].finish_reason(), Some(&FinishReason::Cancelled));
        assert_eq!(seqs[0].generated_tokens(), 2);
        assert_eq!(seqs[2].generated_tokens(), 2);
    }

    #[test]
    fn ignore_eos_generates_the_whole_budget() {
        let g = generator(GgmlType::Q8_0);
        let first = pollster::block_on(g.generate_ids_stream(&[5, 6, 7], &config(0), |_| true))
            .unwrap()
            .token_ids[0];
        let stop_at_first = GenerationConfig {
            max_new_tokens: 5,
            eos_token_ids: vec![first],
            ..Default::default()
        };
        let out = pollster::block_on(g.generate_ids_stream(&[5, 6, 7], &stop_at_first, |_| true))
            .unwrap();
        assert_eq!(
            (out.token_ids.len(), out.finish_reason),
            (1, FinishReason::Eos)
        );
        let ignore = GenerationConfig {
            ignore_eos: true,
            ..stop_at_first
        };
        let out = pollster::block_on(g.generate_ids_stream(&[5, 6, 7], &ignore, |_| true)).unwrap();
        assert_eq!(
            (out.token_ids.len(), out.finish_reason),
            (5, FinishReason::Length)
        );
    }

    #[test]
    fn beam_search_is_refused_by_name() {
        let g = generator(GgmlType::Q8_0);
        let c = GenerationConfig {
            num_beams: 2,
            ..Default::default()
        };
        let e = g.start(&[1, 2], &c, None).unwrap_err().to_string();
        assert!(e.contains("num_beams"), "{e}");
    }
}
