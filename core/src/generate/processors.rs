//! Logits processors, with `transformers`' semantics and order: first the
//! processors that apply to every strategy (repetition penalty, no-repeat
//! n-gram), then, when sampling, the warpers (temperature, top-k, top-p).
//! Each works in place on one row of logits; removed tokens become −∞.

use super::GenerationConfig;

/// CTRL's repetition penalty: every token id in `previous` has its logit
/// divided by `penalty` when positive and multiplied when negative
/// (`RepetitionPenaltyLogitsProcessor`).
pub fn repetition_penalty(logits: &mut [f32], previous: &[u32], penalty: f32) {
    if penalty == 1.0 {
        return;
    }
    let mut seen = vec![false; logits.len()];
    for &id in previous {
        let i = id as usize;
        if let (Some(l), Some(s)) = (logits.get_mut(i), seen.get_mut(i))
            && !*s
        {
            *s = true;
            *l = if *l < 0.0 { *l * penalty } else { *l / penalty };
        }
    }
}

/// Bans every token that would complete an n-gram of size `n` already present
/// in `ids` (`NoRepeatNGramLogitsProcessor`).
pub fn no_repeat_ngram(logits: &mut [f32], ids: &[u32], n: usize) {
    if n == 0 || ids.len() + 1 < n {
        return;
    }
    let prefix = ids.get(ids.len() + 1 - n..).unwrap_or_default();
    for w in ids.windows(n) {
        if let Some((last, head)) = w.split_last()
            && head == prefix
            && let Some(l) = logits.get_mut(*last as usize)
        {
            *l = f32::NEG_INFINITY;
        }
    }
}

/// Divides logits by `t` (`TemperatureLogitsWarper`).
pub fn temperature(logits: &mut [f32], t: f32) {
    if t != 1.0 {
        logits.iter_mut().for_each(|l| *l /= t);
    }
}

/// Keeps the `k` highest logits; ties with the k-th are kept, as in
/// `TopKLogitsWarper` (`scores < kth_value` are removed). `k = 0` is off.
pub fn top_k(logits: &mut [f32], k: usize) {
    if k == 0 || k >= logits.len() {
        return;
    }
    let mut sorted: Vec<f32> = logits.to_vec();
    let (_, &mut kth, _) = sorted.select_nth_unstable_by(k - 1, |a, b| b.total_cmp(a));
    logits
        .iter_mut()
        .filter(|l| **l < kth)
        .for_each(|l| *l = f32::NEG_INFINITY);
}

/// Nucleus filtering as in `TopPLogitsWarper`: sort ascending, remove the
/// tokens whose cumulative probability (from the least likely up) is
/// `≤ 1 − p`; the most likely token always stays.
pub fn top_p(logits: &mut [f32], p: f32) {
    if p >= 1.0 {
        return;
    }
    let probs = softmax(logits);
    // (logit, probability, index), least likely first (stable among ties).
    let mut order: Vec<(f32, f32, usize)> = logits
        .iter()
        .zip(&probs)
        .enumerate()
        .map(|(i, (&l, &q))| (l, q, i))
        .collect();
    order.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut cum = 0f32;
    let last = order.len().saturating_sub(1);
    for (rank, &(_, q, i)) in order.iter().enumerate() {
        cum += q;
        if cum <= 1.0 - p && rank < last {
            if let Some(l) = logits.get_mut(i) {
                *l = f32::NEG_INFINITY;
            }
        } else {
            break;
        }
    }
}

/// Numerically stable softmax of one row.
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if max == f32::NEG_INFINITY {
        return vec![0.0; logits.len()];
    }
    let mut out: Vec<f32> = logits.iter().map(|l| (l - max).exp()).collect();
    let sum: f32 = out.iter().sum();
    out.iter_mut().for_each(|v| *v /= sum);
    out
}

/// Log-softmax of one row (beam scores, perplexity).
pub fn log_softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let lse = max + logits.iter().map(|l| (l - max).exp()).sum::<f32>().ln();
    logits.iter().map(|l| l - lse).collect()
}

/// Applies every processor `config` asks for, in `transformers`' order.
/// `ids` is the whole sequence so far (prompt + generated), its last
/// `generated` ids the generated ones (OpenAI's penalties count only those).
pub fn process(logits: &mut [f32], ids: &[u32], generated: usize, config: &GenerationConfig) {
    repetition_penalty(logits, ids, config.repetition_penalty);
    let out = ids
        .get(ids.len().saturating_sub(generated)..)
        .unwrap_or_default();
    frequency_presence(
        logits,
        out,
        config.frequency_penalty,
        config.presence_penalty,
    );
    no_repeat_ngram(logits, ids, config.no_repeat_ngram_size);
    if config.do_sample {
        temperature(logits, config.temperature);
        top_k(logits, config.top_k);
        top_p(logits, config.top_p);
    }
}

