//! LoRA adapters for the Llama decoder, in Hugging Face PEFT's file layout.
//!
//! An adapter adds `ΔW = (α / r) · B·A` to a projection `W[out, in]`, with
//! `A[r, in]` and `B[out, r]`; applied unmerged it costs two thin matmuls
//! (`y += s · (x·Aᵀ)·Bᵀ`) and leaves the base untouched, so adapters swap
//! per request; merged it is folded into `W` once (`cairn merge`).
//!
//! Files (what `PeftModel.save_pretrained` writes and `PeftModel.from_pretrained` reads):
//!
//! ```text
//! adapter_config.json        {"peft_type": "LORA", "r", "lora_alpha", "lora_dropout",
//!                             "target_modules", "bias": "none", "use_rslora", ...}
//! adapter_model.safetensors  base_model.model.model.layers.{i}.self_attn.{q,k,v,o}_proj.lora_{A,B}.weight
//!                            base_model.model.model.layers.{i}.mlp.{gate,up,down}_proj.lora_{A,B}.weight
//! ```
//!
//! Row order: PEFT's `B` for `q_proj`/`k_proj` has the Hugging Face row
//! order; llama.cpp's GGUF permutes those rows (pairs for its RoPE), so
//! [`Adapter`] keeps the PEFT order and the model permutes `B` when it
//! uploads an adapter (see [`crate::formats::hf_llama::permute_rows`]).

pub mod merge;
pub mod runtime;

use std::collections::BTreeMap;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::formats::safetensors::{NamedTensor, write_f32};
use crate::formats::tensors::SafeTensors;
use crate::util::Rng;

/// The projections LoRA can target, in the order the model applies them.
pub const MODULES: [&str; 7] = [
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "down_proj",
];

/// The PEFT path of a module inside a layer.
fn module_path(module: &str) -> &'static str {
    match module {
        "gate_proj" | "up_proj" | "down_proj" => "mlp",
        _ => "self_attn",
    }
}

/// Index of a module name in [`MODULES`].
pub fn module_index(module: &str) -> Option<usize> {
    MODULES.iter().position(|m| *m == module)
}

/// LoRA hyper-parameters (`adapter_config.json`).
#[derive(Debug, Clone, PartialEq)]
pub struct LoraConfig {
    /// Rank `r`.
    pub r: usize,
    /// `lora_alpha`.
    pub alpha: f32,
    /// `lora_dropout` (training only).
    pub dropout: f32,
    /// Targeted projections (names from [`MODULES`]).
    pub target_modules: Vec<String>,
    /// rsLoRA scaling `α/√r` instead of `α/r`.
    pub use_rslora: bool,
    /// `base_model_name_or_path`, informational.
    pub base_model: Option<String>,
}

impl LoraConfig {
    /// The factor applied to `B·A`.
    pub fn scaling(&self) -> f32 {
        if self.use_rslora {
            self.alpha / (self.r as f32).sqrt()
        } else {
            self.alpha / self.r as f32
        }
    }

