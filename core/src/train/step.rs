//! The optimizer step both trainers share (sequence classification and LoRA
//! SFT): gradient accumulation over micro-batches, global-norm clipping and
//! AdamW at the schedule's learning rate, as transformers' `Trainer` does
//! per step.

use candle_core::Tensor;

use super::optim::{AdamW, clip_grad_norm};
use super::schedule::Schedule;
use crate::error::Result;

/// What one optimizer step did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepOutcome {
    /// Mean loss over the step's micro-batches.
    pub loss: f32,
    /// Learning rate applied.
    pub lr: f64,
    /// Gradient norm before clipping.
    pub grad_norm: f64,
    /// Examples (or target tokens) the micro-batches counted.
    pub examples: usize,
}

/// The summed gradients of one step's micro-batches, not yet applied.
#[derive(Debug)]
pub struct Accumulated {
    grads: Vec<Option<Tensor>>,
    loss_sum: f32,
    micro_batches: usize,
    examples: usize,
}

/// Back-propagates each of `micro_batches`' losses (from `loss_of`, with
/// the count it reports), scaled by `1 / micro_batches.len()`, and sums the
/// gradients of `opt`'s parameters. Only reads `opt`, so `loss_of` may borrow
/// the trainer that owns it.
pub fn accumulate<T>(
    opt: &AdamW,
    micro_batches: &[T],
    mut loss_of: impl FnMut(&T) -> Result<(Tensor, usize)>,
) -> Result<Accumulated> {
    let mut grads: Vec<Option<Tensor>> = vec![None; opt.params().len()];
    let (mut loss_sum, mut examples) = (0f32, 0usize);
    let scale = micro_batches.len() as f64;
    for mb in micro_batches {
        let (loss, count) = loss_of(mb)?;
        let store = (&loss / scale)?.backward()?;
        opt.accumulate(&mut grads, &store)?;
        loss_sum += loss.to_scalar::<f32>()?;
        examples += count;
    }
    Ok(Accumulated {
        grads,
        loss_sum,
        micro_batches: micro_batches.len(),
        examples,
    })
}

/// Clips the accumulated gradients to `max_grad_norm` (0 = off) and applies
/// them with `opt` at `schedule`'s learning rate for step `step`.
pub fn apply(
    opt: &mut AdamW,
    mut acc: Accumulated,
    schedule: &Schedule,
    step: u64,
    max_grad_norm: f64,
) -> Result<StepOutcome> {
    let grad_norm = clip_grad_norm(&mut acc.grads, max_grad_norm)?;
    let lr = schedule.lr(step);
    opt.step(&acc.grads, lr)?;
    Ok(StepOutcome {
        loss: acc.loss_sum / acc.micro_batches as f32,
        lr,
        grad_norm,
        examples: acc.examples,
    })
}
