//! Quantized ggml blocks: pack (quantize) and unpack (dequantize), byte for
//! byte the layouts llama.cpp writes into GGUF files.
//!
//! Block layouts (little-endian, `d`/`m` are f16):
//! - `Q8_0`: 32 values → `d`, 32 × i8 (34 bytes); `x = d·q`.
//! - `Q4_0`: 32 values → `d`, 16 bytes of nibbles (18 bytes); `x = d·(q − 8)`,
//!   low nibbles hold values 0..16, high nibbles values 16..32.
//! - `Q4_1`: 32 values → `d`, `m`, 16 bytes of nibbles (20 bytes); `x = d·q + m`.
//! - `Q4_K`: 256 values in 8 sub-blocks → `d`, `dmin`, 12 bytes of 6-bit
//!   scales/mins, 128 bytes of nibbles (144 bytes).
//!
//! The block arithmetic is candle-core's port of ggml's reference code
//! (`quantize_row_*_ref` / `dequantize_row_*`); this module gives it one
//! checked entry point that names the tensor at fault. Golden tests compare
//! both directions with PyPI `gguf` (llama.cpp's own Python package).

pub mod matmul;
mod types;

pub use types::GgmlType;

use candle_core::quantized::{GgmlDType, QStorage, QTensor};
use candle_core::{Device, Tensor};

use crate::error::{Error, Result};

/// The block types `cairn quantize` can write.
pub const QUANTIZE_TYPES: [GgmlType; 6] = [
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::Q8_0,
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q4K,
];

/// candle-core's name for a ggml type, or an error naming `what` when candle
/// has no kernels for it.
pub(crate) fn candle_dtype(ty: GgmlType, what: &str) -> Result<GgmlDType> {
    Ok(match ty {
        GgmlType::F32 => GgmlDType::F32,
        GgmlType::F16 => GgmlDType::F16,
        GgmlType::BF16 => GgmlDType::BF16,
        GgmlType::Q4_0 => GgmlDType::Q4_0,
        GgmlType::Q4_1 => GgmlDType::Q4_1,
        GgmlType::Q5_0 => GgmlDType::Q5_0,
        GgmlType::Q5_1 => GgmlDType::Q5_1,
        GgmlType::Q8_0 => GgmlDType::Q8_0,
        GgmlType::Q8_1 => GgmlDType::Q8_1,
        GgmlType::Q2K => GgmlDType::Q2K,
        GgmlType::Q3K => GgmlDType::Q3K,
        GgmlType::Q4K => GgmlDType::Q4K,
        GgmlType::Q5K => GgmlDType::Q5K,
        GgmlType::Q6K => GgmlDType::Q6K,
        GgmlType::Q8K => GgmlDType::Q8K,
        other => {
            return Err(Error::Input(format!(
                "{what}: ggml type {} is not supported for weights (supported: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K..Q8_K)",
                other.name()
            )));
        }
    })
}

/// Bytes that `elements` values of type `ty` occupy, or an error when
/// `elements` is not a whole number of blocks.
pub fn byte_len(ty: GgmlType, elements: usize, what: &str) -> Result<usize> {
    let (per_block, bytes) = ty.block();
    let (per_block, bytes) = (per_block as usize, bytes as usize);
    if !elements.is_multiple_of(per_block) {
        return Err(Error::Shape {
            op: "quantize",
            detail: format!(
                "{what}: {elements} values are not a whole number of {} blocks of {per_block}",
                ty.name()
            ),
        });
    }
    Ok(elements / per_block * bytes)
}

/// A candle `QTensor` of shape `dims` (outermost first) over raw block bytes.
pub(crate) fn qtensor(ty: GgmlType, data: &[u8], dims: &[usize], what: &str) -> Result<QTensor> {
    let dtype = candle_dtype(ty, what)?;
    let elements: usize = dims.iter().product();
    let want = byte_len(ty, elements, what)?;
    if data.len() != want {
        return Err(Error::Shape {
            op: "dequantize",
            detail: format!(
                "{what}: {} bytes of {} data, expected {want} for shape {dims:?}",
                data.len(),
                ty.name()
            ),
        });
    }
    if let Some(&last) = dims.last()
        && last % dtype.block_size() != 0
    {
        return Err(Error::Shape {
            op: "dequantize",
            detail: format!(
                "{what}: rows of {last} values are not a whole number of {} blocks of {}",
                ty.name(),
                dtype.block_size()
            ),
        });
    }
    let storage = QStorage::from_data(std::borrow::Cow::Borrowed(data), &Device::Cpu, dtype)?;
    Ok(QTensor::new(storage, dims)?)
}

