//! Training through candle's autodiff (feature `train`, native only).
//!
//! The models are the inference definitions in [`crate::models`], run on
//! [`crate::backend::cpu::CpuBackend::for_training`] (every op composed from
//! differentiable candle primitives) with their weights swapped for
//! [`candle_core::Var`]s. What lives here is what transformers' `Trainer`
//! and `torch.optim` supply:
//!
//! - [`optim`]: AdamW (decoupled weight decay) and gradient-norm clipping.
//! - [`schedule`]: learning-rate schedules (linear warm-up, then constant,
//!   linear or cosine decay).
//! - [`data`]: labeled JSONL examples and length-grouped dynamic-padding batches.
//! - [`classify`]: sequence-classification fine-tuning with class weights,
//!   gradient accumulation, early stopping and resumable checkpoints.
//! - [`sft`]: LoRA supervised fine-tuning of the decoder (completion-only
//!   loss, packing, LoRA dropout).
//! - [`step`]: the optimizer step both trainers share (accumulation, clipping, AdamW).
//! - [`plot`]: loss / metric curves as SVG.

// Training indexes what it built itself: examples by the positions the
// batcher drew from the same data, labels by the ids the loader mapped from
// label names (so below the label count; class weights are checked against
// it), optimizer state by parameter position. No index comes from a number
// in a file.
#![allow(clippy::indexing_slicing)]

pub mod classify;
pub mod data;
#[cfg(test)]
mod gradcheck;
pub mod optim;
pub mod plot;
pub mod schedule;
pub mod sft;
pub mod step;

/// The generator of epoch `epoch`'s shuffle: depends only on the seed and
/// the epoch, so a run resumed at an epoch boundary shuffles as an
/// uninterrupted one.
pub fn epoch_rng(seed: u64, epoch: usize) -> crate::util::Rng {
    crate::util::Rng::new(seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9))
}

/// The seed of optimizer step `step`'s dropout masks (seed and step only).
pub fn step_seed(seed: u64, step: u64) -> u64 {
    seed.wrapping_add(step.wrapping_mul(0xD1B5_4A32_D192_ED03))
}
