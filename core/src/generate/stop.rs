//! Stop sequences over streamed text: text is released only once it can no
//! longer be the beginning of a stop sequence.

/// The earliest stop sequence in `text`: its byte offset and the sequence.
pub fn first_stop(text: &str, stops: &[String]) -> Option<(usize, String)> {
    stops
        .iter()
        .filter_map(|s| text.find(s.as_str()).map(|at| (at, s.clone())))
        .min_by_key(|(at, _)| *at)
}

/// Holds back streamed text while it might be the start of a stop sequence.
#[derive(Debug, Clone)]
pub struct StopMatcher {
    stops: Vec<String>,
    held: String,
}

impl StopMatcher {
    /// A matcher for `stops` (none: text passes straight through).
    pub fn new(stops: &[String]) -> Self {
        StopMatcher {
            stops: stops.to_vec(),
            held: String::new(),
        }
    }

    /// Adds a piece of text; returns the text that is now safe to emit, and
    /// the stop sequence when one completed (text from it on is dropped).
    pub fn push(&mut self, piece: &str) -> (String, Option<String>) {
        self.held.push_str(piece);
        if let Some((at, s)) = first_stop(&self.held, &self.stops) {
            let out = self.held[..at].to_string();
            self.held.clear();
            return (out, Some(s));
        }
        // Keep the longest suffix that is a proper prefix of some stop sequence.
        let mut keep = 0;
        for s in &self.stops {
            for (i, _) in s.char_indices().skip(1) {
                if i > keep && self.held.ends_with(&s[..i]) {
                    keep = i;
                }
            }
        }
        let cut = self.held.len() - keep;
        let out = self.held[..cut].to_string();
        self.held.drain(..cut);
        (out, None)
    }

    /// Releases whatever is still held (generation ended without a stop).
    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.held)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_back_possible_stop_prefixes() {
        let mut m = StopMatcher::new(&["\nUser:".to_string(), "END".to_string()]);
        assert_eq!(m.push("Hello"), ("Hello".to_string(), None));
        assert_eq!(m.push(" wor"), (" wor".to_string(), None));
        assert_eq!(m.push("ld\nU"), ("ld".to_string(), None));
        assert_eq!(m.push("s"), (String::new(), None));
        assert_eq!(m.push("a"), ("\nUsa".to_string(), None));
        assert_eq!(m.push("E"), (String::new(), None));
        assert_eq!(m.push("NDing"), (String::new(), Some("END".to_string())));
        let mut m = StopMatcher::new(&["END".to_string()]);
        assert_eq!(m.push("abcEN"), ("abc".to_string(), None));
        assert_eq!(m.finish(), "EN");
        let mut m = StopMatcher::new(&[]);
        assert_eq!(m.push("x"), ("x".to_string(), None));
        assert_eq!(
            first_stop("a END b \n", &["\n".into(), "END".into()]),
            Some((2, "END".into()))
        );
    }
}
