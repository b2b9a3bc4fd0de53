//! Batch forward passes (padding, the frozen-encoder cache) and the losses.

use super::*;

impl Trainer {
    /// Loss of one batch (mean over examples, class-weighted; with `sizes`,
    /// the consecutive query groups of ranking data, the listwise loss
    /// averaged over groups) and its logits.
    pub(super) fn batch_loss(
        &self,
        data: &Encoded,
        idx: &[usize],
        sizes: Option<&[usize]>,
        dropout: Option<&mut Rng>,
    ) -> Result<(Tensor, Tensor)> {
        let b = idx.len();
        let mut pooled = if self.config.freeze_encoder {
            self.model.pool_first(&self.frozen_states(data, idx)?)?
        } else {
            let (padded, types) = self.padded(data, idx);
            self.model.pooled_typed(
                &padded.ids,
                types.as_deref(),
                &padded.attention_mask,
                b,
                padded.max_len,
            )?
        };
        if let Some(rng) = dropout
            && self.config.dropout > 0.0
        {
            let mask = rng.dropout_mask(pooled.elem_count(), self.config.dropout);
            let mask = Tensor::from_vec(mask, pooled.dims(), &Device::Cpu)?;
            pooled = (pooled * mask)?;
        }
        let logits = self.model.logits_from_pooled(&pooled)?;
        let n = self.model.config().labels.len();
        if let Some(sizes) = sizes {
            return Ok((listwise_loss(&logits, sizes, data, idx)?, logits));
        }
        let weights = self.config.class_weights.clone();
        let loss = match self.model.config().problem_type {
            ProblemType::SingleLabel => {
                let mut pick = vec![0f32; b * n];
                let mut total = 0f32;
                for (r, &i) in idx.iter().enumerate() {
                    let t = *data.labels[i]
                        .first()
                        .ok_or_else(|| Error::Input(format!("example {} has no label", i + 1)))?;
                    let w = weights.as_ref().map_or(1.0, |w| w[t]);
                    pick[r * n + t] = w;
                    total += w;
                }
                let lsm = candle_nn::ops::log_softmax(&logits, D::Minus1)?;
                let picked = (lsm * Tensor::from_vec(pick, (b, n), &Device::Cpu)?)?.sum_all()?;
                (picked * (-1.0 / f64::from(total.max(1e-12))))?
            }
            ProblemType::MultiLabel => {
                // BCE with logits, stable form: max(x,0) − x·y + ln(1 + e^(−|x|)).
                let mut y = vec![0f32; b * n];
                for (r, &i) in idx.iter().enumerate() {
                    for &t in &data.labels[i] {
                        y[r * n + t] = 1.0;
                    }
                }
                let y = Tensor::from_vec(y, (b, n), &Device::Cpu)?;
                let per = ((logits.relu()? - (&logits * &y)?)?
                    + ((logits.abs()?.neg()?.exp()? + 1.0)?.log()?))?;
                let per = match &weights {
                    Some(w) => per.broadcast_mul(&Tensor::from_slice(w, n, &Device::Cpu)?)?,
                    None => per,
                };
                per.mean_all()?
            }
        };
        Ok((loss, logits))
    }

    /// The examples `idx` padded into one batch: ids and mask, and the
    /// token types of sentence pairs.
    pub(super) fn padded(
        &self,
        data: &Encoded,
        idx: &[usize],
    ) -> (BatchEncoding, Option<Vec<u32>>) {
        let rows: Vec<&[u32]> = idx.iter().map(|&i| data.ids[i].as_slice()).collect();
        let types = data.types.as_ref().map(|t| {
            let rows: Vec<&[u32]> = idx.iter().map(|&i| t[i].as_slice()).collect();
            pad_batch(&rows, 0).ids
        });
        (pad_batch(&rows, self.pad_id), types)
    }

    /// First-token states `[idx.len(), hidden]` of a frozen encoder, from
    /// the cache; the examples not in it go through the encoder once.
    pub(super) fn frozen_states(&self, data: &Encoded, idx: &[usize]) -> Result<Tensor> {
        let keys: Vec<Vec<u32>> = idx
            .iter()
            .map(|&i| {
                let mut k = data.ids[i].clone();
                if let Some(t) = &data.types {
                    k.push(u32::MAX);
                    k.extend(&t[i]);
                }
                k
            })
            .collect();
        let mut cache = self
            .frozen
            .lock()
            .map_err(|_| Error::Input("the frozen-encoder cache was poisoned".into()))?;
        let missing: Vec<usize> = (0..idx.len())
            .filter(|&r| !cache.contains_key(&keys[r]))
            .collect();
        if !missing.is_empty() {
            let examples: Vec<usize> = missing.iter().map(|&r| idx[r]).collect();
            let (padded, types) = self.padded(data, &examples);
            let first = self.model.first_token_states(
                &padded.ids,
                types.as_deref(),
                &padded.attention_mask,
                examples.len(),
                padded.max_len,
            )?;
            let h = first.dim(1)?;
            let host = first.detach().flatten_all()?.to_vec1::<f32>()?;
            for (n, &r) in missing.iter().enumerate() {
                cache.insert(keys[r].clone(), host[n * h..(n + 1) * h].to_vec());
            }
        }
        let rows: Vec<f32> = keys.iter().flat_map(|k| cache[k].iter().copied()).collect();
        let h = rows.len() / idx.len().max(1);
        Ok(Tensor::from_vec(rows, (idx.len(), h), &Device::Cpu)?)
    }
}

/// Mean over query groups of −log softmax(group's logits)[relevant]: the
/// examples `idx` are the groups of `sizes` in order, one logit each.
pub(super) fn listwise_loss(
    logits: &Tensor,
    sizes: &[usize],
    data: &Encoded,
    idx: &[usize],
) -> Result<Tensor> {
    let flat = logits.flatten_all()?;
    let mut picked = Vec::with_capacity(sizes.len());
    let mut off = 0;
    for &s in sizes {
        let pos = data.relevant_in(&idx[off..off + s])?;
        let lsm = candle_nn::ops::log_softmax(&flat.narrow(0, off, s)?, 0)?;
        picked.push(lsm.narrow(0, pos, 1)?);
        off += s;
    }
    let total = Tensor::cat(&picked, 0)?.sum_all()?;
    Ok((total * (-1.0 / sizes.len().max(1) as f64))?)
}
