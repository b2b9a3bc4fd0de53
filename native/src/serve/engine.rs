//! The generation engine: one thread owns the decoder and runs the
//! continuous-batching loop.
//!
//! Requests wait in a bounded queue (full → HTTP 429). Between decoding
//! steps the loop admits waiting requests up to `max_batch` active
//! sequences, drops those whose client went away (the receiving end of their
//! event channel is closed), and then advances every active sequence by one
//! token in one batched forward pass ([`Generator::step`]). Each sequence
//! streams its text as events; a finished one frees its slot at once.
//! `/v1/ask` answers run through the same thread, one at a time between
//! steps, with exactly the code `cairn ask` runs.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError};
use std::time::Instant;

use cairn_core::agent::tools::{ToolSpec, Turn, render_with_tools};
use cairn_core::backend::Backend;
use cairn_core::generate::{
    ChatMessage, FinishReason, GenerationConfig, Generator, RegexGrammar, Sequence,
    TokenConstraint, TriggeredConstraint,
};
use cairn_core::rag::Hit;
use cairn_core::rag::answer::{Answer, AskOptions};
use tokio::sync::mpsc::UnboundedSender;

use super::metrics::Metrics;

/// What a generation request asks to continue.
#[derive(Debug, Clone)]
pub enum Prompt {
    /// Raw text (`/v1/completions`).
    Text(String),
    /// A conversation rendered with the model's chat template (`/v1/chat/completions`).
    Chat(Vec<ChatMessage>),
    /// A conversation with tool declarations, calls and results
    /// (`/v1/chat/completions` with `tools` or `tool` messages).
    ChatTools {
        /// The turns.
        turns: Vec<Turn>,
        /// The declared tools.
        tools: Vec<ToolSpec>,
    },
}

/// The grammar a generation is held to.
#[derive(Debug, Clone)]
pub enum OutputGrammar {
    /// The whole output (`response_format`, `tool_choice` required or named).
    Whole(RegexGrammar),
    /// Free text until `trigger`, then `grammar` (`tool_choice` auto).
    AfterTrigger {
        /// The text that starts the grammar.
        trigger: String,
        /// The grammar of what follows it.
        grammar: RegexGrammar,
    },
}

/// One generation request.
#[derive(Debug)]
pub struct GenJob {
    /// The prompt.
    pub prompt: Prompt,
    /// Decoding settings.
    pub config: GenerationConfig,
    /// The output grammar, if any.
    pub grammar: Option<OutputGrammar>,
    /// Where the text goes; dropping the receiver cancels the request.
    pub events: UnboundedSender<Event>,
    /// When the request arrived (time to first token is measured from here).
    pub arrived: Instant,
}

/// One `/v1/ask` answer over retrieved hits.
#[derive(Debug)]
pub struct AskJob {
    /// The question.
    pub question: String,
    /// The retrieved (and reranked) passages.
    pub hits: Vec<Hit>,
    /// Answering settings.
    pub options: AskOptions,
    /// Text pieces, then the answer.
    pub events: UnboundedSender<AskEvent>,
}

/// Work for the engine thread.
#[derive(Debug)]
pub enum Job {
    /// A batched generation.
    Generate(Box<GenJob>),
    /// A grounded answer (runs alone between steps).
    Ask(AskJob),
}

/// What a generation request receives, in order: `Started`, any number of
/// `Text`, then `Done` — or one `Error`.
#[derive(Debug, Clone)]
pub enum Event {
    /// The prompt was accepted: its length in tokens.
    Started {
        /// Tokens in the prompt.
        prompt_tokens: usize,
    },
    /// New final text.
    Text(String),
    /// The end.
    Done {
        /// Why it ended.
        finish: FinishReason,
        /// Tokens in the prompt.
        prompt_tokens: usize,
        /// Tokens generated.
        completion_tokens: usize,
    },
    /// The request could not run (bad prompt, too long, ...): a client error.
    Error(String),
}

/// What an ask request receives: `Text` pieces, then `Done` or `Error`.
#[derive(Debug, Clone)]
pub enum AskEvent {
    /// New answer text.
    Text(String),
    /// The whole answer.
    Done(Box<Answer>),
    /// The answer failed.
    Error(String),
}

/// The handle HTTP handlers submit work with.
#[derive(Clone, Debug)]
pub struct EngineHandle {
    tx: SyncSender<Job>,
    metrics: Arc<Metrics>,
}

/// Why a job was not queued (by the decoder or the embedder thread).
#[derive(Debug)]
pub enum SubmitError {
    /// The queue is full (HTTP 429).
    Full,
    /// The thread has stopped (HTTP 503): which one.
    Stopped(&'static str),
}

impl EngineHandle {
    /// Queues a job without waiting.
    pub fn submit(&self, job: Job) -> Result<(), SubmitError> {
        match self.tx.try_send(job) {
            Ok(()) => {
                self.metrics.queue_depth_add(1);
                Ok(())
            }
            Err(TrySendError::Full(_)) => Err(SubmitError::Full),
            Err(TrySendError::Disconnected(_)) => Err(SubmitError::Stopped("decoder")),
        }
    }
}

/// A bounded queue of `queue` waiting jobs and the engine's receiving end.
pub fn channel(queue: usize, metrics: Arc<Metrics>) -> (EngineHandle, Receiver<Job>) {
    let (tx, rx) = std::sync::mpsc::sync_channel(queue);
    (EngineHandle { tx, metrics }, rx)
}

/// An active sequence and where its text goes.
struct Active<'g, B: Backend> {
    seq: Sequence<'g, B>,
    events: UnboundedSender<Event>,
    arrived: Instant,
    first_token: bool,
}

