//! `cairn train lora`, `cairn merge` and `--adapter`: the file side of LoRA
//! (SFT data, adapter directories in PEFT's layout, merged GGUF files).
//!
//! SFT data, one JSON object per line, either chat turns or a pair:
//!
//! ```text
//! {"messages": [{"role": "system", ...}, {"role": "user", ...}, {"role": "assistant", "content": "..."}]}
//! {"prompt": "...", "completion": "..."}          (a user turn and the assistant's answer)
//! ```
//!
//! The conversation is rendered with the model's chat template (ChatML for
//! SmolLM2); the last assistant turn is the completion (the loss target,
//! with its end-of-turn token), everything before it is context.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::progress::Progress;
use cairn_core::backend::Backend;
use cairn_core::backend::cpu::CpuBackend;
use cairn_core::formats::gguf::{self, GgmlType, Gguf};
use cairn_core::generate::{ChatMessage, Generator};
use cairn_core::lora::{Adapter, LoraConfig};
use cairn_core::train::classify::EpochLog;
use cairn_core::train::plot::{Series, svg};
use cairn_core::train::sft::{Sequence, SftConfig, SftTrainer, example, pack};
use serde_json::Value;

use crate::atomic::{WriteLock, persist, temp_beside, write_atomic};
use crate::error::{Error, Result};
use crate::generate::read_gguf;

/// Reads a PEFT adapter directory for a decoder whose configuration is `c`.
pub fn read_adapter(dir: &Path, c: &cairn_core::models::llama::LlamaConfig) -> Result<Adapter> {
    let read = |f: &str| std::fs::read(dir.join(f)).map_err(Error::io("reading", dir.join(f)));
    Adapter::from_peft(
        &read("adapter_config.json")?,
        &read("adapter_model.safetensors")?,
        c.num_layers,
        |m| c.projection_dims(m),
    )
    .map_err(|e| Error::Model(format!("{}: {e}", dir.display())))
}

/// Loads and activates the adapter in `dir` on a generator's model.
pub fn apply_adapter<B: Backend>(generator: &mut Generator<B>, dir: &Path) -> Result<()> {
    let a = read_adapter(dir, generator.model().config())?;
    generator
        .model_mut()
        .set_adapter(Some(&a))
        .map_err(|e| Error::Model(format!("{}: {e}", dir.display())))
}

/// Reads SFT JSONL into chat conversations (the last turn is the assistant's).
pub fn read_sft(path: &Path) -> Result<Vec<Vec<ChatMessage>>> {
    let text = std::fs::read_to_string(path).map_err(Error::io("reading", path))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let err = |d: &str| Error::Model(format!("{}: line {}: {d}", path.display(), i + 1));
        let v: Value =
            serde_json::from_str(line).map_err(|e| err(&format!("invalid JSON: {e}")))?;
        let msgs = if let Some(m) = v.get("messages").and_then(Value::as_array) {
            m.iter()
                .map(|t| {
                    let role = t.get("role").and_then(Value::as_str);
                    let content = t.get("content").and_then(Value::as_str);
                    match (role, content) {
                        (Some(r), Some(c)) => Ok(ChatMessage::new(r, c)),
                        _ => Err(err("every message needs string 'role' and 'content'")),
                    }
                })
                .collect::<Result<Vec<_>>>()?
        } else if let (Some(p), Some(c)) = (
            v.get("prompt").and_then(Value::as_str),
            v.get("completion").and_then(Value::as_str),
        ) {
            vec![
                ChatMessage::new("user", p),
                ChatMessage::new("assistant", c),
            ]
        } else {
            return Err(err("needs 'messages' or 'prompt' + 'completion'"));
        };
        if msgs.last().map(|m| m.role.as_str()) != Some("assistant") {
            return Err(err(
                "the last message must be the assistant's (the completion)",
            ));
        }
        out.push(msgs);
    }
    if out.is_empty() {
        return Err(Error::Model(format!("{}: no examples", path.display())));
    }
    Ok(out)
}

