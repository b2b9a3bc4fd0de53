//! `cairn merge`: a LoRA adapter folded into a GGUF decoder's weights.

use std::path::{Path, PathBuf};

use cairn_core::formats::gguf::GgmlType;

use super::args::{DEFAULT_DECODER, renamed, renamed_required};
use super::quantize::type_arg;
use crate::cache::resolve_model;
use crate::error::Result;

/// Arguments of `cairn merge`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Base decoder: model name or GGUF path [default: smollm2-135m-instruct].
    #[arg(short, long)]
    pub model: Option<String>,
    /// Deprecated spelling of --model.
    #[arg(long = "base", hide = true)]
    pub base_deprecated: Option<String>,
    /// Adapter directory (PEFT layout).
    #[arg(long)]
    pub adapter: PathBuf,
    /// Output GGUF (written atomically).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Deprecated spelling of --output.
    #[arg(long = "out", hide = true)]
    pub out_deprecated: Option<PathBuf>,
    /// Type of the merged matrices (f32, q8_0, ...; default: the base's own).
    #[arg(long = "type", value_parser = type_arg)]
    pub ty: Option<GgmlType>,
}

/// Runs `cairn merge`.
pub fn run(a: Args, cache: &Path) -> Result<()> {
    let base = renamed(a.model, a.base_deprecated, "--base", "--model")
        .unwrap_or_else(|| DEFAULT_DECODER.to_string());
    let out = renamed_required(a.output, a.out_deprecated, "--out", "--output")?;
    let base = resolve_model(&base, cache)?;
    let n = crate::lora::merge_gguf(&base, &a.adapter, &out, a.ty)?;
    println!(
        "merged {n} adapted projections of {} into {}",
        a.adapter.display(),
        out.display()
    );
    Ok(())
}