/// Runs the engine until every [`EngineHandle`] is dropped (server
/// shutdown) and the active sequences have finished.
pub fn run<B: Backend>(
    generator: &Generator<B>,
    rx: &Receiver<Job>,
    max_batch: usize,
    metrics: &Metrics,
) {
    let mut active: Vec<Active<'_, B>> = Vec::new();
    let mut open = true;
    loop {
        // Admit: wait when idle, else take what is queued without waiting.
        while open && active.len() < max_batch {
            let job = if active.is_empty() {
                match rx.recv() {
                    Ok(j) => j,
                    Err(_) => {
                        open = false;
                        break;
                    }
                }
            } else {
                match rx.try_recv() {
                    Ok(j) => j,
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        open = false;
                        break;
                    }
                }
            };
            metrics.queue_depth_add(-1);
            match job {
                Job::Generate(g) => {
                    let g = *g;
                    if let Some(a) = admit(generator, g) {
                        active.push(a);
                    }
                }
                Job::Ask(a) => run_ask(generator, a),
            }
        }
        if active.is_empty() {
            if open {
                continue;
            }
            return;
        }
        // A client that went away frees its slot now.
        for a in &mut active {
            if a.events.is_closed() {
                a.seq.cancel();
                metrics.cancelled();
            }
        }
        active.retain(|a| !a.seq.is_finished());
        metrics.set_active(active.len());
        if active.is_empty() {
            continue;
        }
        let started = Instant::now();
        let result = {
            let mut seqs: Vec<&mut Sequence<'_, B>> =
                active.iter_mut().map(|a| &mut a.seq).collect();
            pollster::block_on(generator.step(&mut seqs))
        };
        if let Err(e) = result {
            tracing::error!(error = %e, sequences = active.len(), "decoding step failed");
            for a in active.drain(..) {
                let _ = a.events.send(Event::Error(e.to_string()));
            }
            continue;
        }
        metrics.step(active.len(), started.elapsed());
        for a in &mut active {
            if !a.first_token && a.seq.generated_tokens() > 0 {
                a.first_token = true;
                metrics.first_token(a.arrived.elapsed());
            }
            let text = a.seq.take_text();
            if !text.is_empty() {
                let _ = a.events.send(Event::Text(text));
            }
            if let Some(finish) = a.seq.finish_reason() {
                let _ = a.events.send(Event::Done {
                    finish: finish.clone(),
                    prompt_tokens: a.seq.prompt_tokens(),
                    completion_tokens: a.seq.generated_tokens(),
                });
                metrics.finished(a.seq.prompt_tokens(), a.seq.generated_tokens());
            }
        }
        active.retain(|a| !a.seq.is_finished());
        metrics.set_active(active.len());
    }
}

/// Renders and tokenizes the prompt and starts its sequence; a bad prompt
/// is reported to the client instead.
fn admit<'g, B: Backend>(generator: &'g Generator<B>, job: GenJob) -> Option<Active<'g, B>> {
    let started = (|| {
        let text = match &job.prompt {
            Prompt::Text(t) => t.clone(),
            Prompt::Chat(m) => generator.apply_chat_template(m, true)?,
            Prompt::ChatTools { turns, tools } => {
                render_with_tools(&generator.chat_template()?, turns, tools, true)?
            }
        };
        let ids = generator.encode(&text)?;
        let constraint: Option<Box<dyn TokenConstraint + 'g>> = match job.grammar.clone() {
            None => None,
            Some(OutputGrammar::Whole(g)) => {
                Some(Box::new(generator.grammar_constraint(g, &job.config)))
            }
            Some(OutputGrammar::AfterTrigger { trigger, grammar }) => {
                Some(Box::new(TriggeredConstraint::new(
                    &trigger,
                    generator.grammar_constraint(grammar, &job.config),
                )?))
            }
        };
        generator.start(&ids, &job.config, constraint)
    })();
    match started {
        Ok(seq) => {
            let _ = job.events.send(Event::Started {
                prompt_tokens: seq.prompt_tokens(),
            });
            Some(Active {
                seq,
                events: job.events,
                arrived: job.arrived,
                first_token: false,
            })
        }
        Err(e) => {
            let _ = job.events.send(Event::Error(e.to_string()));
            None
        }
    }
}

/// Runs one grounded answer, streaming its text; stops when the client goes away.
fn run_ask<B: Backend>(generator: &Generator<B>, job: AskJob) {
    let events = job.events;
    let result = pollster::block_on(cairn_core::rag::answer::answer(
        generator,
        &job.question,
        &job.hits,
        &job.options,
        |piece| events.send(AskEvent::Text(piece.to_string())).is_ok(),
    ));
    let _ = events.send(match result {
        Ok(a) => AskEvent::Done(Box::new(a)),
        Err(e) => AskEvent::Error(e.to_string()),
    });
}
