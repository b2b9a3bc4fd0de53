//! `cairn train classify`, `cairn classify` and `cairn eval classify`: the
//! file side of sequence-classification fine-tuning (reading JSONL and model
//! directories, progress bars, checkpoints, the output directory).
//!
//! Output directory layout (what transformers' `save_pretrained` writes, plus
//! the run's record):
//!
//! ```text
//! OUT/config.json            encoder config + architectures, id2label, label2id, problem_type
//! OUT/model.safetensors      *ForSequenceClassification weight names
//! OUT/tokenizer.json         copied from the base
//! OUT/training_log.json      hyper-parameters, per-epoch losses and validation scores
//! OUT/training_curve.svg     loss per step, validation macro-F1 per epoch
//! OUT/checkpoint/            last.safetensors, optimizer.safetensors, state.json,
//!                            best.safetensors (when the best epoch is not the last)
//! ```

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::progress::Progress;
use cairn_core::backend::cpu::CpuBackend;
use cairn_core::classify::{ClassifierFiles, TextClassifier};
use cairn_core::eval::classification::{Report, report};
use cairn_core::formats::safetensors::write_f32;
use cairn_core::formats::tensors::SafeTensors;
use cairn_core::models::classifier::{ClassifierConfig, ProblemType, SequenceClassifier};
use cairn_core::tokenizer::Tokenizer;
use cairn_core::train::classify::{
    Checkpoint, Encoded, EpochLog, Hooks, StepLog, TrainConfig, TrainState, Trainer,
};
use cairn_core::train::data::{Example, balanced_class_weights, label_ids, label_set, read_jsonl};
use cairn_core::train::plot::{Series, svg};

use crate::atomic::write_atomic;
use crate::error::{Error, Result};

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(Error::io("reading", path))
}

/// Reads labeled JSONL examples from `path`.
pub fn read_examples(path: &Path) -> Result<Vec<Example>> {
    Ok(read_jsonl(&read(path)?, &path.display().to_string())?)
}

/// The sentence pairs of `examples` (`text`, `text_pair`), `None` when no
/// example has a pair; an error naming `file` when only some do.
fn pairs<'a>(examples: &'a [Example], file: &str) -> Result<Option<Vec<(&'a str, &'a str)>>> {
    let with = examples.iter().filter(|e| e.text_pair.is_some()).count();
    if with == 0 {
        return Ok(None);
    }
    if with != examples.len() {
        return Err(Error::Model(format!(
            "{file}: {with} of {} examples have a 'text_pair'; use pairs for all or none",
            examples.len()
        )));
    }
    Ok(Some(
        examples
            .iter()
            .map(|e| (e.text.as_str(), e.text_pair.as_deref().unwrap_or_default()))
            .collect(),
    ))
}

/// Tokenizes examples (single texts or sentence pairs) with their label ids.
fn encode(
    tokenizer: &Tokenizer,
    examples: &[Example],
    ids: Vec<Vec<usize>>,
    file: &str,
) -> Result<Encoded> {
    Ok(match pairs(examples, file)? {
        Some(p) => {
            let (a, b): (Vec<&str>, Vec<&str>) = p.into_iter().unzip();
            Encoded::pairs(tokenizer, &a, &b, ids)?
        }
        None => {
            let texts: Vec<&str> = examples.iter().map(|e| e.text.as_str()).collect();
            Encoded::new(tokenizer, &texts, ids)?
        }
    })
}

/// `enc` as ranking data: groups are the runs of consecutive examples with
/// the same `text` (the query); errors name `file` and its lines.
fn group(enc: Encoded, examples: &[Example], file: &Path) -> Result<Encoded> {
    if examples.iter().any(|e| e.text_pair.is_none()) {
        return Err(Error::Model(format!(
            "{}: --listwise needs (query, passage) pairs: every example a 'text_pair'",
            file.display()
        )));
    }
    let mut groups: Vec<std::ops::Range<usize>> = Vec::new();
    for (i, e) in examples.iter().enumerate() {
        match groups.last_mut() {
            Some(g) if examples[g.start].text == e.text => g.end = i + 1,
            _ => groups.push(i..i + 1),
        }
    }
    enc.grouped(groups).map_err(|e| {
        Error::Model(format!(
            "{} (examples count non-blank lines): {e}",
            file.display()
        ))
    })
}

