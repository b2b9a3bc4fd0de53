//! Loading GGUF decoders and rewriting GGUF files in another block type
//! (`cairn quantize`).

use std::borrow::Cow;
use std::path::Path;

use crate::progress::Progress;
use cairn_core::backend::Backend;
use cairn_core::formats::gguf::{self, GgmlType, Gguf, TensorData};
use cairn_core::generate::Generator;
use cairn_core::quant;

use crate::atomic::{persist, temp_beside};
use crate::error::{Error, Result};

/// A model file's bytes: memory-mapped, so the page cache holds the file
/// once and only the pages tensors are read from are touched (llama.cpp's
/// default), or read into memory where mapping is not possible.
pub enum FileBytes {
    /// The file mapped read-only.
    Mapped(memmap2::Mmap),
    /// The file read whole (pipes, special files, mapping refused).
    Read(Vec<u8>),
}

impl std::ops::Deref for FileBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            FileBytes::Mapped(m) => m,
            FileBytes::Read(v) => v,
        }
    }
}

/// Opens a GGUF file by memory map (a regular, non-empty file), else reads it.
pub fn read_gguf(path: &Path) -> Result<FileBytes> {
    let file = std::fs::File::open(path).map_err(Error::io("reading", path))?;
    let meta = file.metadata().map_err(Error::io("reading", path))?;
    if meta.is_file() && meta.len() > 0 {
        // SAFETY: the map is read-only and private to this process. Model
        // files are not written in place by cairn (every write goes to a
        // temporary file renamed over the old one, which leaves this
        // mapping on the old inode); another program truncating the file
        // while it is mapped would fault, as it does for llama.cpp's mmap.
        if let Ok(map) = unsafe { memmap2::Mmap::map(&file) } {
            return Ok(FileBytes::Mapped(map));
        }
    }
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut &file, &mut bytes).map_err(Error::io("reading", path))?;
    Ok(FileBytes::Read(bytes))
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

/// Reads a Hugging Face Llama directory (`config.json`, `model.safetensors`,
/// `tokenizer.json`, optional `tokenizer_config.json`) as GGUF metadata and
/// F32 tensors.
pub fn read_hf_llama(dir: &Path) -> Result<cairn_core::formats::hf_llama::GgufParts> {
    let read = |name: &str| {
        let p = dir.join(name);
        std::fs::read(&p).map_err(Error::io("reading", p))
    };
    let config = read("config.json")?;
    let weights = read("model.safetensors")?;
    let tokenizer = crate::embed::read_tokenizer_json(&dir.join("tokenizer.json"))?;
    let tcfg = match std::fs::read(dir.join("tokenizer_config.json")) {
        Ok(b) => Some(b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(Error::io("reading", dir.join("tokenizer_config.json"))(e)),
    };
    let file = dir.join("model.safetensors").display().to_string();
    let st = cairn_core::formats::tensors::SafeTensors::parse(&weights, &file)?;
    Ok(cairn_core::formats::hf_llama::convert(
        &config,
        &st,
        &tokenizer,
        tcfg.as_deref(),
    )?)
}

/// Writes `input` — a GGUF file, or a Hugging Face Llama directory (converted
/// as llama.cpp's `convert_hf_to_gguf.py` does) — to the GGUF file `output`
/// with every 2-D weight in block type `ty` (llama.cpp's rule: matrices are
/// quantized, 1-D tensors such as norms stay F32). Metadata is copied, with
/// `general.file_type` updated. Tensors that are already quantized are
/// refused unless `allow_requantize` (quality loss compounds, as llama.cpp
/// warns). The output is written to a temporary file and renamed, so a
/// failure leaves no partial file.
pub fn quantize_gguf(
    input: &Path,
    output: &Path,
    ty: GgmlType,
    allow_requantize: bool,
) -> Result<QuantizeReport> {
    let name = input.display().to_string();
    let bytes;
    let (meta, source, alignment): (Vec<(String, gguf::Value)>, Vec<TensorData<'_>>, u64) =
        if input.is_dir() {
            let (m, t) = read_hf_llama(input)?;
            (m, t, gguf::DEFAULT_ALIGNMENT)
        } else {
            bytes = read_gguf(input)?;
            let g = Gguf::parse(&bytes, &name)?;
            let tensors = g
                .header
                .tensors
                .iter()
                .map(|info| {
                    Ok(TensorData {
                        name: info.name.clone(),
                        ggml_type: info.ggml_type,
                        dims: info.dims.clone(),
                        data: Cow::Borrowed(g.tensor(&info.name)?.1),
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            (g.header.metadata.clone(), tensors, g.header.alignment)
        };
    let mut bar = Progress::new("quantize", "tensors", source.len() as u64);
    let mut out = Vec::with_capacity(source.len());
    let mut report = QuantizeReport {
        quantized: 0,
        kept: 0,
        bytes_in: 0,
        bytes_out: 0,
    };
    for t in source {
        bar.set_message(t.name.clone());
        report.bytes_in += t.data.len() as u64;
        let block = ty.block().0;
        let is_matrix = t.dims.len() == 2 && t.dims[0] % block == 0;
        let already = !matches!(t.ggml_type, GgmlType::F32 | GgmlType::F16 | GgmlType::BF16);
        let tensor = if !is_matrix || t.ggml_type == ty {
            report.kept += 1;
            t
        } else {
            if already && !allow_requantize {
                return Err(Error::Model(format!(
                    "{name}: tensor '{}' is already {}; requantizing loses quality (pass --allow-requantize to do it anyway)",
                    t.name,
                    t.ggml_type.name()
                )));
            }
            let what = format!("{name} tensor '{}'", t.name);
            let elements = t.dims.iter().product::<u64>() as usize;
            let values = quant::dequantize(t.ggml_type, &t.data, elements, &what)?;
            let packed = quant::quantize(ty, &values, &what)?;
            report.quantized += 1;
            TensorData {
                name: t.name,
                ggml_type: ty,
                dims: t.dims,
                data: Cow::Owned(packed),
            }
        };
        report.bytes_out += tensor.data.len() as u64;
        out.push(tensor);
        bar.inc(1);
    }
    bar.finish();
    let mut meta = meta;
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
        gguf::write(&mut w, &meta, &out, alignment)?;
        std::io::Write::flush(&mut w).map_err(Error::io("writing", tmp.path()))?;
    }
    persist(tmp, output)?;
    Ok(report)
}

/// A GGUF decoder with a PEFT LoRA adapter applied unmerged, if one is given.
pub fn load_adapted<B: Backend>(
    backend: B,
    path: &Path,
    adapter: Option<&Path>,
) -> Result<Generator<B>> {
    let mut generator = load_generator(backend, path)?;
    if let Some(a) = adapter {
        crate::lora::apply_adapter(&mut generator, a)?;
    }
    Ok(generator)
}