    /// Parses PEFT's `adapter_config.json`; unsupported settings (another
    /// PEFT type, DoRA, trained biases, fan-in/fan-out layouts, layer
    /// subsets) are errors naming the field.
    pub fn from_peft_json(bytes: &[u8]) -> Result<Self> {
        let err = |detail: String| Error::Model {
            file: "adapter_config.json".into(),
            detail,
        };
        let v: Value =
            serde_json::from_slice(bytes).map_err(|e| err(format!("invalid JSON: {e}")))?;
        match v.get("peft_type").and_then(Value::as_str) {
            Some("LORA") => {}
            other => {
                return Err(err(format!(
                    "peft_type {other:?} is not supported (only \"LORA\")"
                )));
            }
        }
        let truthy = |k: &str| v.get(k).and_then(Value::as_bool).unwrap_or(false);
        if truthy("use_dora") {
            return Err(err("use_dora: DoRA adapters are not supported".into()));
        }
        if truthy("fan_in_fan_out") {
            return Err(err(
                "fan_in_fan_out: only Linear layouts are supported".into()
            ));
        }
        if let Some(b) = v
            .get("bias")
            .and_then(Value::as_str)
            .filter(|b| *b != "none")
        {
            return Err(err(format!("bias '{b}' is not supported (only \"none\")")));
        }
        if v.get("layers_to_transform").is_some_and(|l| !l.is_null()) {
            return Err(err("layers_to_transform is not supported".into()));
        }
        let r = v
            .get("r")
            .and_then(Value::as_u64)
            .filter(|&r| r > 0)
            .ok_or_else(|| err("missing or zero field 'r'".into()))? as usize;
        let alpha = v
            .get("lora_alpha")
            .and_then(Value::as_f64)
            .ok_or_else(|| err("missing field 'lora_alpha'".into()))? as f32;
        let target_modules: Vec<String> = match v.get("target_modules") {
            Some(Value::Array(a)) => a
                .iter()
                .map(|m| {
                    let m = m
                        .as_str()
                        .ok_or_else(|| err("target_modules must be strings".into()))?;
                    if module_index(m).is_none() {
                        return Err(err(format!(
                            "target module '{m}' is not one of {MODULES:?}"
                        )));
                    }
                    Ok(m.to_string())
                })
                .collect::<Result<_>>()?,
            Some(Value::String(s)) if s == "all-linear" => {
                MODULES.iter().map(|m| m.to_string()).collect()
            }
            _ => return Err(err("target_modules must be a list of module names".into())),
        };
        Ok(LoraConfig {
            r,
            alpha,
            dropout: v.get("lora_dropout").and_then(Value::as_f64).unwrap_or(0.0) as f32,
            target_modules,
            use_rslora: truthy("use_rslora"),
            base_model: v
                .get("base_model_name_or_path")
                .and_then(Value::as_str)
                .map(str::to_string),
        })
    }

    /// `adapter_config.json` as PEFT writes it.
    pub fn to_peft_json(&self) -> Value {
        serde_json::json!({
            "peft_type": "LORA",
            "task_type": "CAUSAL_LM",
            "r": self.r,
            "lora_alpha": self.alpha,
            "lora_dropout": self.dropout,
            "target_modules": self.target_modules,
            "bias": "none",
            "fan_in_fan_out": false,
            "use_rslora": self.use_rslora,
            "use_dora": false,
            "init_lora_weights": "gaussian",
            "inference_mode": true,
            "modules_to_save": null,
            "layers_to_transform": null,
            "base_model_name_or_path": self.base_model,
        })
    }
}

/// One module's low-rank pair (Hugging Face row order).
#[derive(Debug, Clone, PartialEq)]
pub struct LoraPair {
    /// `A[r, in]`, row-major.
    pub a: Vec<f32>,
    /// `B[out, r]`, row-major.
    pub b: Vec<f32>,
    /// Input width.
    pub inp: usize,
    /// Output width.
    pub out: usize,
}

/// A LoRA adapter: configuration and, per layer, the pairs of the targeted modules.
#[derive(Debug, Clone, PartialEq)]
pub struct Adapter {
    /// Hyper-parameters.
    pub config: LoraConfig,
    /// `layers[i][module]`.
    pub layers: Vec<BTreeMap<String, LoraPair>>,
}

/// The PEFT tensor name of a layer's module.
pub fn peft_name(layer: usize, module: &str, ab: char) -> String {
    format!(
        "base_model.model.model.layers.{layer}.{}.{module}.lora_{ab}.weight",
        module_path(module)
    )
}

