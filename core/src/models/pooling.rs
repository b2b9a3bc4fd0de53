//! Sentence embeddings from token states, as sentence-transformers computes
//! them: masked mean, CLS, or masked max over the sequence; then optional L2
//! normalisation and Matryoshka truncation (on the host, after readback of
//! just the pooled `[batch, hidden]` rows).

use crate::backend::Backend;
use crate::error::{Error, Result};

/// How token states become one vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooling {
    /// Average of the non-padding tokens (sentence-transformers' default).
    Mean,
    /// The first token (`[CLS]`).
    Cls,
    /// Elementwise maximum over the non-padding tokens.
    Max,
}

impl Pooling {
    /// Reads a sentence-transformers `1_Pooling/config.json`.
    pub fn from_config_json(bytes: &[u8]) -> Result<Self> {
        let err = |detail: String| Error::Model {
            file: "1_Pooling/config.json".into(),
            detail,
        };
        let v: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| err(format!("invalid JSON: {e}")))?;
        let on = |k: &str| {
            v.get(k)
                .and_then(serde_json::Value::as_bool)
                .unwrap_or(false)
        };
        let modes: Vec<Pooling> = [
            ("pooling_mode_mean_tokens", Pooling::Mean),
            ("pooling_mode_cls_token", Pooling::Cls),
            ("pooling_mode_max_tokens", Pooling::Max),
        ]
        .into_iter()
        .filter(|(k, _)| on(k))
        .map(|(_, p)| p)
        .collect();
        for unsupported in [
            "pooling_mode_mean_sqrt_len_tokens",
            "pooling_mode_weightedmean_tokens",
            "pooling_mode_lasttoken",
        ] {
            if on(unsupported) {
                return Err(err(format!(
                    "{unsupported} is not supported (mean, cls and max are)"
                )));
            }
        }
        match modes.as_slice() {
            [one] => Ok(*one),
            [] => Err(err("no pooling mode is enabled".into())),
            _ => Err(err(format!(
                "several pooling modes at once ({modes:?}) are not supported"
            ))),
        }
    }

    /// Parses `mean`, `cls` or `max`.
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "mean" => Ok(Pooling::Mean),
            "cls" => Ok(Pooling::Cls),
            "max" => Ok(Pooling::Max),
            other => Err(Error::Input(format!(
                "unknown pooling '{other}' (mean, cls, max)"
            ))),
        }
    }

    /// Pools `states` `[batch, seq, hidden]` under `mask` (`[batch, seq]`, 1 = token)
    /// into `[batch, hidden]`, on the backend.
    pub fn pool<B: Backend>(
        self,
        b: &B,
        states: &B::Tensor,
        mask: &[u32],
        batch: usize,
        seq: usize,
    ) -> Result<B::Tensor> {
        let hidden = *b.shape(states).last().unwrap_or(&0);
        match self {
            Pooling::Cls => b.reshape(&b.narrow(states, 1, 0, 1)?, &[batch, hidden]),
            Pooling::Mean => {
                // mask[b, 1, seq] · states[b, seq, h] sums the real tokens; then divide by their count.
                let m: Vec<f32> = mask.iter().map(|&v| v as f32).collect();
                let summed = b.matmul(&b.tensor_f32(&m, &[batch, 1, seq])?, states)?;
                let inv: Vec<f32> = m
                    .chunks(seq.max(1))
                    .map(|row| 1.0 / row.iter().sum::<f32>().max(1e-9))
                    .collect();
                b.reshape(
                    &b.mul(&summed, &b.tensor_f32(&inv, &[batch, 1, 1])?)?,
                    &[batch, hidden],
                )
            }
            Pooling::Max => {
                let bias: Vec<f32> = mask
                    .iter()
                    .map(|&v| if v == 0 { -1e9 } else { 0.0 })
                    .collect();
                b.max_dim(&b.add(states, &b.tensor_f32(&bias, &[batch, seq, 1])?)?, 1)
            }
        }
    }
}

/// Scales `v` to unit L2 norm (a zero vector stays zero).
pub fn normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{block_on_ready, cpu::CpuBackend};

    #[test]
    fn pooling_ignores_padding() {
        let b = CpuBackend::new();
        // batch 1, seq 3 (last is padding), hidden 2
        let states = b
            .tensor_f32(&[1., 2., 3., 6., 100., 100.], &[1, 3, 2])
            .unwrap();
        let mask = [1, 1, 0];
        let read = |p: Pooling| {
            block_on_ready(b.read_f32(&p.pool(&b, &states, &mask, 1, 3).unwrap())).unwrap()
        };
        assert_eq!(read(Pooling::Mean), vec![2., 4.]);
        assert_eq!(read(Pooling::Cls), vec![1., 2.]);
        assert_eq!(read(Pooling::Max), vec![3., 6.]);
    }

    #[test]
    fn sentence_transformers_config_is_read() {
        let cfg = br#"{"word_embedding_dimension":384,"pooling_mode_cls_token":false,"pooling_mode_mean_tokens":true}"#;
        assert_eq!(Pooling::from_config_json(cfg).unwrap(), Pooling::Mean);
        let e = Pooling::from_config_json(br#"{"pooling_mode_lasttoken":true}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("pooling_mode_lasttoken is not supported"), "{e}");
    }

    #[test]
    fn normalize_gives_unit_length() {
        let mut v = [3.0, 4.0];
        normalize(&mut v);
        assert_eq!(v, [0.6, 0.8]);
    }
}
