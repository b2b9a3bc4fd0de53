//! `cairn classify`: labels and scores of texts under a fine-tuned classifier.

use std::path::{Path, PathBuf};

use super::args::BackendArgs;
use crate::error::Result;
use crate::on_backend;

/// Arguments of `cairn classify`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Classifier directory (config.json with id2label, model.safetensors, tokenizer.json).
    #[arg(short, long)]
    pub model: PathBuf,
    /// The compute backend.
    #[command(flatten)]
    pub backend: BackendArgs,
    /// Texts to classify.
    #[arg(required = true)]
    pub texts: Vec<String>,
}

/// Runs `cairn classify`.
pub fn run(a: Args, _cache: &Path) -> Result<()> {
    let refs: Vec<&str> = a.texts.iter().map(String::as_str).collect();
    let (labels, preds) = on_backend!(a.backend.pick()?, b => {
        let c = crate::train::load_classifier_on(b, &a.model, None)?;
        let preds = pollster::block_on(c.predict_async(&refs))?;
        (c.labels().to_vec(), preds)
    });
    let out: Vec<serde_json::Value> = a
        .texts
        .iter()
        .zip(&preds)
        .map(|(t, p)| {
            let names: Vec<&str> = p
                .labels
                .iter()
                .filter_map(|&i| labels.get(i).map(String::as_str))
                .collect();
            let scores: serde_json::Map<String, serde_json::Value> = labels
                .iter()
                .zip(&p.scores)
                .map(|(l, s)| (l.clone(), serde_json::json!(s)))
                .collect();
            serde_json::json!({"text": t, "labels": names, "scores": scores})
        })
        .collect();
    println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    Ok(())
}
