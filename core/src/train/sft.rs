//! Supervised fine-tuning of a LoRA adapter on the Llama decoder (TRL's
//! `SFTTrainer` with PEFT): chat-formatted examples, completion-only loss
//! (prompt tokens are context, not targets), packing of examples into
//! fixed-length sequences, AdamW on the adapter's `A`/`B` only (the base is
//! frozen), gradient clipping and accumulation, a seeded LoRA dropout.
//!
//! Packing concatenates examples (each ending in the end-of-turn token) and
//! cuts the stream into `seq_len` pieces, as TRL's `packing=True` does;
//! attention is causal over the whole packed sequence.

use candle_core::{D, Device, Tensor};

use super::classify::{EpochLog, StepLog};
use super::optim::{AdamW, AdamWConfig, make_params};
use super::schedule::{Decay, Schedule};
use super::step;
use crate::backend::cpu::CpuBackend;
use crate::error::{Error, Result};
use crate::models::llama::Llama;

/// Hyper-parameters (defaults: common PEFT/TRL LoRA settings).
#[derive(Debug, Clone, PartialEq)]
pub struct SftConfig {
    /// Passes over the packed sequences.
    pub epochs: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Decay after warm-up.
    pub decay: Decay,
    /// Share of steps spent warming up.
    pub warmup_ratio: f64,
    /// AdamW settings (weight decay 0 by default for adapters).
    pub adamw: AdamWConfig,
    /// Gradient-norm clip (0: off).
    pub max_grad_norm: f64,
    /// Sequences per optimizer step.
    pub grad_accum: usize,
    /// Tokens per packed sequence.
    pub seq_len: usize,
    /// Seed of shuffles and dropout.
    pub seed: u64,
    /// Stop after this many optimizer steps (the schedule ends there too).
    pub max_steps: Option<u64>,
}

impl Default for SftConfig {
    fn default() -> Self {
        Self {
            epochs: 1,
            lr: 2e-4,
            decay: Decay::Cosine,
            warmup_ratio: 0.03,
            adamw: AdamWConfig {
                weight_decay: 0.0,
                ..AdamWConfig::default()
            },
            max_grad_norm: 1.0,
            grad_accum: 1,
            seq_len: 256,
            seed: 42,
            max_steps: None,
        }
    }
}

/// A token sequence with, per position, whether that token is a target
/// (a completion token) of the loss.
#[derive(Debug, Clone, PartialEq)]
pub struct Sequence {
    /// Token ids.
    pub ids: Vec<u32>,
    /// `target[i]`: token `i` is predicted (and counted) by the loss.
    pub target: Vec<bool>,
}

impl Sequence {
    /// Targets in the sequence (positions after the first that are completion tokens).
    pub fn targets(&self) -> usize {
        self.target.iter().skip(1).filter(|&&t| t).count()
    }
}

/// One example: prompt ids (context) and completion ids (targets).
pub fn example(prompt: Vec<u32>, completion: Vec<u32>) -> Sequence {
    let target = std::iter::repeat_n(false, prompt.len())
        .chain(std::iter::repeat_n(true, completion.len()))
        .collect();
    let mut ids = prompt;
    ids.extend(completion);
    Sequence { ids, target }
}

/// Packs examples into sequences of at most `seq_len` tokens: with
/// `packing`, the concatenated stream is cut every `seq_len` tokens; without,
/// each example is its own sequence (truncated to `seq_len`). Pieces with no
/// target are dropped.
pub fn pack(examples: &[Sequence], seq_len: usize, packing: bool) -> Vec<Sequence> {
    let seq_len = seq_len.max(2);
    let mut out = Vec::new();
    if packing {
        let (mut ids, mut target) = (Vec::new(), Vec::new());
        for e in examples {
            ids.extend(&e.ids);
            target.extend(&e.target);
        }
        for (i, t) in ids.chunks(seq_len).zip(target.chunks(seq_len)) {
            out.push(Sequence {
                ids: i.to_vec(),
                target: t.to_vec(),
            });
        }
    } else {
        for e in examples {
            let n = e.ids.len().min(seq_len);
            out.push(Sequence {
                ids: e.ids[..n].to_vec(),
                target: e.target[..n].to_vec(),
            });
        }
    }
    out.retain(|s| s.ids.len() >= 2 && s.targets() > 0);
    out
}

