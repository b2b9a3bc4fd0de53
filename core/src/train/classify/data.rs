//! Tokenized, labeled examples and the query groups of ranking data.

use super::*;

/// Tokenized, labeled examples.
#[derive(Debug, Clone)]
pub struct Encoded {
    pub(super) ids: Vec<Vec<u32>>,
    /// Token types of sentence pairs (`None` for single texts).
    pub(super) types: Option<Vec<Vec<u32>>>,
    pub(super) labels: Vec<Vec<usize>>,
    /// Query groups of ranking data (consecutive examples).
    pub(super) groups: Option<Vec<std::ops::Range<usize>>>,
}

impl Encoded {
    /// Tokenizes `texts` (the tokenizer truncates) with their label ids.
    pub fn new(tokenizer: &Tokenizer, texts: &[&str], labels: Vec<Vec<usize>>) -> Result<Self> {
        if texts.len() != labels.len() {
            return Err(Error::Input(format!(
                "{} texts with {} label sets",
                texts.len(),
                labels.len()
            )));
        }
        let ids = texts
            .iter()
            .map(|t| Ok(tokenizer.encode(t, true)?.ids))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            ids,
            types: None,
            labels,
            groups: None,
        })
    }

    /// Tokenizes sentence pairs `(firsts[i], seconds[i])` with token types
    /// (a cross-encoder's (query, passage)), with their label ids.
    pub fn pairs(
        tokenizer: &Tokenizer,
        firsts: &[&str],
        seconds: &[&str],
        labels: Vec<Vec<usize>>,
    ) -> Result<Self> {
        if firsts.len() != labels.len() || seconds.len() != labels.len() {
            return Err(Error::Input(format!(
                "{} first texts and {} second texts with {} label sets",
                firsts.len(),
                seconds.len(),
                labels.len()
            )));
        }
        let (ids, types) = firsts
            .iter()
            .zip(seconds)
            .map(|(a, b)| tokenizer.encode_pair(a, b))
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .unzip();
        Ok(Self {
            ids,
            types: Some(types),
            labels,
            groups: None,
        })
    }

    /// Marks the examples as ranking data: `groups` are consecutive ranges
    /// covering every example, each one query's candidates with exactly one
    /// relevant example (a label) and at least one irrelevant one (none).
    /// Training then is listwise (see the module docs).
    pub fn grouped(mut self, groups: Vec<std::ops::Range<usize>>) -> Result<Self> {
        let mut next = 0;
        for (g, r) in groups.iter().enumerate() {
            let what = |detail: &str| {
                Error::Input(format!(
                    "query group {} (examples {}..={}): {detail}",
                    g + 1,
                    r.start + 1,
                    r.end
                ))
            };
            if r.start != next || r.end > self.len() {
                return Err(what("groups must be consecutive and cover every example"));
            }
            let relevant = self.labels[r.clone()]
                .iter()
                .filter(|l| !l.is_empty())
                .count();
            if relevant != 1 || r.len() < 2 {
                return Err(what(&format!(
                    "needs exactly one relevant candidate and at least one other, has {relevant} relevant of {}",
                    r.len()
                )));
            }
            next = r.end;
        }
        if next != self.len() {
            return Err(Error::Input(format!(
                "query groups cover {next} of {} examples",
                self.len()
            )));
        }
        self.groups = Some(groups);
        Ok(self)
    }

    /// Units a batch is made of: query groups for ranking data, else
    /// examples (what [`Trainer::new`]'s `train_len` counts).
    pub fn units(&self) -> usize {
        self.groups.as_ref().map_or(self.len(), Vec::len)
    }

    /// Unit `u`'s examples.
    pub(super) fn unit(&self, u: usize) -> std::ops::Range<usize> {
        match &self.groups {
            Some(g) => g[u].clone(),
            None => u..u + 1,
        }
    }

    /// Position of the relevant candidate among `group` (the example indices
    /// of one query group).
    pub(super) fn relevant_in(&self, group: &[usize]) -> Result<usize> {
        group
            .iter()
            .position(|&i| !self.labels[i].is_empty())
            .ok_or_else(|| Error::Input("a query group has no relevant candidate".into()))
    }

    /// The examples of `units` in order, and each unit's size (ranking data).
    pub(super) fn expand(&self, units: &[usize]) -> (Vec<usize>, Option<Vec<usize>>) {
        let idx = units.iter().flat_map(|&u| self.unit(u)).collect();
        let sizes = self
            .groups
            .as_ref()
            .map(|_| units.iter().map(|&u| self.unit(u).len()).collect());
        (idx, sizes)
    }

    /// Examples.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}
