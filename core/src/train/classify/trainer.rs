//! The fine-tuning run: set-up, resume, snapshots and the epoch loop.

use super::*;
use crate::train::step;

/// A fine-tuning run over one model.
pub struct Trainer {
    pub(super) model: SequenceClassifier<CpuBackend>,
    pub(super) opt: AdamW,
    pub(super) schedule: Schedule,
    pub(super) config: TrainConfig,
    pub(super) pad_id: u32,
    pub(super) state: TrainState,
    pub(super) best_weights: Option<Vec<Tensor>>,
    /// With a frozen encoder: each example's first-token state, keyed by
    /// its token ids and types (the encoder runs once per distinct input).
    pub(super) frozen: std::sync::Mutex<std::collections::HashMap<Vec<u32>, Vec<f32>>>,
}

impl std::fmt::Debug for Trainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trainer")
            .field("model", &self.model)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl Trainer {
    /// Prepares `model` (built on [`CpuBackend::for_training`]) for
    /// `train_len` batching units ([`Encoded::units`]: examples, or query
    /// groups of ranking data — `batch_size` counts the same units): every
    /// weight becomes a variable (only the head's with
    /// [`TrainConfig::freeze_encoder`]).
    pub fn new(
        mut model: SequenceClassifier<CpuBackend>,
        config: TrainConfig,
        train_len: usize,
        pad_id: u32,
    ) -> Result<Self> {
        if config.batch_size == 0 || config.grad_accum == 0 || config.epochs == 0 {
            return Err(Error::Input(
                "batch size, gradient accumulation and epochs must be at least 1".into(),
            ));
        }
        if let Some(w) = &config.class_weights
            && w.len() != model.config().labels.len()
        {
            return Err(Error::Input(format!(
                "{} class weights for {} labels",
                w.len(),
                model.config().labels.len()
            )));
        }
        let named = if config.freeze_encoder {
            model.head_parameters_mut()
        } else {
            model.parameters_mut()
        };
        let params = make_params(named)?;
        let opt = AdamW::new(params, config.adamw)?;
        let micro = train_len.div_ceil(config.batch_size);
        let total = (micro.div_ceil(config.grad_accum) * config.epochs) as u64;
        let schedule =
            Schedule::with_warmup_ratio(config.lr, config.warmup_ratio, total, config.decay);
        let state = TrainState {
            epoch: 0,
            step: 0,
            best: None,
            bad_epochs: 0,
            history: Vec::new(),
            seed: config.seed,
            freeze_encoder: config.freeze_encoder,
        };
        Ok(Self {
            model,
            opt,
            schedule,
            config,
            pad_id,
            state,
            best_weights: None,
            frozen: Default::default(),
        })
    }

    /// Trainable parameters (count of values).
    pub fn trainable_parameters(&self) -> usize {
        self.opt.trainable_values()
    }

    /// The learning-rate schedule in use.
    pub fn schedule(&self) -> Schedule {
        self.schedule
    }

    /// Progress so far.
    pub fn state(&self) -> &TrainState {
        &self.state
    }

    /// Restores a checkpoint written after an epoch of a run with the same
    /// data and configuration (`best`: the weights of its best epoch, if
    /// that was not the last).
    pub fn resume(
        &mut self,
        weights: &[u8],
        optimizer: &[u8],
        state: TrainState,
        best: Option<&[u8]>,
    ) -> Result<()> {
        if state.seed != self.config.seed {
            return Err(Error::Input(format!(
                "the checkpoint was trained with seed {}, this run uses {}",
                state.seed, self.config.seed
            )));
        }
        if state.freeze_encoder != self.config.freeze_encoder {
            let how = |f: bool| {
                if f {
                    "with the encoder frozen"
                } else {
                    "with every weight"
                }
            };
            return Err(Error::Input(format!(
                "the checkpoint was trained {}, this run trains {}",
                how(state.freeze_encoder),
                how(self.config.freeze_encoder)
            )));
        }
        let w = SafeTensors::parse(weights, "checkpoint weights")?;
        self.set_params(&w)?;
        let o = SafeTensors::parse(optimizer, "checkpoint optimizer")?;
        self.opt.load_state(|n| o.f32(n), state.step)?;
        self.best_weights = match best {
            Some(bytes) => {
                let b = SafeTensors::parse(bytes, "checkpoint best weights")?;
                Some(self.read_params(&b)?)
            }
            None => match state.best {
                Some((_, e)) if e == state.epoch => Some(self.snapshot()?),
                Some((_, e)) => {
                    return Err(Error::Input(format!(
                        "the checkpoint's best weights (epoch {e}) are missing; resume needs them to undo worse epochs"
                    )));
                }
                None => None,
            },
        };
        self.state = state;
        Ok(())
    }

    pub(super) fn read_params(&self, st: &SafeTensors<'_>) -> Result<Vec<Tensor>> {
        self.opt
            .params()
            .iter()
            .map(|p| {
                let (data, shape) = st.f32(&p.name)?;
                if shape != p.var.as_tensor().dims() {
                    return Err(Error::Model {
                        file: st.file().into(),
                        detail: format!(
                            "'{}' has shape {shape:?}, the model {:?}",
                            p.name,
                            p.var.as_tensor().dims()
                        ),
                    });
                }
                Ok(Tensor::from_vec(data, shape, &Device::Cpu)?)
            })
            .collect()
    }

    pub(super) fn set_params(&mut self, st: &SafeTensors<'_>) -> Result<()> {
        let values = self.read_params(st)?;
        for (p, v) in self.opt.params().iter().zip(values) {
            p.var.set(&v)?;
        }
        Ok(())
    }

    pub(super) fn snapshot(&self) -> Result<Vec<Tensor>> {
        Ok(self
            .opt
            .params()
            .iter()
            .map(|p| p.var.as_tensor().detach().copy())
            .collect::<candle_core::Result<_>>()?)
    }

    pub(super) fn params_bytes(&self) -> Result<Vec<u8>> {
        let tensors = self
            .opt
            .params()
            .iter()
            .map(|p| {
                let t = p.var.as_tensor();
                Ok((
                    p.name.clone(),
                    t.dims().to_vec(),
                    t.flatten_all()?.to_vec1::<f32>()?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        write_f32(&tensors, &Default::default())
    }

    /// Trains until the configured epochs are done or early stopping
    /// triggers, then restores the best epoch's weights (by validation
    /// macro-F1 — MRR for ranking data —, ties broken by the lower
    /// validation loss; without validation data, the last). Returns every
    /// epoch's log.
    pub fn fit(
        &mut self,
        train: &Encoded,
        val: Option<&Encoded>,
        hooks: &mut dyn Hooks,
    ) -> Result<Vec<EpochLog>> {
        if train.is_empty() {
            return Err(Error::Input("no training examples".into()));
        }
        let ranking = train.groups.is_some();
        if ranking {
            let n = self.model.config().labels.len();
            if n != 1 {
                return Err(Error::Input(format!(
                    "ranking data trains a one-logit model (one label), this one has {n}"
                )));
            }
            if self.config.class_weights.is_some() {
                return Err(Error::Input(
                    "class weights do not apply to ranking data (the loss is listwise)".into(),
                ));
            }
        }
        if let Some(v) = val
            && v.groups.is_some() != ranking
        {
            return Err(Error::Input(
                "training and validation data must both be ranking data (query groups) or neither"
                    .into(),
            ));
        }
        let lengths: Vec<usize> = (0..train.units())
            .map(|u| train.unit(u).map(|i| train.ids[i].len()).max().unwrap_or(0))
            .collect();
        while self.state.epoch < self.config.epochs {
            if let Some(p) = self.config.patience
                && self.state.bad_epochs >= p
            {
                break;
            }
            let epoch = self.state.epoch + 1;
            let mut shuffle = crate::train::epoch_rng(self.config.seed, epoch);
            let batches = length_grouped_batches(&lengths, self.config.batch_size, &mut shuffle);
            let mut step_losses = Vec::new();
            for group in batches.chunks(self.config.grad_accum) {
                let mut dropout =
                    Rng::new(crate::train::step_seed(self.config.seed, self.state.step));
                let acc = step::accumulate(&self.opt, group, |units| {
                    let (idx, sizes) = train.expand(units);
                    let (loss, _) =
                        self.batch_loss(train, &idx, sizes.as_deref(), Some(&mut dropout))?;
                    Ok((loss, idx.len()))
                })?;
                let out = step::apply(
                    &mut self.opt,
                    acc,
                    &self.schedule,
                    self.state.step,
                    self.config.max_grad_norm,
                )?;
                self.state.step += 1;
                let (loss, lr, grad_norm, examples) =
                    (out.loss, out.lr, out.grad_norm, out.examples);
                step_losses.push(loss);
                hooks.on_step(&StepLog {
                    step: self.state.step,
                    total_steps: self.schedule.total,
                    epoch,
                    loss,
                    lr,
                    grad_norm,
                    examples,
                });
            }
            let train_loss = step_losses.iter().sum::<f32>() / step_losses.len().max(1) as f32;
            let (val_loss, val_macro_f1, val_accuracy, val_mrr) = match val {
                Some(v) if !v.is_empty() && ranking => {
                    let (l, mrr) = self.evaluate_ranking(v)?;
                    (Some(l), None, None, Some(mrr))
                }
                Some(v) if !v.is_empty() => {
                    let (l, r) = self.evaluate(v)?;
                    (Some(l), Some(r.macro_f1), Some(r.accuracy), None)
                }
                _ => (None, None, None, None),
            };
            let log = EpochLog {
                epoch,
                step: self.state.step,
                train_loss,
                val_loss,
                val_macro_f1,
                val_accuracy,
                val_mrr,
                step_losses,
            };
            // Better macro-F1 (MRR) wins; at an equal score (e.g. a reranker
            // whose scores stay under the threshold early on) the lower loss does.
            let metric = val_mrr.or(val_macro_f1);
            let improved = match (metric, self.state.best) {
                (Some(f), Some((b, e))) => {
                    let best_loss = self
                        .state
                        .history
                        .iter()
                        .find(|h| h.epoch == e)
                        .and_then(|h| h.val_loss);
                    f > b
                        || (f == b
                            && val_loss
                                .zip(best_loss)
                                .is_some_and(|(now, then)| now < then))
                }
                (Some(_), None) => true,
                (None, _) => true,
            };
            if improved {
                self.state.best = metric.map(|f| (f, epoch));
                self.state.bad_epochs = 0;
                self.best_weights = None;
            } else {
                self.state.bad_epochs += 1;
            }
            self.state.epoch = epoch;
            self.state.history.push(log.clone());
            let (moments, _) = self.opt.state()?;
            let checkpoint = Checkpoint {
                weights: self.params_bytes()?,
                optimizer: write_f32(&moments, &Default::default())?,
                state: self.state.clone(),
                improved,
            };
            hooks.on_epoch(&log, &checkpoint)?;
            if improved {
                // Keep the best weights in memory so a worse epoch can be undone.
                self.best_weights = Some(self.snapshot()?);
            }
        }
        if let Some(best) = self.best_weights.take() {
            for (p, v) in self.opt.params().iter().zip(best) {
                p.var.set(&v)?;
            }
        }
        Ok(self.state.history.clone())
    }

    /// The trained model (weights stay variables; export or predict with it).
    pub fn model(&self) -> &SequenceClassifier<CpuBackend> {
        &self.model
    }
}