impl Adapter {
    /// A fresh adapter for training: `A ~ N(0, 1/r²)` (PEFT's
    /// `init_lora_weights="gaussian"`), `B = 0`, so the adapted model starts
    /// equal to the base. `dims(module)` gives `(in, out)` of a projection.
    pub fn init(
        config: LoraConfig,
        layers: usize,
        dims: impl Fn(&str) -> (usize, usize),
        seed: u64,
    ) -> Self {
        let mut rng = Rng::new(seed);
        let r = config.r;
        let std = 1.0 / r as f32;
        let layers = (0..layers)
            .map(|_| {
                config
                    .target_modules
                    .iter()
                    .map(|m| {
                        let (inp, out) = dims(m);
                        let a = (0..r * inp).map(|_| std * rng.normal()).collect();
                        (
                            m.clone(),
                            LoraPair {
                                a,
                                b: vec![0.0; out * r],
                                inp,
                                out,
                            },
                        )
                    })
                    .collect()
            })
            .collect();
        Adapter { config, layers }
    }

    /// Reads a PEFT adapter (`adapter_config.json` bytes and
    /// `adapter_model.safetensors` bytes) for a model of `layers` layers
    /// whose projections have `dims(module) = (in, out)`. Missing tensors,
    /// wrong shapes or tensors for layers the model lacks are errors naming
    /// the tensor.
    pub fn from_peft(
        config_json: &[u8],
        weights: &[u8],
        layers: usize,
        dims: impl Fn(&str) -> (usize, usize),
    ) -> Result<Self> {
        let config = LoraConfig::from_peft_json(config_json)?;
        let st = SafeTensors::parse(weights, "adapter_model.safetensors")?;
        let file = "adapter_model.safetensors";
        for name in st.names() {
            let layer = name
                .strip_prefix("base_model.model.model.layers.")
                .and_then(|rest| rest.split('.').next())
                .and_then(|n| n.parse::<usize>().ok());
            match layer {
                Some(l) if l < layers => {}
                _ => {
                    return Err(Error::Model {
                        file: file.into(),
                        detail: format!(
                            "tensor '{name}' does not belong to a layer of this {layers}-layer model (an adapter for another base?)"
                        ),
                    });
                }
            }
        }
        let r = config.r;
        let mut out = Vec::with_capacity(layers);
        for l in 0..layers {
            let mut mods = BTreeMap::new();
            for m in &config.target_modules {
                let (inp, o) = dims(m);
                let get = |ab: char, want: [usize; 2]| -> Result<Vec<f32>> {
                    let name = peft_name(l, m, ab);
                    let (data, shape) = st.f32(&name)?;
                    if shape != want {
                        return Err(Error::Model {
                            file: file.into(),
                            detail: format!(
                                "tensor '{name}' has shape {shape:?}, the base model and r = {r} need {want:?} (an adapter for another base?)"
                            ),
                        });
                    }
                    Ok(data)
                };
                let a = get('A', [r, inp])?;
                let b = get('B', [o, r])?;
                mods.insert(m.clone(), LoraPair { a, b, inp, out: o });
            }
            out.push(mods);
        }
        Ok(Adapter {
            config,
            layers: out,
        })
    }

    /// The tensors under PEFT's names.
    pub fn tensors(&self) -> Vec<NamedTensor> {
        let r = self.config.r;
        let mut out = Vec::new();
        for (l, mods) in self.layers.iter().enumerate() {
            for (m, p) in mods {
                out.push((peft_name(l, m, 'A'), vec![r, p.inp], p.a.clone()));
                out.push((peft_name(l, m, 'B'), vec![p.out, r], p.b.clone()));
            }
        }
        out
    }

    /// `(adapter_config.json, adapter_model.safetensors)` bytes.
    pub fn to_peft(&self) -> Result<(Vec<u8>, Vec<u8>)> {
        let json = serde_json::to_vec_pretty(&self.config.to_peft_json())
            .map_err(|e| Error::Input(format!("adapter_config.json: {e}")))?;
        let weights = write_f32(
            &self.tensors(),
            &[("format".to_string(), "pt".to_string())].into(),
        )?;
        Ok((json, weights))
    }

    /// Trainable values (as PEFT's `print_trainable_parameters` counts them).
    pub fn parameter_count(&self) -> usize {
        self.layers
            .iter()
            .flat_map(|m| m.values())
            .map(|p| p.a.len() + p.b.len())
            .sum()
    }