/// Prompt ids (the conversation up to the assistant's turn, with the
/// generation prompt) and completion ids (the rest of the rendered
/// conversation: the answer and its end-of-turn marker).
pub fn encode_sft<B: Backend>(g: &Generator<B>, msgs: &[ChatMessage]) -> Result<Sequence> {
    let prompt = g.apply_chat_template(&msgs[..msgs.len() - 1], true)?;
    let full = g.apply_chat_template(msgs, false)?;
    let rest = full.strip_prefix(&prompt).ok_or_else(|| {
        Error::Model(
            "the chat template renders the prompt differently inside the conversation".into(),
        )
    })?;
    // ChatML ends a turn with "<|im_end|>\n"; the newline is not a target.
    let rest = rest.strip_suffix('\n').unwrap_or(rest);
    let p = g.encode(&prompt)?;
    let c = g.tokenizer().encode(rest, false)?.ids;
    Ok(example(p, c))
}

/// Options of `cairn train lora`.
#[derive(Debug, Clone)]
pub struct TrainLoraOptions {
    /// Base GGUF.
    pub base: PathBuf,
    /// SFT JSONL.
    pub data: PathBuf,
    /// Validation SFT JSONL.
    pub val: Option<PathBuf>,
    /// Adapter output directory.
    pub out: PathBuf,
    /// LoRA hyper-parameters.
    pub lora: LoraConfig,
    /// Pack examples into `seq_len` sequences.
    pub packing: bool,
    /// Optimisation.
    pub sft: SftConfig,
}

/// What a LoRA run reports.
#[derive(Debug, Clone)]
pub struct LoraSummary {
    /// Per-epoch logs.
    pub epochs: Vec<EpochLog>,
    /// Trainable (adapter) values.
    pub trainable: usize,
    /// Values of the base model.
    pub base_parameters: usize,
    /// Validation perplexity before and after training.
    pub val_perplexity: Option<(f64, f64)>,
    /// Seconds per optimizer step.
    pub seconds_per_step: f64,
    /// Target tokens per second.
    pub tokens_per_second: f64,
}

