//! Regular-expression constrained decoding: the generated text must stay a
//! prefix of a match of an (anchored) regular expression, and may end only
//! where the whole text matches.
//!
//! The pattern is compiled once to a dense byte-level DFA (regex-automata).
//! At each step every token's bytes are walked from the DFA state the text
//! so far reached; a token that reaches the dead state is banned, so tokens
//! spanning several grammar symbols (or cutting a UTF-8 character in two)
//! are handled as bytes. End-of-sequence tokens are allowed only in a match
//! state. This is Outlines' approach (an FSM walked over the vocabulary);
//! JSON Schema is compiled to such a pattern by [`super::json_schema`].

use regex_automata::dfa::{Automaton, dense};
use regex_automata::util::primitives::StateID;
use regex_automata::util::start;
use regex_automata::{Anchored, MatchKind};

use super::constraint::TokenConstraint;
use crate::error::{Error, Result};

/// Largest DFA a pattern may compile to (bytes of transition table).
const MAX_DFA_BYTES: usize = 64 << 20;

/// A compiled pattern, shareable across sequences.
#[derive(Debug, Clone)]
pub struct RegexGrammar {
    dfa: dense::DFA<Vec<u32>>,
    start: StateID,
    pattern: String,
}

impl RegexGrammar {
    /// Compiles `pattern` (regex-syntax; matched against the whole output).
    pub fn new(pattern: &str) -> Result<Self> {
        let dfa = dense::Builder::new()
            .configure(
                dense::Config::new()
                    .start_kind(regex_automata::dfa::StartKind::Anchored)
                    .match_kind(MatchKind::All)
                    .dfa_size_limit(Some(MAX_DFA_BYTES))
                    .determinize_size_limit(Some(MAX_DFA_BYTES)),
            )
            .build(pattern)
            .map_err(|e| Error::Input(format!("the output pattern cannot be compiled: {e}")))?;
        let start = dfa
            .start_state(&start::Config::new().anchored(Anchored::Yes))
            .map_err(|e| Error::Input(format!("the output pattern has no anchored start: {e}")))?;
        Ok(RegexGrammar {
            dfa,
            start,
            pattern: pattern.to_string(),
        })
    }

    /// The pattern.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// The state after `bytes` from `s`, or `None` once no match can follow.
    fn walk(&self, mut s: StateID, bytes: &[u8]) -> Option<StateID> {
        for &b in bytes {
            s = self.dfa.next_state(s, b);
            if self.dfa.is_dead_state(s) || self.dfa.is_quit_state(s) {
                return None;
            }
        }
        Some(s)
    }

    /// Whether text ending in state `s` is a whole match.
    fn accepts(&self, s: StateID) -> bool {
        self.dfa.is_match_state(self.dfa.next_eoi_state(s))
    }

    /// Whether text ending in state `s` (not dead) can still become a match.
    /// Matches are reported one byte late, so a match state may only say
    /// the text *before* its last byte matched, with nothing to continue.
    fn viable(&self, s: StateID) -> bool {
        !self.dfa.is_match_state(s)
            || self.accepts(s)
            || (0..=255u8).any(|b| {
                let n = self.dfa.next_state(s, b);
                !self.dfa.is_dead_state(n) && !self.dfa.is_quit_state(n)
            })
    }

    /// Whether `text` can be continued into a match (or is one).
    pub fn is_prefix(&self, text: &str) -> bool {
        self.walk(self.start, text.as_bytes())
            .is_some_and(|s| self.viable(s))
    }

    /// Whether `text` as a whole matches.
    pub fn is_match(&self, text: &str) -> bool {
        self.walk(self.start, text.as_bytes())
            .is_some_and(|s| self.accepts(s))
    }
}

/// A [`TokenConstraint`] keeping the output within a [`RegexGrammar`].
pub struct RegexConstraint<'a> {
    grammar: RegexGrammar,
    table: &'a [Vec<u8>],
    special: &'a [bool],
    eos: Vec<u32>,
    state: StateID,
    /// Generated ids already walked.
    fed: usize,
    /// [`RegexGrammar::viable`] of match states seen so far.
    viable: std::collections::HashMap<StateID, bool>,
    /// The allowed-token bitset of each DFA state seen so far.
    masks: std::collections::HashMap<StateID, Vec<u64>>,
}