/// Mean negative log-likelihood of `seq`'s targets under `model` (a
/// differentiable scalar) and the number of targets.
pub fn sequence_loss(model: &Llama<CpuBackend>, seq: &Sequence) -> Result<(Tensor, usize)> {
    let t = seq.ids.len();
    if t < 2 {
        return Err(Error::Input(
            "a training sequence needs at least 2 tokens".into(),
        ));
    }
    let logits = model.forward_train(&seq.ids)?;
    // Row i predicts token i + 1.
    let rows = logits.narrow(0, 0, t - 1)?;
    let lsm = candle_nn::ops::log_softmax(&rows, D::Minus1)?;
    let next: Vec<u32> = seq.ids[1..].to_vec();
    let picked = lsm
        .gather(&Tensor::from_vec(next, (t - 1, 1), &Device::Cpu)?, 1)?
        .squeeze(1)?;
    let weights: Vec<f32> = seq.target[1..]
        .iter()
        .map(|&b| if b { 1.0 } else { 0.0 })
        .collect();
    let count = weights.iter().filter(|&&w| w > 0.0).count();
    if count == 0 {
        return Err(Error::Input(
            "a training sequence has no completion tokens".into(),
        ));
    }
    let w = Tensor::from_vec(weights, t - 1, &Device::Cpu)?;
    let nll = ((picked * w)?.sum_all()? * (-1.0 / count as f64))?;
    Ok((nll, count))
}

/// LoRA SFT over a model whose adapter is set (see [`Llama::set_adapter`]).
pub struct SftTrainer<'m> {
    model: &'m mut Llama<CpuBackend>,
    opt: AdamW,
    schedule: Schedule,
    config: SftConfig,
    step: u64,
}

impl std::fmt::Debug for SftTrainer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SftTrainer")
            .field("config", &self.config)
            .field("step", &self.step)
            .finish_non_exhaustive()
    }
}

impl<'m> SftTrainer<'m> {
    /// Makes the adapter's tensors variables; `sequences` is the number of
    /// packed training sequences (for the schedule).
    pub fn new(
        model: &'m mut Llama<CpuBackend>,
        config: SftConfig,
        sequences: usize,
    ) -> Result<Self> {
        if config.grad_accum == 0 || config.epochs == 0 {
            return Err(Error::Input(
                "epochs and gradient accumulation must be at least 1".into(),
            ));
        }
        let params = make_params(model.lora_parameters_mut())?;
        if params.is_empty() {
            return Err(Error::Input(
                "the model has no LoRA adapter to train (set one first)".into(),
            ));
        }
        let opt = AdamW::new(params, config.adamw)?;
        let total = (sequences.div_ceil(config.grad_accum) * config.epochs) as u64;
        let total = config.max_steps.map_or(total, |m| total.min(m.max(1)));
        let schedule =
            Schedule::with_warmup_ratio(config.lr, config.warmup_ratio, total, config.decay);
        Ok(Self {
            model,
            opt,
            schedule,
            config,
            step: 0,
        })
    }

    /// Trainable values (the adapter's).
    pub fn trainable_parameters(&self) -> usize {
        self.opt.trainable_values()
    }

    /// The schedule in use.
    pub fn schedule(&self) -> Schedule {
        self.schedule
    }

    /// Mean NLL per target token over `seqs` (dropout off): `exp` of it is
    /// the perplexity of the completions.
    pub fn eval_nll(&mut self, seqs: &[Sequence]) -> Result<f64> {
        self.model.set_lora_dropout(None);
        let (mut sum, mut n) = (0f64, 0usize);
        for s in seqs {
            let (l, c) = sequence_loss(self.model, s)?;
            sum += f64::from(l.to_scalar::<f32>()?) * c as f64;
            n += c;
        }
        Ok(sum / n.max(1) as f64)
    }

