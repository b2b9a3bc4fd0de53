//! Sequence classification on a BERT-family encoder, in the layout of Hugging
//! Face `BertForSequenceClassification` / `DistilBertForSequenceClassification`.
//!
//! ```text
//! BERT:       [CLS] state ─► pooler.dense ─► tanh ─► (dropout) ─► classifier ─► logits
//! DistilBERT: [CLS] state ─► pre_classifier ─► ReLU ─► (dropout) ─► classifier ─► logits
//! ```
//!
//! `config.json` carries the labels (`id2label`, `label2id`) and the
//! `problem_type` (`single_label_classification`: softmax over the labels;
//! `multi_label_classification`: an independent sigmoid per label), exactly
//! the fields transformers reads, so a model written by cairn loads in
//! transformers and the reverse. Per-label decision thresholds of a
//! multi-label model live in an extra `cairn_thresholds` field (transformers
//! ignores unknown fields).

use std::collections::BTreeMap;

use serde_json::Value;

use super::bert::{Architecture, BertConfig, Encoder};
use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::formats::safetensors::NamedTensor;
use crate::formats::tensors::SafeTensors;
use crate::util::Rng;

/// How labels are predicted from logits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemType {
    /// One label per text: softmax, cross-entropy loss.
    SingleLabel,
    /// Any number of labels per text: sigmoid per label, binary cross-entropy.
    MultiLabel,
}

impl ProblemType {
    /// The `problem_type` string transformers uses.
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemType::SingleLabel => "single_label_classification",
            ProblemType::MultiLabel => "multi_label_classification",
        }
    }
}

/// The classification fields of a `config.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassifierConfig {
    /// The encoder's configuration.
    pub encoder: BertConfig,
    /// Label names by id.
    pub labels: Vec<String>,
    /// Single- or multi-label.
    pub problem_type: ProblemType,
    /// Per-label decision thresholds for multi-label models (default 0.5).
    pub thresholds: Vec<f32>,
}

impl ClassifierConfig {
    /// Parses a task model's `config.json`: the encoder fields plus
    /// `id2label` (ids must be 0..n without gaps), `problem_type` and the
    /// optional `cairn_thresholds`. Errors name the field at fault.
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        let encoder = BertConfig::from_json(bytes)?;
        let err = |detail: String| Error::Model {
            file: "config.json".into(),
            detail,
        };
        let v: Value =
            serde_json::from_slice(bytes).map_err(|e| err(format!("invalid JSON: {e}")))?;
        let map = v
            .get("id2label")
            .and_then(Value::as_object)
            .ok_or_else(|| err("missing field 'id2label' (not a classification model?)".into()))?;
        let mut labels = vec![None; map.len()];
        for (id, name) in map {
            let i: usize = id
                .parse()
                .ok()
                .filter(|&i| i < labels.len())
                .ok_or_else(|| {
                    err(format!(
                        "id2label key '{id}' is not an id in 0..{}",
                        map.len()
                    ))
                })?;
            let name = name
                .as_str()
                .ok_or_else(|| err(format!("id2label['{id}'] is not a string")))?;
            if let Some(slot) = labels.get_mut(i) {
                *slot = Some(name.to_string());
            }
        }
        let labels: Vec<String> = labels.into_iter().map(Option::unwrap_or_default).collect();
        if labels.is_empty() {
            return Err(err("id2label is empty".into()));
        }
        let problem_type = match v.get("problem_type").and_then(Value::as_str) {
            // One label and no problem type (bge-reranker, ms-marco
            // cross-encoders) or `regression`: a score through a sigmoid, as
            // sentence-transformers' CrossEncoder gives it — a softmax over
            // one label would be 1 for every input.
            None | Some("regression") if labels.len() == 1 => ProblemType::MultiLabel,
            None | Some("single_label_classification") => ProblemType::SingleLabel,
            Some("multi_label_classification") => ProblemType::MultiLabel,
            Some(other) => {
                return Err(err(format!(
                    "problem_type '{other}' is not supported (single_label_classification, multi_label_classification)"
                )));
            }
        };
        let thresholds = match v.get("cairn_thresholds").and_then(Value::as_array) {
            Some(a) if a.len() == labels.len() => a
                .iter()
                .map(|x| x.as_f64().map(|f| f as f32))
                .collect::<Option<Vec<f32>>>()
                .ok_or_else(|| err("cairn_thresholds must be numbers".into()))?,
            Some(a) => {
                return Err(err(format!(
                    "cairn_thresholds has {} values for {} labels",
                    a.len(),
                    labels.len()
                )));
            }
            None => vec![0.5; labels.len()],
        };
        Ok(Self {
            encoder,
            labels,
            problem_type,
            thresholds,
        })
    }

    /// `base` (the encoder's `config.json` as JSON) with the classification
    /// fields set: `architectures`, `id2label`, `label2id`, `problem_type`,
    /// `cairn_thresholds` — a `config.json` transformers loads.
    pub fn to_json(&self, base: &Value) -> Value {
        let mut v = base.clone();
        let arch = match self.encoder.architecture {
            Architecture::Bert => "BertForSequenceClassification",
            Architecture::DistilBert => "DistilBertForSequenceClassification",
            Architecture::Roberta if base["model_type"] == "xlm-roberta" => {
                "XLMRobertaForSequenceClassification"
            }
            Architecture::Roberta => "RobertaForSequenceClassification",
        };
        if let Some(o) = v.as_object_mut() {
            o.insert("architectures".into(), Value::from(vec![arch]));
            let id2label: serde_json::Map<String, Value> = self
                .labels
                .iter()
                .enumerate()
                .map(|(i, l)| (i.to_string(), Value::from(l.as_str())))
                .collect();
            let label2id: serde_json::Map<String, Value> = self
                .labels
                .iter()
                .enumerate()
                .map(|(i, l)| (l.clone(), Value::from(i)))
                .collect();
            o.insert("id2label".into(), Value::Object(id2label));
            o.insert("label2id".into(), Value::Object(label2id));
            o.insert("problem_type".into(), self.problem_type.as_str().into());
            if self.problem_type == ProblemType::MultiLabel {
                o.insert(
                    "cairn_thresholds".into(),
                    Value::from(self.thresholds.clone()),
                );
            } else {
                o.remove("cairn_thresholds");
            }
        }
        v
    }
}

