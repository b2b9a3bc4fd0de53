use super::loss::listwise_loss;
use super::*;
use crate::models::classifier::ClassifierConfig;

fn tiny(labels: &[&str], multi: bool, seed: u64) -> SequenceClassifier<CpuBackend> {
    let (config, weights) = crate::testing::tiny_bert(50, 16, 2, 3).unwrap();
    let mut v: serde_json::Value = serde_json::from_slice(&config).unwrap();
    let id2label: serde_json::Map<String, serde_json::Value> = labels
        .iter()
        .enumerate()
        .map(|(i, l)| (i.to_string(), (*l).into()))
        .collect();
    v["id2label"] = id2label.into();
    if multi {
        v["problem_type"] = "multi_label_classification".into();
    }
    let cfg = ClassifierConfig::from_json(v.to_string().as_bytes()).unwrap();
    let st = SafeTensors::parse(&weights, "tiny.safetensors").unwrap();
    SequenceClassifier::new_head(CpuBackend::for_training(), cfg, &st, seed).unwrap()
}

/// Eight sequences whose label is decided by their first real token.
fn data() -> Encoded {
    let ids: Vec<Vec<u32>> = (0..8u32)
        .map(|i| {
            let mut v = vec![1, 2 + (i % 2) * 10 + i % 3];
            v.extend((0..(i % 4)).map(|k| 20 + k));
            v.push(3);
            v
        })
        .collect();
    let labels = (0..8).map(|i| vec![i % 2]).collect();
    Encoded {
        ids,
        types: None,
        labels,
        groups: None,
    }
}

/// Six query groups of 3 candidates: the relevant one (the 2nd in even
/// groups, the 1st in odd ones) starts with token 5, the others with 6
/// or 7 — what the model must learn to score highest.
fn ranking() -> Encoded {
    let (mut ids, mut labels, mut groups) = (vec![], vec![], vec![]);
    for g in 0..6u32 {
        let start = ids.len();
        let relevant = (g % 2 == 0) as usize;
        for c in 0..3usize {
            let first = if c == relevant {
                5
            } else {
                6 + (c as u32 + g) % 2
            };
            ids.push(vec![1, first, 20 + g, 3]);
            labels.push(if c == relevant { vec![0] } else { vec![] });
        }
        groups.push(start..ids.len());
    }
    Encoded {
        ids,
        types: None,
        labels,
        groups: None,
    }
    .grouped(groups)
    .unwrap()
}

#[test]
fn listwise_loss_is_the_softmax_cross_entropy_of_the_relevant_candidate() {
    let d = ranking();
    // Two groups of 3 from the data: relevant at 1, then at 0.
    let logits = Tensor::new(
        &[[0.5f32], [2.0], [-1.0], [0.0], [1.0], [3.0]],
        &Device::Cpu,
    )
    .unwrap();
    let loss = listwise_loss(&logits, &[3, 3], &d, &[0, 1, 2, 3, 4, 5])
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    let lse = |v: &[f64]| v.iter().map(|x| x.exp()).sum::<f64>().ln();
    let want = ((lse(&[0.5, 2.0, -1.0]) - 2.0) + (lse(&[0.0, 1.0, 3.0]) - 0.0)) / 2.0;
    assert!((f64::from(loss) - want).abs() < 1e-5, "{loss} vs {want}");
}

#[test]
fn ranking_groups_are_checked() {
    let d = ranking();
    let two = Encoded {
        groups: None,
        labels: vec![vec![0]; d.len()],
        ..d.clone()
    };
    let err = two.grouped(vec![0..3, 3..18]).unwrap_err().to_string();
    assert!(
        err.contains("query group 1") && err.contains("3 relevant"),
        "{err}"
    );
    let short = Encoded {
        groups: None,
        ..d.clone()
    };
    let err = short.grouped(vec![0..3, 4..6]).unwrap_err().to_string();
    assert!(
        err.contains("query group 2") && err.contains("consecutive"),
        "{err}"
    );
    let plain = Encoded {
        groups: None,
        ..d.clone()
    };
    let t = Trainer::new(tiny(&["relevant"], true, 1), config(1), 6, 0).unwrap();
    assert!(t.evaluate_ranking(&plain).is_err());
    // A ranking run needs a one-logit model.
    let mut two_labels = Trainer::new(tiny(&["a", "b"], true, 1), config(1), 6, 0).unwrap();
    let err = two_labels
        .fit(&d, None, &mut Keep(vec![], vec![]))
        .unwrap_err();
    assert!(err.to_string().contains("one-logit"), "{err}");
}

