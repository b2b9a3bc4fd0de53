//! AdamW and gradient clipping, as `torch.optim.AdamW` and
//! `torch.nn.utils.clip_grad_norm_` compute them.

use candle_core::{Tensor, Var};

use crate::error::{Error, Result};
use crate::formats::safetensors::NamedTensor;

/// A trainable parameter: its name (for checkpoints and logs), the variable,
/// and whether weight decay applies (transformers exempts biases and
/// LayerNorm weights).
#[derive(Debug, Clone)]
pub struct Param {
    /// Checkpoint name.
    pub name: String,
    /// The variable the model reads.
    pub var: Var,
    /// Whether weight decay applies.
    pub decay: bool,
}

impl Param {
    /// A parameter named `name`; decay is off for biases and norm weights,
    /// as transformers' `Trainer` groups them.
    pub fn new(name: String, var: Var) -> Self {
        let decay = !(name.ends_with(".bias")
            || name.contains("LayerNorm")
            || name.contains("layer_norm")
            || name.contains("norm."));
        Param { name, var, decay }
    }
}

/// Turns a model's named weights into variables (each tensor is replaced
/// in place by its variable, so the model reads what the optimizer updates).
pub fn make_params(named: Vec<(String, &mut Tensor)>) -> Result<Vec<Param>> {
    named
        .into_iter()
        .map(|(name, t)| {
            let var = Var::from_tensor(t)?;
            *t = var.as_tensor().clone();
            Ok(Param::new(name, var))
        })
        .collect()
}

/// AdamW hyper-parameters (PyTorch's defaults except the learning rate,
/// which the schedule sets per step).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWConfig {
    /// β₁.
    pub beta1: f64,
    /// β₂.
    pub beta2: f64,
    /// ε added to √v̂.
    pub eps: f64,
    /// Decoupled weight decay λ.
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.01,
        }
    }
}

/// AdamW (Loshchilov & Hutter): for each parameter with gradient `g` at step `t`,
/// `p ← p·(1 − lr·λ)`, `m ← β₁m + (1−β₁)g`, `v ← β₂v + (1−β₂)g²`,
/// `p ← p − lr · (m / (1−β₁ᵗ)) / (√(v / (1−β₂ᵗ)) + ε)`.
#[derive(Debug)]
pub struct AdamW {
    config: AdamWConfig,
    params: Vec<Param>,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    t: u64,
}

impl AdamW {
    /// An optimizer over `params` with zero moments.
    pub fn new(params: Vec<Param>, config: AdamWConfig) -> Result<Self> {
        let zeros = |p: &Param| p.var.as_tensor().zeros_like();
        let m = params
            .iter()
            .map(zeros)
            .collect::<candle_core::Result<_>>()?;
        let v = params
            .iter()
            .map(zeros)
            .collect::<candle_core::Result<_>>()?;
        Ok(Self {
            config,
            params,
            m,
            v,
            t: 0,
        })
    }

    /// The parameters, in the order gradients are passed to [`AdamW::step`].
    pub fn params(&self) -> &[Param] {
        &self.params
    }

    /// Steps taken.
    pub fn steps(&self) -> u64 {
        self.t
    }

    /// Values being trained (what PEFT's `print_trainable_parameters` counts).
    pub fn trainable_values(&self) -> usize {
        self.params
            .iter()
            .map(|p| p.var.as_tensor().elem_count())
            .sum()
    }

    /// Adds the gradients of one backward pass to `acc` (one slot per
    /// parameter, in [`AdamW::params`] order): gradient accumulation.
    pub fn accumulate(
        &self,
        acc: &mut [Option<Tensor>],
        store: &candle_core::backprop::GradStore,
    ) -> Result<()> {
        for (g, p) in acc.iter_mut().zip(&self.params) {
            if let Some(new) = store.get(p.var.as_tensor()) {
                *g = Some(match g.take() {
                    Some(old) => (old + new)?,
                    None => new.clone(),
                });
            }
        }
        Ok(())
    }

    /// One update with learning rate `lr`; `grads[i]` belongs to
    /// `params()[i]` (`None`: the parameter got no gradient and is left as is,
    /// as PyTorch skips parameters whose `.grad` is `None`).
    pub fn step(&mut self, grads: &[Option<Tensor>], lr: f64) -> Result<()> {
        if grads.len() != self.params.len() {
            return Err(Error::Input(format!(
                "{} gradients for {} parameters",
                grads.len(),
                self.params.len()
            )));
        }
        self.t += 1;
        let c = self.config;
        let t = self.t as i32;
        let (bc1, bc2) = (1.0 - c.beta1.powi(t), 1.0 - c.beta2.powi(t));
        for (i, g) in grads.iter().enumerate() {
            let Some(g) = g else { continue };
            let p = &self.params[i];
            let w = p.var.as_tensor().detach();
            if g.dims() != w.dims() {
                return Err(Error::Shape {
                    op: "AdamW step",
                    detail: format!(
                        "gradient {:?} does not fit parameter '{}' {:?}",
                        g.dims(),
                        p.name,
                        w.dims()
                    ),
                });
            }
            let m = ((&self.m[i] * c.beta1)? + (g * (1.0 - c.beta1))?)?;
            let v = ((&self.v[i] * c.beta2)? + (g.sqr()? * (1.0 - c.beta2))?)?;
            let w = if p.decay && c.weight_decay != 0.0 {
                (w * (1.0 - lr * c.weight_decay))?
            } else {
                w
            };
            let update = ((&m / bc1)? / ((&v / bc2)?.sqrt()? + c.eps)?)?;
            p.var.set(&(w - (update * lr)?)?)?;
            self.m[i] = m;
            self.v[i] = v;
        }
        Ok(())
    }

