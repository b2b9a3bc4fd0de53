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
//!
//! Files: `data.rs` (encoded examples and query groups), `trainer.rs` (the
//! run: set-up, resume, the epoch loop), `loss.rs` (batch forward passes and
//! losses), `evaluate.rs` (validation reports and MRR).

mod data;
mod evaluate;
mod loss;
#[cfg(test)]
mod tests;
mod trainer;

pub use data::Encoded;
pub use trainer::Trainer;

use candle_core::{D, DType, Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::backend::cpu::CpuBackend;
use crate::error::{Error, Result};
use crate::eval::classification::{Report, report};
use crate::formats::safetensors::write_f32;
use crate::formats::tensors::SafeTensors;
use crate::models::classifier::{ProblemType, SequenceClassifier, predict_row};
use crate::tokenizer::{BatchEncoding, Tokenizer, pad_batch};
use crate::train::data::length_grouped_batches;
use crate::train::optim::{AdamW, AdamWConfig, make_params};
use crate::train::schedule::{Decay, Schedule};
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