#[test]
fn listwise_training_ranks_the_relevant_candidate_first() {
    let cfg = TrainConfig {
        lr: 1e-2,
        decay: Decay::Constant,
        batch_size: 2,
        ..config(15)
    };
    let d = ranking();
    let mut t = Trainer::new(tiny(&["relevant"], true, 3), cfg, d.units(), 0).unwrap();
    let (before, mrr_before) = t.evaluate_ranking(&d).unwrap();
    let mut k = Keep(vec![], vec![]);
    let logs = t.fit(&d, Some(&d), &mut k).unwrap();
    let (after, mrr) = t.evaluate_ranking(&d).unwrap();
    assert!(after < before * 0.5, "loss {before} → {after}");
    assert_eq!(mrr, 1.0, "MRR {mrr_before} → {mrr}");
    // 6 groups, 2 per batch: 3 steps an epoch; the best epoch's MRR is kept.
    assert_eq!(k.1.len(), 45);
    assert!(
        logs.iter()
            .all(|l| l.val_mrr.is_some() && l.val_macro_f1.is_none())
    );
    assert_eq!(t.state().best.map(|b| b.0), Some(1.0));
    // Scoring every candidate alike earns the lowest rank, not the first.
    let flat = Trainer::new(tiny(&["relevant"], true, 3), config(1), 6, 0).unwrap();
    let mut labels = vec![vec![]; 6];
    labels[0] = vec![0];
    labels[3] = vec![0];
    let same = Encoded {
        ids: vec![vec![1, 5, 3]; 6],
        types: None,
        labels,
        groups: None,
    }
    .grouped(vec![0..3, 3..6])
    .unwrap();
    let (_, mrr) = flat.evaluate_ranking(&same).unwrap();
    assert!((mrr - 1.0 / 3.0).abs() < 1e-9, "{mrr}");
}

struct Keep(Vec<Checkpoint>, Vec<f32>);
impl Hooks for Keep {
    fn on_step(&mut self, log: &StepLog) {
        self.1.push(log.loss);
    }
    fn on_epoch(&mut self, _: &EpochLog, c: &Checkpoint) -> Result<()> {
        self.0.push(c.clone());
        Ok(())
    }
}

fn config(epochs: usize) -> TrainConfig {
    TrainConfig {
        epochs,
        batch_size: 4,
        lr: 3e-3,
        warmup_ratio: 0.0,
        dropout: 0.1,
        ..TrainConfig::default()
    }
}

