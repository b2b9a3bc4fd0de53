//! The classification report: what scikit-learn's `classification_report`
//! prints, computed the same way (a class with no predictions has precision
//! 0, with no true examples recall 0; F1 is 0 where precision + recall is 0).

use crate::error::{Error, Result};

/// Scores of one class.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ClassScores {
    /// Label name.
    pub label: String,
    /// Precision.
    pub precision: f64,
    /// Recall.
    pub recall: f64,
    /// F1.
    pub f1: f64,
    /// True examples of the class.
    pub support: usize,
}

/// A classification report over labeled examples.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Report {
    /// Per class, in label-id order.
    pub classes: Vec<ClassScores>,
    /// Unweighted mean F1 over classes that have true examples or predictions.
    pub macro_f1: f64,
    /// F1 of the pooled counts (= accuracy for single-label data).
    pub micro_f1: f64,
    /// Support-weighted mean F1.
    pub weighted_f1: f64,
    /// Share of examples whose predicted label set equals the true one.
    pub accuracy: f64,
    /// `confusion[true][predicted]` (single-label data; for multi-label,
    /// each true label is counted against each predicted one).
    pub confusion: Vec<Vec<usize>>,
    /// Examples.
    pub examples: usize,
}

/// Builds the report from true and predicted label-id sets (one set per
/// example; single-label data has one id in each). Ids must be below
/// `labels.len()`.
pub fn report(labels: &[String], truth: &[Vec<usize>], predicted: &[Vec<usize>]) -> Result<Report> {
    let n = labels.len();
    if truth.len() != predicted.len() {
        return Err(Error::Input(format!(
            "{} true label sets but {} predictions",
            truth.len(),
            predicted.len()
        )));
    }
    if let Some(bad) = truth.iter().chain(predicted).flatten().find(|&&i| i >= n) {
        return Err(Error::Input(format!(
            "label id {bad} is out of range for {n} labels"
        )));
    }
    // Per class: (true positives, false positives, false negatives).
    let mut counts = vec![(0usize, 0usize, 0usize); n];
    let mut confusion = vec![vec![0usize; n]; n];
    let mut exact = 0;
    for (t, p) in truth.iter().zip(predicted) {
        for (c, (tp, fp, fneg)) in counts.iter_mut().enumerate() {
            match (t.contains(&c), p.contains(&c)) {
                (true, true) => *tp += 1,
                (false, true) => *fp += 1,
                (true, false) => *fneg += 1,
                _ => {}
            }
        }
        for &a in t {
            for &b in p {
                if let Some(cell) = confusion.get_mut(a).and_then(|row| row.get_mut(b)) {
                    *cell += 1;
                }
            }
        }
        let (mut ts, mut ps) = (t.clone(), p.clone());
        ts.sort_unstable();
        ps.sort_unstable();
        ts.dedup();
        ps.dedup();
        exact += usize::from(ts == ps);
    }
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let f1 = |p: f64, r: f64| {
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    };
    let classes: Vec<ClassScores> = labels
        .iter()
        .zip(&counts)
        .map(|(label, &(tp, fp, fneg))| {
            let precision = ratio(tp, tp + fp);
            let recall = ratio(tp, tp + fneg);
            ClassScores {
                label: label.clone(),
                precision,
                recall,
                f1: f1(precision, recall),
                support: tp + fneg,
            }
        })
        .collect();
    // scikit-learn averages over the labels present in truth or predictions.
    let present: Vec<&ClassScores> = classes
        .iter()
        .zip(&counts)
        .filter(|(_, (tp, fp, fneg))| tp + fp + fneg > 0)
        .map(|(s, _)| s)
        .collect();
    let macro_f1 = if present.is_empty() {
        0.0
    } else {
        present.iter().map(|s| s.f1).sum::<f64>() / present.len() as f64
    };
    let (stp, sfp, sfn) = counts.iter().fold((0, 0, 0), |(a, b, c), &(tp, fp, fneg)| {
        (a + tp, b + fp, c + fneg)
    });
    let micro_f1 = f1(ratio(stp, stp + sfp), ratio(stp, stp + sfn));
    let total_support: usize = classes.iter().map(|c| c.support).sum();
    let weighted_f1 = if total_support == 0 {
        0.0
    } else {
        classes.iter().map(|c| c.f1 * c.support as f64).sum::<f64>() / total_support as f64
    };
    Ok(Report {
        classes,
        macro_f1,
        micro_f1,
        weighted_f1,
        accuracy: ratio(exact, truth.len()),
        confusion,
        examples: truth.len(),
    })
}

