//! Combining and diversifying result lists: weighted reciprocal rank fusion
//! and maximal marginal relevance.

use std::collections::HashMap;
use std::hash::Hash;

/// Weighted reciprocal rank fusion (Cormack et al. 2009):
/// `score(d) = Σ_lists w · 1 / (c + rank(d))` with 1-based ranks; `c = 60`
/// is the paper's (and LangChain's `EnsembleRetriever`'s) constant. Best first;
/// ties keep first-seen order.
pub fn rrf<T: Clone + Eq + Hash>(lists: &[(f32, Vec<T>)], c: f32) -> Vec<(T, f32)> {
    let mut scores: HashMap<T, (f32, usize)> = HashMap::new();
    let mut seen = 0;
    for (w, list) in lists {
        for (rank, id) in list.iter().enumerate() {
            let e = scores.entry(id.clone()).or_insert_with(|| {
                seen += 1;
                (0.0, seen)
            });
            e.0 += w / (c + rank as f32 + 1.0);
        }
    }
    let mut out: Vec<(T, f32, usize)> = scores.into_iter().map(|(k, (s, o))| (k, s, o)).collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.2.cmp(&b.2)));
    out.into_iter().map(|(k, s, _)| (k, s)).collect()
}

/// Maximal marginal relevance (Carbonell & Goldstein 1998) over unit vectors:
/// repeatedly picks the candidate maximising
/// `λ · sim(query, d) − (1 − λ) · max_{s ∈ selected} sim(d, s)`.
/// Returns indices into `candidates`, in pick order.
// `free`, `rel` and `max_sim` hold one entry per candidate; `i` and `j`
// range over the candidates.
#[allow(clippy::indexing_slicing)]
pub fn mmr(query: &[f32], candidates: &[&[f32]], k: usize, lambda: f32) -> Vec<usize> {
    let rel: Vec<f32> = candidates
        .iter()
        .map(|c| crate::util::dot(query, c))
        .collect();
    let mut max_sim = vec![f32::NEG_INFINITY; candidates.len()];
    let mut picked: Vec<usize> = Vec::new();
    let mut free: Vec<bool> = vec![true; candidates.len()];
    while picked.len() < k.min(candidates.len()) {
        let mut best: Option<(usize, f32)> = None;
        for i in (0..candidates.len()).filter(|&i| free[i]) {
            let div = if picked.is_empty() { 0.0 } else { max_sim[i] };
            let score = lambda * rel[i] - (1.0 - lambda) * div;
            if best.is_none_or(|(_, s)| score > s) {
                best = Some((i, score));
            }
        }
        let Some((i, _)) = best else { break };
        free[i] = false;
        picked.push(i);
        for j in (0..candidates.len()).filter(|&j| free[j]) {
            max_sim[j] = max_sim[j].max(crate::util::dot(candidates[i], candidates[j]));
        }
    }
    picked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rrf_matches_hand_computed_scores() {
        // a: ranks 1 and 3 → 1/61 + 1/63; b: rank 2 in list one (weight 1) → 1/62;
        // c: rank 1 in list two with weight 0.5 → 0.5/61.
        let fused = rrf(&[(1.0, vec!["a", "b"]), (0.5, vec!["c", "x", "a"])], 60.0);
        let get = |k: &str| fused.iter().find(|f| f.0 == k).unwrap().1;
        assert!((get("a") - (1.0 / 61.0 + 0.5 / 63.0)).abs() < 1e-7);
        assert!((get("b") - 1.0 / 62.0).abs() < 1e-7);
        assert!((get("c") - 0.5 / 61.0).abs() < 1e-7);
        assert_eq!(fused[0].0, "a");
        assert_eq!(
            fused.iter().map(|f| f.0).collect::<Vec<_>>(),
            vec!["a", "b", "c", "x"]
        );
    }

    #[test]
    fn mmr_trades_relevance_for_diversity() {
        let q = [1.0, 0.0];
        let s = std::f32::consts::FRAC_1_SQRT_2;
        // Two near-duplicates close to the query and one different direction.
        let a = [0.99f32, 0.141];
        let b = [0.98f32, 0.199];
        let c = [s, -s];
        let cands: Vec<&[f32]> = vec![&a, &b, &c];
        // λ = 1: pure relevance.
        assert_eq!(mmr(&q, &cands, 3, 1.0), vec![0, 1, 2]);
        // λ = 0.5: after a, b's redundancy (sim ≈ 0.998) outweighs its relevance.
        // b: 0.5·0.98 − 0.5·0.998 = −0.009; c: 0.5·0.707 − 0.5·0.600 = 0.053.
        assert_eq!(mmr(&q, &cands, 2, 0.5), vec![0, 2]);
        assert!(mmr(&q, &cands, 0, 0.5).is_empty());
    }
}