/// Trains a LoRA adapter with SFT and writes it in PEFT's layout.
pub fn train_lora(o: &TrainLoraOptions) -> Result<LoraSummary> {
    let bytes = read_gguf(&o.base)?;
    let name = o.base.display().to_string();
    let g = Gguf::parse(&bytes, &name)?;
    let base_parameters: usize = g
        .header
        .tensors
        .iter()
        .map(|t| t.dims.iter().product::<u64>() as usize)
        .sum();
    let mut generator = Generator::from_gguf(CpuBackend::for_training(), &g)?;
    let encode = |path: &Path, g: &Generator<CpuBackend>| -> Result<Vec<Sequence>> {
        let convs = read_sft(path)?;
        let ex = convs
            .iter()
            .map(|m| encode_sft(g, m))
            .collect::<Result<Vec<_>>>()?;
        Ok(pack(&ex, o.sft.seq_len, o.packing))
    };
    let train = encode(&o.data, &generator)?;
    let val = match &o.val {
        Some(p) => encode(p, &generator)?,
        None => Vec::new(),
    };
    if train.is_empty() {
        return Err(Error::Model(format!(
            "{}: no sequence with completion tokens",
            o.data.display()
        )));
    }
    let mut lora = o.lora.clone();
    lora.base_model = Some(o.base.display().to_string());
    let model = generator.model_mut();
    let adapter = Adapter::init(
        lora,
        model.config().num_layers,
        |m| model.projection_dims(m),
        o.sft.seed,
    );
    model.set_adapter(Some(&adapter))?;
    let dropout = o.lora.dropout;
    let mut trainer = SftTrainer::new(model, o.sft.clone(), train.len())?;
    let trainable = trainer.trainable_parameters();
    // PEFT's print_trainable_parameters.
    println!(
        "trainable params: {trainable} || all params: {} || trainable%: {:.4}",
        trainable + base_parameters,
        100.0 * trainable as f64 / (trainable + base_parameters) as f64
    );
    let before = if val.is_empty() {
        None
    } else {
        Some(trainer.eval_nll(&val)?)
    };
    let mut bar = Progress::new("train lora", "steps", trainer.schedule().total);
    let started = Instant::now();
    let mut tokens = 0usize;
    let epochs = trainer.fit(&train, &val, dropout, |s| {
        tokens += s.examples;
        bar.set_message(format!(
            "epoch {} loss {:.4} lr {:.2e} |g| {:.2}",
            s.epoch, s.loss, s.lr, s.grad_norm
        ));
        bar.set_position(s.step);
    })?;
    let seconds = started.elapsed().as_secs_f64();
    bar.finish();
    let steps = trainer.schedule().total.max(1);
    let after = if val.is_empty() {
        None
    } else {
        Some(trainer.eval_nll(&val)?)
    };
    drop(trainer);
    let adapter = cairn_core::backend::block_on_ready(generator.model().adapter())?
        .ok_or_else(|| Error::Model("the adapter vanished during training".into()))?;
    // One writer at a time per output directory: two runs into the same
    // folder leave one run's files, never a mix of both.
    let _lock = WriteLock::acquire(&o.out)?;
    save_adapter(&o.out, &adapter)?;
    let points: Vec<(f64, f64)> = epochs
        .iter()
        .flat_map(|e| e.step_losses.iter())
        .enumerate()
        .map(|(i, l)| ((i + 1) as f64, f64::from(*l)))
        .collect();
    write_atomic(
        &o.out.join("training_curve.svg"),
        svg(
            &format!("cairn train lora — {}", o.data.display()),
            &[Series {
                name: "completion NLL per step".into(),
                points,
            }],
        )
        .as_bytes(),
    )?;
    let val_perplexity = before.zip(after).map(|(b, a)| (b.exp(), a.exp()));
    let log = serde_json::json!({
        "base": name, "data": o.data.display().to_string(),
        "r": o.lora.r, "lora_alpha": o.lora.alpha, "lora_dropout": o.lora.dropout,
        "target_modules": o.lora.target_modules, "packing": o.packing,
        "seq_len": o.sft.seq_len, "epochs": o.sft.epochs, "lr": o.sft.lr,
        "grad_accum": o.sft.grad_accum, "seed": o.sft.seed,
        "sequences": train.len(), "steps": steps, "trainable": trainable, "base_parameters": base_parameters,
        "seconds": seconds, "target_tokens_per_second": tokens as f64 / seconds.max(1e-9),
        "val_perplexity_before_after": val_perplexity,
        "history": epochs,
    });
    write_atomic(
        &o.out.join("training_log.json"),
        serde_json::to_string_pretty(&log)
            .unwrap_or_default()
            .as_bytes(),
    )?;
    Ok(LoraSummary {
        epochs,
        trainable,
        base_parameters,
        val_perplexity,
        seconds_per_step: seconds / steps as f64,
        tokens_per_second: tokens as f64 / seconds.max(1e-9),
    })
}

/// Writes `adapter_config.json` and `adapter_model.safetensors` into `dir`,
/// each atomically (an existing adapter is replaced whole or not at all).
/// Callers that may race another writer hold a [`WriteLock`] on `dir`.
pub fn save_adapter(dir: &Path, adapter: &Adapter) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(Error::io("creating", dir))?;
    let (json, weights) = adapter.to_peft()?;
    write_atomic(&dir.join("adapter_model.safetensors"), &weights)?;
    write_atomic(&dir.join("adapter_config.json"), &json)
}

/// Merges the adapter in `adapter_dir` into `base` and writes `out`
/// (merged matrices as `out_type`, or the base's block type); returns the
/// number of merged tensors.
pub fn merge_gguf(
    base: &Path,
    adapter_dir: &Path,
    out: &Path,
    out_type: Option<GgmlType>,
) -> Result<usize> {
    let bytes = read_gguf(base)?;
    let name = base.display().to_string();
    let g = Gguf::parse(&bytes, &name)?;
    let c = cairn_core::models::llama::LlamaConfig::from_gguf(&g)?;
    let adapter = read_adapter(adapter_dir, &c)?;
    let tensors = cairn_core::lora::merge::merge(&g, &adapter, out_type)?;
    let merged = adapter.layers.iter().map(|l| l.len()).sum();
    let mut tmp = temp_beside(out)?;
    {
        let mut w = std::io::BufWriter::new(tmp.as_file_mut());
        gguf::write(&mut w, &g.header.metadata, &tensors, g.header.alignment)?;
        std::io::Write::flush(&mut w).map_err(Error::io("writing", out))?;
    }
    persist(tmp, out)?;
    Ok(merged)
}
