//! The embedding batcher: one thread owns the sentence encoder; requests
//! that arrive while it works are encoded together in its next batch. The
//! same thread chunks and embeds uploaded documents (one at a time).

use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError};

use cairn_core::backend::Backend;
use cairn_core::embedder::Embedder;
use tokio::sync::oneshot;

use super::engine::SubmitError;
use super::metrics::Metrics;

/// Texts to embed (L2-normalized vectors come back, one per text).
#[derive(Debug)]
pub struct EmbedJob {
    /// The texts.
    pub texts: Vec<String>,
    /// The vectors, or what went wrong.
    pub reply: oneshot::Sender<Result<Embedded, String>>,
}

/// The answer to one [`EmbedJob`].
#[derive(Debug, Clone)]
pub struct Embedded {
    /// One L2-normalized vector per text.
    pub vectors: Vec<Vec<f32>>,
    /// Tokens the texts encode to (special tokens included).
    pub tokens: usize,
}

/// A document to load, chunk and embed for the index.
#[derive(Debug)]
pub struct IngestJob {
    /// The source name recorded in the index (its extension picks the loader).
    pub source: String,
    /// The file's bytes.
    pub bytes: Vec<u8>,
    /// The chunks, or why the document cannot be indexed.
    pub reply: oneshot::Sender<Result<cairn_core::rag::FileChunks, String>>,
}

/// An answer's sentences to trace to the sources that support them (when
/// the model cited none), as `cairn ask` does.
#[derive(Debug)]
pub struct AttributeJob {
    /// The answer text.
    pub answer: String,
    /// The sources it was given, numbered from 1.
    pub sources: Vec<cairn_core::rag::Hit>,
    /// Least sentence cosine that counts.
    pub min_cosine: f32,
    /// The attributions, or what went wrong.
    pub reply: oneshot::Sender<Result<Vec<cairn_core::rag::answer::Attribution>, String>>,
}

/// Work for the embedder thread.
#[derive(Debug)]
pub enum Work {
    /// Texts to embed (batched with others).
    Embed(EmbedJob),
    /// A document to ingest.
    Ingest(IngestJob),
    /// An answer to attribute.
    Attribute(AttributeJob),
}

fn count_tokens<B: Backend>(e: &Embedder<B>, texts: &[String]) -> usize {
    texts
        .iter()
        .map(|t| e.tokenizer().encode(t, true).map_or(0, |enc| enc.ids.len()))
        .sum()
}

/// Submits texts to the batcher.
#[derive(Clone, Debug)]
pub struct EmbedHandle {
    tx: SyncSender<Work>,
    /// Dimension of the vectors.
    pub dim: usize,
}

impl EmbedHandle {
    /// The same handle, for vectors of `dim` components.
    pub fn with_dim(self, dim: usize) -> Self {
        EmbedHandle { dim, ..self }
    }

    /// Queues a job without waiting.
    pub fn submit(&self, job: Work) -> Result<(), SubmitError> {
        match self.tx.try_send(job) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(SubmitError::Full),
            Err(TrySendError::Disconnected(_)) => Err(SubmitError::Stopped("embedder")),
        }
    }
}

/// A bounded queue of `queue` jobs and the batcher's receiving end.
pub fn channel(queue: usize, dim: usize) -> (EmbedHandle, Receiver<Work>) {
    let (tx, rx) = std::sync::mpsc::sync_channel(queue);
    (EmbedHandle { tx, dim }, rx)
}

/// Runs the batcher until every handle is dropped: waits for a job, adds
/// every embedding job already queued (up to `max_texts` texts), encodes
/// them in one call and answers each; ingests documents one by one.
pub fn run<B: Backend>(
    embedder: &Embedder<B>,
    rx: &Receiver<Work>,
    max_texts: usize,
    metrics: &Arc<Metrics>,
) {
    let mut held: Option<Work> = None;
    loop {
        let first = match held.take() {
            Some(w) => w,
            None => match rx.recv() {
                Ok(w) => w,
                Err(_) => return,
            },
        };
        let first = match first {
            Work::Ingest(job) => {
                ingest(embedder, job);
                continue;
            }
            Work::Attribute(job) => {
                let r = pollster::block_on(cairn_core::rag::answer::attribute(
                    embedder,
                    &job.answer,
                    &job.sources,
                    job.min_cosine,
                ));
                let _ = job.reply.send(r.map_err(|e| e.to_string()));
                continue;
            }
            Work::Embed(j) => j,
        };
        let mut jobs = vec![first];
        let mut n = jobs[0].texts.len();
        while n < max_texts {
            match rx.try_recv() {
                Ok(Work::Embed(j)) => {
                    n += j.texts.len();
                    jobs.push(j);
                }
                Ok(other) => {
                    held = Some(other);
                    break;
                }
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        embed_batch(embedder, jobs, metrics);
    }
}

fn ingest<B: Backend>(embedder: &Embedder<B>, job: IngestJob) {
    let result = (|| {
        let ingestor = cairn_core::rag::Ingestor::new(embedder)?;
        let hash = cairn_core::rag::content_hash(&job.bytes);
        pollster::block_on(ingestor.file_chunks(&job.source, &job.bytes, hash, |_, _| true))
    })();
    let _ = job.reply.send(result.map_err(|e| e.to_string()));
}

fn embed_batch<B: Backend>(embedder: &Embedder<B>, jobs: Vec<EmbedJob>, metrics: &Arc<Metrics>) {
    let texts: Vec<&str> = jobs
        .iter()
        .flat_map(|j| j.texts.iter().map(String::as_str))
        .collect();
    let result = pollster::block_on(embedder.encode_async(&texts, true));
    metrics.embed_batch();
    match result {
        Ok(e) => {
            metrics.embedded(e.rows);
            let mut rows = e.data.chunks(e.dim.max(1)).map(<[f32]>::to_vec);
            for j in jobs {
                let vectors: Vec<Vec<f32>> = rows.by_ref().take(j.texts.len()).collect();
                let tokens = count_tokens(embedder, &j.texts);
                let _ = j.reply.send(Ok(Embedded { vectors, tokens }));
            }
        }
        // One bad text fails the batch: retry each job alone so only its owner sees the error.
        Err(_) if jobs.len() > 1 => {
            for j in jobs {
                let refs: Vec<&str> = j.texts.iter().map(String::as_str).collect();
                let r = pollster::block_on(embedder.encode_async(&refs, true))
                    .map(|e| Embedded {
                        vectors: e.data.chunks(e.dim.max(1)).map(<[f32]>::to_vec).collect(),
                        tokens: count_tokens(embedder, &j.texts),
                    })
                    .map_err(|e| e.to_string());
                if let Ok(v) = &r {
                    metrics.embedded(v.vectors.len());
                }
                let _ = j.reply.send(r);
            }
        }
        Err(e) => {
            for j in jobs {
                let _ = j.reply.send(Err(e.to_string()));
            }
        }
    }
}
