//! `cairn info`: what a model file or directory holds, read from its headers.

use std::fmt::Write as _;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use cairn_core::formats::{gguf, safetensors};

use crate::error::{Error, Result};

/// Describes the model at `path`: a GGUF file, a safetensors file, or a
/// Hugging Face model directory (config.json + model.safetensors).
pub fn describe(path: &Path) -> Result<String> {
    if path.is_dir() {
        return describe_dir(path);
    }
    let mut magic = [0u8; 4];
    {
        use std::io::Read;
        let mut f = File::open(path).map_err(Error::io("opening", path))?;
        let _ = f.read(&mut magic).map_err(Error::io("reading", path))?;
    }
    if magic == gguf::MAGIC {
        describe_gguf(path)
    } else if path.extension().is_some_and(|e| e == "safetensors") {
        describe_safetensors(path)
    } else {
        Err(Error::Model(format!(
            "{}: not a GGUF file (magic {magic:?}) and not a .safetensors file",
            path.display()
        )))
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// Reads a GGUF header from a file.
pub fn read_gguf(path: &Path) -> Result<gguf::Header> {
    let f = File::open(path).map_err(Error::io("opening", path))?;
    Ok(gguf::Header::read(
        &mut BufReader::new(f),
        &file_name(path),
    )?)
}

fn describe_gguf(path: &Path) -> Result<String> {
    let h = read_gguf(path)?;
    let file_len = std::fs::metadata(path)
        .map_err(Error::io("inspecting", path))?
        .len();
    let needed = h.data_offset + h.data_len();
    if needed > file_len {
        return Err(Error::Model(format!(
            "{}: the tensor directory needs {needed} bytes but the file has {file_len} (truncated?)",
            path.display()
        )));
    }
    let mut s = String::new();
    let arch = h.architecture().unwrap_or("?");
    let _ = writeln!(
        s,
        "{}: GGUF v{}, architecture {arch}, {} tensors, {} metadata keys",
        path.display(),
        h.version,
        h.tensors.len(),
        h.metadata.len()
    );
    for key in [
        "general.name",
        "block_count",
        "embedding_length",
        "feed_forward_length",
        "attention.head_count",
        "attention.head_count_kv",
        "context_length",
        "rope.freq_base",
        "attention.layer_norm_rms_epsilon",
        "tokenizer.ggml.model",
        "tokenizer.ggml.pre",
        "tokenizer.ggml.tokens",
        "tokenizer.ggml.merges",
        "tokenizer.ggml.bos_token_id",
        "tokenizer.ggml.eos_token_id",
    ] {
        let full = if key.starts_with("general.") || key.starts_with("tokenizer.") {
            key.to_string()
        } else {
            format!("{arch}.{key}")
        };
        if let Some(v) = h.get(&full) {
            let _ = writeln!(s, "  {full:40} {}", v.summary());
        }
    }
    let mut by_type: std::collections::BTreeMap<&str, (usize, u64)> = Default::default();
    for t in &h.tensors {
        let e = by_type.entry(t.ggml_type.name()).or_default();
        e.0 += 1;
        e.1 += t.byte_len();
    }
    let types: Vec<String> = by_type
        .iter()
        .map(|(k, (n, b))| format!("{n} × {k} ({:.1} MB)", *b as f64 / 1e6))
        .collect();
    let _ = writeln!(s, "  tensors: {}", types.join(", "));
    if h.get("tokenizer.chat_template").is_some() {
        let _ = writeln!(s, "  chat template: present");
    }
    let _ = writeln!(s, "  cairn: {}", gguf_support(&h, &file_name(path)));
    Ok(s)
}

/// Whether cairn's decoder runs this GGUF, and if not, why: the
/// architecture, a hyper-parameter, a tensor type or the tokenizer named.
fn gguf_support(h: &gguf::Header, name: &str) -> String {
    use cairn_core::models::llama::{LlamaConfig, supported_weight_type};
    let cfg = match LlamaConfig::from_header(h, name) {
        Ok(c) => c,
        Err(e) => return format!("not supported as a decoder: {e}"),
    };
    let mut bad: Vec<&str> = h
        .tensors
        .iter()
        .map(|t| t.ggml_type)
        .filter(|ty| !supported_weight_type(*ty))
        .map(|ty| ty.name())
        .collect();
    bad.sort_unstable();
    bad.dedup();
    if !bad.is_empty() {
        return format!(
            "not supported: tensor type(s) {} have no kernels here",
            bad.join(", ")
        );
    }
    if let Err(e) = cairn_core::tokenizer::Tokenizer::from_gguf(h) {
        return format!(
            "the {} decoder runs, but its tokenizer does not: {e}",
            cfg.family.arch()
        );
    }
    format!(
        "supported ({} decoder, {} layers, head dim {}{})",
        cfg.family.arch(),
        cfg.num_layers,
        cfg.head_dim,
        cfg.sliding_window
            .map(|w| format!(", sliding window {w}"))
            .unwrap_or_default()
    )
}

fn describe_safetensors(path: &Path) -> Result<String> {
    let f = File::open(path).map_err(Error::io("opening", path))?;
    let size = f.metadata().map_err(Error::io("reading", path))?.len();
    let h = safetensors::Header::read(&mut BufReader::new(f), &file_name(path))?;
    if size < h.file_len() {
        return Err(Error::Model(format!(
            "{}: truncated safetensors file: {size} bytes, but its header and tensors need {}",
            path.display(),
            h.file_len()
        )));
    }
    let params: u64 = h
        .tensors
        .values()
        .map(|t| t.shape.iter().product::<u64>())
        .sum();
    let mut dtypes: std::collections::BTreeMap<&str, usize> = Default::default();
    for t in h.tensors.values() {
        *dtypes.entry(t.dtype.as_str()).or_default() += 1;
    }
    let d: Vec<String> = dtypes.iter().map(|(k, n)| format!("{n} × {k}")).collect();
    Ok(format!(
        "{}: safetensors, {} tensors ({}), {:.1} M parameters\n",
        path.display(),
        h.tensors.len(),
        d.join(", "),
        params as f64 / 1e6
    ))
}

fn describe_dir(dir: &Path) -> Result<String> {
    let mut s = String::new();
    let config = dir.join("config.json");
    if config.exists() {
        let text = std::fs::read_to_string(&config).map_err(Error::io("reading", &config))?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| Error::Model(format!("{}: invalid JSON: {e}", config.display())))?;
        let _ = writeln!(
            s,
            "{}: {}",
            config.display(),
            [
                "model_type",
                "architectures",
                "hidden_size",
                "num_hidden_layers",
                "num_attention_heads",
                "intermediate_size",
                "vocab_size",
                "max_position_embeddings"
            ]
            .iter()
            .filter_map(|k| v.get(*k).map(|x| format!("{k}={x}")))
            .collect::<Vec<_>>()
            .join(" ")
        );
    }
    let weights = dir.join("model.safetensors");
    if weights.exists() {
        s.push_str(&describe_safetensors(&weights)?);
    }
    for gguf_file in std::fs::read_dir(dir)
        .map_err(Error::io("listing", dir))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
    {
        if gguf_file.extension().is_some_and(|e| e == "gguf") {
            s.push_str(&describe_gguf(&gguf_file)?);
        }
    }
    let tok = dir.join("tokenizer.json");
    if tok.exists() {
        let bytes = crate::embed::read_tokenizer_json(&tok)?;
        let t = cairn_core::tokenizer::Tokenizer::from_bytes(&bytes, &tok.display().to_string())?;
        let _ = writeln!(
            s,
            "{}: vocabulary of {} tokens",
            tok.display(),
            t.vocab_size()
        );
    }
    if s.is_empty() {
        return Err(Error::Model(format!(
            "{}: no config.json, model.safetensors, *.gguf or tokenizer.json here",
            dir.display()
        )));
    }
    Ok(s)
}
