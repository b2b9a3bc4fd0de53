//! `GenerationConfig`: the knobs of `transformers`' `generate()`, with the same
//! names, defaults and meaning.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How to pick the next tokens. Defaults are `transformers`' (greedy).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GenerationConfig {
    /// Most tokens to generate after the prompt.
    pub max_new_tokens: usize,
    /// Sample from the distribution instead of taking the most likely token.
    pub do_sample: bool,
    /// Divides the logits before sampling (> 0; lower is sharper). Sampling only.
    pub temperature: f32,
    /// Keep only the `top_k` most likely tokens (0 = off). Sampling only.
    pub top_k: usize,
    /// Keep the smallest set of tokens whose probability sums to at least
    /// `top_p` (in (0, 1]; 1 = off). Sampling only.
    pub top_p: f32,
    /// Values above 1 discourage tokens already in the prompt or output
    /// (CTRL's rule: positive logits are divided, negative ones multiplied); 1 = off.
    pub repetition_penalty: f32,
    /// Forbid repeating any n-gram of this size (0 = off).
    pub no_repeat_ngram_size: usize,
    /// OpenAI's `frequency_penalty` (in −2..=2; 0 = off): subtracted from a
    /// token's logit once per time it was already generated (prompt tokens
    /// do not count).
    pub frequency_penalty: f32,
    /// OpenAI's `presence_penalty` (in −2..=2; 0 = off): subtracted once from
    /// the logit of every token already generated.
    pub presence_penalty: f32,
    /// Beam search width (1 = no beam search).
    pub num_beams: usize,
    /// Beam scores are divided by `length^length_penalty` (> 0 favours longer).
    pub length_penalty: f32,
    /// Beam search stops as soon as `num_beams` finished hypotheses exist.
    pub early_stopping: bool,
    /// Text that ends generation; it is not included in the output.
    pub stop: Vec<String>,
    /// Token ids that end generation; empty = the model's EOS ids.
    pub eos_token_ids: Vec<u32>,
    /// Generate `max_new_tokens` whatever the model says: no id ends
    /// generation (llama.cpp's `ignore_eos`, for benchmarks). Stop
    /// sequences still apply.
    pub ignore_eos: bool,
    /// Seed of the sampler (same seed, same prompt, same model → same text).
    pub seed: u64,
    /// End generation ([`super::FinishReason::Loop`]) once the output
    /// repeats one unit of tokens back to back (see [`super::loop_period`]):
    /// a small model's degenerate "1.1.1.1…" stops instead of running to
    /// `max_new_tokens`. Greedy and sampled decoding; off by default, always
    /// on for RAG answers.
    pub stop_on_loop: bool,
}

impl Default for GenerationConfig {
    fn default() -> Self {
        GenerationConfig {
            max_new_tokens: 256,
            do_sample: false,
            temperature: 1.0,
            top_k: 50,
            top_p: 1.0,
            repetition_penalty: 1.0,
            no_repeat_ngram_size: 0,
            frequency_penalty: 0.0,
            presence_penalty: 0.0,
            num_beams: 1,
            length_penalty: 1.0,
            early_stopping: false,
            stop: Vec::new(),
            eos_token_ids: Vec::new(),
            ignore_eos: false,
            seed: 42,
            stop_on_loop: false,
        }
    }
}

impl GenerationConfig {
    /// Whether the next token is simply the most likely one: greedy, with no
    /// processor that changes which logit is largest (repetition penalty,
    /// no-repeat n-grams). Then the backend's argmax decides and only the
    /// token id is read back from a GPU.
    pub fn is_plain_greedy(&self) -> bool {
        !self.do_sample
            && self.num_beams <= 1
            && self.repetition_penalty == 1.0
            && self.no_repeat_ngram_size == 0
            && self.frequency_penalty == 0.0
            && self.presence_penalty == 0.0
    }

    /// Rejects values `transformers` rejects, naming the field.
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &str, why: String| Err(Error::Input(format!("{field}: {why}")));
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return bad(
                "temperature",
                format!(
                    "must be a strictly positive number, got {} (use do_sample = false for greedy decoding)",
                    self.temperature
                ),
            );
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return bad("top_p", format!("must be in (0, 1], got {}", self.top_p));
        }
        if !(self.repetition_penalty.is_finite() && self.repetition_penalty > 0.0) {
            return bad(
                "repetition_penalty",
                format!("must be strictly positive, got {}", self.repetition_penalty),
            );
        }
        for (field, v) in [
            ("frequency_penalty", self.frequency_penalty),
            ("presence_penalty", self.presence_penalty),
        ] {
            if !(-2.0..=2.0).contains(&v) {
                return bad(field, format!("must be in [-2, 2], got {v}"));
            }
        }
        if self.num_beams == 0 {
            return bad("num_beams", "must be at least 1".into());
        }
        if self.num_beams > 1 && self.do_sample {
            return bad(
                "num_beams",
                "beam search with sampling is not supported; use do_sample = false with num_beams > 1"
                    .into(),
            );
        }
        if !self.length_penalty.is_finite() {
            return bad(
                "length_penalty",
                format!("must be finite, got {}", self.length_penalty),
            );
        }
        if self.stop.iter().any(String::is_empty) {
            return bad("stop", "stop sequences must not be empty".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_values_name_the_field() {
        let cases: Vec<(GenerationConfig, &str)> = vec![
            (
                GenerationConfig {
                    temperature: -1.0,
                    ..Default::default()
                },
                "temperature",
            ),
            (
                GenerationConfig {
                    temperature: 0.0,
                    ..Default::default()
                },
                "temperature",
            ),
            (
                GenerationConfig {
                    top_p: 0.0,
                    ..Default::default()
                },
                "top_p: must be in (0, 1], got 0",
            ),
            (
                GenerationConfig {
                    top_p: 1.5,
                    ..Default::default()
                },
                "top_p",
            ),
            (
                GenerationConfig {
                    repetition_penalty: 0.0,
                    ..Default::default()
                },
                "repetition_penalty",
            ),
            (
                GenerationConfig {
                    num_beams: 0,
                    ..Default::default()
                },
                "num_beams",
            ),
            (
                GenerationConfig {
                    num_beams: 2,
                    do_sample: true,
                    ..Default::default()
                },
                "num_beams",
            ),
            (
                GenerationConfig {
                    stop: vec![String::new()],
                    ..Default::default()
                },
                "stop",
            ),
        ];
        for (c, want) in cases {
            let e = c.validate().unwrap_err().to_string();
            assert!(e.contains(want), "{e} should mention {want}");
        }
        GenerationConfig::default().validate().unwrap();
    }
}