/// OpenAI's penalties over the generated tokens `out`: each token's logit
/// loses `frequency · count + presence · [count > 0]`.
pub fn frequency_presence(logits: &mut [f32], out: &[u32], frequency: f32, presence: f32) {
    if frequency == 0.0 && presence == 0.0 {
        return;
    }
    let mut counts: std::collections::HashMap<u32, u32> = std::collections::HashMap::new();
    for &t in out {
        *counts.entry(t).or_default() += 1;
    }
    for (t, n) in counts {
        if let Some(l) = logits.get_mut(t as usize) {
            *l -= frequency * n as f32 + presence;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    const NEG: f32 = f32::NEG_INFINITY;

    #[test]
    fn repetition_penalty_divides_positive_multiplies_negative_once_per_id() {
        let mut l = vec![2.0, -2.0, 1.0, 4.0];
        repetition_penalty(&mut l, &[0, 1, 1, 0], 2.0);
        assert_eq!(l, vec![1.0, -4.0, 1.0, 4.0]);
    }

    #[test]
    fn frequency_and_presence_penalties_count_generated_tokens_only() {
        // Prompt [0, 1], generated [1, 1, 2]: token 1 twice, token 2 once, token 0 not at all.
        let cfg = GenerationConfig {
            frequency_penalty: 0.5,
            presence_penalty: 0.25,
            ..Default::default()
        };
        let mut l = vec![1.0, 1.0, 1.0, 1.0];
        process(&mut l, &[0, 1, 1, 1, 2], 3, &cfg);
        assert_eq!(l, vec![1.0, 1.0 - 1.0 - 0.25, 1.0 - 0.5 - 0.25, 1.0]);
    }

    #[test]
    fn no_repeat_ngram_bans_completions_of_seen_ngrams() {
        // ids: 1 2 3 1 2 → bigram prefix "2" was followed by 3; trigram "1 2" → 3.
        let ids = [1, 2, 3, 1, 2];
        let mut l = vec![0.0; 5];
        no_repeat_ngram(&mut l, &ids, 2);
        assert_eq!(l, vec![0.0, 0.0, 0.0, NEG, 0.0]);
        let mut l = vec![0.0; 5];
        no_repeat_ngram(&mut l, &ids, 3);
        assert_eq!(l, vec![0.0, 0.0, 0.0, NEG, 0.0]);
        // Unigram ban: every seen token.
        let mut l = vec![0.0; 5];
        no_repeat_ngram(&mut l, &ids, 1);
        assert_eq!(l, vec![0.0, NEG, NEG, NEG, 0.0]);
        let mut l = vec![0.0; 5];
        no_repeat_ngram(&mut l, &ids, 6);
        assert_eq!(l, vec![0.0; 5]);
    }

    #[test]
    fn temperature_and_top_k_keep_ties() {
        let mut l = vec![1.0, 3.0, 2.0, 3.0, 0.5];
        temperature(&mut l, 0.5);
        assert_eq!(l, vec![2.0, 6.0, 4.0, 6.0, 1.0]);
        let mut l = vec![1.0, 3.0, 2.0, 2.0, 0.5];
        top_k(&mut l, 2);
        assert_eq!(l, vec![NEG, 3.0, 2.0, 2.0, NEG]);
    }

    #[test]
    fn top_p_matches_hand_computed_nucleus() {
        // probs = softmax(ln [0.5, 0.3, 0.15, 0.05]) = [0.5, 0.3, 0.15, 0.05].
        let base: Vec<f32> = [0.5f32, 0.3, 0.15, 0.05].iter().map(|p| p.ln()).collect();
        // p = 0.75: ascending cumsum 0.05, 0.20, 0.50, 1.0; remove ≤ 0.25 → drop 0.05 and 0.15.
        let mut l = base.clone();
        top_p(&mut l, 0.75);
        assert_eq!(l[2..], [NEG, NEG]);
        assert_eq!(l[..2], base[..2]);
        // p = 0.9: remove ≤ 0.1 → only 0.05 goes.
        let mut l = base.clone();
        top_p(&mut l, 0.9);
        assert_eq!(l[3], NEG);
        assert!(l[2].is_finite());
        // Tiny p keeps the most likely token.
        let mut l = base.clone();
        top_p(&mut l, 1e-6);
        assert_eq!(l.iter().filter(|v| v.is_finite()).count(), 1);
        assert!(l[0].is_finite());
    }

    #[test]
    fn softmax_and_log_softmax_agree() {
        let l = [1.0f32, 2.0, 3.0];
        let p = softmax(&l);
        let lp = log_softmax(&l);
        for (a, b) in p.iter().zip(&lp) {
            assert!((a.ln() - b).abs() < 1e-6);
        }
        assert!((p[2] - 0.665_240_9).abs() < 1e-6);
    }

    #[test]
    fn process_skips_warpers_when_greedy() {
        let cfg = GenerationConfig {
            temperature: 0.5,
            top_k: 1,
            ..Default::default()
        };
        let mut l = vec![1.0, 2.0];
        process(&mut l, &[], 0, &cfg);
        assert_eq!(l, vec![1.0, 2.0]);
        let cfg = GenerationConfig {
            do_sample: true,
            ..cfg
        };
        process(&mut l, &[], 0, &cfg);
        assert_eq!(l, vec![NEG, 4.0]);
    }
}
