//! cairn's own routes: `/v1/rerank`, `/v1/classify`, `/v1/collections`,
//! `/v1/ask`.

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use cairn_core::backend::cpu::CpuBackend;
use cairn_core::classify::TextClassifier;
use cairn_core::rag::answer::{Answer, AskOptions};
use cairn_core::rag::{Hit, SearchOptions};
use cairn_core::retrieve::Reranker;
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio_stream::wrappers::UnboundedReceiverStream;

use super::AppState;
use super::embedder::{AttributeJob, Work};
use super::engine::{AskEvent, AskJob, Job};
use super::error::ApiError;
use super::openai::{Fields, embed, parse_body};

/// Runs blocking model work off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("a worker failed: {e}")))?
}

/// `POST /v1/rerank`: `{query, documents (or TEI's texts), top_n?,
/// return_documents?}` → results best first, each `{index, relevance_score}`
/// (the shape of llama.cpp's server and Jina/Cohere).
pub async fn rerank(
    State(state): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let f = Fields::new(
        parse_body(body)?,
        &[
            "model",
            "query",
            "documents",
            "texts",
            "top_n",
            "return_documents",
        ],
    )?;
    let Some((name, reranker)) = state.reranker.clone() else {
        return Err(ApiError::unavailable(
            "this server runs no reranker (start it with --reranker DIR)",
        ));
    };
    if let Some(m) = f.opt_string("model")?
        && m != name
    {
        return Err(ApiError::model_not_found(&m, std::slice::from_ref(&name)));
    }
    let query = f.string("query")?;
    let docs = match (f.strings("documents")?, f.strings("texts")?) {
        (Some(d), None) | (None, Some(d)) => d,
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "documents: give documents or texts, not both",
                Some("documents"),
            ));
        }
        (None, None) => {
            return Err(ApiError::bad_request(
                "documents: required",
                Some("documents"),
            ));
        }
    };
    if docs.is_empty() {
        return Err(ApiError::bad_request(
            "documents: must not be empty",
            Some("documents"),
        ));
    }
    let top_n = f
        .u64("top_n")?
        .map_or(docs.len(), |n| (n as usize).min(docs.len()));
    let return_docs = f.bool("return_documents")?.unwrap_or(false);
    let scored = {
        let docs = docs.clone();
        blocking(move || {
            let refs: Vec<&str> = docs.iter().map(String::as_str).collect();
            Ok(reranker.rerank(&query, &refs, top_n)?)
        })
        .await?
    };
    let results: Vec<Value> = scored
        .iter()
        .map(|&(i, s)| {
            let mut r = json!({"index": i, "relevance_score": s});
            if return_docs {
                r["document"] = json!({"text": docs[i]});
            }
            r
        })
        .collect();
    Ok(axum::Json(json!({"object": "list", "model": name, "results": results})).into_response())
}

/// `POST /v1/classify`: `{model?, input}` → per text its labels and scores
/// (what `cairn classify` prints). `model` names a classifier the server
/// loaded (`--router`, `--classifier`); default the router.
pub async fn classify(
    State(state): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let f = Fields::new(parse_body(body)?, &["model", "input"])?;
    let names: Vec<String> = state.classifiers.iter().map(|(n, _)| n.clone()).collect();
    let (name, clf) = match f.opt_string("model")? {
        Some(m) => state
            .classifiers
            .iter()
            .find(|(n, _)| *n == m)
            .cloned()
            .ok_or_else(|| ApiError::model_not_found(&m, &names))?,
        None => state.classifiers.first().cloned().ok_or_else(|| {
            ApiError::unavailable("this server runs no classifier (--router or --classifier DIR)")
        })?,
    };
    let texts = f
        .strings("input")?
        .ok_or_else(|| ApiError::bad_request("input: required", Some("input")))?;
    if texts.is_empty() {
        return Err(ApiError::bad_request(
            "input: must not be empty",
            Some("input"),
        ));
    }
    let data = blocking(move || {
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let preds = clf.predict(&refs)?;
        let labels = clf.labels();
        Ok(texts
            .iter()
            .zip(&preds)
            .enumerate()
            .map(|(i, (t, p))| {
                let names: Vec<&str> = p
                    .labels
                    .iter()
                    .filter_map(|&l| labels.get(l).map(String::as_str))
                    .collect();
                let scores: serde_json::Map<String, Value> = labels
                    .iter()
                    .zip(&p.scores)
                    .map(|(l, s)| (l.clone(), json!(s)))
                    .collect();
                json!({"index": i, "text": t, "labels": names, "scores": scores})
            })
            .collect::<Vec<_>>())
    })
    .await?;
    Ok(axum::Json(json!({"object": "list", "model": name, "data": data})).into_response())
}

