//! Validation: the classification report, ranking MRR, raw scores.

use super::*;

impl Trainer {
    /// Loss, predictions and report on `data` (no dropout, no updates).
    pub fn evaluate(&self, data: &Encoded) -> Result<(f32, Report)> {
        let labels = self.model.config().labels.clone();
        let mut preds = vec![Vec::new(); data.len()];
        let (mut loss_sum, mut count) = (0f64, 0usize);
        let mut order: Vec<usize> = (0..data.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(data.ids[i].len()));
        for idx in order.chunks(self.config.batch_size.max(1) * 2) {
            let (loss, logits) = self.batch_loss(data, idx, None, None)?;
            loss_sum += f64::from(loss.to_scalar::<f32>()?) * idx.len() as f64;
            count += idx.len();
            let host = logits.detach().flatten_all()?.to_vec1::<f32>()?;
            let n = labels.len();
            for (r, &i) in idx.iter().enumerate() {
                preds[i] = predict_row(self.model.config(), &host[r * n..(r + 1) * n]).labels;
            }
        }
        let rep = report(&labels, &data.labels, &preds)?;
        Ok(((loss_sum / count.max(1) as f64) as f32, rep))
    }

    /// Listwise loss and mean reciprocal rank of the relevant candidate on
    /// ranking data (no dropout, no updates). A tie ranks the relevant
    /// candidate last among the tied, so a model that scores everything
    /// alike gets no credit.
    pub fn evaluate_ranking(&self, data: &Encoded) -> Result<(f32, f64)> {
        let groups = data.groups.as_ref().ok_or_else(|| {
            Error::Input("ranking evaluation needs query groups (Encoded::grouped)".into())
        })?;
        let (mut loss_sum, mut rr_sum) = (0f64, 0f64);
        let units: Vec<usize> = (0..groups.len()).collect();
        for chunk in units.chunks(self.config.batch_size.max(1)) {
            let (idx, sizes) = data.expand(chunk);
            let sizes = sizes.unwrap_or_default();
            let (loss, logits) = self.batch_loss(data, &idx, Some(&sizes), None)?;
            loss_sum += f64::from(loss.to_scalar::<f32>()?) * chunk.len() as f64;
            let scores = logits.detach().flatten_all()?.to_vec1::<f32>()?;
            let mut off = 0;
            for &s in &sizes {
                let group = &scores[off..off + s];
                let pos = data.relevant_in(&idx[off..off + s])?;
                let rank = 1
                    + (0..s)
                        .filter(|&j| j != pos && group[j] >= group[pos])
                        .count();
                rr_sum += 1.0 / rank as f64;
                off += s;
            }
        }
        let n = groups.len().max(1) as f64;
        Ok(((loss_sum / n) as f32, rr_sum / n))
    }

    /// Scores for a batch of encoded examples (for tests and reports).
    pub fn logits(&self, data: &Encoded) -> Result<Vec<f32>> {
        let idx: Vec<usize> = (0..data.len()).collect();
        let (_, logits) = self.batch_loss(data, &idx, None, None)?;
        Ok(logits
            .detach()
            .to_dtype(DType::F32)?
            .flatten_all()?
            .to_vec1::<f32>()?)
    }
}