/// How to weight classes in the loss.
#[derive(Debug, Clone, PartialEq)]
pub enum ClassWeights {
    /// Every class 1.
    None,
    /// scikit-learn's "balanced": `n / (k · count)`.
    Balanced,
    /// Given per label, in label order.
    Given(Vec<f32>),
}

/// Options of `cairn train classify`.
#[derive(Debug, Clone)]
pub struct TrainClassifyOptions {
    /// Base encoder directory (config.json, model.safetensors, tokenizer.json).
    pub base: PathBuf,
    /// Training JSONL.
    pub data: PathBuf,
    /// Validation JSONL.
    pub val: Option<PathBuf>,
    /// Output directory.
    pub out: PathBuf,
    /// Multi-label (sigmoid + BCE) instead of single-label.
    pub multi_label: bool,
    /// Listwise ranking of query groups (consecutive examples with the same
    /// `text`; see [`Encoded::grouped`]) for a one-logit cross-encoder.
    pub listwise: bool,
    /// Class weights.
    pub class_weights: ClassWeights,
    /// Longest input in tokens.
    pub max_length: usize,
    /// Continue from `OUT/checkpoint` if it exists.
    pub resume: bool,
    /// Optimisation hyper-parameters.
    pub train: TrainConfig,
}

/// What a finished run reports.
#[derive(Debug, Clone)]
pub struct TrainSummary {
    /// Per-epoch logs.
    pub epochs: Vec<EpochLog>,
    /// Validation report of the saved (best) model, if there was validation data.
    pub val_report: Option<Report>,
    /// Validation MRR of the saved model (listwise runs).
    pub val_mrr: Option<f64>,
    /// Wall time of the run in seconds.
    pub seconds: f64,
    /// Trainable parameters.
    pub parameters: usize,
    /// Training examples per second (forward + backward).
    pub examples_per_second: f64,
}

struct TrainHooks {
    bar: Progress,
    dir: PathBuf,
    examples: usize,
    started: Instant,
}

impl Hooks for TrainHooks {
    fn on_step(&mut self, log: &StepLog) {
        self.examples += log.examples;
        let rate = self.examples as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
        self.bar.set_length(log.total_steps);
        self.bar.set_message(format!(
            "epoch {} loss {:.4} lr {:.2e} |g| {:.2} {:.1} ex/s",
            log.epoch, log.loss, log.lr, log.grad_norm, rate
        ));
        self.bar.set_position(log.step);
    }

    fn on_epoch(&mut self, log: &EpochLog, c: &Checkpoint) -> cairn_core::Result<()> {
        let io = |e: Error| cairn_core::Error::Input(e.to_string());
        let dir = self.dir.join("checkpoint");
        std::fs::create_dir_all(&dir)
            .map_err(Error::io("creating", &dir))
            .map_err(io)?;
        if c.improved {
            // The best epoch's weights are the last ones now; an older best is obsolete.
            let _ = std::fs::remove_file(dir.join("best.safetensors"));
        } else if !dir.join("best.safetensors").exists() && dir.join("last.safetensors").exists() {
            // The previous epoch was the best: keep its weights before overwriting.
            std::fs::rename(dir.join("last.safetensors"), dir.join("best.safetensors"))
                .map_err(Error::io("renaming", dir.join("last.safetensors")))
                .map_err(io)?;
        }
        write_atomic(&dir.join("last.safetensors"), &c.weights).map_err(io)?;
        write_atomic(&dir.join("optimizer.safetensors"), &c.optimizer).map_err(io)?;
        let state = serde_json::to_vec_pretty(&c.state).unwrap_or_default();
        write_atomic(&dir.join("state.json"), &state).map_err(io)?;
        let val = match (log.val_macro_f1, log.val_accuracy, log.val_mrr) {
            (Some(f), Some(a), _) => format!(", val macro-F1 {f:.4}, accuracy {a:.4}"),
            (_, _, Some(m)) => format!(", val loss {:.4}, MRR {m:.4}", log.val_loss.unwrap_or(0.0)),
            _ => String::new(),
        };
        self.bar.println(&format!(
            "epoch {}: train loss {:.4}{val}{}",
            log.epoch,
            log.train_loss,
            if c.improved { " (best)" } else { "" }
        ));
        Ok(())
    }
}

