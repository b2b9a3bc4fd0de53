//! Learning-rate schedules as transformers' `get_*_schedule_with_warmup`
//! compute them: linear warm-up from 0 over `warmup` steps, then constant,
//! linear decay to 0 at `total`, or half a cosine to 0 at `total`.

/// The shape after warm-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decay {
    /// Constant at the peak.
    Constant,
    /// Linear to 0 at the last step.
    Linear,
    /// Half a cosine to 0 at the last step.
    Cosine,
}

impl std::str::FromStr for Decay {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<Self> {
        match s {
            "constant" => Ok(Decay::Constant),
            "linear" => Ok(Decay::Linear),
            "cosine" => Ok(Decay::Cosine),
            other => Err(crate::Error::Input(format!(
                "unknown schedule '{other}' (constant, linear, cosine)"
            ))),
        }
    }
}

/// A learning-rate schedule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    /// Peak learning rate.
    pub peak: f64,
    /// Warm-up steps.
    pub warmup: u64,
    /// Total optimizer steps.
    pub total: u64,
    /// Decay after warm-up.
    pub decay: Decay,
}

impl Schedule {
    /// A schedule over `total` steps whose warm-up is `warmup_ratio` of them
    /// (rounded), as transformers' `warmup_ratio`.
    pub fn with_warmup_ratio(peak: f64, warmup_ratio: f64, total: u64, decay: Decay) -> Self {
        Schedule {
            peak,
            warmup: (warmup_ratio * total as f64).round() as u64,
            total,
            decay,
        }
    }

    /// The learning rate for optimizer step `step` (0-based).
    pub fn lr(&self, step: u64) -> f64 {
        if step < self.warmup {
            return self.peak * step as f64 / self.warmup.max(1) as f64;
        }
        let span = self.total.saturating_sub(self.warmup).max(1) as f64;
        let progress = ((step - self.warmup) as f64 / span).min(1.0);
        match self.decay {
            Decay::Constant => self.peak,
            Decay::Linear => self.peak * (1.0 - progress).max(0.0),
            Decay::Cosine => self.peak * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_match_transformers() {
        // get_linear_schedule_with_warmup(peak 1e-3, warmup 10, total 110):
        // step 0 → 0, step 5 → 5e-4, step 10 → 1e-3, step 60 → 5e-4, step 110 → 0.
        let s = Schedule {
            peak: 1e-3,
            warmup: 10,
            total: 110,
            decay: Decay::Linear,
        };
        let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
        assert!(close(s.lr(0), 0.0) && close(s.lr(5), 5e-4) && close(s.lr(10), 1e-3));
        assert!(close(s.lr(60), 5e-4) && close(s.lr(110), 0.0) && close(s.lr(500), 0.0));
        // Cosine: halfway → peak/2; a quarter → peak·(1 + cos(π/4))/2 = 0.853553·peak.
        let c = Schedule {
            decay: Decay::Cosine,
            ..s
        };
        assert!(close(c.lr(60), 5e-4) && (c.lr(35) - 8.535_533_9e-4).abs() < 1e-10);
        let k = Schedule {
            decay: Decay::Constant,
            ..s
        };
        assert!(close(k.lr(100), 1e-3));
        assert!("cosine".parse::<Decay>().is_ok() && "step".parse::<Decay>().is_err());
    }
}