struct Dense<T> {
    weight: T,
    bias: T,
}

/// A sequence classifier: encoder + pooling dense layer + linear head.
pub struct SequenceClassifier<B: Backend> {
    encoder: Encoder<B>,
    config: ClassifierConfig,
    pre: Dense<B::Tensor>,
    classifier: Dense<B::Tensor>,
}

impl<B: Backend> std::fmt::Debug for SequenceClassifier<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SequenceClassifier")
            .field("encoder", &self.encoder)
            .field("labels", &self.config.labels)
            .field("problem_type", &self.config.problem_type)
            .finish()
    }
}

/// The `{name}.weight` `[rows, cols]` and `{name}.bias` `[rows]` of a
/// checkpoint; a shape other than the config's is an error naming the tensor.
fn read_dense<B: Backend>(
    backend: &B,
    st: &SafeTensors<'_>,
    name: &str,
    rows: usize,
    cols: usize,
) -> Result<Dense<B::Tensor>> {
    let read = |name: String, shape: &[usize]| -> Result<B::Tensor> {
        let (data, got) = st.f32(&name)?;
        if got != shape {
            return Err(Error::Model {
                file: st.file().to_string(),
                detail: format!("tensor '{name}' has shape {got:?}, the config implies {shape:?}"),
            });
        }
        backend.tensor_f32(&data, shape)
    };
    Ok(Dense {
        weight: read(format!("{name}.weight"), &[rows, cols])?,
        bias: read(format!("{name}.bias"), &[rows])?,
    })
}

/// The checkpoint prefix of the encoder and the names of the two head layers.
fn head_names(arch: Architecture) -> (&'static str, &'static str, &'static str) {
    match arch {
        Architecture::Bert => ("bert.", "bert.pooler.dense", "classifier"),
        Architecture::DistilBert => ("distilbert.", "pre_classifier", "classifier"),
        // RobertaClassificationHead: dense + tanh on <s>, then out_proj.
        Architecture::Roberta => ("roberta.", "classifier.dense", "classifier.out_proj"),
    }
}

impl<B: Backend> SequenceClassifier<B> {
    /// Loads a task checkpoint (`*ForSequenceClassification` weights).
    pub fn load(backend: B, config: ClassifierConfig, st: &SafeTensors<'_>) -> Result<Self> {
        let (_, pre_name, cls_name) = head_names(config.encoder.architecture);
        let h = config.encoder.hidden_size;
        let n = config.labels.len();
        let pre = read_dense(&backend, st, pre_name, h, h)?;
        let classifier = read_dense(&backend, st, cls_name, n, h)?;
        let encoder = Encoder::load(backend, config.encoder.clone(), st)?;
        Ok(Self {
            encoder,
            config,
            pre,
            classifier,
        })
    }

