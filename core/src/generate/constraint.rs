//! Constrained decoding: a [`TokenConstraint`] bans, before each token is
//! chosen, the tokens that would break a rule about the text (as grammar-
//! constrained decoding in llama.cpp or `transformers`' `prefix_allowed_tokens_fn`).
//!
//! [`CitationConstraint`] keeps source citations valid: inside `[...]` only
//! the numbers of sources that exist (`[1]`, `[2, 3]`, `[1][3]`), so a cited
//! answer can never point at a source the prompt did not give.

/// A rule applied to each decoding step's logits.
pub trait TokenConstraint {
    /// Sets the logits of the tokens that may not come next to −∞, given the
    /// ids generated so far (not the prompt).
    fn constrain(&mut self, logits: &mut [f32], generated: &[u32]);
}

impl<T: TokenConstraint + ?Sized> TokenConstraint for &mut T {
    fn constrain(&mut self, logits: &mut [f32], generated: &[u32]) {
        (**self).constrain(logits, generated);
    }
}

/// Where the text is with respect to a bracketed citation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Outside brackets.
    Text,
    /// After `[` or a separator: a number must come (spaces allowed after a comma).
    Expect { after_comma: bool },
    /// Inside a number `n` (so far) within brackets.
    Number(usize),
}

/// Only `[n]` citations with `1 ≤ n ≤ sources` (several as `[n, m]`), over a
/// byte-level vocabulary (`bytes[id]` is token `id`'s UTF-8 bytes; `special[id]`
/// marks tokens such as end-of-sequence, allowed only outside brackets).
#[derive(Debug, Clone)]
pub struct CitationConstraint<'a> {
    bytes: &'a [Vec<u8>],
    special: &'a [bool],
    sources: usize,
    state: State,
    seen: usize,
}

impl<'a> CitationConstraint<'a> {
    /// A constraint for a prompt with `sources` numbered sources.
    pub fn new(bytes: &'a [Vec<u8>], special: &'a [bool], sources: usize) -> Self {
        CitationConstraint {
            bytes,
            special,
            sources,
            state: State::Text,
            seen: 0,
        }
    }

    /// The state after `text` from `state`, or `None` where `text` breaks the rule.
    fn step(&self, mut state: State, text: &[u8]) -> Option<State> {
        for &c in text {
            state = match (state, c) {
                (State::Text, b'[') if self.sources > 0 => State::Expect { after_comma: false },
                (State::Text, b'[') => return None,
                (State::Text, _) => State::Text,
                (State::Expect { .. }, b'1'..=b'9') => {
                    let n = usize::from(c - b'0');
                    (n <= self.sources).then_some(State::Number(n))?
                }
                (State::Expect { after_comma: true }, b' ') => State::Expect { after_comma: true },
                (State::Number(n), b'0'..=b'9') => {
                    let n = n * 10 + usize::from(c - b'0');
                    (n <= self.sources).then_some(State::Number(n))?
                }
                (State::Number(_), b',') => State::Expect { after_comma: true },
                (State::Number(_), b']') => State::Text,
                _ => return None,
            };
        }
        Some(state)
    }
}

impl TokenConstraint for CitationConstraint<'_> {
    fn constrain(&mut self, logits: &mut [f32], generated: &[u32]) {
        // Advance over what was generated since the last call.
        for &id in generated.iter().skip(self.seen) {
            if let Some(b) = self.bytes.get(id as usize) {
                self.state = self.step(self.state, b).unwrap_or(State::Text);
            }
        }
        self.seen = generated.len();
        for (id, l) in logits.iter_mut().enumerate() {
            let special = self.special.get(id).copied().unwrap_or(false);
            let ok = if special {
                self.state == State::Text
            } else {
                match self.bytes.get(id) {
                    Some(b) => self.step(self.state, b).is_some(),
                    None => false,
                }
            };
            if !ok {
                *l = f32::NEG_INFINITY;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vocab() -> (Vec<Vec<u8>>, Vec<bool>) {
        let words = [
            "The", " answer", " [", "[", "1", "2", "3", "12", "]", "].", ", ", ",", " ", "[2]",
            "[4]", "[a", "x", "</s>",
        ];
        let bytes = words.iter().map(|w| w.as_bytes().to_vec()).collect();
        let mut special = vec![false; words.len()];
        special[17] = true;
        (bytes, special)
    }

    fn allowed(c: &mut CitationConstraint<'_>, generated: &[u32]) -> Vec<usize> {
        let mut l = vec![0.0; c.bytes.len()];
        c.constrain(&mut l, generated);
        (0..l.len()).filter(|&i| l[i] == 0.0).collect()
    }

    #[test]
    fn only_existing_sources_can_be_cited() {
        let (bytes, special) = vocab();
        let mut c = CitationConstraint::new(&bytes, &special, 3);
        // Outside brackets: everything but "[4]" and "[a"; EOS too.
        let all = allowed(&mut c, &[]);
        assert!(!all.contains(&14) && !all.contains(&15), "{all:?}");
        assert!(all.contains(&13) && all.contains(&17) && all.contains(&0));
        // After " [": digits 1..3 only ("12" > 3), no EOS, no text.
        assert_eq!(allowed(&mut c, &[0, 1, 2]), vec![4, 5, 6]);
        // After " [2": another digit would make 2x > 3; close or separate.
        assert_eq!(allowed(&mut c, &[0, 1, 2, 5]), vec![8, 9, 10, 11]);
        // After " [2, ": a number or more spaces.
        assert_eq!(allowed(&mut c, &[0, 1, 2, 5, 10]), vec![4, 5, 6, 12]);
        // Closed: free text again.
        assert!(allowed(&mut c, &[0, 1, 2, 5, 10, 6, 8]).contains(&16));
    }

    #[test]
    fn two_digit_sources_when_there_are_enough() {
        let (bytes, special) = vocab();
        let mut c = CitationConstraint::new(&bytes, &special, 12);
        assert_eq!(allowed(&mut c, &[3]), vec![4, 5, 6, 7]);
        let after_one = allowed(&mut c, &[3, 4]);
        assert!(
            after_one.contains(&5) && !after_one.contains(&6),
            "{after_one:?}"
        );
    }
}
