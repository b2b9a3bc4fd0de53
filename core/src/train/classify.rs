//! Fine-tuning a [`SequenceClassifier`]: what transformers' `Trainer` does
//! for `*ForSequenceClassification`, on the CPU through candle's autodiff.
//!
//! Per optimizer step: `grad_accum` micro-batches (length-grouped, padded
//! per batch) → forward with dropout on the pooled output → cross-entropy
//! (single-label, optional class weights) or binary cross-entropy
//! (multi-label, optional per-label weights) → backward, gradients summed →
//! global-norm clipping → AdamW at the schedule's learning rate. After each
//! epoch: validation report, early stopping on validation macro-F1, and a
//! [`Checkpoint`] handed to the caller (which writes it) so a run resumes at
//! the next epoch with identical results: shuffles and dropout masks derive
//! from the seed, the epoch and the step only.
//!
//! Ranking data ([`Encoded::grouped`]: a cross-encoder's query groups, one
//! relevant passage and its negatives each) trains listwise instead: a
//! one-logit model, softmax cross-entropy of the relevant passage within its
//! group (the localized contrastive estimation of Gao et al. 2021, what
//! sentence-transformers' listwise cross-encoder losses do), batches of
//! whole groups, early stopping on the validation MRR.

use candle_core::{D, DType, Device, Tensor};
use serde::{Deserialize, Serialize};

use super::data::length_grouped_batches;
use super::optim::{AdamW, AdamWConfig, clip_grad_norm, make_params};
use super::schedule::{Decay, Schedule};
use crate::backend::cpu::CpuBackend;
use crate::error::{Error, Result};
use crate::eval::classification::{Report, report};
use crate::formats::safetensors::write_f32;
use crate::formats::tensors::SafeTensors;
use crate::models::classifier::{ProblemType, SequenceClassifier, predict_row};
use crate::tokenizer::{BatchEncoding, Tokenizer, pad_batch};
use crate::util::Rng;

/// Hyper-parameters (defaults: transformers' `TrainingArguments` where it has one).
#[derive(Debug, Clone, PartialEq)]
pub struct TrainConfig {
    /// Passes over the training data.
    pub epochs: usize,
    /// Examples per micro-batch.
    pub batch_size: usize,
    /// Micro-batches per optimizer step.
    pub grad_accum: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Decay after warm-up.
    pub decay: Decay,
    /// Share of all steps spent warming up.
    pub warmup_ratio: f64,
    /// AdamW's betas, ε and weight decay.
    pub adamw: AdamWConfig,
    /// Gradient-norm clip (0: off).
    pub max_grad_norm: f64,
    /// Dropout on the pooled output (BERT's `hidden_dropout_prob`).
    pub dropout: f32,
    /// Loss weight per label (single-label: per class; multi-label: per label).
    pub class_weights: Option<Vec<f32>>,
    /// Stop after this many epochs without a better validation macro-F1.
    pub patience: Option<usize>,
    /// Seed of shuffles and dropout.
    pub seed: u64,
    /// Train only the head (pooler/pre-classifier and classifier); the
    /// encoder stays as loaded and runs forward only — a linear probe with a
    /// hidden layer, for little data far from the test distribution, where
    /// tuning every weight overfits the training text's style.
    pub freeze_encoder: bool,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 3,
            batch_size: 16,
            grad_accum: 1,
            lr: 5e-5,
            decay: Decay::Linear,
            warmup_ratio: 0.1,
            adamw: AdamWConfig::default(),
            max_grad_norm: 1.0,
            dropout: 0.1,
            class_weights: None,
            patience: None,
            seed: 42,
            freeze_encoder: false,
        }
    }
}

/// What one optimizer step did.
#[derive(Debug, Clone, PartialEq)]
pub struct StepLog {
    /// Optimizer steps done (1-based).
    pub step: u64,
    /// Optimizer steps planned.
    pub total_steps: u64,
    /// Epoch (1-based).
    pub epoch: usize,
    /// Mean loss over the step's micro-batches.
    pub loss: f32,
    /// Learning rate used.
    pub lr: f64,
    /// Gradient norm before clipping.
    pub grad_norm: f64,
    /// Examples in the step.
    pub examples: usize,
}

/// What one epoch did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochLog {
    /// Epoch (1-based).
    pub epoch: usize,
    /// Optimizer steps done at its end.
    pub step: u64,
    /// Mean training loss.
    pub train_loss: f32,
    /// Mean validation loss, if there is validation data.
    pub val_loss: Option<f32>,
    /// Validation macro-F1.
    pub val_macro_f1: Option<f64>,
    /// Validation accuracy.
    pub val_accuracy: Option<f64>,
    /// Validation mean reciprocal rank of the relevant passage (ranking data).
    #[serde(default)]
    pub val_mrr: Option<f64>,
    /// Per-step training losses of the epoch.
    pub step_losses: Vec<f32>,
}

/// The resumable state after an epoch: weights, optimizer moments (both
/// safetensors bytes, cairn's parameter names) and progress.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    /// The weights after the epoch.
    pub weights: Vec<u8>,
    /// AdamW's moments.
    pub optimizer: Vec<u8>,
    /// Progress (`state.json`).
    pub state: TrainState,
    /// Whether this epoch is the best so far (keep its weights as `best`).
    pub improved: bool,
}

/// Progress saved in a checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Epochs completed.
    pub epoch: usize,
    /// Optimizer steps completed.
    pub step: u64,
    /// Best validation metric (macro-F1; MRR for ranking data) and its epoch.
    pub best: Option<(f64, usize)>,
    /// Epochs since the best.
    pub bad_epochs: usize,
    /// Every epoch's log.
    pub history: Vec<EpochLog>,
    /// The seed (a resumed run must use the same).
    pub seed: u64,
    /// Whether only the head trains (a resumed run must match).
    #[serde(default)]
    pub freeze_encoder: bool,
}