/// `GET /v1/collections`: the index's collections with their files and chunks.
pub async fn collections(State(state): State<Arc<AppState>>) -> Result<Response, ApiError> {
    let Some(ix) = &state.index else {
        return Err(ApiError::unavailable(
            "this server has no RAG index (--index FILE)",
        ));
    };
    let ix = ix
        .lock()
        .map_err(|_| ApiError::internal("the index lock is poisoned"))?;
    let data: Vec<Value> = ix
        .collections
        .iter()
        .map(|(name, c)| {
            json!({
                "name": name,
                "documents": c.files.keys().collect::<Vec<_>>(),
                "chunks": c.children.iter().filter(|x| x.is_some()).count(),
            })
        })
        .collect();
    Ok(
        axum::Json(json!({"object": "list", "embedder": ix.embedder, "data": data}))
            .into_response(),
    )
}

fn source_json(n: usize, h: &Hit, cited: bool) -> Value {
    json!({
        "n": n,
        "file": h.chunk.source,
        "page": h.chunk.page,
        "headings": h.chunk.headings,
        "collection": h.collection,
        "score": h.score,
        "cosine": h.cosine,
        "cited": cited,
        "text": h.matched.text,
    })
}

fn answer_json(a: &Answer) -> Value {
    json!({
        "answer": a.text,
        "grounded": a.grounded,
        "cited": a.cited,
        "sources": a.sources.iter().enumerate()
            .map(|(i, h)| source_json(i + 1, h, a.cited.contains(&(i + 1))))
            .collect::<Vec<_>>(),
        "usage": {"prompt_tokens": a.prompt_tokens, "completion_tokens": a.generated_tokens,
                  "total_tokens": a.prompt_tokens + a.generated_tokens},
    })
}

/// The answer's JSON; when the model cited no source, its sentences are
/// traced to the sources they match (`attributed`, as `cairn ask` prints).
async fn finished_json(state: &AppState, a: &Answer) -> Value {
    let mut v = answer_json(a);
    let mut attributed = Vec::new();
    if a.grounded
        && a.cited.is_empty()
        && !a.sources.is_empty()
        && let Some(h) = &state.embed
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job = Work::Attribute(AttributeJob {
            answer: a.text.clone(),
            sources: a.sources.clone(),
            min_cosine: crate::rag::ATTRIBUTION_MIN_COSINE,
            reply: tx,
        });
        if h.submit(job).is_ok() {
            match rx.await {
                Ok(Ok(found)) => attributed = found,
                Ok(Err(e)) => tracing::warn!(error = %e, "attributing the answer failed"),
                Err(_) => tracing::warn!("the embedder stopped while attributing"),
            }
        }
    }
    if let Some(list) = v["sources"].as_array_mut() {
        for (i, s) in list.iter_mut().enumerate() {
            s["attributed"] = json!(attributed.iter().any(|f| f.source == i + 1));
        }
    }
    v["attributed"] = json!(attributed
        .iter()
        .map(|f| json!({"sentence": [f.sentence.start, f.sentence.end], "source": f.source, "cosine": f.cosine}))
        .collect::<Vec<_>>());
    v
}