    /// A new head on a pretrained encoder checkpoint, for fine-tuning: the
    /// BERT pooler comes from the checkpoint when it has one (sentence-
    /// transformers models keep it), the other head weights are drawn from
    /// N(0, 0.02²) with zero biases (transformers' `_init_weights`), seeded.
    pub fn new_head(
        backend: B,
        config: ClassifierConfig,
        st: &SafeTensors<'_>,
        seed: u64,
    ) -> Result<Self> {
        let h = config.encoder.hidden_size;
        let n = config.labels.len();
        let mut rng = Rng::new(seed);
        let mut init = |rows: usize, cols: usize| -> Result<Dense<B::Tensor>> {
            let w: Vec<f32> = (0..rows * cols).map(|_| 0.02 * rng.normal()).collect();
            Ok(Dense {
                weight: backend.tensor_f32(&w, &[rows, cols])?,
                bias: backend.zeros(&[rows])?,
            })
        };
        let pooler = ["", "bert."]
            .iter()
            .map(|p| format!("{p}pooler.dense"))
            .find(|p| {
                config.encoder.architecture == Architecture::Bert
                    && st.contains(&format!("{p}.weight"))
            });
        let pre = match pooler {
            Some(p) => read_dense(&backend, st, &p, h, h)?,
            None => init(h, h)?,
        };
        let classifier = init(n, h)?;
        let encoder = Encoder::load(backend, config.encoder.clone(), st)?;
        Ok(Self {
            encoder,
            config,
            pre,
            classifier,
        })
    }

    /// The configuration (labels, problem type, thresholds).
    pub fn config(&self) -> &ClassifierConfig {
        &self.config
    }

    /// Sets the per-label thresholds of a multi-label model.
    pub fn set_thresholds(&mut self, thresholds: Vec<f32>) -> Result<()> {
        if thresholds.len() != self.config.labels.len() {
            return Err(Error::Input(format!(
                "{} thresholds for {} labels",
                thresholds.len(),
                self.config.labels.len()
            )));
        }
        self.config.thresholds = thresholds;
        Ok(())
    }

    /// The encoder.
    pub fn encoder(&self) -> &Encoder<B> {
        &self.encoder
    }

    /// The pooled representation `[batch, hidden]` (the first token's state
    /// through the pooling dense layer and its activation), before dropout.
    pub fn pooled(&self, ids: &[u32], mask: &[u32], batch: usize, seq: usize) -> Result<B::Tensor> {
        self.pooled_typed(ids, None, mask, batch, seq)
    }

    /// [`SequenceClassifier::pooled`] with token types (sentence pairs).
    pub fn pooled_typed(
        &self,
        ids: &[u32],
        token_types: Option<&[u32]>,
        mask: &[u32],
        batch: usize,
        seq: usize,
    ) -> Result<B::Tensor> {
        self.pool_first(&self.first_token_states(ids, token_types, mask, batch, seq)?)
    }

    /// The encoder's last hidden state of the first token (`[CLS]`),
    /// `[batch, hidden]`: what the head pools.
    pub fn first_token_states(
        &self,
        ids: &[u32],
        token_types: Option<&[u32]>,
        mask: &[u32],
        batch: usize,
        seq: usize,
    ) -> Result<B::Tensor> {
        let b = self.encoder.backend();
        let h = self.config.encoder.hidden_size;
        let states = self
            .encoder
            .forward_typed(ids, token_types, mask, batch, seq)?;
        b.reshape(&b.narrow(&states, 1, 0, 1)?, &[batch, h])
    }

    /// The head's pooling of first-token states `[batch, hidden]`: BERT's
    /// pooler (dense + tanh), RoBERTa's `classifier.dense` + tanh, or
    /// DistilBERT's pre-classifier (dense + ReLU).
    pub fn pool_first(&self, first: &B::Tensor) -> Result<B::Tensor> {
        let b = self.encoder.backend();
        let x = b.linear(first, &self.pre.weight, Some(&self.pre.bias))?;
        match self.config.encoder.architecture {
            Architecture::Bert | Architecture::Roberta => b.tanh(&x),
            Architecture::DistilBert => b.relu(&x),
        }
    }

    /// Logits `[batch, labels]` from a pooled representation.
    pub fn logits_from_pooled(&self, pooled: &B::Tensor) -> Result<B::Tensor> {
        let b = self.encoder.backend();
        b.linear(pooled, &self.classifier.weight, Some(&self.classifier.bias))
    }

    /// Logits `[batch, labels]` for padded ids `[batch, seq]` and their mask.
    pub fn forward(
        &self,
        ids: &[u32],
        mask: &[u32],
        batch: usize,
        seq: usize,
    ) -> Result<B::Tensor> {
        self.logits_from_pooled(&self.pooled(ids, mask, batch, seq)?)
    }