impl std::fmt::Debug for RegexConstraint<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegexConstraint")
            .field("pattern", &self.grammar.pattern)
            .field("fed", &self.fed)
            .finish()
    }
}

impl<'a> RegexConstraint<'a> {
    /// `table[id]` is token `id`'s bytes, `special[id]` marks control
    /// tokens (never allowed, except the `eos` ids at a match).
    pub fn new(
        grammar: RegexGrammar,
        table: &'a [Vec<u8>],
        special: &'a [bool],
        eos: Vec<u32>,
    ) -> Self {
        let state = grammar.start;
        RegexConstraint {
            grammar,
            table,
            special,
            eos,
            state,
            fed: 0,
            viable: std::collections::HashMap::new(),
            masks: std::collections::HashMap::new(),
        }
    }
}

impl RegexConstraint<'_> {
    /// Which tokens may follow text that ended in `state` (one bit per id).
    fn mask_of(&mut self, state: StateID, vocab: usize) -> Vec<u64> {
        let done = self.grammar.accepts(state);
        let mut bits = vec![0u64; vocab.div_ceil(64)];
        for id in 0..vocab {
            let ok = if self.eos.contains(&(id as u32)) {
                done
            } else if self.special.get(id).copied().unwrap_or(true) {
                false
            } else {
                match self.table.get(id) {
                    Some(bytes) if !bytes.is_empty() => match self.grammar.walk(state, bytes) {
                        Some(s) if self.grammar.dfa.is_match_state(s) => {
                            let g = &self.grammar;
                            *self.viable.entry(s).or_insert_with(|| g.viable(s))
                        }
                        Some(_) => true,
                        None => false,
                    },
                    _ => false,
                }
            };
            if ok && let Some(w) = bits.get_mut(id / 64) {
                *w |= 1 << (id % 64);
            }
        }
        bits
    }
}

impl RegexConstraint<'_> {
    /// Walks `bytes` of chosen text; `false` (state unchanged) where they
    /// leave the grammar.
    pub fn advance(&mut self, bytes: &[u8]) -> bool {
        match self.grammar.walk(self.state, bytes) {
            Some(s) => {
                self.state = s;
                true
            }
            None => false,
        }
    }

    /// Whether `bytes` may follow the text walked so far.
    pub fn allows(&self, bytes: &[u8]) -> bool {
        self.grammar
            .walk(self.state, bytes)
            .is_some_and(|s| self.grammar.viable(s))
    }

    /// Bans the tokens that may not follow the text walked so far.
    pub fn apply_mask(&mut self, logits: &mut [f32]) {
        // The mask depends only on the DFA state: computed once per state
        // (XGrammar-style caching; text inside a string revisits one state).
        let state = self.state;
        if !self.masks.contains_key(&state) {
            let m = self.mask_of(state, logits.len());
            self.masks.insert(state, m);
        }
        let Some(bits) = self.masks.get(&state) else {
            return;
        };
        for (id, l) in logits.iter_mut().enumerate() {
            if bits.get(id / 64).is_none_or(|w| w & (1 << (id % 64)) == 0) {
                *l = f32::NEG_INFINITY;
            }
        }
    }
}

impl TokenConstraint for RegexConstraint<'_> {
    fn constrain(&mut self, logits: &mut [f32], generated: &[u32]) {
        // Advance over the tokens chosen since the last call.
        for &id in generated.iter().skip(self.fed) {
            let bytes = self.table.get(id as usize).map_or(&[][..], Vec::as_slice);
            self.advance(bytes);
        }
        self.fed = generated.len();
        self.apply_mask(logits);
    }
}

/// A lazy grammar (llama.cpp's "grammar triggers"): the text is free until
/// it contains `trigger`; from there on, what follows the trigger must stay
/// within the inner grammar. Tokens that would complete the trigger with
/// bytes the grammar refuses are banned, so a token spanning the trigger
/// and the grammar's first symbols is handled.
pub struct TriggeredConstraint<'a> {
    trigger: Vec<u8>,
    inner: RegexConstraint<'a>,
    /// Tokens containing the trigger's last byte (the only ones that can complete it).
    closers: Vec<u32>,
    /// The last `trigger.len() - 1` bytes of free text.
    tail: Vec<u8>,
    fed: usize,
    active: bool,
}