/// Unpacks `data` (blocks of type `ty`) into `elements` f32 values.
pub fn dequantize(ty: GgmlType, data: &[u8], elements: usize, what: &str) -> Result<Vec<f32>> {
    let q = qtensor(ty, data, &[elements], what)?;
    Ok(q.dequantize(&Device::Cpu)?.to_vec1::<f32>()?)
}

/// Packs `values` into blocks of type `ty` (one of [`QUANTIZE_TYPES`]).
/// `what` names the tensor in errors.
pub fn quantize(ty: GgmlType, values: &[f32], what: &str) -> Result<Vec<u8>> {
    if !QUANTIZE_TYPES.contains(&ty) {
        return Err(Error::Input(format!(
            "{what}: cannot quantize to {} (supported: F32, F16, Q8_0, Q4_0, Q4_1, Q4_K)",
            ty.name()
        )));
    }
    byte_len(ty, values.len(), what)?;
    if let Some((i, v)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(Error::Input(format!(
            "{what}: value #{i} is {v} and cannot be quantized"
        )));
    }
    let t = Tensor::from_slice(values, values.len(), &Device::Cpu)?;
    let q = QTensor::quantize(&t, candle_dtype(ty, what)?)?;
    Ok(q.data()?.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q8_0_block_is_scale_then_int8() {
        // One block: max |x| = 127 → d = 1.0, q = x.
        let values: Vec<f32> = (0..32).map(|i| i as f32 * 4.0 - 64.0).collect();
        let mut values = values;
        values[31] = 127.0;
        let bytes = quantize(GgmlType::Q8_0, &values, "t").unwrap();
        assert_eq!(bytes.len(), 34);
        assert_eq!(half::f16::from_le_bytes([bytes[0], bytes[1]]).to_f32(), 1.0);
        assert_eq!(bytes[2] as i8, -64);
        assert_eq!(bytes[33] as i8, 127);
        let back = dequantize(GgmlType::Q8_0, &bytes, 32, "t").unwrap();
        assert_eq!(back, values);
    }

    #[test]
    fn every_writable_type_round_trips_within_its_step() {
        let values = crate::util::pseudo_random(512, 3);
        for ty in QUANTIZE_TYPES {
            let bytes = quantize(ty, &values, "t").unwrap();
            assert_eq!(bytes.len(), byte_len(ty, 512, "t").unwrap());
            let back = dequantize(ty, &bytes, 512, "t").unwrap();
            let max_err = values
                .iter()
                .zip(&back)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            // pseudo_random is in [-0.5, 0.5): a 4-bit step is at most 1/8; K-quants add scale rounding.
            let bound = match ty {
                GgmlType::F32 => 0.0,
                GgmlType::F16 => 1e-3,
                GgmlType::Q8_0 => 0.005,
                _ => 0.14,
            };
            assert!(max_err <= bound, "{}: max error {max_err}", ty.name());
        }
    }

    #[test]
    fn bad_sizes_and_values_are_named_errors() {
        let e = quantize(GgmlType::Q4_0, &[0.0; 33], "blk.0.w").unwrap_err();
        assert!(e.to_string().contains("blk.0.w: 33 values"), "{e}");
        let e = quantize(GgmlType::Q8_0, &[f32::NAN; 32], "w").unwrap_err();
        assert!(e.to_string().contains("value #0 is NaN"), "{e}");
        let e = dequantize(GgmlType::Q4_1, &[0u8; 19], 32, "w").unwrap_err();
        assert!(
            e.to_string().contains("19 bytes of Q4_1 data, expected 20"),
            "{e}"
        );
        let e = quantize(GgmlType::Q5K, &[0.0; 256], "w").unwrap_err();
        assert!(e.to_string().contains("cannot quantize to Q5_K"), "{e}");
    }
}