/// Callbacks of a run (progress bars, checkpoint writing).
pub trait Hooks {
    /// After each optimizer step.
    fn on_step(&mut self, _log: &StepLog) {}
    /// After each epoch, with the checkpoint to keep.
    fn on_epoch(&mut self, _log: &EpochLog, _checkpoint: &Checkpoint) -> Result<()> {
        Ok(())
    }
}

/// Tokenized, labeled examples.
#[derive(Debug, Clone)]
pub struct Encoded {
    ids: Vec<Vec<u32>>,
    /// Token types of sentence pairs (`None` for single texts).
    types: Option<Vec<Vec<u32>>>,
    labels: Vec<Vec<usize>>,
    /// Query groups of ranking data (consecutive examples).
    groups: Option<Vec<std::ops::Range<usize>>>,
}

impl Encoded {
    /// Tokenizes `texts` (the tokenizer truncates) with their label ids.
    pub fn new(tokenizer: &Tokenizer, texts: &[&str], labels: Vec<Vec<usize>>) -> Result<Self> {
        if texts.len() != labels.len() {
            return Err(Error::Input(format!(
                "{} texts with {} label sets",
                texts.len(),
                labels.len()
            )));
        }
        let ids = texts
            .iter()
            .map(|t| Ok(tokenizer.encode(t, true)?.ids))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            ids,
            types: None,
            labels,
            groups: None,
        })
    }

    /// Tokenizes sentence pairs `(firsts[i], seconds[i])` with token types
    /// (a cross-encoder's (query, passage)), with their label ids.
    pub fn pairs(
        tokenizer: &Tokenizer,
        firsts: &[&str],
        seconds: &[&str],
        labels: Vec<Vec<usize>>,
    ) -> Result<Self> {
        if firsts.len() != labels.len() || seconds.len() != labels.len() {
            return Err(Error::Input(format!(
                "{} first texts and {} second texts with {} label sets",
                firsts.len(),
                seconds.len(),
                labels.len()
            )));
        }
        let (ids, types) = firsts
            .iter()
            .zip(seconds)
            .map(|(a, b)| tokenizer.encode_pair(a, b))
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .unzip();
        Ok(Self {
            ids,
            types: Some(types),
            labels,
            groups: None,
        })
    }

    /// Marks the examples as ranking data: `groups` are consecutive ranges
    /// covering every example, each one query's candidates with exactly one
    /// relevant example (a label) and at least one irrelevant one (none).
    /// Training then is listwise (see the module docs).
    pub fn grouped(mut self, groups: Vec<std::ops::Range<usize>>) -> Result<Self> {
        let mut next = 0;
        for (g, r) in groups.iter().enumerate() {
            let what = |detail: &str| {
                Error::Input(format!(
                    "query group {} (examples {}..={}): {detail}",
                    g + 1,
                    r.start + 1,
                    r.end
                ))
            };
            if r.start != next || r.end > self.len() {
                return Err(what("groups must be consecutive and cover every example"));
            }
            let relevant = self.labels[r.clone()]
                .iter()
                .filter(|l| !l.is_empty())
                .count();
            if relevant != 1 || r.len() < 2 {
                return Err(what(&format!(
                    "needs exactly one relevant candidate and at least one other, has {relevant} relevant of {}",
                    r.len()
                )));
            }
            next = r.end;
        }
        if next != self.len() {
            return Err(Error::Input(format!(
                "query groups cover {next} of {} examples",
                self.len()
            )));
        }
        self.groups = Some(groups);
        Ok(self)
    }

    /// Units a batch is made of: query groups for ranking data, else
    /// examples (what [`Trainer::new`]'s `train_len` counts).
    pub fn units(&self) -> usize {
        self.groups.as_ref().map_or(self.len(), Vec::len)
    }

    /// Unit `u`'s examples.
    fn unit(&self, u: usize) -> std::ops::Range<usize> {
        match &self.groups {
            Some(g) => g[u].clone(),
            None => u..u + 1,
        }
    }

    /// Position of the relevant candidate among `group` (the example indices
    /// of one query group).
    fn relevant_in(&self, group: &[usize]) -> Result<usize> {
        group
            .iter()
            .position(|&i| !self.labels[i].is_empty())
            .ok_or_else(|| Error::Input("a query group has no relevant candidate".into()))
    }

    /// The examples of `units` in order, and each unit's size (ranking data).
    fn expand(&self, units: &[usize]) -> (Vec<usize>, Option<Vec<usize>>) {
        let idx = units.iter().flat_map(|&u| self.unit(u)).collect();
        let sizes = self
            .groups
            .as_ref()
            .map(|_| units.iter().map(|&u| self.unit(u).len()).collect());
        (idx, sizes)
    }

    /// Examples.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// A fine-tuning run over one model.
pub struct Trainer {
    model: SequenceClassifier<CpuBackend>,
    opt: AdamW,
    schedule: Schedule,
    config: TrainConfig,
    pad_id: u32,
    state: TrainState,
    best_weights: Option<Vec<Tensor>>,
    /// With a frozen encoder: each example's first-token state, keyed by
    /// its token ids and types (the encoder runs once per distinct input).
    frozen: std::sync::Mutex<std::collections::HashMap<Vec<u32>, Vec<f32>>>,
}

