//! Labeled examples from JSONL and length-grouped batches.
//!
//! One JSON object per line: `{"text": "...", "label": "name"}` for
//! single-label data, `{"text": "...", "labels": ["a", "b"]}` for
//! multi-label data (an integer label is taken as an id). Sentence pairs
//! (a cross-encoder's query and passage) add `"text_pair": "..."`. Blank lines are
//! skipped; anything else that is not such an object is an error naming the
//! file and line.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::util::Rng;

/// One labeled text.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    /// The text.
    pub text: String,
    /// Label names (one for single-label data).
    pub labels: Vec<String>,
    /// The second text of a sentence pair (e.g. the passage for a query).
    pub text_pair: Option<String>,
}

/// Parses JSONL `bytes`; `file` names the source in errors.
pub fn read_jsonl(bytes: &[u8], file: &str) -> Result<Vec<Example>> {
    let text = std::str::from_utf8(bytes).map_err(|e| Error::Format {
        format: format!("JSONL {file}"),
        detail: format!("not UTF-8: {e}"),
    })?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let err = |detail: String| Error::Format {
            format: format!("JSONL {file}"),
            detail: format!("line {}: {detail}", i + 1),
        };
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(line).map_err(|e| err(format!("invalid JSON: {e}")))?;
        let text = v
            .get("text")
            .and_then(Value::as_str)
            .ok_or_else(|| err("missing string field 'text'".into()))?;
        let label_name = |l: &Value| -> Result<String> {
            match l {
                Value::String(s) => Ok(s.clone()),
                Value::Number(n) if n.is_u64() => Ok(n.to_string()),
                other => Err(err(format!("label {other} is neither a string nor an id"))),
            }
        };
        let labels = match (v.get("label"), v.get("labels")) {
            (Some(l), None) => vec![label_name(l)?],
            (None, Some(Value::Array(ls))) => ls.iter().map(label_name).collect::<Result<_>>()?,
            _ => {
                return Err(err(
                    "needs exactly one of 'label' (a name) or 'labels' (a list of names)".into(),
                ));
            }
        };
        let text_pair = match v.get("text_pair") {
            None | Some(Value::Null) => None,
            Some(Value::String(p)) => Some(p.clone()),
            Some(other) => return Err(err(format!("'text_pair' must be a string, got {other}"))),
        };
        out.push(Example {
            text: text.to_string(),
            labels,
            text_pair,
        });
    }
    if out.is_empty() {
        return Err(Error::Format {
            format: format!("JSONL {file}"),
            detail: "no examples".into(),
        });
    }
    Ok(out)
}

/// The sorted set of label names in `examples`.
pub fn label_set(examples: &[Example]) -> Vec<String> {
    let mut s: Vec<String> = examples
        .iter()
        .flat_map(|e| e.labels.iter().cloned())
        .collect();
    s.sort();
    s.dedup();
    s
}

/// Label ids of each example under `labels`; a label outside the set is an
/// error naming it and the example.
pub fn label_ids(examples: &[Example], labels: &[String], file: &str) -> Result<Vec<Vec<usize>>> {
    let map: BTreeMap<&str, usize> = labels
        .iter()
        .enumerate()
        .map(|(i, l)| (l.as_str(), i))
        .collect();
    examples
        .iter()
        .enumerate()
        .map(|(n, e)| {
            e.labels
                .iter()
                .map(|l| {
                    map.get(l.as_str()).copied().ok_or_else(|| {
                        Error::Input(format!(
                            "{file}: example {} has label '{l}', which is not one of {labels:?}",
                            n + 1
                        ))
                    })
                })
                .collect()
        })
        .collect()
}

/// Batches of example indices grouped by length (transformers'
/// `LengthGroupedSampler`): a seeded shuffle, then mega-batches of 50
/// batches each sorted by length so a batch pads little, then the batches
/// shuffled so lengths do not trend through the epoch.
pub fn length_grouped_batches(
    lengths: &[usize],
    batch_size: usize,
    rng: &mut Rng,
) -> Vec<Vec<usize>> {
    let bs = batch_size.max(1);
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    rng.shuffle(&mut order);
    let mut batches: Vec<Vec<usize>> = Vec::new();
    for mega in order.chunks(bs * 50) {
        let mut mega = mega.to_vec();
        mega.sort_by_key(|&i| std::cmp::Reverse(lengths[i]));
        batches.extend(mega.chunks(bs).map(<[usize]>::to_vec));
    }
    rng.shuffle(&mut batches);
    batches
}