    /// The moments by parameter name (`m.<name>`, `v.<name>`) and the step
    /// count, for a checkpoint.
    pub fn state(&self) -> Result<(Vec<NamedTensor>, u64)> {
        let mut out = Vec::with_capacity(2 * self.params.len());
        for (i, p) in self.params.iter().enumerate() {
            for (k, t) in [("m", &self.m[i]), ("v", &self.v[i])] {
                out.push((
                    format!("{k}.{}", p.name),
                    t.dims().to_vec(),
                    t.flatten_all()?.to_vec1::<f32>()?,
                ));
            }
        }
        Ok((out, self.t))
    }

    /// Restores moments saved by [`AdamW::state`]; a missing or misshapen
    /// entry is an error naming it.
    pub fn load_state(
        &mut self,
        get: impl Fn(&str) -> Result<(Vec<f32>, Vec<usize>)>,
        steps: u64,
    ) -> Result<()> {
        for (i, p) in self.params.iter().enumerate() {
            for k in ["m", "v"] {
                let name = format!("{k}.{}", p.name);
                let (data, shape) = get(&name)?;
                if shape != p.var.as_tensor().dims() {
                    return Err(Error::Shape {
                        op: "optimizer state",
                        detail: format!(
                            "'{name}' has shape {shape:?}, the parameter {:?}",
                            p.var.as_tensor().dims()
                        ),
                    });
                }
                let t = Tensor::from_vec(data, shape, &candle_core::Device::Cpu)?;
                if k == "m" {
                    self.m[i] = t;
                } else {
                    self.v[i] = t;
                }
            }
        }
        self.t = steps;
        Ok(())
    }
}

/// Scales gradients so their global L2 norm is at most `max_norm`
/// (`clip_grad_norm_`: factor `max_norm / (norm + 1e-6)` when the norm is
/// larger). Returns the norm before clipping.
pub fn clip_grad_norm(grads: &mut [Option<Tensor>], max_norm: f64) -> Result<f64> {
    let mut sq = 0f64;
    for g in grads.iter().flatten() {
        sq += f64::from(g.sqr()?.sum_all()?.to_scalar::<f32>()?);
    }
    let norm = sq.sqrt();
    if max_norm > 0.0 && norm > max_norm {
        let f = max_norm / (norm + 1e-6);
        for g in grads.iter_mut().flatten() {
            *g = (&*g * f)?;
        }
    }
    Ok(norm)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn var(v: &[f32]) -> Var {
        Var::from_slice(v, v.len(), &Device::Cpu).unwrap()
    }

    #[test]
    fn adamw_matches_hand_computed_steps() {
        // p = [1, -2], g = [0.5, -1], lr 0.1, λ 0.01, β (0.9, 0.999), ε 1e-8.
        // Step 1: m = 0.1g, v = 0.001g², m̂ = g, v̂ = g², update = g/|g| = sign(g);
        // p ← p(1 − 0.001) − 0.1·sign(g) = [0.899, -1.898].
        let p = Param::new("w.weight".into(), var(&[1.0, -2.0]));
        let mut opt = AdamW::new(vec![p.clone()], AdamWConfig::default()).unwrap();
        let g = Tensor::new(&[0.5f32, -1.0], &Device::Cpu).unwrap();
        opt.step(&[Some(g.clone())], 0.1).unwrap();
        let got = p.var.as_tensor().to_vec1::<f32>().unwrap();
        assert!(
            (got[0] - 0.899).abs() < 1e-6 && (got[1] + 1.898).abs() < 1e-6,
            "{got:?}"
        );
        // Step 2 with the same gradient: m = 0.19g, v = 0.001999g²,
        // m̂ = 0.19g/0.19 = g, v̂ = 0.001999g²/0.001999 = g² → update sign(g) again.
        // p ← [0.899·0.999 − 0.1, −1.898·0.999 + 0.1] = [0.798101, −1.796102].
        opt.step(&[Some(g)], 0.1).unwrap();
        let got = p.var.as_tensor().to_vec1::<f32>().unwrap();
        assert!(
            (got[0] - 0.798_101).abs() < 1e-5 && (got[1] + 1.796_102).abs() < 1e-5,
            "{got:?}"
        );
        // Biases are not decayed.
        let b = Param::new("w.bias".into(), var(&[1.0]));
        assert!(!b.decay);
        let mut opt = AdamW::new(vec![b.clone()], AdamWConfig::default()).unwrap();
        opt.step(&[Some(Tensor::new(&[2.0f32], &Device::Cpu).unwrap())], 0.1)
            .unwrap();
        let got = b.var.as_tensor().to_vec1::<f32>().unwrap();
        assert!((got[0] - 0.9).abs() < 1e-6, "{got:?}");
        // A parameter without a gradient is left alone; a wrong count is an error.
        opt.step(&[None], 0.1).unwrap();
        assert!(opt.step(&[], 0.1).is_err());
    }

    #[test]
    fn clipping_scales_to_the_max_norm() {
        // ‖[3, 4]‖ = 5; clipped to 1 → [0.6, 0.8] (factor 1 / (5 + 1e-6)).
        let mut g = vec![
            Some(Tensor::new(&[3.0f32, 4.0], &Device::Cpu).unwrap()),
            None,
        ];
        let n = clip_grad_norm(&mut g, 1.0).unwrap();
        assert!((n - 5.0).abs() < 1e-6);
        let v = g[0].as_ref().unwrap().to_vec1::<f32>().unwrap();
        assert!(
            (v[0] - 0.6).abs() < 1e-6 && (v[1] - 0.8).abs() < 1e-6,
            "{v:?}"
        );
        // Under the limit: unchanged.
        let n = clip_grad_norm(&mut g, 10.0).unwrap();
        assert!((n - 1.0).abs() < 1e-5);
    }
}