impl std::fmt::Debug for Trainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trainer")
            .field("model", &self.model)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl Trainer {
    /// Prepares `model` (built on [`CpuBackend::for_training`]) for
    /// `train_len` batching units ([`Encoded::units`]: examples, or query
    /// groups of ranking data — `batch_size` counts the same units): every
    /// weight becomes a variable (only the head's with
    /// [`TrainConfig::freeze_encoder`]).
    pub fn new(
        mut model: SequenceClassifier<CpuBackend>,
        config: TrainConfig,
        train_len: usize,
        pad_id: u32,
    ) -> Result<Self> {
        if config.batch_size == 0 || config.grad_accum == 0 || config.epochs == 0 {
            return Err(Error::Input(
                "batch size, gradient accumulation and epochs must be at least 1".into(),
            ));
        }
        if let Some(w) = &config.class_weights
            && w.len() != model.config().labels.len()
        {
            return Err(Error::Input(format!(
                "{} class weights for {} labels",
                w.len(),
                model.config().labels.len()
            )));
        }
        let named = if config.freeze_encoder {
            model.head_parameters_mut()
        } else {
            model.parameters_mut()
        };
        let params = make_params(named)?;
        let opt = AdamW::new(params, config.adamw)?;
        let micro = train_len.div_ceil(config.batch_size);
        let total = (micro.div_ceil(config.grad_accum) * config.epochs) as u64;
        let schedule =
            Schedule::with_warmup_ratio(config.lr, config.warmup_ratio, total, config.decay);
        let state = TrainState {
            epoch: 0,
            step: 0,
            best: None,
            bad_epochs: 0,
            history: Vec::new(),
            seed: config.seed,
            freeze_encoder: config.freeze_encoder,
        };
        Ok(Self {
            model,
            opt,
            schedule,
            config,
            pad_id,
            state,
            best_weights: None,
            frozen: Default::default(),
        })
    }

    /// Trainable parameters (count of values).
    pub fn trainable_parameters(&self) -> usize {
        self.opt.trainable_values()
    }

    /// The learning-rate schedule in use.
    pub fn schedule(&self) -> Schedule {
        self.schedule
    }

    /// Progress so far.
    pub fn state(&self) -> &TrainState {
        &self.state
    }

    /// Restores a checkpoint written after an epoch of a run with the same
    /// data and configuration (`best`: the weights of its best epoch, if
    /// that was not the last).
    pub fn resume(
        &mut self,
        weights: &[u8],
        optimizer: &[u8],
        state: TrainState,
        best: Option<&[u8]>,
    ) -> Result<()> {
        if state.seed != self.config.seed {
            return Err(Error::Input(format!(
                "the checkpoint was trained with seed {}, this run uses {}",
                state.seed, self.config.seed
            )));
        }
        if state.freeze_encoder != self.config.freeze_encoder {
            let how = |f: bool| {
                if f {
                    "with the encoder frozen"
                } else {
                    "with every weight"
                }
            };
            return Err(Error::Input(format!(
                "the checkpoint was trained {}, this run trains {}",
                how(state.freeze_encoder),
                how(self.config.freeze_encoder)
            )));
        }
        let w = SafeTensors::parse(weights, "checkpoint weights")?;
        self.set_params(&w)?;
        let o = SafeTensors::parse(optimizer, "checkpoint optimizer")?;
        self.opt.load_state(|n| o.f32(n), state.step)?;
        self.best_weights = match best {
            Some(bytes) => {
                let b = SafeTensors::parse(bytes, "checkpoint best weights")?;
                Some(self.read_params(&b)?)
            }
            None => match state.best {
                Some((_, e)) if e == state.epoch => Some(self.snapshot()?),
                Some((_, e)) => {
                    return Err(Error::Input(format!(
                        "the checkpoint's best weights (epoch {e}) are missing; resume needs them to undo worse epochs"
                    )));
                }
                None => None,
            },
        };
        self.state = state;
        Ok(())
    }

    fn read_params(&self, st: &SafeTensors<'_>) -> Result<Vec<Tensor>> {
        self.opt
            .params()
            .iter()
            .map(|p| {
                let (data, shape) = st.f32(&p.name)?;
                if shape != p.var.as_tensor().dims() {
                    return Err(Error::Model {
                        file: st.file().into(),
                        detail: format!(
                            "'{}' has shape {shape:?}, the model {:?}",
                            p.name,
                            p.var.as_tensor().dims()
                        ),
                    });
                }
                Ok(Tensor::from_vec(data, shape, &Device::Cpu)?)
            })
            .collect()
    }

    fn set_params(&mut self, st: &SafeTensors<'_>) -> Result<()> {
        let values = self.read_params(st)?;
        for (p, v) in self.opt.params().iter().zip(values) {
            p.var.set(&v)?;
        }
        Ok(())
    }

    fn snapshot(&self) -> Result<Vec<Tensor>> {
        Ok(self
            .opt
            .params()
            .iter()
            .map(|p| p.var.as_tensor().detach().copy())
            .collect::<candle_core::Result<_>>()?)
    }

    fn params_bytes(&self) -> Result<Vec<u8>> {
        let tensors = self
            .opt
            .params()
            .iter()
            .map(|p| {
                let t = p.var.as_tensor();
                Ok((
                    p.name.clone(),
                    t.dims().to_vec(),
                    t.flatten_all()?.to_vec1::<f32>()?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        write_f32(&tensors, &Default::default())
    }

    /// Loss of one batch (mean over examples, class-weighted; with `sizes`,
    /// the consecutive query groups of ranking data, the listwise loss
    /// averaged over groups) and its logits.
    fn batch_loss(
        &self,
        data: &Encoded,
        idx: &[usize],
        sizes: Option<&[usize]>,
        dropout: Option<&mut Rng>,
    ) -> Result<(Tensor, Tensor)> {
        let b = idx.len();
        let mut pooled = if self.config.freeze_encoder {
            self.model.pool_first(&self.frozen_states(data, idx)?)?
        } else {
            let (padded, types) = self.padded(data, idx);
            self.model.pooled_typed(
                &padded.ids,
                types.as_deref(),
                &padded.attention_mask,
                b,
                padded.max_len,
            )?
        };
        if let Some(rng) = dropout
            && self.config.dropout > 0.0
        {
            let mask = rng.dropout_mask(pooled.elem_count(), self.config.dropout);
            let mask = Tensor::from_vec(mask, pooled.dims(), &Device::Cpu)?;
            pooled = (pooled * mask)?;
        }
        let logits = self.model.logits_from_pooled(&pooled)?;
        let n = self.model.config().labels.len();
        if let Some(sizes) = sizes {
            return Ok((listwise_loss(&logits, sizes, data, idx)?, logits));
        }
        let weights = self.config.class_weights.clone();
        let loss = match self.model.config().problem_type {
            ProblemType::SingleLabel => {
                let mut pick = vec![0f32; b * n];
                let mut total = 0f32;
                for (r, &i) in idx.iter().enumerate() {
                    let t = *data.labels[i]
                        .first()
                        .ok_or_else(|| Error::Input(format!("example {} has no label", i + 1)))?;
                    let w = weights.as_ref().map_or(1.0, |w| w[t]);
                    pick[r * n + t] = w;
                    total += w;
                }
                let lsm = candle_nn::ops::log_softmax(&logits, D::Minus1)?;
                let picked = (lsm * Tensor::from_vec(pick, (b, n), &Device::Cpu)?)?.sum_all()?;
                (picked * (-1.0 / f64::from(total.max(1e-12))))?
            }
            ProblemType::MultiLabel => {
                // BCE with logits, stable form: max(x,0) − x·y + ln(1 + e^(−|x|)).
                let mut y = vec![0f32; b * n];
                for (r, &i) in idx.iter().enumerate() {
                    for &t in &data.labels[i] {
                        y[r * n + t] = 1.0;
                    }
                }
                let y = Tensor::from_vec(y, (b, n), &Device::Cpu)?;
                let per = ((logits.relu()? - (&logits * &y)?)?
                    + ((logits.abs()?.neg()?.exp()? + 1.0)?.log()?))?;
                let per = match &weights {
                    Some(w) => per.broadcast_mul(&Tensor::from_slice(w, n, &Device::Cpu)?)?,
                    None => per,
                };
                per.mean_all()?
            }
        };
        Ok((loss, logits))
    }

    /// The examples `idx` padded into one batch: ids and mask, and the
    /// token types of sentence pairs.
    fn padded(&self, data: &Encoded, idx: &[usize]) -> (BatchEncoding, Option<Vec<u32>>) {
        let rows: Vec<&[u32]> = idx.iter().map(|&i| data.ids[i].as_slice()).collect();
        let types = data.types.as_ref().map(|t| {
            let rows: Vec<&[u32]> = idx.iter().map(|&i| t[i].as_slice()).collect();
            pad_batch(&rows, 0).ids
        });
        (pad_batch(&rows, self.pad_id), types)
    }

    /// First-token states `[idx.len(), hidden]` of a frozen encoder, from
    /// the cache; the examples not in it go through the encoder once.
    fn frozen_states(&self, data: &Encoded, idx: &[usize]) -> Result<Tensor> {
        let keys: Vec<Vec<u32>> = idx
            .iter()
            .map(|&i| {
                let mut k = data.ids[i].clone();
                if let Some(t) = &data.types {
                    k.push(u32::MAX);
                    k.extend(&t[i]);
                }
                k
            })
            .collect();
        let mut cache = self
            .frozen
            .lock()
            .map_err(|_| Error::Input("the frozen-encoder cache was poisoned".into()))?;
        let missing: Vec<usize> = (0..idx.len())
            .filter(|&r| !cache.contains_key(&keys[r]))
            .collect();
        if !missing.is_empty() {
            let examples: Vec<usize> = missing.iter().map(|&r| idx[r]).collect();
            let (padded, types) = self.padded(data, &examples);
            let first = self.model.first_token_states(
                &padded.ids,
                types.as_deref(),
                &padded.attention_mask,
                examples.len(),
                padded.max_len,
            )?;
            let h = first.dim(1)?;
            let host = first.detach().flatten_all()?.to_vec1::<f32>()?;
            for (n, &r) in missing.iter().enumerate() {
                cache.insert(keys[r].clone(), host[n * h..(n + 1) * h].to_vec());
            }
        }
        let rows: Vec<f32> = keys.iter().flat_map(|k| cache[k].iter().copied()).collect();
        let h = rows.len() / idx.len().max(1);
        Ok(Tensor::from_vec(rows, (idx.len(), h), &Device::Cpu)?)
    }

    /// Loss, predictions and report on `data` (no dropout, no updates).
    pub fn evaluate(&self, data: &Encoded) -> Result<(f32, Report)> {
        let labels = self.model.config().labels.clone();
        let mut preds = vec![Vec::new(); data.len()];
        let (mut loss_sum, mut count) = (0f64, 0usize);
        let mut order: Vec<usize> = (0..data.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(data.ids[i].len()));
        for idx in order.chunks(self.config.batch_size.max(1) * 2) {
            let (loss, logits) = self.batch_loss(data, idx, None, None)?;
            loss_sum += f64::from(loss.to_scalar::<f32>()?) * idx.len() as f64;
            count += idx.len();
            let host = logits.detach().flatten_all()?.to_vec1::<f32>()?;
            let n = labels.len();
            for (r, &i) in idx.iter().enumerate() {
                preds[i] = predict_row(self.model.config(), &host[r * n..(r + 1) * n]).labels;
            }
        }
        let rep = report(&labels, &data.labels, &preds)?;
        Ok(((loss_sum / count.max(1) as f64) as f32, rep))
    }

    /// Listwise loss and mean reciprocal rank of the relevant candidate on
    /// ranking data (no dropout, no updates). A tie ranks the relevant
    /// candidate last among the tied, so a model that scores everything
    /// alike gets no credit.
    pub fn evaluate_ranking(&self, data: &Encoded) -> Result<(f32, f64)> {
        let groups = data.groups.as_ref().ok_or_else(|| {
            Error::Input("ranking evaluation needs query groups (Encoded::grouped)".into())
        })?;
        let (mut loss_sum, mut rr_sum) = (0f64, 0f64);
        let units: Vec<usize> = (0..groups.len()).collect();
        for chunk in units.chunks(self.config.batch_size.max(1)) {
            let (idx, sizes) = data.expand(chunk);
            let sizes = sizes.unwrap_or_default();
            let (loss, logits) = self.batch_loss(data, &idx, Some(&sizes), None)?;
            loss_sum += f64::from(loss.to_scalar::<f32>()?) * chunk.len() as f64;
            let scores = logits.detach().flatten_all()?.to_vec1::<f32>()?;
            let mut off = 0;
            for &s in &sizes {
                let group = &scores[off..off + s];
                let pos = data.relevant_in(&idx[off..off + s])?;
                let rank = 1
                    + (0..s)
                        .filter(|&j| j != pos && group[j] >= group[pos])
                        .count();
                rr_sum += 1.0 / rank as f64;
                off += s;
            }
        }
        let n = groups.len().max(1) as f64;
        Ok(((loss_sum / n) as f32, rr_sum / n))
    }

    /// Trains until the configured epochs are done or early stopping
    /// triggers, then restores the best epoch's weights (by validation
    /// macro-F1 — MRR for ranking data —, ties broken by the lower
    /// validation loss; without validation data, the last). Returns every
    /// epoch's log.
    pub fn fit(
        &mut self,
        train: &Encoded,
        val: Option<&Encoded>,
        hooks: &mut dyn Hooks,
    ) -> Result<Vec<EpochLog>> {
        if train.is_empty() {
            return Err(Error::Input("no training examples".into()));
        }
        let ranking = train.groups.is_some();
        if ranking {
            let n = self.model.config().labels.len();
            if n != 1 {
                return Err(Error::Input(format!(
                    "ranking data trains a one-logit model (one label), this one has {n}"
                )));
            }
            if self.config.class_weights.is_some() {
                return Err(Error::Input(
                    "class weights do not apply to ranking data (the loss is listwise)".into(),
                ));
            }
        }
        if let Some(v) = val
            && v.groups.is_some() != ranking
        {
            return Err(Error::Input(
                "training and validation data must both be ranking data (query groups) or neither"
                    .into(),
            ));
        }
        let lengths: Vec<usize> = (0..train.units())
            .map(|u| train.unit(u).map(|i| train.ids[i].len()).max().unwrap_or(0))
            .collect();
        while self.state.epoch < self.config.epochs {
            if let Some(p) = self.config.patience
                && self.state.bad_epochs >= p
            {
                break;
            }
            let epoch = self.state.epoch + 1;
            let mut shuffle = super::epoch_rng(self.config.seed, epoch);
            let batches = length_grouped_batches(&lengths, self.config.batch_size, &mut shuffle);
            let mut step_losses = Vec::new();
            for group in batches.chunks(self.config.grad_accum) {
                let mut grads: Vec<Option<Tensor>> = vec![None; self.opt.params().len()];
                let mut dropout = Rng::new(super::step_seed(self.config.seed, self.state.step));
                let (mut loss_sum, mut examples) = (0f32, 0usize);
                for units in group {
                    let (idx, sizes) = train.expand(units);
                    let (loss, _) =
                        self.batch_loss(train, &idx, sizes.as_deref(), Some(&mut dropout))?;
                    let scaled = (&loss / group.len() as f64)?;
                    let store = scaled.backward()?;
                    self.opt.accumulate(&mut grads, &store)?;
                    loss_sum += loss.to_scalar::<f32>()?;
                    examples += idx.len();
                }
                let grad_norm = clip_grad_norm(&mut grads, self.config.max_grad_norm)?;
                let lr = self.schedule.lr(self.state.step);
                self.opt.step(&grads, lr)?;
                self.state.step += 1;
                let loss = loss_sum / group.len() as f32;
                step_losses.push(loss);
                hooks.on_step(&StepLog {
                    step: self.state.step,
                    total_steps: self.schedule.total,
                    epoch,
                    loss,
                    lr,
                    grad_norm,
                    examples,
                });
            }
            let train_loss = step_losses.iter().sum::<f32>() / step_losses.len().max(1) as f32;
            let (val_loss, val_macro_f1, val_accuracy, val_mrr) = match val {
                Some(v) if !v.is_empty() && ranking => {
                    let (l, mrr) = self.evaluate_ranking(v)?;
                    (Some(l), None, None, Some(mrr))
                }
                Some(v) if !v.is_empty() => {
                    let (l, r) = self.evaluate(v)?;
                    (Some(l), Some(r.macro_f1), Some(r.accuracy), None)
                }
                _ => (None, None, None, None),
            };
            let log = EpochLog {
                epoch,
                step: self.state.step,
                train_loss,
                val_loss,
                val_macro_f1,
                val_accuracy,
                val_mrr,
                step_losses,
            };
            // Better macro-F1 (MRR) wins; at an equal score (e.g. a reranker
            // whose scores stay under the threshold early on) the lower loss does.
            let metric = val_mrr.or(val_macro_f1);
            let improved = match (metric, self.state.best) {
                (Some(f), Some((b, e))) => {
                    let best_loss = self
                        .state
                        .history
                        .iter()
                        .find(|h| h.epoch == e)
                        .and_then(|h| h.val_loss);
                    f > b
                        || (f == b
                            && val_loss
                                .zip(best_loss)
                                .is_some_and(|(now, then)| now < then))
                }
                (Some(_), None) => true,
                (None, _) => true,
            };
            if improved {
                self.state.best = metric.map(|f| (f, epoch));
                self.state.bad_epochs = 0;
                self.best_weights = None;
            } else {
                self.state.bad_epochs += 1;
            }
            self.state.epoch = epoch;
            self.state.history.push(log.clone());
            let (moments, _) = self.opt.state()?;
            let checkpoint = Checkpoint {
                weights: self.params_bytes()?,
                optimizer: write_f32(&moments, &Default::default())?,
                state: self.state.clone(),
                improved,
            };
            hooks.on_epoch(&log, &checkpoint)?;
            if improved {
                // Keep the best weights in memory so a worse epoch can be undone.
                self.best_weights = Some(self.snapshot()?);
            }
        }
        if let Some(best) = self.best_weights.take() {
            for (p, v) in self.opt.params().iter().zip(best) {
                p.var.set(&v)?;
            }
        }
        Ok(self.state.history.clone())
    }

    /// The trained model (weights stay variables; export or predict with it).
    pub fn model(&self) -> &SequenceClassifier<CpuBackend> {
        &self.model
    }

    /// Scores for a batch of encoded examples (for tests and reports).
    pub fn logits(&self, data: &Encoded) -> Result<Vec<f32>> {
        let idx: Vec<usize> = (0..data.len()).collect();
        let (_, logits) = self.batch_loss(data, &idx, None, None)?;
        Ok(logits
            .detach()
            .to_dtype(DType::F32)?
            .flatten_all()?
            .to_vec1::<f32>()?)
    }
}

/// Mean over query groups of −log softmax(group's logits)[relevant]: the
/// examples `idx` are the groups of `sizes` in order, one logit each.
fn listwise_loss(
    logits: &Tensor,
    sizes: &[usize],
    data: &Encoded,
    idx: &[usize],
) -> Result<Tensor> {
    let flat = logits.flatten_all()?;
    let mut picked = Vec::with_capacity(sizes.len());
    let mut off = 0;
    for &s in sizes {
        let pos = data.relevant_in(&idx[off..off + s])?;
        let lsm = candle_nn::ops::log_softmax(&flat.narrow(0, off, s)?, 0)?;
        picked.push(lsm.narrow(0, pos, 1)?);
        off += s;
    }
    let total = Tensor::cat(&picked, 0)?.sum_all()?;
    Ok((total * (-1.0 / sizes.len().max(1) as f64))?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::classifier::ClassifierConfig;

    fn tiny(labels: &[&str], multi: bool, seed: u64) -> SequenceClassifier<CpuBackend> {
        let (config, weights) = crate::testing::tiny_bert(50, 16, 2, 3).unwrap();
        let mut v: serde_json::Value = serde_json::from_slice(&config).unwrap();
        let id2label: serde_json::Map<String, serde_json::Value> = labels
            .iter()
            .enumerate()
            .map(|(i, l)| (i.to_string(), (*l).into()))
            .collect();
        v["id2label"] = id2label.into();
        if multi {
            v["problem_type"] = "multi_label_classification".into();
        }
        let cfg = ClassifierConfig::from_json(v.to_string().as_bytes()).unwrap();
        let st = SafeTensors::parse(&weights, "tiny.safetensors").unwrap();
        SequenceClassifier::new_head(CpuBackend::for_training(), cfg, &st, seed).unwrap()
    }

    /// Eight sequences whose label is decided by their first real token.
    fn data() -> Encoded {
        let ids: Vec<Vec<u32>> = (0..8u32)
            .map(|i| {
                let mut v = vec![1, 2 + (i % 2) * 10 + i % 3];
                v.extend((0..(i % 4)).map(|k| 20 + k));
                v.push(3);
                v
            })
            .collect();
        let labels = (0..8).map(|i| vec![i % 2]).collect();
        Encoded {
            ids,
            types: None,
            labels,
            groups: None,
        }
    }

    /// Six query groups of 3 candidates: the relevant one (the 2nd in even
    /// groups, the 1st in odd ones) starts with token 5, the others with 6
    /// or 7 — what the model must learn to score highest.
    fn ranking() -> Encoded {
        let (mut ids, mut labels, mut groups) = (vec![], vec![], vec![]);
        for g in 0..6u32 {
            let start = ids.len();
            let relevant = (g % 2 == 0) as usize;
            for c in 0..3usize {
                let first = if c == relevant {
                    5
                } else {
                    6 + (c as u32 + g) % 2
                };
                ids.push(vec![1, first, 20 + g, 3]);
                labels.push(if c == relevant { vec![0] } else { vec![] });
            }
            groups.push(start..ids.len());
        }
        Encoded {
            ids,
            types: None,
            labels,
            groups: None,
        }
        .grouped(groups)
        .unwrap()
    }

    #[test]
    fn listwise_loss_is_the_softmax_cross_entropy_of_the_relevant_candidate() {
        let d = ranking();
        // Two groups of 3 from the data: relevant at 1, then at 0.
        let logits = Tensor::new(
            &[[0.5f32], [2.0], [-1.0], [0.0], [1.0], [3.0]],
            &Device::Cpu,
        )
        .unwrap();
        let loss = listwise_loss(&logits, &[3, 3], &d, &[0, 1, 2, 3, 4, 5])
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        let lse = |v: &[f64]| v.iter().map(|x| x.exp()).sum::<f64>().ln();
        let want = ((lse(&[0.5, 2.0, -1.0]) - 2.0) + (lse(&[0.0, 1.0, 3.0]) - 0.0)) / 2.0;
        assert!((f64::from(loss) - want).abs() < 1e-5, "{loss} vs {want}");
    }

    #[test]
    fn ranking_groups_are_checked() {
        let d = ranking();
        let two = Encoded {
            groups: None,
            labels: vec![vec![0]; d.len()],
            ..d.clone()
        };
        let err = two.grouped(vec![0..3, 3..18]).unwrap_err().to_string();
        assert!(
            err.contains("query group 1") && err.contains("3 relevant"),
            "{err}"
        );
        let short = Encoded {
            groups: None,
            ..d.clone()
        };
        let err = short.grouped(vec![0..3, 4..6]).unwrap_err().to_string();
        assert!(
            err.contains("query group 2") && err.contains("consecutive"),
            "{err}"
        );
        let plain = Encoded {
            groups: None,
            ..d.clone()
        };
        let t = Trainer::new(tiny(&["relevant"], true, 1), config(1), 6, 0).unwrap();
        assert!(t.evaluate_ranking(&plain).is_err());
        // A ranking run needs a one-logit model.
        let mut two_labels = Trainer::new(tiny(&["a", "b"], true, 1), config(1), 6, 0).unwrap();
        let err = two_labels
            .fit(&d, None, &mut Keep(vec![], vec![]))
            .unwrap_err();
        assert!(err.to_string().contains("one-logit"), "{err}");
    }

    #[test]
    fn listwise_training_ranks_the_relevant_candidate_first() {
        let cfg = TrainConfig {
            lr: 1e-2,
            decay: Decay::Constant,
            batch_size: 2,
            ..config(15)
        };
        let d = ranking();
        let mut t = Trainer::new(tiny(&["relevant"], true, 3), cfg, d.units(), 0).unwrap();
        let (before, mrr_before) = t.evaluate_ranking(&d).unwrap();
        let mut k = Keep(vec![], vec![]);
        let logs = t.fit(&d, Some(&d), &mut k).unwrap();
        let (after, mrr) = t.evaluate_ranking(&d).unwrap();
        assert!(after < before * 0.5, "loss {before} → {after}");
        assert_eq!(mrr, 1.0, "MRR {mrr_before} → {mrr}");
        // 6 groups, 2 per batch: 3 steps an epoch; the best epoch's MRR is kept.
        assert_eq!(k.1.len(), 45);
        assert!(
            logs.iter()
                .all(|l| l.val_mrr.is_some() && l.val_macro_f1.is_none())
        );
        assert_eq!(t.state().best.map(|b| b.0), Some(1.0));
        // Scoring every candidate alike earns the lowest rank, not the first.
        let flat = Trainer::new(tiny(&["relevant"], true, 3), config(1), 6, 0).unwrap();
        let mut labels = vec![vec![]; 6];
        labels[0] = vec![0];
        labels[3] = vec![0];
        let same = Encoded {
            ids: vec![vec![1, 5, 3]; 6],
            types: None,
            labels,
            groups: None,
        }
        .grouped(vec![0..3, 3..6])
        .unwrap();
        let (_, mrr) = flat.evaluate_ranking(&same).unwrap();
        assert!((mrr - 1.0 / 3.0).abs() < 1e-9, "{mrr}");
    }

    struct Keep(Vec<Checkpoint>, Vec<f32>);
    impl Hooks for Keep {
        fn on_step(&mut self, log: &StepLog) {
            self.1.push(log.loss);
        }
        fn on_epoch(&mut self, _: &EpochLog, c: &Checkpoint) -> Result<()> {
            self.0.push(c.clone());
            Ok(())
        }
    }

    fn config(epochs: usize) -> TrainConfig {
        TrainConfig {
            epochs,
            batch_size: 4,
            lr: 3e-3,
            warmup_ratio: 0.0,
            dropout: 0.1,
            ..TrainConfig::default()
        }
    }

    #[test]
    fn a_frozen_encoder_trains_only_the_head() {
        let cfg = TrainConfig {
            lr: 1e-2,
            decay: Decay::Constant,
            freeze_encoder: true,
            ..config(20)
        };
        let mut t = Trainer::new(tiny(&["a", "b"], false, 1), cfg.clone(), 8, 0).unwrap();
        // Pooler 16×16 + 16, classifier 2×16 + 2.
        assert_eq!(t.trainable_parameters(), 16 * 16 + 16 + 2 * 16 + 2);
        let export = |t: &Trainer| {
            crate::backend::block_on_ready(t.model().export())
                .unwrap()
                .into_iter()
                .map(|(name, _, data)| (name, data))
                .collect::<std::collections::BTreeMap<_, _>>()
        };
        let start = export(&t);
        let d = data();
        let (before, _) = t.evaluate(&d).unwrap();
        let mut k = Keep(vec![], vec![]);
        t.fit(&d, None, &mut k).unwrap();
        let (after, _) = t.evaluate(&d).unwrap();
        assert!(after < before, "loss {before} → {after}");
        // The cached encoder states give the model's own logits.
        let cached = t.logits(&d).unwrap();
        for (i, ids) in d.ids.iter().enumerate() {
            let mask = vec![1u32; ids.len()];
            let direct = t.model().forward(ids, &mask, 1, ids.len()).unwrap();
            let direct = direct.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            for (a, b) in direct.iter().zip(&cached[i * 2..i * 2 + 2]) {
                assert!((a - b).abs() < 1e-4, "example {i}: {a} vs {b}");
            }
        }
        let end = export(&t);
        for (name, w) in &start {
            let head = name.starts_with("bert.pooler.") || name.starts_with("classifier.");
            assert_eq!(head, w != &end[name], "{name}: changed only if in the head");
        }
        // A checkpoint of a frozen run does not resume a full one.
        let mut full = Trainer::new(tiny(&["a", "b"], false, 1), config(20), 8, 0).unwrap();
        let c = &k.0[0];
        let e = full
            .resume(&c.weights, &c.optimizer, c.state.clone(), None)
            .unwrap_err();
        assert!(e.to_string().contains("encoder frozen"), "{e}");
    }

    #[test]
    fn loss_decreases_on_a_fixed_batch() {
        for multi in [false, true] {
            let cfg = TrainConfig {
                lr: 1e-2,
                decay: Decay::Constant,
                ..config(20)
            };
            let mut t = Trainer::new(tiny(&["a", "b"], multi, 1), cfg, 8, 0).unwrap();
            let d = data();
            let (before, _) = t.evaluate(&d).unwrap();
            let mut k = Keep(vec![], vec![]);
            t.fit(&d, None, &mut k).unwrap();
            let (after, rep) = t.evaluate(&d).unwrap();
            assert!(
                after < before * 0.5,
                "multi {multi}: loss {before} → {after}"
            );
            assert_eq!(rep.accuracy, 1.0, "multi {multi}");
            assert_eq!(k.1.len(), 40);
        }
    }

    #[test]
    fn a_resumed_run_equals_an_uninterrupted_one() {
        let d = data();
        let mut whole = Trainer::new(tiny(&["a", "b"], false, 1), config(2), 8, 0).unwrap();
        whole.fit(&d, Some(&d), &mut Keep(vec![], vec![])).unwrap();
        let want = whole.logits(&d).unwrap();

        let mut first = Trainer::new(tiny(&["a", "b"], false, 1), config(1), 8, 0).unwrap();
        // The same schedule as the two-epoch run: resume with epochs = 2.
        first.schedule = whole.schedule;
        let mut k = Keep(vec![], vec![]);
        first.fit(&d, Some(&d), &mut k).unwrap();
        let c = &k.0[0];
        let mut second = Trainer::new(tiny(&["a", "b"], false, 99), config(2), 8, 0).unwrap();
        second
            .resume(&c.weights, &c.optimizer, c.state.clone(), None)
            .unwrap();
        assert_eq!(second.state().epoch, 1);
        second.fit(&d, Some(&d), &mut Keep(vec![], vec![])).unwrap();
        let got = second.logits(&d).unwrap();
        let worst = want
            .iter()
            .zip(&got)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(worst < 1e-5, "resumed logits differ by {worst}");
        // Another seed is refused.
        let mut other = Trainer::new(
            tiny(&["a", "b"], false, 1),
            TrainConfig {
                seed: 7,
                ..config(2)
            },
            8,
            0,
        )
        .unwrap();
        let e = other
            .resume(&c.weights, &c.optimizer, c.state.clone(), None)
            .unwrap_err();
        assert!(e.to_string().contains("seed 42"), "{e}");
    }

    #[test]
    fn export_round_trips_through_the_transformers_layout() {
        let d = data();
        let mut t = Trainer::new(tiny(&["a", "b", "c"], false, 5), config(1), 8, 0).unwrap();
        t.fit(&d, None, &mut Keep(vec![], vec![])).unwrap();
        let want = t.logits(&d).unwrap();
        let tensors = crate::backend::block_on_ready(t.model().export()).unwrap();
        let names: Vec<&str> = tensors.iter().map(|t| t.0.as_str()).collect();
        for n in [
            "bert.encoder.layer.1.attention.self.key.weight",
            "bert.pooler.dense.weight",
            "classifier.bias",
        ] {
            assert!(names.contains(&n), "{n} missing from {names:?}");
        }
        let bytes = write_f32(&tensors, &Default::default()).unwrap();
        let st = SafeTensors::parse(&bytes, "model.safetensors").unwrap();
        let base: serde_json::Value =
            serde_json::from_slice(&crate::testing::tiny_bert(50, 16, 2, 3).unwrap().0).unwrap();
        let cfg_json = t.model().config().to_json(&base);
        assert_eq!(
            cfg_json["architectures"][0],
            "BertForSequenceClassification"
        );
        assert_eq!(cfg_json["label2id"]["c"], 2);
        let cfg = ClassifierConfig::from_json(cfg_json.to_string().as_bytes()).unwrap();
        let loaded = SequenceClassifier::load(CpuBackend::new(), cfg, &st).unwrap();
        let rows: Vec<&[u32]> = d.ids.iter().map(Vec::as_slice).collect();
        let p = pad_batch(&rows, 0);
        let logits = loaded
            .forward(&p.ids, &p.attention_mask, 8, p.max_len)
            .unwrap();
        let got = logits.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let worst = want
            .iter()
            .zip(&got)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(worst < 1e-4, "reloaded logits differ by {worst}");
    }
}