impl std::fmt::Display for Report {
    /// The scikit-learn layout, then the confusion matrix (rows: true labels).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let w = self
            .classes
            .iter()
            .map(|c| c.label.len())
            .max()
            .unwrap_or(0)
            .max(12);
        writeln!(f, "{:>w$}  precision    recall  f1-score   support", "")?;
        writeln!(f)?;
        for c in &self.classes {
            writeln!(
                f,
                "{:>w$}     {:.4}    {:.4}    {:.4}  {:>8}",
                c.label, c.precision, c.recall, c.f1, c.support
            )?;
        }
        writeln!(f)?;
        writeln!(
            f,
            "{:>w$}                         {:.4}  {:>8}",
            "accuracy", self.accuracy, self.examples
        )?;
        writeln!(
            f,
            "{:>w$}                         {:.4}  {:>8}",
            "macro F1", self.macro_f1, self.examples
        )?;
        writeln!(
            f,
            "{:>w$}                         {:.4}  {:>8}",
            "micro F1", self.micro_f1, self.examples
        )?;
        writeln!(
            f,
            "{:>w$}                         {:.4}  {:>8}",
            "weighted F1", self.weighted_f1, self.examples
        )?;
        writeln!(f)?;
        writeln!(f, "confusion matrix (rows: true, columns: predicted)")?;
        let cw = self
            .confusion
            .iter()
            .flatten()
            .map(|v| v.to_string().len())
            .max()
            .unwrap_or(1)
            .max(3);
        write!(f, "{:>w$}", "")?;
        for i in 0..self.classes.len() {
            write!(f, " {:>cw$}", format!("[{i}]"))?;
        }
        writeln!(f)?;
        for (i, (row, class)) in self.confusion.iter().zip(&self.classes).enumerate() {
            write!(f, "{:>w$}", format!("[{i}] {}", class.label))?;
            for v in row {
                write!(f, " {v:>cw$}")?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_scikit_learn_on_a_hand_example() {
        // sklearn: y_true = [0,0,1,1,2,2], y_pred = [0,1,1,1,2,0]
        // precision [0.5, 0.6667, 1.0], recall [0.5, 1.0, 0.5],
        // f1 [0.5, 0.8, 0.6667], macro F1 0.65556, micro 0.66667.
        let labels: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let t: Vec<Vec<usize>> = [0, 0, 1, 1, 2, 2].iter().map(|&i| vec![i]).collect();
        let p: Vec<Vec<usize>> = [0, 1, 1, 1, 2, 0].iter().map(|&i| vec![i]).collect();
        let r = report(&labels, &t, &p).unwrap();
        let close = |a: f64, b: f64| (a - b).abs() < 1e-4;
        assert!(close(r.classes[1].precision, 2.0 / 3.0));
        assert!(close(r.classes[2].recall, 0.5));
        assert!(close(r.classes[2].f1, 2.0 / 3.0));
        assert!(close(r.macro_f1, 0.655_555), "{}", r.macro_f1);
        assert!(close(r.micro_f1, 4.0 / 6.0));
        assert!(close(r.accuracy, 4.0 / 6.0));
        assert_eq!(
            r.confusion,
            vec![vec![1, 1, 0], vec![0, 2, 0], vec![1, 0, 1]]
        );
        let text = r.to_string();
        assert!(
            text.contains("macro F1") && text.contains("[2] c"),
            "{text}"
        );
        assert!(report(&labels, &t, &p[..2]).is_err());
        assert!(report(&labels, &[vec![3]], &[vec![0]]).is_err());
    }
}
