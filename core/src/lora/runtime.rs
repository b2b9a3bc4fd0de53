//! The LoRA runtime: an adapter's `A`/`B` tensors on the model's backend,
//! applied unmerged to each targeted projection (`y + s·(dropout(x)·Aᵀ)·Bᵀ`).
//! The decoder owns one [`LoraHook`] and calls [`LoraHook::adapt`] after
//! every projection; everything LoRA-specific (slots, scaling, dropout, the
//! row permutation llama.cpp applies to Q/K) lives here.

use std::sync::Mutex;

use super::{Adapter, LoraConfig, LoraPair, MODULES, module_index, peft_name};
use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::formats::hf_llama::{permute_rows, unpermute_rows};
use crate::formats::llama_config::LlamaConfig;
use crate::util::Rng;

/// One layer's `(A, B)` per module in [`MODULES`] order.
type Slots<B> = [Option<(<B as Backend>::Tensor, <B as Backend>::Tensor)>; 7];

/// An adapter on the backend: per layer and module ([`MODULES`] order) the
/// `A[r, in]` and `B[out, r]` tensors, `B` rows in GGUF order.
struct Active<B: Backend> {
    config: LoraConfig,
    scaling: f32,
    layers: Vec<Slots<B>>,
}

/// A decoder's LoRA state: the active adapter (if any) and, in training,
/// the dropout on its inputs.
pub struct LoraHook<B: Backend> {
    active: Option<Active<B>>,
    /// Training only: dropout probability and the generator of its masks.
    dropout: Mutex<Option<(f32, Rng)>>,
}

impl<B: Backend> Default for LoraHook<B> {
    fn default() -> Self {
        LoraHook {
            active: None,
            dropout: Mutex::new(None),
        }
    }
}

/// Heads whose rows llama.cpp permutes in a module's output (Q and K).
fn permuted_heads(c: &LlamaConfig, module: &str) -> Option<usize> {
    match module {
        "q_proj" => Some(c.num_heads),
        "k_proj" => Some(c.num_kv_heads),
        _ => None,
    }
}

impl<B: Backend> LoraHook<B> {
    /// Activates `adapter` for a model of configuration `c` (`None` removes
    /// it). An adapter for another base (layer count or widths) is an error
    /// naming the module.
    pub fn set(&mut self, backend: &B, c: &LlamaConfig, adapter: Option<&Adapter>) -> Result<()> {
        let Some(a) = adapter else {
            self.active = None;
            return Ok(());
        };
        if a.layers.len() != c.num_layers {
            return Err(Error::Model {
                file: "adapter_model.safetensors".into(),
                detail: format!(
                    "the adapter has {} layers, the model {}",
                    a.layers.len(),
                    c.num_layers
                ),
            });
        }
        let r = a.config.r;
        let mut layers = Vec::with_capacity(a.layers.len());
        for (l, mods) in a.layers.iter().enumerate() {
            let mut slots: Slots<B> = Default::default();
            for (
                m,
                LoraPair {
                    a: wa,
                    b: wb,
                    inp,
                    out,
                },
            ) in mods
            {
                let j = module_index(m)
                    .ok_or_else(|| Error::Input(format!("unknown LoRA module '{m}'")))?;
                if (*inp, *out) != c.projection_dims(m) {
                    return Err(Error::Model {
                        file: "adapter_model.safetensors".into(),
                        detail: format!(
                            "layer {l} {m}: the adapter is {inp}→{out}, the model {:?} (an adapter for another base?)",
                            c.projection_dims(m)
                        ),
                    });
                }
                let wb = match permuted_heads(c, m) {
                    Some(heads) => permute_rows(wb, heads, *out, r)?,
                    None => wb.clone(),
                };
                if let Some(slot) = slots.get_mut(j) {
                    *slot = Some((
                        backend.tensor_f32(wa, &[r, *inp])?,
                        backend.tensor_f32(&wb, &[*out, r])?,
                    ));
                }
            }
            layers.push(slots);
        }
        self.active = Some(Active {
            config: a.config.clone(),
            scaling: a.config.scaling(),
            layers,
        });
        Ok(())
    }

    /// The active adapter's tensors for training (`(PEFT name, tensor)`;
    /// a trainer swaps each for a variable). `B` of Q/K is in GGUF row order.
    pub fn parameters_mut(&mut self) -> Vec<(String, &mut B::Tensor)> {
        let mut out = Vec::new();
        if let Some(rt) = self.active.as_mut() {
            for (l, slots) in rt.layers.iter_mut().enumerate() {
                for (m, slot) in MODULES.iter().zip(slots.iter_mut()) {
                    if let Some((a, b)) = slot {
                        out.push((peft_name(l, m, 'A'), a));
                        out.push((peft_name(l, m, 'B'), b));
                    }
                }
            }
        }
        out
    }

    /// The active adapter read back from the backend (Hugging Face row order).
    pub async fn read_back(&self, b: &B, c: &LlamaConfig) -> Result<Option<Adapter>> {
        let Some(rt) = &self.active else {
            return Ok(None);
        };
        let r = rt.config.r;
        let mut layers = Vec::with_capacity(rt.layers.len());
        for slots in &rt.layers {
            let mut mods = std::collections::BTreeMap::new();
            for (&m, slot) in MODULES.iter().zip(slots.iter()) {
                if let Some((ta, tb)) = slot {
                    let (inp, out) = c.projection_dims(m);
                    let wb = b.read_f32(tb).await?;
                    let wb = match permuted_heads(c, m) {
                        Some(heads) => unpermute_rows(&wb, heads, out, r)?,
                        None => wb,
                    };
                    mods.insert(
                        m.to_string(),
                        LoraPair {
                            a: b.read_f32(ta).await?,
                            b: wb,
                            inp,
                            out,
                        },
                    );
                }
            }
            layers.push(mods);
        }
        Ok(Some(Adapter {
            config: rt.config.clone(),
            layers,
        }))
    }

    /// Training: drop LoRA inputs with probability `p` (masks drawn from a
    /// generator seeded with `seed`, as PEFT's `lora_dropout`); `None` turns
    /// dropout off (inference).
    pub fn set_dropout(&self, dropout: Option<(f32, u64)>) {
        if let Ok(mut d) = self.dropout.lock() {
            *d = dropout.map(|(p, seed)| (p, Rng::new(seed)));
        }
    }

    /// `y + s·(dropout(x)·Aᵀ)·Bᵀ` when layer `l` adapts module `j` (index
    /// into [`MODULES`]), else `y`.
    pub fn adapt(
        &self,
        b: &B,
        l: usize,
        j: usize,
        x: &B::Tensor,
        y: B::Tensor,
    ) -> Result<B::Tensor> {
        let Some((s, (wa, wb))) = self.active.as_ref().and_then(|rt| {
            rt.layers
                .get(l)
                .and_then(|slots| slots.get(j))
                .and_then(Option::as_ref)
                .map(|p| (rt.scaling, p))
        }) else {
            return Ok(y);
        };
        let mask = match self.dropout.lock().ok().as_deref_mut() {
            Some(Some((p, rng))) => {
                let shape = b.shape(x);
                let m = rng.dropout_mask(shape.iter().product(), *p);
                Some(b.tensor_f32(&m, &shape)?)
            }
            _ => None,
        };
        let dropped = match &mask {
            Some(m) => b.mul(x, m)?,
            None => x.clone(),
        };
        let d = b.linear(&b.linear(&dropped, wa, None)?, wb, None)?;
        b.add(&y, &b.scale(&d, s)?)
    }
}
