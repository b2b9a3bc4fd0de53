//! Loading GGUF decoders and rewriting GGUF files in another block type
//! (`cairn quantize`).

use std::borrow::Cow;
use std::path::Path;

use cairn_core::backend::Backend;
use cairn_core::formats::gguf::{self, GgmlType, Gguf, TensorData};
use cairn_core::generate::Generator;
use cairn_core::quant;
use indicatif::{ProgressBar, ProgressStyle};

use crate::atomic::{persist, temp_beside};
use crate::error::{Error, Result};

/// Reads a whole GGUF file into memory.
pub fn read_gguf(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(Error::io("reading", path))
}

/// Loads a decoder with its tokenizer and chat template from a GGUF file.
pub fn load_generator<B: Backend>(backend: B, path: &Path) -> Result<Generator<B>> {
    let bytes = read_gguf(path)?;
    let name = path.display().to_string();
    let g = Gguf::parse(&bytes, &name)?;
    Ok(Generator::from_gguf(backend, &g)?)
}

/// Parses a block type name as llama.cpp spells it (`q8_0`, `Q4_K`, `f16`, ...).
pub fn parse_type(s: &str) -> Result<GgmlType> {
    quant::QUANTIZE_TYPES
        .into_iter()
        .find(|t| {
            t.name().eq_ignore_ascii_case(s) || t.name().replace('_', "").eq_ignore_ascii_case(s)
        })
        .ok_or_else(|| {
            let names: Vec<&str> = quant::QUANTIZE_TYPES.iter().map(|t| t.name()).collect();
            Error::Model(format!(
                "unknown quantization type '{s}' (supported: {})",
                names.join(", ")
            ))
        })
}

/// What `quantize_gguf` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuantizeReport {
    /// Tensors written in the target type.
    pub quantized: usize,
    /// Tensors copied unchanged (1-D norms, rows that do not fit the block size).
    pub kept: usize,
    /// Bytes of tensor data in and out.
    pub bytes_in: u64,
    /// Bytes of tensor data written.
    pub bytes_out: u64,
}

/// Rewrites the GGUF file `input` into `output` with every 2-D weight in block
/// type `ty` (llama.cpp's rule: matrices are quantized, 1-D tensors such as
/// norms stay F32). Metadata is copied as it is, with `general.file_type`
/// updated. Tensors that are already quantized are refused unless
/// `allow_requantize` (quality loss compounds, as llama.cpp warns). The output
/// is written to a temporary file and renamed, so a failure leaves no partial file.
pub fn quantize_gguf(
    input: &Path,
    output: &Path,
    ty: GgmlType,
    allow_requantize: bool,
) -> Result<QuantizeReport> {
    let bytes = read_gguf(input)?;
    let name = input.display().to_string();
    let g = Gguf::parse(&bytes, &name)?;
    let bar = ProgressBar::new(g.header.tensors.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("quantize [{bar:30}] {pos}/{len} tensors {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let mut out = Vec::with_capacity(g.header.tensors.len());
    let mut report = QuantizeReport {
        quantized: 0,
        kept: 0,
        bytes_in: 0,
        bytes_out: 0,
    };
    for info in &g.header.tensors {
        bar.set_message(info.name.clone());
        let (_, data) = g.tensor(&info.name)?;
        report.bytes_in += data.len() as u64;
        let block = ty.block().0;
        let is_matrix = info.dims.len() == 2 && info.dims[0] % block == 0;
        let already = !matches!(
            info.ggml_type,
            GgmlType::F32 | GgmlType::F16 | GgmlType::BF16
        );
        let tensor = if !is_matrix || info.ggml_type == ty {
            report.kept += 1;
            TensorData {
                name: info.name.clone(),
                ggml_type: info.ggml_type,
                dims: info.dims.clone(),
                data: Cow::Borrowed(data),
            }
        } else {
            if already && !allow_requantize {
                return Err(Error::Model(format!(
                    "{name}: tensor '{}' is already {}; requantizing loses quality (pass --allow-requantize to do it anyway)",
                    info.name,
                    info.ggml_type.name()
                )));
            }
            let (values, _) = g.dequantize(&info.name)?;
            let packed = quant::quantize(ty, &values, &format!("{name} tensor '{}'", info.name))?;
            report.quantized += 1;
            TensorData {
                name: info.name.clone(),
                ggml_type: ty,
                dims: info.dims.clone(),
                data: Cow::Owned(packed),
            }
        };
        report.bytes_out += tensor.data.len() as u64;
        out.push(tensor);
        bar.inc(1);
    }
    bar.finish_and_clear();
    let mut meta = g.header.metadata.clone();
    // llama.cpp's `enum llama_ftype` for the "mostly <type>" files cairn writes.
    let file_type = match ty {
        GgmlType::F32 => 0,
        GgmlType::F16 => 1,
        GgmlType::Q4_0 => 2,
        GgmlType::Q4_1 => 3,
        GgmlType::Q8_0 => 7,
        GgmlType::Q4K => 15,
        _ => 0,
    };
    match meta.iter_mut().find(|(k, _)| k == "general.file_type") {
        Some((_, v)) => *v = gguf::Value::U32(file_type),
        None => meta.push(("general.file_type".into(), gguf::Value::U32(file_type))),
    }
    let tmp = temp_beside(output)?;
    {
        let mut w = std::io::BufWriter::new(tmp.as_file());
        gguf::write(&mut w, &meta, &out, g.header.alignment)?;
        std::io::Write::flush(&mut w).map_err(Error::io("writing", tmp.path()))?;
    }
    persist(tmp, output)?;
    Ok(report)
}
