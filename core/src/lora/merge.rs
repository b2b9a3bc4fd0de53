//! Folding an adapter into a GGUF model's weights (`W ← W + s·B·A`), what
//! PEFT's `merge_and_unload` does and llama.cpp's `export-lora` writes.

use std::borrow::Cow;

use super::Adapter;
use crate::error::{Error, Result};
use crate::formats::gguf::{GgmlType, Gguf, TensorData};
use crate::formats::hf_llama::permute_rows;
use crate::formats::llama_config::LlamaConfig;
use crate::quant;

/// The GGUF tensor of a PEFT module.
pub fn gguf_tensor(module: &str) -> Option<&'static str> {
    Some(match module {
        "q_proj" => "attn_q",
        "k_proj" => "attn_k",
        "v_proj" => "attn_v",
        "o_proj" => "attn_output",
        "gate_proj" => "ffn_gate",
        "up_proj" => "ffn_up",
        "down_proj" => "ffn_down",
        _ => return None,
    })
}

/// The tensors of `g` with `adapter` merged into every targeted projection.
/// Merged matrices are written as `out_type` (e.g. F32 to lose nothing, or
/// the base's own block type to keep the file small: `None`); all other
/// tensors are passed through unchanged.
pub fn merge<'a>(
    g: &'a Gguf<'a>,
    adapter: &Adapter,
    out_type: Option<GgmlType>,
) -> Result<Vec<TensorData<'a>>> {
    let c = LlamaConfig::from_gguf(g)?;
    if adapter.layers.len() != c.num_layers {
        return Err(Error::Model {
            file: "adapter_model.safetensors".into(),
            detail: format!(
                "the adapter has {} layers, {} has {}",
                adapter.layers.len(),
                g.name(),
                c.num_layers
            ),
        });
    }
    let mut out = Vec::with_capacity(g.header.tensors.len());
    for info in &g.header.tensors {
        let (_, data) = g.tensor(&info.name)?;
        let target = info
            .name
            .strip_prefix("blk.")
            .and_then(|rest| rest.split_once('.'))
            .and_then(|(l, rest)| Some((l.parse::<usize>().ok()?, rest.strip_suffix(".weight")?)))
            .and_then(|(l, t)| {
                adapter
                    .layers
                    .get(l)?
                    .iter()
                    .find(|(m, _)| gguf_tensor(m) == Some(t))
                    .map(|(m, p)| (l, m.clone(), p))
            });
        let (Some((layer, module, p)), [cols, rows]) = (target, info.dims.as_slice()) else {
            out.push(TensorData {
                name: info.name.clone(),
                ggml_type: info.ggml_type,
                dims: info.dims.clone(),
                data: Cow::Borrowed(data),
            });
            continue;
        };
        let (rows, cols) = (*rows as usize, *cols as usize);
        let what = format!("GGUF {} tensor '{}'", g.name(), info.name);
        if (p.out, p.inp) != (rows, cols) {
            return Err(Error::Model {
                file: "adapter_model.safetensors".into(),
                detail: format!(
                    "layer {layer} {module} is {}→{}, {what} is [{rows}, {cols}] (an adapter for another base?)",
                    p.inp, p.out
                ),
            });
        }
        let mut w = quant::dequantize(info.ggml_type, data, rows * cols, &what)?;
        let delta = adapter.delta(layer, &module).unwrap_or_default();
        // `llama` files store Q/K rows pair-permuted; the other families
        // keep Hugging Face's order, the adapter's.
        let delta = match module.as_str() {
            "q_proj" if !c.family.neox_rope() => permute_rows(&delta, c.num_heads, rows, cols)?,
            "k_proj" if !c.family.neox_rope() => permute_rows(&delta, c.num_kv_heads, rows, cols)?,
            _ => delta,
        };
        for (x, d) in w.iter_mut().zip(&delta) {
            *x += d;
        }
        let ty = out_type.unwrap_or(info.ggml_type);
        let bytes = match ty {
            GgmlType::F32 => w.iter().flat_map(|v| v.to_le_bytes()).collect(),
            _ => quant::quantize(ty, &w, &what)?,
        };
        out.push(TensorData {
            name: info.name.clone(),
            ggml_type: ty,
            dims: info.dims.clone(),
            data: Cow::Owned(bytes),
        });
    }
    Ok(out)
}