    /// Trains for the configured epochs; `on_step` sees every optimizer
    /// step. Returns per-epoch logs (validation loss = mean NLL on `val`).
    pub fn fit(
        &mut self,
        train: &[Sequence],
        val: &[Sequence],
        dropout: f32,
        mut on_step: impl FnMut(&StepLog),
    ) -> Result<Vec<EpochLog>> {
        if train.is_empty() {
            return Err(Error::Input("no training sequences".into()));
        }
        let mut logs = Vec::new();
        for epoch in 1..=self.config.epochs {
            let mut order: Vec<usize> = (0..train.len()).collect();
            super::epoch_rng(self.config.seed, epoch).shuffle(&mut order);
            let mut step_losses = Vec::new();
            for group in order.chunks(self.config.grad_accum) {
                if self.step >= self.schedule.total {
                    break;
                }
                self.model.set_lora_dropout(
                    (dropout > 0.0)
                        .then(|| (dropout, super::step_seed(self.config.seed, self.step))),
                );
                let acc =
                    step::accumulate(&self.opt, group, |&i| sequence_loss(self.model, &train[i]))?;
                let out = step::apply(
                    &mut self.opt,
                    acc,
                    &self.schedule,
                    self.step,
                    self.config.max_grad_norm,
                )?;
                self.step += 1;
                let (loss, lr, grad_norm, tokens) = (out.loss, out.lr, out.grad_norm, out.examples);
                step_losses.push(loss);
                on_step(&StepLog {
                    step: self.step,
                    total_steps: self.schedule.total,
                    epoch,
                    loss,
                    lr,
                    grad_norm,
                    examples: tokens,
                });
            }
            self.model.set_lora_dropout(None);
            let val_loss = if val.is_empty() {
                None
            } else {
                Some(self.eval_nll(val)? as f32)
            };
            logs.push(EpochLog {
                epoch,
                step: self.step,
                train_loss: step_losses.iter().sum::<f32>() / step_losses.len().max(1) as f32,
                val_loss,
                val_macro_f1: None,
                val_accuracy: None,
                val_mrr: None,
                step_losses,
            });
        }
        Ok(logs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::gguf::{GgmlType, Gguf};
    use crate::lora::{Adapter, LoraConfig, MODULES};
    use crate::testing::{TinyLlama, tiny_llama_gguf};

    #[test]
    fn packing_keeps_targets_aligned() {
        let a = example(vec![1, 2, 3], vec![4, 5]);
        let b = example(vec![6], vec![7, 8, 9]);
        assert_eq!(a.target, vec![false, false, false, true, true]);
        let p = pack(&[a.clone(), b.clone()], 4, true);
        assert_eq!(p[0].ids, vec![1, 2, 3, 4]);
        assert_eq!(p[1].ids, vec![5, 6, 7, 8]);
        assert_eq!(p[1].target, vec![true, false, true, true]);
        // The last piece [9] is too short to predict anything.
        assert_eq!(p.len(), 2);
        let u = pack(&[a, b], 4, false);
        assert_eq!(u[1].ids, vec![6, 7, 8, 9]);
    }

    #[test]
    fn lora_sft_learns_a_completion_and_leaves_the_base_frozen() {
        // QLoRA: the Q8_0 base stays in its blocks (frozen); only A and B train.
        let bytes = tiny_llama_gguf(&TinyLlama {
            matrix_type: GgmlType::Q8_0,
            ..TinyLlama::default()
        })
        .unwrap();
        let g = Gguf::parse(&bytes, "tiny.gguf").unwrap();
        let mut m = Llama::load(CpuBackend::for_training(), &g).unwrap();
        let cfg = LoraConfig {
            r: 4,
            alpha: 8.0,
            dropout: 0.05,
            target_modules: MODULES.iter().map(|s| s.to_string()).collect(),
            use_rslora: false,
            base_model: None,
        };
        let adapter = Adapter::init(cfg, 2, |x| m.projection_dims(x), 1);
        m.set_adapter(Some(&adapter)).unwrap();
        let seq = example(vec![5, 6, 7, 8], vec![40, 41, 42, 43, 44, 45]);
        let data = vec![seq.clone(); 4];
        let config = SftConfig {
            epochs: 8,
            lr: 1e-2,
            decay: Decay::Constant,
            warmup_ratio: 0.0,
            ..SftConfig::default()
        };
        let mut t = SftTrainer::new(&mut m, config, data.len()).unwrap();
        // r·(in + out) per module and layer: q 4·(64+64), k,v 4·(64+32), o 4·(64+64),
        // gate/up 4·(64+96), down 4·(96+64) → 4·(128+96+96+128+160+160+160)·2 layers.
        assert_eq!(t.trainable_parameters(), 4 * 928 * 2);
        let before = t.eval_nll(std::slice::from_ref(&seq)).unwrap();
        let logs = t
            .fit(&data, std::slice::from_ref(&seq), 0.05, |_| {})
            .unwrap();
        let after = t.eval_nll(std::slice::from_ref(&seq)).unwrap();
        assert!(after < before * 0.5, "NLL {before} → {after}");
        assert_eq!(logs.len(), 8);
        // The trained adapter round-trips through PEFT files and reproduces the NLL.
        let trained = crate::backend::block_on_ready(m.adapter())
            .unwrap()
            .unwrap();
        assert!(trained.layers[0]["q_proj"].b.iter().any(|&v| v != 0.0));
        let (json, weights) = trained.to_peft().unwrap();
        let back = Adapter::from_peft(&json, &weights, 2, |x| m.projection_dims(x)).unwrap();
        let mut fresh = Llama::load(CpuBackend::for_training(), &g).unwrap();
        fresh.set_adapter(Some(&back)).unwrap();
        let (l, _) = sequence_loss(&fresh, &seq).unwrap();
        assert!((f64::from(l.to_scalar::<f32>().unwrap()) - after).abs() < 1e-4);
        // Without the adapter the base is what it was.
        fresh.set_adapter(None).unwrap();
        let (l, _) = sequence_loss(&fresh, &seq).unwrap();
        assert!((f64::from(l.to_scalar::<f32>().unwrap()) - before).abs() < 1e-4);
    }
}