/// Class weights `n / (k · count_c)` (scikit-learn's "balanced"), for
/// imbalanced data; a class with no examples gets weight 0.
pub fn balanced_class_weights(ids: &[Vec<usize>], classes: usize) -> Vec<f32> {
    let mut counts = vec![0usize; classes];
    for i in ids.iter().flatten() {
        counts[*i] += 1;
    }
    let n: usize = counts.iter().sum();
    counts
        .iter()
        .map(|&c| {
            if c == 0 {
                0.0
            } else {
                n as f32 / (classes as f32 * c as f32)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_single_and_multi_label_lines_and_names_bad_ones() {
        let ok = b"{\"text\":\"a\",\"label\":\"x\"}\n\n{\"text\":\"b\",\"labels\":[\"x\",\"y\"]}\n";
        let ex = read_jsonl(ok, "t.jsonl").unwrap();
        assert_eq!(ex[1].labels, vec!["x", "y"]);
        assert_eq!(label_set(&ex), vec!["x", "y"]);
        assert_eq!(
            label_ids(&ex, &label_set(&ex), "t").unwrap(),
            vec![vec![0], vec![0, 1]]
        );
        let e = label_ids(&ex, &["x".to_string()], "t.jsonl")
            .unwrap_err()
            .to_string();
        assert!(e.contains("example 2 has label 'y'"), "{e}");
        let e = read_jsonl(b"{\"text\":\"a\"}\n", "bad.jsonl")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("JSONL bad.jsonl: line 1: needs exactly one"),
            "{e}"
        );
        let e = read_jsonl(b"{\"label\":\"a\"}", "bad.jsonl")
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing string field 'text'"), "{e}");
        assert!(read_jsonl(b"\n", "empty.jsonl").is_err());
    }

    #[test]
    fn reads_sentence_pairs() {
        let ok = b"{\"text\":\"q\",\"text_pair\":\"p\",\"labels\":[\"relevant\"]}\n{\"text\":\"q\",\"text_pair\":\"n\",\"labels\":[]}\n";
        let ex = read_jsonl(ok, "pairs.jsonl").unwrap();
        assert_eq!(ex[0].text_pair.as_deref(), Some("p"));
        assert!(ex[1].labels.is_empty());
        let e = read_jsonl(
            b"{\"text\":\"q\",\"text_pair\":3,\"label\":\"x\"}",
            "p.jsonl",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("p.jsonl") && e.contains("line 1: 'text_pair' must be a string"),
            "{e}"
        );
    }

    #[test]
    fn batches_cover_every_example_once_and_are_seeded() {
        let lengths: Vec<usize> = (0..103).map(|i| (i * 37) % 50).collect();
        let a = length_grouped_batches(&lengths, 8, &mut Rng::new(7));
        let b = length_grouped_batches(&lengths, 8, &mut Rng::new(7));
        assert_eq!(a, b);
        let mut all: Vec<usize> = a.iter().flatten().copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..103).collect::<Vec<_>>());
        // Within a batch, lengths are sorted (one mega-batch here).
        assert!(
            a.iter()
                .all(|bt| bt.windows(2).all(|w| lengths[w[0]] >= lengths[w[1]]))
        );
        assert_ne!(a, length_grouped_batches(&lengths, 8, &mut Rng::new(8)));
    }

    #[test]
    fn balanced_weights_match_scikit_learn() {
        // compute_class_weight("balanced", classes=[0,1], y=[0,0,0,1]) = [0.6667, 2.0]
        let w = balanced_class_weights(&[vec![0], vec![0], vec![0], vec![1]], 2);
        assert!((w[0] - 2.0 / 3.0).abs() < 1e-6 && (w[1] - 2.0).abs() < 1e-6);
    }
}
