//! `cairn quantize`: a GGUF with its matrices in another block type.

use std::path::{Path, PathBuf};

use cairn_core::formats::gguf::GgmlType;

use super::args::renamed_required;
use crate::cache::resolve_model;
use crate::error::Result;
use crate::generate::{parse_type, quantize_gguf};

/// A `--type` value: a block type name (q8_0, q4_0, q4_1, q4_k, f16, f32).
pub fn type_arg(s: &str) -> std::result::Result<GgmlType, String> {
    parse_type(s).map_err(|e| e.to_string())
}

/// Arguments of `cairn quantize`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Input: GGUF file, Hugging Face Llama directory, or model name.
    #[arg(short, long, value_name = "MODEL")]
    pub model: Option<String>,
    /// Output GGUF file (written atomically).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Deprecated: the input as the first positional argument (use --model).
    #[arg(hide = true)]
    pub input_positional: Option<String>,
    /// Deprecated: the output as the second positional argument (use --output).
    #[arg(hide = true)]
    pub output_positional: Option<PathBuf>,
    /// Target type: q8_0, q4_0, q4_1, q4_k, f16 or f32.
    #[arg(long = "type", default_value = "q8_0", value_parser = type_arg)]
    pub ty: GgmlType,
    /// Requantize tensors that are already quantized (quality loss compounds).
    #[arg(long)]
    pub allow_requantize: bool,
}

/// Runs `cairn quantize`.
pub fn run(a: Args, cache: &Path) -> Result<()> {
    let input = renamed_required(a.model, a.input_positional, "quantize INPUT", "--model")?;
    let output = renamed_required(
        a.output,
        a.output_positional,
        "quantize INPUT OUTPUT",
        "--output",
    )?;
    let input = resolve_model(&input, cache)?;
    let r = quantize_gguf(&input, &output, a.ty, a.allow_requantize)?;
    println!(
        "{} → {}: {} tensors in {}, {} kept; {:.1} MB → {:.1} MB",
        input.display(),
        output.display(),
        r.quantized,
        a.ty.name(),
        r.kept,
        r.bytes_in as f64 / 1e6,
        r.bytes_out as f64 / 1e6
    );
    Ok(())
}