impl std::fmt::Debug for TriggeredConstraint<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TriggeredConstraint")
            .field("trigger", &String::from_utf8_lossy(&self.trigger))
            .field("active", &self.active)
            .finish()
    }
}

impl<'a> TriggeredConstraint<'a> {
    /// Free text until `trigger`, then `inner` (the grammar of what follows it).
    pub fn new(trigger: &str, inner: RegexConstraint<'a>) -> Result<Self> {
        let Some(&last) = trigger.as_bytes().last() else {
            return Err(Error::Input("the grammar trigger is empty".into()));
        };
        let closers = inner
            .table
            .iter()
            .enumerate()
            .filter(|(_, b)| b.contains(&last))
            .map(|(i, _)| i as u32)
            .collect();
        Ok(TriggeredConstraint {
            trigger: trigger.as_bytes().to_vec(),
            inner,
            closers,
            tail: Vec::new(),
            fed: 0,
            active: false,
        })
    }

    /// Whether the trigger has appeared (the grammar is in force).
    pub fn is_active(&self) -> bool {
        self.active
    }

    /// Where `bytes` after the free text completes the trigger: the bytes
    /// of `bytes` after it.
    fn completes<'b>(&self, bytes: &'b [u8]) -> Option<&'b [u8]> {
        let mut buf = self.tail.clone();
        buf.extend_from_slice(bytes);
        let n = self.trigger.len();
        let at = buf.windows(n).position(|w| w == self.trigger.as_slice())?;
        let end = at + n - self.tail.len();
        bytes.get(end..)
    }
}

impl TokenConstraint for TriggeredConstraint<'_> {
    fn constrain(&mut self, logits: &mut [f32], generated: &[u32]) {
        for &id in generated.iter().skip(self.fed) {
            let bytes = self
                .inner
                .table
                .get(id as usize)
                .map_or(&[][..], Vec::as_slice);
            if self.active {
                self.inner.advance(bytes);
            } else if let Some(rest) = self.completes(bytes) {
                self.active = true;
                let rest = rest.to_vec();
                self.inner.advance(&rest);
            } else {
                self.tail.extend_from_slice(bytes);
                let keep = self.trigger.len() - 1;
                if self.tail.len() > keep {
                    self.tail.drain(..self.tail.len() - keep);
                }
            }
        }
        self.fed = generated.len();
        if self.active {
            self.inner.apply_mask(logits);
            return;
        }
        for &id in &self.closers {
            let Some(bytes) = self.inner.table.get(id as usize) else {
                continue;
            };
            if let Some(rest) = self.completes(bytes)
                && !self.inner.allows(rest)
                && let Some(l) = logits.get_mut(id as usize)
            {
                *l = f32::NEG_INFINITY;
            }
        }
    }
}

/// A pattern matching exactly one of `choices`.
pub fn choice_pattern(choices: &[String]) -> Result<String> {
    if choices.is_empty() || choices.iter().any(String::is_empty) {
        return Err(Error::Input(
            "choice: give at least one choice, none empty".into(),
        ));
    }
    Ok(choices
        .iter()
        .map(|c| regex_syntax_escape(c))
        .collect::<Vec<_>>()
        .join("|"))
}