#[test]
fn a_frozen_encoder_trains_only_the_head() {
    let cfg = TrainConfig {
        lr: 1e-2,
        decay: Decay::Constant,
        freeze_encoder: true,
        ..config(20)
    };
    let mut t = Trainer::new(tiny(&["a", "b"], false, 1), cfg.clone(), 8, 0).unwrap();
    // Pooler 16×16 + 16, classifier 2×16 + 2.
    assert_eq!(t.trainable_parameters(), 16 * 16 + 16 + 2 * 16 + 2);
    let export = |t: &Trainer| {
        crate::backend::block_on_ready(t.model().export())
            .unwrap()
            .into_iter()
            .map(|(name, _, data)| (name, data))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    let start = export(&t);
    let d = data();
    let (before, _) = t.evaluate(&d).unwrap();
    let mut k = Keep(vec![], vec![]);
    t.fit(&d, None, &mut k).unwrap();
    let (after, _) = t.evaluate(&d).unwrap();
    assert!(after < before, "loss {before} → {after}");
    // The cached encoder states give the model's own logits.
    let cached = t.logits(&d).unwrap();
    for (i, ids) in d.ids.iter().enumerate() {
        let mask = vec![1u32; ids.len()];
        let direct = t.model().forward(ids, &mask, 1, ids.len()).unwrap();
        let direct = direct.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        for (a, b) in direct.iter().zip(&cached[i * 2..i * 2 + 2]) {
            assert!((a - b).abs() < 1e-4, "example {i}: {a} vs {b}");
        }
    }
    let end = export(&t);
    for (name, w) in &start {
        let head = name.starts_with("bert.pooler.") || name.starts_with("classifier.");
        assert_eq!(head, w != &end[name], "{name}: changed only if in the head");
    }
    // A checkpoint of a frozen run does not resume a full one.
    let mut full = Trainer::new(tiny(&["a", "b"], false, 1), config(20), 8, 0).unwrap();
    let c = &k.0[0];
    let e = full
        .resume(&c.weights, &c.optimizer, c.state.clone(), None)
        .unwrap_err();
    assert!(e.to_string().contains("encoder frozen"), "{e}");
}

#[test]
fn loss_decreases_on_a_fixed_batch() {
    for multi in [false, true] {
        let cfg = TrainConfig {
            lr: 1e-2,
            decay: Decay::Constant,
            ..config(20)
        };
        let mut t = Trainer::new(tiny(&["a", "b"], multi, 1), cfg, 8, 0).unwrap();
        let d = data();
        let (before, _) = t.evaluate(&d).unwrap();
        let mut k = Keep(vec![], vec![]);
        t.fit(&d, None, &mut k).unwrap();
        let (after, rep) = t.evaluate(&d).unwrap();
        assert!(
            after < before * 0.5,
            "multi {multi}: loss {before} → {after}"
        );
        assert_eq!(rep.accuracy, 1.0, "multi {multi}");
        assert_eq!(k.1.len(), 40);
    }
}

#[test]
fn a_resumed_run_equals_an_uninterrupted_one() {
    let d = data();
    let mut whole = Trainer::new(tiny(&["a", "b"], false, 1), config(2), 8, 0).unwrap();
    whole.fit(&d, Some(&d), &mut Keep(vec![], vec![])).unwrap();
    let want = whole.logits(&d).unwrap();

    let mut first = Trainer::new(tiny(&["a", "b"], false, 1), config(1), 8, 0).unwrap();
    // The same schedule as the two-epoch run: resume with epochs = 2.
    first.schedule = whole.schedule;
    let mut k = Keep(vec![], vec![]);
    first.fit(&d, Some(&d), &mut k).unwrap();
    let c = &k.0[0];
    let mut second = Trainer::new(tiny(&["a", "b"], false, 99), config(2), 8, 0).unwrap();
    second
        .resume(&c.weights, &c.optimizer, c.state.clone(), None)
        .unwrap();
    assert_eq!(second.state().epoch, 1);
    second.fit(&d, Some(&d), &mut Keep(vec![], vec![])).unwrap();
    let got = second.logits(&d).unwrap();
    let worst = want
        .iter()
        .zip(&got)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(worst < 1e-5, "resumed logits differ by {worst}");
    // Another seed is refused.
    let mut other = Trainer::new(
        tiny(&["a", "b"], false, 1),
        TrainConfig {
            seed: 7,
            ..config(2)
        },
        8,
        0,
    )
    .unwrap();
    let e = other
        .resume(&c.weights, &c.optimizer, c.state.clone(), None)
        .unwrap_err();
    assert!(e.to_string().contains("seed 42"), "{e}");
}

#[test]
fn export_round_trips_through_the_transformers_layout() {
    let d = data();
    let mut t = Trainer::new(tiny(&["a", "b", "c"], false, 5), config(1), 8, 0).unwrap();
    t.fit(&d, None, &mut Keep(vec![], vec![])).unwrap();
    let want = t.logits(&d).unwrap();
    let tensors = crate::backend::block_on_ready(t.model().export()).unwrap();
    let names: Vec<&str> = tensors.iter().map(|t| t.0.as_str()).collect();
    for n in [
        "bert.encoder.layer.1.attention.self.key.weight",
        "bert.pooler.dense.weight",
        "classifier.bias",
    ] {
        assert!(names.contains(&n), "{n} missing from {names:?}");
    }
    let bytes = write_f32(&tensors, &Default::default()).unwrap();
    let st = SafeTensors::parse(&bytes, "model.safetensors").unwrap();
    let base: serde_json::Value =
        serde_json::from_slice(&crate::testing::tiny_bert(50, 16, 2, 3).unwrap().0).unwrap();
    let cfg_json = t.model().config().to_json(&base);
    assert_eq!(
        cfg_json["architectures"][0],
        "BertForSequenceClassification"
    );
    assert_eq!(cfg_json["label2id"]["c"], 2);
    let cfg = ClassifierConfig::from_json(cfg_json.to_string().as_bytes()).unwrap();
    let loaded = SequenceClassifier::load(CpuBackend::new(), cfg, &st).unwrap();
    let rows: Vec<&[u32]> = d.ids.iter().map(Vec::as_slice).collect();
    let p = pad_batch(&rows, 0);
    let logits = loaded
        .forward(&p.ids, &p.attention_mask, 8, p.max_len)
        .unwrap();
    let got = logits.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let worst = want
        .iter()
        .zip(&got)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(worst < 1e-4, "reloaded logits differ by {worst}");
}