    /// Logits for sentence pairs: padded ids, their token types (0 for the
    /// first text, 1 for the second) and mask, all `[batch, seq]` — how a
    /// cross-encoder scores (query, passage).
    pub fn forward_pairs(
        &self,
        ids: &[u32],
        token_types: &[u32],
        mask: &[u32],
        batch: usize,
        seq: usize,
    ) -> Result<B::Tensor> {
        self.logits_from_pooled(&self.pooled_typed(ids, Some(token_types), mask, batch, seq)?)
    }

    /// Every trainable weight with its checkpoint name (see
    /// [`Encoder::parameters_mut`] for the encoder's; the head's are the
    /// transformers names).
    pub fn parameters_mut(&mut self) -> Vec<(String, &mut B::Tensor)> {
        let (prefix, pre_name, cls_name) = head_names(self.config.encoder.architecture);
        let mut out: Vec<(String, &mut B::Tensor)> = self
            .encoder
            .parameters_mut()
            .into_iter()
            .map(|(n, t)| (format!("{prefix}{n}"), t))
            .collect();
        out.push((format!("{pre_name}.weight"), &mut self.pre.weight));
        out.push((format!("{pre_name}.bias"), &mut self.pre.bias));
        out.push((format!("{cls_name}.weight"), &mut self.classifier.weight));
        out.push((format!("{cls_name}.bias"), &mut self.classifier.bias));
        out
    }

    /// The head's weights (pooler or pre-classifier, and classifier) under
    /// transformers' names: what [`crate::train::classify::TrainConfig::freeze_encoder`]
    /// trains.
    pub fn head_parameters_mut(&mut self) -> Vec<(String, &mut B::Tensor)> {
        let (_, pre_name, cls_name) = head_names(self.config.encoder.architecture);
        vec![
            (format!("{pre_name}.weight"), &mut self.pre.weight),
            (format!("{pre_name}.bias"), &mut self.pre.bias),
            (format!("{cls_name}.weight"), &mut self.classifier.weight),
            (format!("{cls_name}.bias"), &mut self.classifier.bias),
        ]
    }

    /// All weights under the names transformers' task model loads, read back
    /// to the host (for [`crate::formats::safetensors::write_f32`]).
    pub async fn export(&self) -> Result<Vec<NamedTensor>> {
        let (prefix, pre_name, cls_name) = head_names(self.config.encoder.architecture);
        let b = self.encoder.backend();
        let mut out = self.encoder.export(prefix).await?;
        for (name, t) in [
            (format!("{pre_name}.weight"), &self.pre.weight),
            (format!("{pre_name}.bias"), &self.pre.bias),
            (format!("{cls_name}.weight"), &self.classifier.weight),
            (format!("{cls_name}.bias"), &self.classifier.bias),
        ] {
            out.push((name, b.shape(t), b.read_f32(t).await?));
        }
        Ok(out)
    }
}

/// Label scores of one text.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// Probability per label (softmax for single-label, sigmoid for multi-label).
    pub scores: Vec<f32>,
    /// Predicted label ids: the arg-max (single-label) or every label at or
    /// over its threshold (multi-label).
    pub labels: Vec<usize>,
}

/// Scores from one row of logits under `config`'s problem type.
pub fn predict_row(config: &ClassifierConfig, logits: &[f32]) -> Prediction {
    match config.problem_type {
        ProblemType::SingleLabel => {
            let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let e: Vec<f32> = logits.iter().map(|&l| (l - max).exp()).collect();
            let sum: f32 = e.iter().sum();
            let scores: Vec<f32> = e.iter().map(|v| v / sum).collect();
            let best = scores
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map(|(i, _)| i)
                .unwrap_or(0);
            Prediction {
                scores,
                labels: vec![best],
            }
        }
        ProblemType::MultiLabel => {
            let scores: Vec<f32> = logits.iter().map(|&l| 1.0 / (1.0 + (-l).exp())).collect();
            let labels = scores
                .iter()
                .zip(&config.thresholds)
                .enumerate()
                .filter(|(_, (s, t))| s >= t)
                .map(|(i, _)| i)
                .collect();
            Prediction { scores, labels }
        }
    }
}

/// The label name → id map of a configuration.
pub fn label_ids(config: &ClassifierConfig) -> BTreeMap<String, usize> {
    config
        .labels
        .iter()
        .enumerate()
        .map(|(i, l)| (l.clone(), i))
        .collect()
}