/// `s` with every regex metacharacter escaped.
pub fn regex_syntax_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ids `c` leaves allowed after `ids`, over a vocabulary of `n`.
    fn allowed_ids(c: &mut dyn TokenConstraint, n: usize, ids: &[u32]) -> Vec<usize> {
        let mut l = vec![0f32; n];
        c.constrain(&mut l, ids);
        (0..n).filter(|&i| l[i].is_finite()).collect()
    }

    fn table() -> (Vec<Vec<u8>>, Vec<bool>) {
        let toks: Vec<&[u8]> = vec![
            b"{", b"\"a\"", b":", b"1", b"12", b"}", b"x", b"", b"\xc3", b"\xa9",
        ];
        let mut t: Vec<Vec<u8>> = toks.iter().map(|b| b.to_vec()).collect();
        t.push(Vec::new()); // 10: EOS (special)
        let mut special = vec![false; t.len()];
        special[7] = true;
        special[10] = true;
        (t, special)
    }

    #[test]
    fn bans_tokens_that_leave_the_pattern_and_allows_eos_only_at_a_match() {
        let (t, sp) = table();
        let g = RegexGrammar::new(r#"\{"a":[0-9]+\}"#).unwrap();
        let mut c = RegexConstraint::new(g, &t, &sp, vec![10]);
        let allowed = |c: &mut RegexConstraint<'_>, ids: &[u32]| allowed_ids(c, t.len(), ids);
        assert_eq!(allowed(&mut c, &[]), vec![0]);
        assert_eq!(allowed(&mut c, &[0]), vec![1]);
        assert_eq!(allowed(&mut c, &[0, 1, 2]), vec![3, 4]);
        assert_eq!(allowed(&mut c, &[0, 1, 2, 4]), vec![3, 4, 5]);
        assert_eq!(allowed(&mut c, &[0, 1, 2, 4, 5]), vec![10]);
    }

    #[test]
    fn tokens_splitting_a_utf8_character_are_walked_as_bytes() {
        let (t, sp) = table();
        let g = RegexGrammar::new("é+").unwrap();
        let mut c = RegexConstraint::new(g, &t, &sp, vec![10]);
        let mut l = vec![0f32; t.len()];
        c.constrain(&mut l, &[]);
        assert!(l[8].is_finite() && !l[9].is_finite() && !l[10].is_finite());
        let mut l = vec![0f32; t.len()];
        c.constrain(&mut l, &[8]);
        assert!(l[9].is_finite() && !l[8].is_finite());
        let mut l = vec![0f32; t.len()];
        c.constrain(&mut l, &[8, 9]);
        assert!(l[8].is_finite() && l[10].is_finite());
    }

    #[test]
    fn choices_are_escaped_literals() {
        let p = choice_pattern(&["a.b".into(), "c+d".into()]).unwrap();
        let g = RegexGrammar::new(&p).unwrap();
        assert!(g.is_match("a.b") && g.is_match("c+d"));
        assert!(!g.is_match("axb") && !g.is_match("ccd"));
        assert!(choice_pattern(&[]).is_err());
        let e = RegexGrammar::new("(").unwrap_err().to_string();
        assert!(e.contains("cannot be compiled"), "{e}");
    }

    #[test]
    fn a_triggered_grammar_is_free_until_the_trigger_then_binding() {
        // 0 "Hi" 1 " <" 2 "go" 3 ">" 4 ">{" 5 ">x" 6 "{" 7 "}" 8 "x" 9 EOS
        let toks: Vec<&[u8]> = vec![
            b"Hi", b" <", b"go", b">", b">{", b">x", b"{", b"}", b"x", b"",
        ];
        let t: Vec<Vec<u8>> = toks.iter().map(|b| b.to_vec()).collect();
        let mut sp = vec![false; t.len()];
        sp[9] = true;
        let inner = RegexConstraint::new(RegexGrammar::new(r"\{\}").unwrap(), &t, &sp, vec![9]);
        let mut c = TriggeredConstraint::new("<go>", inner).unwrap();
        let mut allowed = |ids: &[u32]| allowed_ids(&mut c, t.len(), ids);
        // Free: everything, EOS included.
        assert_eq!(allowed(&[]), (0..10).collect::<Vec<_>>());
        // After " <go": ">x" would complete the trigger with "x", which the grammar refuses.
        assert_eq!(allowed(&[0, 1, 2]), vec![0, 1, 2, 3, 4, 6, 7, 8, 9]);
        // ">{" completed it and began the grammar: only "}" may follow.
        assert_eq!(allowed(&[0, 1, 2, 4]), vec![7]);
        assert_eq!(allowed(&[0, 1, 2, 4, 7]), vec![9]);
        assert!(c.is_active());
    }
}