/// The base model's files and its `config.json` as JSON.
struct Base {
    config: serde_json::Value,
    weights: Vec<u8>,
    tokenizer: Vec<u8>,
}

fn load_base(dir: &Path) -> Result<Base> {
    if !dir.is_dir() {
        return Err(Error::Model(format!(
            "{} is not a model directory (config.json + model.safetensors + tokenizer.json)",
            dir.display()
        )));
    }
    let cfg_path = dir.join("config.json");
    let config = serde_json::from_slice(&read(&cfg_path)?)
        .map_err(|e| Error::Model(format!("{}: invalid JSON: {e}", cfg_path.display())))?;
    Ok(Base {
        config,
        weights: read(&dir.join("model.safetensors"))?,
        tokenizer: crate::embed::read_tokenizer_json(&dir.join("tokenizer.json"))?,
    })
}

/// Fine-tunes a classifier and writes the output directory.
pub fn train_classifier(o: &TrainClassifyOptions) -> Result<TrainSummary> {
    let started = Instant::now();
    let base = load_base(&o.base)?;
    let train = read_examples(&o.data)?;
    let val = o.val.as_deref().map(read_examples).transpose()?;
    let labels = label_set(&train);
    if labels.len() < 2 && !o.multi_label {
        return Err(Error::Model(format!(
            "{}: a single-label classifier needs at least 2 labels, found {labels:?}",
            o.data.display()
        )));
    }
    let train_ids = label_ids(&train, &labels, &o.data.display().to_string())?;
    if !o.multi_label && train.iter().any(|e| e.labels.len() != 1) {
        return Err(Error::Model(format!(
            "{}: an example has several labels; pass --multi-label",
            o.data.display()
        )));
    }
    if o.listwise && (labels.len() != 1 || o.class_weights != ClassWeights::None) {
        return Err(Error::Model(format!(
            "{}: --listwise trains a one-logit reranker: examples label the relevant candidate \
             with one label (e.g. \"labels\": [\"relevant\"]) and the others with none, \
             without class weights; found labels {labels:?}",
            o.data.display()
        )));
    }
    let val_ids = match (&val, &o.val) {
        (Some(v), Some(p)) => Some(label_ids(v, &labels, &p.display().to_string())?),
        _ => None,
    };
    let mut cfg_json = base.config.clone();
    let id2label: serde_json::Map<String, serde_json::Value> = labels
        .iter()
        .enumerate()
        .map(|(i, l)| (i.to_string(), l.as_str().into()))
        .collect();
    cfg_json["id2label"] = id2label.into();
    cfg_json["problem_type"] = if o.multi_label {
        ProblemType::MultiLabel
    } else {
        ProblemType::SingleLabel
    }
    .as_str()
    .into();
    let config = ClassifierConfig::from_json(cfg_json.to_string().as_bytes())
        .map_err(|e| Error::Model(format!("{}: {e}", o.base.display())))?;
    let max_length = o.max_length.min(config.encoder.max_tokens());
    let tokenizer = Tokenizer::from_bytes(&base.tokenizer, "tokenizer.json")?
        .with_truncation(Some(max_length))?;
    let pad_id = tokenizer
        .token_to_id("[PAD]")
        .unwrap_or(config.encoder.pad_token_id);
    let st = SafeTensors::parse(&base.weights, "model.safetensors")?;
    let model = SequenceClassifier::new_head(
        CpuBackend::for_training(),
        config.clone(),
        &st,
        o.train.seed,
    )?;
    let mut tc = o.train.clone();
    tc.class_weights = match &o.class_weights {
        ClassWeights::None => None,
        ClassWeights::Balanced => Some(balanced_class_weights(&train_ids, labels.len())),
        ClassWeights::Given(w) => Some(w.clone()),
    };
    let enc_train = encode(&tokenizer, &train, train_ids, &o.data.display().to_string())?;
    let enc_train = if o.listwise {
        group(enc_train, &train, &o.data)?
    } else {
        enc_train
    };
    let enc_val = match (&val, val_ids, &o.val) {
        (Some(v), Some(ids), Some(path)) => {
            let e = encode(&tokenizer, v, ids, &path.display().to_string())?;
            Some(if o.listwise { group(e, v, path)? } else { e })
        }
        _ => None,
    };
    let mut trainer = Trainer::new(model, tc.clone(), enc_train.units(), pad_id)?;
    let parameters = trainer.trainable_parameters();
    tracing::info!(
        labels = ?labels,
        train = enc_train.len(),
        val = enc_val.as_ref().map_or(0, Encoded::len),
        parameters,
        steps = trainer.schedule().total,
        "fine-tuning {}",
        o.base.display()
    );
    let ck = o.out.join("checkpoint");
    if o.resume && ck.join("state.json").exists() {
        let state: TrainState = serde_json::from_slice(&read(&ck.join("state.json"))?)
            .map_err(|e| Error::Model(format!("{}: {e}", ck.join("state.json").display())))?;
        let best = match std::fs::read(ck.join("best.safetensors")) {
            Ok(b) => Some(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::io("reading", ck.join("best.safetensors"))(e)),
        };
        trainer.resume(
            &read(&ck.join("last.safetensors"))?,
            &read(&ck.join("optimizer.safetensors"))?,
            state,
            best.as_deref(),
        )?;
        tracing::info!(
            epoch = trainer.state().epoch,
            "resumed from {}",
            ck.display()
        );
    }
    std::fs::create_dir_all(&o.out).map_err(Error::io("creating", &o.out))?;
    let bar = Progress::new("train classify", "steps", trainer.schedule().total);
    let mut hooks = TrainHooks {
        bar,
        dir: o.out.clone(),
        examples: 0,
        started: Instant::now(),
    };
    let train_started = Instant::now();
    let epochs = trainer.fit(&enc_train, enc_val.as_ref(), &mut hooks)?;
    let train_seconds = train_started.elapsed().as_secs_f64();
    hooks.bar.finish();
    let (val_report, val_mrr) = match &enc_val {
        Some(v) if o.listwise => (None, Some(trainer.evaluate_ranking(v)?.1)),
        Some(v) => (Some(trainer.evaluate(v)?.1), None),
        None => (None, None),
    };

    // The model directory, each file written atomically, one writer at a
    // time (two runs into the same folder leave one run's files, not a mix).
    let _lock = crate::atomic::WriteLock::acquire(&o.out)?;
    let model = trainer.model();
    let tensors = cairn_core::backend::block_on_ready(model.export())?;
    write_atomic(
        &o.out.join("model.safetensors"),
        &write_f32(&tensors, &[("format".to_string(), "pt".to_string())].into())?,
    )?;
    let cfg = model.config().to_json(&base.config);
    write_atomic(
        &o.out.join("config.json"),
        serde_json::to_string_pretty(&cfg)
            .unwrap_or_default()
            .as_bytes(),
    )?;
    write_atomic(&o.out.join("tokenizer.json"), &base.tokenizer)?;
    // transformers' AutoTokenizer also reads these when the base has them.
    for f in [
        "tokenizer_config.json",
        "special_tokens_map.json",
        "vocab.txt",
    ] {
        if o.base.join(f).is_file() {
            write_atomic(&o.out.join(f), &read(&o.base.join(f))?)?;
        }
    }
    let mut steps = Vec::new();
    let mut f1 = Vec::new();
    let mut step = 0u64;
    for e in &epochs {
        for l in &e.step_losses {
            step += 1;
            steps.push((step as f64, f64::from(*l)));
        }
        if let Some(f) = e.val_macro_f1.or(e.val_mrr) {
            f1.push((e.step as f64, f));
        }
    }
    let mut series = vec![Series {
        name: "training loss per step".into(),
        points: steps,
    }];
    if !f1.is_empty() {
        let metric = if o.listwise { "MRR" } else { "macro-F1" };
        series.push(Series {
            name: format!("validation {metric} per epoch (x: step)"),
            points: f1,
        });
    }
    write_atomic(
        &o.out.join("training_curve.svg"),
        svg(
            &format!("cairn train classify — {}", o.data.display()),
            &series,
        )
        .as_bytes(),
    )?;
    let examples_trained: usize = epochs.len() * enc_train.len();
    let log = serde_json::json!({
        "base": o.base.display().to_string(),
        "data": o.data.display().to_string(),
        "val": o.val.as_ref().map(|p| p.display().to_string()),
        "labels": labels,
        "problem_type": model.config().problem_type.as_str(),
        "max_length": max_length,
        "epochs": tc.epochs, "batch_size": tc.batch_size, "grad_accum": tc.grad_accum,
        "lr": tc.lr, "decay": format!("{:?}", tc.decay), "warmup_ratio": tc.warmup_ratio,
        "weight_decay": tc.adamw.weight_decay, "max_grad_norm": tc.max_grad_norm,
        "dropout": tc.dropout, "class_weights": tc.class_weights, "patience": tc.patience,
        "seed": tc.seed, "parameters": parameters, "listwise": o.listwise,
        "val_mrr": val_mrr,
        "train_seconds": train_seconds,
        "history": epochs,
        "val_report": val_report,
    });
    write_atomic(
        &o.out.join("training_log.json"),
        serde_json::to_string_pretty(&log)
            .unwrap_or_default()
            .as_bytes(),
    )?;
    Ok(TrainSummary {
        epochs,
        val_report,
        val_mrr,
        seconds: started.elapsed().as_secs_f64(),
        parameters,
        examples_per_second: examples_trained as f64 / train_seconds.max(1e-9),
    })
}