    /// `ΔW = s·B·A` of one module, `[out, in]` row-major (Hugging Face rows).
    pub fn delta(&self, layer: usize, module: &str) -> Option<Vec<f32>> {
        let p = self.layers.get(layer)?.get(module)?;
        let (r, s) = (self.config.r, self.config.scaling());
        if p.a.len() != r * p.inp || p.b.len() != p.out * r {
            return None;
        }
        let mut w = vec![0f32; p.out * p.inp];
        for (row, b_row) in w
            .chunks_exact_mut(p.inp.max(1))
            .zip(p.b.chunks_exact(r.max(1)))
        {
            for (&b, a_row) in b_row.iter().zip(p.a.chunks_exact(p.inp.max(1))) {
                let bk = s * b;
                if bk != 0.0 {
                    for (x, a) in row.iter_mut().zip(a_row) {
                        *x += bk * a;
                    }
                }
            }
        }
        Some(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> LoraConfig {
        LoraConfig {
            r: 2,
            alpha: 4.0,
            dropout: 0.05,
            target_modules: vec!["q_proj".into(), "down_proj".into()],
            use_rslora: false,
            base_model: Some("tiny".into()),
        }
    }

    fn dims(m: &str) -> (usize, usize) {
        if m == "down_proj" { (6, 4) } else { (4, 4) }
    }

    #[test]
    fn peft_files_round_trip_and_mismatches_are_named() {
        let mut a = Adapter::init(cfg(), 2, dims, 1);
        // B = 0 at init: the adapted model equals the base.
        assert!(a.layers[0]["q_proj"].b.iter().all(|&v| v == 0.0));
        a.layers[1].get_mut("down_proj").unwrap().b[3] = 0.5;
        assert_eq!(a.parameter_count(), 2 * (2 * 4 + 4 * 2 + 2 * 6 + 4 * 2));
        let (json, weights) = a.to_peft().unwrap();
        let back = Adapter::from_peft(&json, &weights, 2, dims).unwrap();
        assert_eq!(back, a);
        let st = SafeTensors::parse(&weights, "w").unwrap();
        assert!(st.contains("base_model.model.model.layers.1.mlp.down_proj.lora_B.weight"));
        assert!(st.contains("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"));
        // Another base: more layers in the file than in the model, other widths.
        let e = Adapter::from_peft(&json, &weights, 1, dims)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("does not belong to a layer of this 1-layer model"),
            "{e}"
        );
        let e = Adapter::from_peft(&json, &weights, 2, |_| (8, 8))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("has shape [2, 4], the base model and r = 2 need [2, 8]"),
            "{e}"
        );
        let dora = br#"{"peft_type":"LORA","r":2,"lora_alpha":4,"target_modules":["q_proj"],"use_dora":true}"#;
        assert!(
            LoraConfig::from_peft_json(dora)
                .unwrap_err()
                .to_string()
                .contains("DoRA")
        );
        let bad = br#"{"peft_type":"LORA","r":2,"lora_alpha":4,"target_modules":["lm_head"]}"#;
        assert!(
            LoraConfig::from_peft_json(bad)
                .unwrap_err()
                .to_string()
                .contains("'lm_head'")
        );
    }

    #[test]
    fn delta_is_scaled_b_times_a() {
        let mut a = Adapter::init(cfg(), 1, dims, 3);
        let p = a.layers[0].get_mut("q_proj").unwrap();
        p.a = vec![1., 0., 0., 0., 0., 1., 0., 0.];
        p.b = vec![1., 0., 0., 1., 0., 0., 2., 3.];
        // s = 4/2 = 2; ΔW row o = 2·(B[o,0]·A[0] + B[o,1]·A[1]).
        let d = a.delta(0, "q_proj").unwrap();
        assert_eq!(&d[..4], &[2., 0., 0., 0.]);
        assert_eq!(&d[4..8], &[0., 2., 0., 0.]);
        assert_eq!(&d[12..16], &[4., 6., 0., 0.]);
        assert!(a.delta(0, "v_proj").is_none());
    }
}
