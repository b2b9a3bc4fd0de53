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
//! - [`plot`]: loss / metric curves as SVG.

pub mod classify;
pub mod data;
#[cfg(test)]
mod gradcheck;
pub mod optim;
pub mod plot;
pub mod schedule;
pub mod sft;