/// Loads a classification model directory (config.json with id2label,
/// model.safetensors, tokenizer.json) for inference on the CPU.
pub fn load_classifier(
    dir: &Path,
    max_length: Option<usize>,
) -> Result<TextClassifier<CpuBackend>> {
    load_classifier_on(CpuBackend::new(), dir, max_length)
}

/// [`load_classifier`] on any backend.
pub fn load_classifier_on<B: cairn_core::backend::Backend>(
    backend: B,
    dir: &Path,
    max_length: Option<usize>,
) -> Result<TextClassifier<B>> {
    let base = load_base(dir)?;
    let config = serde_json::to_vec(&base.config).unwrap_or_default();
    TextClassifier::from_files(
        backend,
        ClassifierFiles {
            config: &config,
            weights: &base.weights,
            tokenizer: &base.tokenizer,
        },
        max_length,
    )
    .map_err(|e| Error::Model(format!("{}: {e}", dir.display())))
}

/// Predicts every example of `data` with the classifier in `dir` and builds
/// the classification report. Labels unknown to the model are an error.
pub fn eval_classifier<B: cairn_core::backend::Backend>(
    classifier: &TextClassifier<B>,
    data: &Path,
) -> Result<(Report, Vec<Vec<usize>>)> {
    let examples = read_examples(data)?;
    let labels = classifier.labels().to_vec();
    let truth = label_ids(&examples, &labels, &data.display().to_string())?;
    let predictions = match pairs(&examples, &data.display().to_string())? {
        Some(p) => pollster::block_on(classifier.predict_pairs_async(&p))?,
        None => {
            let texts: Vec<&str> = examples.iter().map(|e| e.text.as_str()).collect();
            pollster::block_on(classifier.predict_async(&texts))?
        }
    };
    let preds: Vec<Vec<usize>> = predictions.into_iter().map(|p| p.labels).collect();
    Ok((report(&labels, &truth, &preds)?, preds))
}