/// `POST /v1/ask`: `{question, collections?, k?, max_tokens?, stream?}` →
/// the routing decision, the retrieved sources (file, page, score) and the
/// answer with its citations — `cairn ask`'s pipeline with the server's
/// models. Streamed, it sends a `sources` event, `text` events, then `done`.
/// Sources carry `cited` (the answer names them) and `attributed` (when it
/// names none: an answer sentence matches one of theirs, cosine ≥ 0.6).
pub async fn ask(
    State(state): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let f = Fields::new(
        parse_body(body)?,
        &[
            "question",
            "collections",
            "k",
            "max_tokens",
            "stream",
            "answer",
        ],
    )?;
    let question = f.string("question")?;
    let quote = match f.get("answer").map(|v| v.as_str()) {
        None | Some(Some("generate")) => false,
        Some(Some("quote")) => true,
        Some(_) => {
            return Err(ApiError::bad_request(
                "answer: must be \"generate\" or \"quote\"",
                Some("answer"),
            ));
        }
    };
    if question.trim().is_empty() {
        return Err(ApiError::bad_request(
            "question: must not be empty",
            Some("question"),
        ));
    }
    let Some(index) = state.index.clone() else {
        return Err(ApiError::unavailable(
            "this server has no RAG index (--index FILE)",
        ));
    };
    let mut search: SearchOptions = state.search.clone();
    if let Some(c) = f.strings("collections")? {
        search.collections = c;
    }
    if let Some(k) = f.u64("k")? {
        if k == 0 || k > 50 {
            return Err(ApiError::bad_request("k: must be in 1..=50", Some("k")));
        }
        search.k = k as usize;
    }
    let mut options: AskOptions = state.ask.clone();
    if let Some(m) = f.u64("max_tokens")? {
        if m == 0 {
            return Err(ApiError::bad_request(
                "max_tokens: must be at least 1",
                Some("max_tokens"),
            ));
        }
        options.generation.max_new_tokens = m as usize;
    }
    let stream = f.bool("stream")?.unwrap_or(false);
    {
        let ix = index
            .lock()
            .map_err(|_| ApiError::internal("the index lock is poisoned"))?;
        if let Some(c) = search
            .collections
            .iter()
            .find(|c| !ix.collections.contains_key(*c))
        {
            return Err(ApiError::not_found(format!(
                "no collection '{c}' in the index"
            )));
        }
    }
    let qv = embed(&state, vec![question.clone()]).await?;
    let qv = qv.vectors.into_iter().next().unwrap_or_default();
    let router = state.router.clone();
    let reranker = state.reranker.clone();
    let threshold = state.router_threshold;
    let fusion = state.rerank_fusion;
    let q = question.clone();
    let retrieved = blocking(move || {
        let mut ix = index
            .lock()
            .map_err(|_| ApiError::internal("the index lock is poisoned"))?;
        let with = crate::rag::Retrieval {
            router: router.as_ref().map(|(_, c)| (c.as_ref(), threshold)),
            reranker: reranker.as_ref().map(|(_, c)| (c.as_ref(), fusion)),
        };
        Ok(crate::rag::retrieve(&q, &qv, &mut ix, &search, with)?)
    })
    .await?;
    let route = retrieved.route.as_ref().map(|r| {
        json!({"label": r.label, "score": r.score, "collections": r.collections, "reason": r.reason})
    });
    if quote {
        // Extractive: no decoder, the embedder picks the sentences to quote.
        let hits = retrieved.hits;
        let candidates = cairn_core::rag::answer::quote_candidates(&hits, options.source_text);
        let mut texts = vec![question.clone()];
        texts.extend(candidates.iter().map(|(_, t)| t.clone()));
        let e = embed(&state, texts).await?;
        let vectors: Vec<&[f32]> = e.vectors.iter().map(Vec::as_slice).collect();
        let a = cairn_core::rag::answer::quote_pick(
            &hits,
            &candidates,
            &vectors,
            crate::rag::QUOTE_SENTENCES,
            crate::rag::QUOTE_MIN_COSINE,
        );
        let retrieved_json: Vec<Value> = hits
            .iter()
            .enumerate()
            .map(|(i, h)| source_json(i + 1, h, false))
            .collect();
        if !stream {
            let mut v = finished_json(&state, &a).await;
            v["route"] = route.unwrap_or(Value::Null);
            v["retrieved"] = json!(retrieved_json);
            return Ok(axum::Json(v).into_response());
        }
        let events = vec![
            SseEvent::default()
                .event("sources")
                .data(json!({"route": route, "retrieved": retrieved_json}).to_string()),
            SseEvent::default()
                .event("text")
                .data(json!({"text": a.text}).to_string()),
            SseEvent::default()
                .event("done")
                .data(answer_json(&a).to_string()),
        ];
        let events = futures_util::stream::iter(events).map(Ok::<_, Infallible>);
        return Ok(Sse::new(events).into_response());
    }
    let engine = state
        .engine
        .as_ref()
        .ok_or_else(|| ApiError::unavailable("this server runs no decoder"))?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let hits = retrieved.hits;
    let retrieved_json: Vec<Value> = hits
        .iter()
        .enumerate()
        .map(|(i, h)| source_json(i + 1, h, false))
        .collect();
    engine.submit(Job::Ask(AskJob {
        question,
        hits,
        options,
        events: tx,
    }))?;
    if !stream {
        while let Some(e) = rx.recv().await {
            match e {
                AskEvent::Text(_) => {}
                AskEvent::Done(a) => {
                    let mut v = finished_json(&state, &a).await;
                    v["route"] = route.unwrap_or(Value::Null);
                    v["retrieved"] = json!(retrieved_json);
                    return Ok(axum::Json(v).into_response());
                }
                AskEvent::Error(m) => return Err(ApiError::internal(m)),
            }
        }
        return Err(ApiError::internal("the decoder stopped before answering"));
    }
    let head = SseEvent::default()
        .event("sources")
        .data(json!({"route": route, "retrieved": retrieved_json}).to_string());
    let body = UnboundedReceiverStream::new(rx).map(|e| match e {
        AskEvent::Text(t) => SseEvent::default()
            .event("text")
            .data(json!({"text": t}).to_string()),
        AskEvent::Done(a) => SseEvent::default()
            .event("done")
            .data(answer_json(&a).to_string()),
        AskEvent::Error(m) => SseEvent::default()
            .event("error")
            .data(ApiError::internal(m).body().to_string()),
    });
    let events = futures_util::stream::once(std::future::ready(head))
        .chain(body)
        .map(Ok::<_, Infallible>);
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// A classifier the server loaded, by name.
pub type Named = (String, Arc<TextClassifier<CpuBackend>>);