/// Where a question goes: the fewest collections the router is sure
/// enough of, or every collection.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Route {
    /// Collections to search (empty: all).
    pub collections: Vec<String>,
    /// The router's top label.
    pub label: String,
    /// Probability of `label`.
    pub score: f32,
    /// Why this route (for the log).
    pub reason: String,
}

/// Routes `question` with `router` among `available` collections (see
/// [`route_scores`]).
pub fn route(
    router: &TextClassifier<CpuBackend>,
    question: &str,
    threshold: f32,
    available: &[String],
) -> Result<Route> {
    let p = router
        .predict(&[question])?
        .pop()
        .ok_or_else(|| Error::Model("the router returned no prediction".into()))?;
    route_scores(router.labels(), &p.scores, threshold, available)
}

/// The route for the router's label probabilities `scores`: labels in
/// falling probability until their sum reaches `threshold` (like top-p
/// sampling: one collection when the router is sure, two when it hesitates
/// between them). Every collection is searched (an empty list) when that
/// takes every label, or when a chosen label is not a collection of
/// `available`.
pub fn route_scores(
    labels: &[String],
    scores: &[f32],
    threshold: f32,
    available: &[String],
) -> Result<Route> {
    if labels.is_empty() || labels.len() != scores.len() {
        return Err(Error::Model(format!(
            "the router gave {} scores for {} labels",
            scores.len(),
            labels.len()
        )));
    }
    let mut order: Vec<usize> = (0..labels.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let (label, score) = (labels[order[0]].clone(), scores[order[0]]);
    let mut chosen = Vec::new();
    let mut sum = 0.0f32;
    for &i in &order {
        chosen.push(labels[i].clone());
        sum += scores[i];
        if sum >= threshold {
            break;
        }
    }
    let (collections, reason) = if sum < threshold || chosen.len() == labels.len() {
        (
            Vec::new(),
            format!(
                "no fewer than all labels reach {threshold} (top {label} {score:.3}): searching all"
            ),
        )
    } else if let Some(missing) = chosen.iter().find(|l| !available.contains(l)) {
        (
            Vec::new(),
            format!(
                "label '{missing}' is not a collection of the index ({available:?}): searching all"
            ),
        )
    } else {
        let reason = format!("{chosen:?} hold probability {sum:.3} ≥ {threshold}");
        (chosen, reason)
    };
    Ok(Route {
        collections,
        label,
        score,
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::route_scores;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn routes_to_the_fewest_collections_that_reach_the_threshold() {
        let labels = s(&["debian", "r-admin", "r-devel", "r-lang"]);
        let all = labels.clone();
        // Sure: one collection.
        let r = route_scores(&labels, &[0.05, 0.92, 0.02, 0.01], 0.9, &all).unwrap();
        assert_eq!(r.collections, s(&["r-admin"]));
        assert_eq!((r.label.as_str(), r.score), ("r-admin", 0.92));
        // Hesitating between two: both, most probable first.
        let r = route_scores(&labels, &[0.02, 0.40, 0.55, 0.03], 0.9, &all).unwrap();
        assert_eq!(r.collections, s(&["r-devel", "r-admin"]));
        // Flat: it would take every label, so everything is searched.
        let r = route_scores(&labels, &[0.3, 0.3, 0.2, 0.2], 0.9, &all).unwrap();
        assert!(r.collections.is_empty(), "{r:?}");
        // Unreachable threshold: everything.
        let r = route_scores(&labels, &[0.0, 1.0, 0.0, 0.0], 1.01, &all).unwrap();
        assert!(r.collections.is_empty());
        // A label the index does not have: everything, and the reason says so.
        let r = route_scores(&labels, &[0.95, 0.05, 0.0, 0.0], 0.9, &s(&["r-admin"])).unwrap();
        assert!(
            r.collections.is_empty() && r.reason.contains("'debian'"),
            "{r:?}"
        );
        // Mismatched lengths are an error, not a panic.
        let e = route_scores(&labels, &[1.0], 0.9, &all).unwrap_err();
        assert!(e.to_string().contains("1 scores for 4 labels"), "{e}");
    }
}
