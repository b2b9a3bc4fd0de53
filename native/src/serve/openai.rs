//! The OpenAI-compatible routes: `/v1/models`, `/v1/chat/completions`,
//! `/v1/completions`, `/v1/embeddings`.
//!
//! Requests are parsed field by field so that every problem is a 400 naming
//! the field: a field cairn does not support (`n` > 1, `logprobs`,
//! ...) is refused, never silently ignored; a field cairn does not know is
//! refused as OpenAI does ("Unrecognized request argument").
//!
//! Tool calling: `tools` (function declarations; their `parameters` are
//! compiled to a grammar, an unsupported keyword is a 400 naming it),
//! `tool_choice` (`auto`: free text until the model writes `<tool_call>`,
//! then the call is held to the declared tools' grammar; `required` or a
//! named function: the whole answer is calls; `none`), `parallel_tool_calls`,
//! `tool` messages and assistant `tool_calls` in the history. Calls come back
//! as `tool_calls` (arguments as a JSON string that validates against the
//! schema) with `finish_reason` `tool_calls`; streamed, text before a call
//! streams as content and each call arrives whole in one `tool_calls` delta.
//!
//! Sampling follows OpenAI's meaning: `temperature` 0 is greedy decoding,
//! anything above samples (default 1); `top_p` as OpenAI; `top_k` (off by
//! default), `repetition_penalty` and `ignore_eos` are accepted as
//! llama.cpp's server accepts them; without `seed` each request draws a fresh one.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use cairn_core::agent::tools::{
    CALL_OPEN, ToolCall, ToolChoice, ToolSpec, Turn, after_open_pattern, calls_pattern,
    parse_tool_calls,
};
use cairn_core::generate::{ChatMessage, FinishReason, GenerationConfig, RegexGrammar};
use futures_util::StreamExt;
use serde_json::{Map, Value, json};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio_stream::wrappers::UnboundedReceiverStream;

use super::AppState;
use super::embedder::{EmbedJob, Embedded, Work};
use super::engine::{Event, GenJob, Job, OutputGrammar, Prompt};
use super::error::ApiError;

/// Parses a JSON object body, mapping every failure to OpenAI's error shape.
pub fn parse_body(body: Result<Bytes, BytesRejection>) -> Result<Map<String, Value>, ApiError> {
    let bytes = body.map_err(|r| ApiError {
        status: r.status(),
        message: format!("reading the request body: {}", r.body_text()),
        param: None,
        code: None,
    })?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ApiError::bad_request(
            "the request body must be a JSON object",
            None,
        )),
        Err(e) => Err(ApiError::bad_request(
            format!("the request body is not valid JSON: {e}"),
            None,
        )),
    }
}

/// Typed access to a request's fields, each error naming its field.
pub struct Fields {
    map: Map<String, Value>,
}

impl Fields {
    /// Wraps a parsed body; fields not in `known` are refused.
    pub fn new(map: Map<String, Value>, known: &[&str]) -> Result<Self, ApiError> {
        if let Some(k) = map.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(ApiError {
                code: Some("unknown_parameter"),
                ..ApiError::bad_request(
                    format!("Unrecognized request argument supplied: {k}"),
                    Some(k),
                )
            });
        }
        Ok(Fields { map })
    }

    /// The raw value, treating `null` as absent.
    pub fn get(&self, k: &str) -> Option<&Value> {
        self.map.get(k).filter(|v| !v.is_null())
    }

    /// A required string.
    pub fn string(&self, k: &str) -> Result<String, ApiError> {
        self.opt_string(k)?
            .ok_or_else(|| ApiError::bad_request(format!("{k}: required"), Some(k)))
    }

    /// An optional string.
    pub fn opt_string(&self, k: &str) -> Result<Option<String>, ApiError> {
        match self.get(k) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(ApiError::bad_request(
                format!("{k}: must be a string"),
                Some(k),
            )),
        }
    }

    /// An optional number.
    pub fn f64(&self, k: &str) -> Result<Option<f64>, ApiError> {
        match self.get(k) {
            None => Ok(None),
            Some(v) => v
                .as_f64()
                .map(Some)
                .ok_or_else(|| ApiError::bad_request(format!("{k}: must be a number"), Some(k))),
        }
    }

    /// An optional non-negative integer.
    pub fn u64(&self, k: &str) -> Result<Option<u64>, ApiError> {
        match self.get(k) {
            None => Ok(None),
            Some(v) => v.as_u64().map(Some).ok_or_else(|| {
                ApiError::bad_request(format!("{k}: must be a non-negative integer"), Some(k))
            }),
        }
    }

    /// An optional boolean.
    pub fn bool(&self, k: &str) -> Result<Option<bool>, ApiError> {
        match self.get(k) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(ApiError::bad_request(
                format!("{k}: must be true or false"),
                Some(k),
            )),
        }
    }

    /// A string or a list of strings.
    pub fn strings(&self, k: &str) -> Result<Option<Vec<String>>, ApiError> {
        match self.get(k) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(vec![s.clone()])),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .map(Some)
                .ok_or_else(|| {
                    ApiError::bad_request(
                        format!("{k}: must be a string or a list of strings (token arrays are not supported)"),
                        Some(k),
                    )
                }),
            Some(_) => Err(ApiError::bad_request(
                format!("{k}: must be a string or a list of strings"),
                Some(k),
            )),
        }
    }
}

/// Fields every generation route shares.
const SAMPLING_FIELDS: &[&str] = &[
    "model",
    "stream",
    "stream_options",
    "max_tokens",
    "temperature",
    "top_p",
    "top_k",
    "stop",
    "seed",
    "frequency_penalty",
    "presence_penalty",
    "repetition_penalty",
    "ignore_eos",
    "n",
    "logprobs",
    "top_logprobs",
    "logit_bias",
    "user",
    "metadata",
    "store",
    "service_tier",
];

/// Decoding settings from an OpenAI request (see the module docs).
fn generation_config(f: &Fields, default_max: usize) -> Result<GenerationConfig, ApiError> {
    if let Some(n) = f.u64("n")?
        && n != 1
    {
        return Err(ApiError::unsupported(
            "n",
            "only n = 1 is supported (one choice per request)",
        ));
    }
    if f.get("logprobs")
        .is_some_and(|v| v != &Value::Bool(false) && v != &json!(0))
    {
        return Err(ApiError::unsupported(
            "logprobs",
            "log-probabilities are not returned yet",
        ));
    }
    if f.get("top_logprobs").is_some() {
        return Err(ApiError::unsupported(
            "top_logprobs",
            "log-probabilities are not returned yet",
        ));
    }
    if f.get("logit_bias")
        .is_some_and(|v| v.as_object().is_none_or(|m| !m.is_empty()))
    {
        return Err(ApiError::unsupported(
            "logit_bias",
            "logit biases are not supported",
        ));
    }
    let max_tokens = match (f.u64("max_completion_tokens")?, f.u64("max_tokens")?) {
        (Some(m), _) | (None, Some(m)) => m as usize,
        (None, None) => default_max,
    };
    let temperature = f.f64("temperature")?.unwrap_or(1.0);
    if !(0.0..=2.0).contains(&temperature) {
        return Err(ApiError::bad_request(
            format!("temperature: must be in [0, 2], got {temperature}"),
            Some("temperature"),
        ));
    }
    let stop = f.strings("stop")?.unwrap_or_default();
    if stop.len() > 4 {
        return Err(ApiError::bad_request(
            "stop: at most 4 sequences",
            Some("stop"),
        ));
    }
    let seed = match f.get("seed") {
        None => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
        // OpenAI's seed is any integer.
        Some(v) => v
            .as_i64()
            .map(|s| s as u64)
            .or_else(|| v.as_u64())
            .ok_or_else(|| ApiError::bad_request("seed: must be an integer", Some("seed")))?,
    };
    let config = GenerationConfig {
        max_new_tokens: max_tokens,
        do_sample: temperature > 0.0,
        temperature: if temperature > 0.0 {
            temperature as f32
        } else {
            1.0
        },
        top_p: f.f64("top_p")?.unwrap_or(1.0) as f32,
        top_k: f.u64("top_k")?.unwrap_or(0) as usize,
        repetition_penalty: f.f64("repetition_penalty")?.unwrap_or(1.0) as f32,
        frequency_penalty: f.f64("frequency_penalty")?.unwrap_or(0.0) as f32,
        presence_penalty: f.f64("presence_penalty")?.unwrap_or(0.0) as f32,
        stop,
        seed,
        ignore_eos: f.bool("ignore_eos")?.unwrap_or(false),
        ..GenerationConfig::default()
    };
    if max_tokens == 0 {
        return Err(ApiError::bad_request(
            "max_tokens: must be at least 1",
            Some("max_tokens"),
        ));
    }
    config.validate().map_err(|e| {
        let msg = e.to_string();
        let field = msg.split(':').next().unwrap_or_default().trim().to_string();
        let known = [
            "top_p",
            "frequency_penalty",
            "presence_penalty",
            "repetition_penalty",
            "stop",
        ];
        ApiError::bad_request(
            msg,
            known.contains(&field.as_str()).then_some(field.as_str()),
        )
    })?;
    Ok(config)
}

/// The grammar `response_format` asks for: `{type: text}` (none),
/// `{type: json_object}` (any JSON object, nested up to 4 levels) or
/// `{type: json_schema, json_schema: {name, schema, strict?}}`.
fn response_format(f: &Fields) -> Result<Option<RegexGrammar>, ApiError> {
    let Some(rf) = f.get("response_format") else {
        return Ok(None);
    };
    let bad = |m: String| ApiError::bad_request(m, Some("response_format"));
    let pattern = match rf.get("type").and_then(Value::as_str) {
        Some("text") => return Ok(None),
        Some("json_object") => cairn_core::generate::json_schema::json_object_regex(4),
        Some("json_schema") => {
            let schema = rf
                .get("json_schema")
                .and_then(|j| j.get("schema"))
                .ok_or_else(|| bad("response_format.json_schema.schema: required".into()))?;
            cairn_core::generate::json_schema::schema_to_regex(schema)
                .map_err(|e| bad(format!("response_format.json_schema.schema: {e}")))?
        }
        other => {
            return Err(bad(format!(
                "response_format.type: {} is not text, json_object or json_schema",
                other.map_or("(missing)".to_string(), |t| format!("'{t}'"))
            )));
        }
    };
    RegexGrammar::new(&pattern)
        .map(Some)
        .map_err(|e| bad(format!("response_format: {e}")))
}

/// `stream` and `stream_options.include_usage`.
fn stream_flags(f: &Fields) -> Result<(bool, bool), ApiError> {
    let stream = f.bool("stream")?.unwrap_or(false);
    let usage = match f.get("stream_options") {
        None => false,
        Some(Value::Object(o)) => {
            if let Some(k) = o.keys().find(|k| k.as_str() != "include_usage") {
                return Err(ApiError::unsupported(
                    &format!("stream_options.{k}"),
                    "not supported",
                ));
            }
            match o.get("include_usage") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(b)) => *b,
                Some(_) => {
                    return Err(ApiError::bad_request(
                        "stream_options.include_usage: must be true or false",
                        Some("stream_options"),
                    ));
                }
            }
        }
        Some(_) => {
            return Err(ApiError::bad_request(
                "stream_options: must be an object",
                Some("stream_options"),
            ));
        }
    };
    if usage && !stream {
        return Err(ApiError::bad_request(
            "stream_options: only allowed when stream is true",
            Some("stream_options"),
        ));
    }
    Ok((stream, usage))
}

/// The messages of a chat request, with OpenAI's content forms (a string,
/// or a list of text parts), the assistant's `tool_calls` and `tool`
/// results.
fn messages(f: &Fields) -> Result<Vec<Turn>, ApiError> {
    let bad = |m: String| ApiError::bad_request(m, Some("messages"));
    let Some(Value::Array(list)) = f.get("messages") else {
        return Err(bad(
            "messages: required, a list of {role, content} objects".into()
        ));
    };
    if list.is_empty() {
        return Err(bad("messages: must not be empty".into()));
    }
    let mut out = Vec::with_capacity(list.len());
    for (i, m) in list.iter().enumerate() {
        let role = m
            .get("role")
            .and_then(Value::as_str)
            .ok_or_else(|| bad(format!("messages[{i}].role: required string")))?;
        if !matches!(role, "system" | "developer" | "user" | "assistant" | "tool") {
            return Err(bad(format!(
                "messages[{i}].role: '{role}' is not supported (system, developer, user, assistant, tool)"
            )));
        }
        let allowed: &[&str] = match role {
            "assistant" => &["role", "content", "name", "tool_calls", "refusal"],
            "tool" => &["role", "content", "tool_call_id", "name"],
            _ => &["role", "content", "name"],
        };
        if let Some(k) = m
            .as_object()
            .and_then(|o| o.keys().find(|k| !allowed.contains(&k.as_str())))
        {
            return Err(bad(format!("messages[{i}].{k}: not supported")));
        }
        let tool_calls = match m.get("tool_calls") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(calls)) => calls
                .iter()
                .enumerate()
                .map(|(j, c)| {
                    parse_message_call(c)
                        .map_err(|e| bad(format!("messages[{i}].tool_calls[{j}]: {e}")))
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(bad(format!("messages[{i}].tool_calls: must be a list"))),
        };
        let content = match m.get("content") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(parts)) => {
                let mut text = String::new();
                for (j, p) in parts.iter().enumerate() {
                    match (
                        p.get("type").and_then(Value::as_str),
                        p.get("text").and_then(Value::as_str),
                    ) {
                        (Some("text"), Some(t)) => text.push_str(t),
                        (kind, _) => {
                            return Err(bad(format!(
                                "messages[{i}].content[{j}]: only text parts are supported, got type {}",
                                kind.unwrap_or("(none)")
                            )));
                        }
                    }
                }
                text
            }
            // An assistant turn that only calls tools has no content.
            None | Some(Value::Null) if !tool_calls.is_empty() => String::new(),
            _ => {
                return Err(bad(format!(
                    "messages[{i}].content: required, a string or a list of text parts"
                )));
            }
        };
        // Chat templates know `system`; OpenAI's `developer` is its newer name.
        let role = if role == "developer" { "system" } else { role };
        out.push(Turn {
            role: role.into(),
            content,
            tool_calls,
        });
    }
    Ok(out)
}

/// One `{"id", "type": "function", "function": {"name", "arguments"}}` of
/// an assistant message (arguments as a JSON string, as OpenAI sends them).
fn parse_message_call(c: &Value) -> Result<ToolCall, String> {
    let func = c.get("function").ok_or("function: required")?;
    let name = func
        .get("name")
        .and_then(Value::as_str)
        .ok_or("function.name: required string")?;
    let arguments = match func.get("arguments") {
        Some(Value::String(s)) => {
            serde_json::from_str(s).map_err(|e| format!("function.arguments: not JSON ({e})"))?
        }
        Some(v @ Value::Object(_)) => v.clone(),
        None => json!({}),
        Some(_) => return Err("function.arguments: a JSON string".into()),
    };
    Ok(ToolCall {
        name: name.into(),
        arguments,
    })
}

/// The request's `tools` (OpenAI's function declarations), checked.
fn tools(f: &Fields) -> Result<Vec<ToolSpec>, ApiError> {
    let bad = |m: String| ApiError::bad_request(m, Some("tools"));
    let list = match f.get("tools") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(l)) => l,
        Some(_) => return Err(bad("tools: must be a list".into())),
    };
    let mut out: Vec<ToolSpec> = Vec::new();
    for (i, t) in list.iter().enumerate() {
        if t.get("type").and_then(Value::as_str) != Some("function") {
            return Err(bad(format!(
                "tools[{i}].type: only \"function\" is supported"
            )));
        }
        let func = t
            .get("function")
            .ok_or_else(|| bad(format!("tools[{i}].function: required")))?;
        if let Some(k) = func.as_object().and_then(|o| {
            o.keys()
                .find(|k| !matches!(k.as_str(), "name" | "description" | "parameters" | "strict"))
        }) {
            return Err(bad(format!("tools[{i}].function.{k}: not supported")));
        }
        let spec = ToolSpec {
            name: func
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| bad(format!("tools[{i}].function.name: required string")))?
                .into(),
            description: func
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or("")
                .into(),
            parameters: func
                .get("parameters")
                .cloned()
                .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
        };
        spec.check()
            .map_err(|e| bad(format!("tools[{i}]: {}", strip_kind(&e.to_string()))))?;
        if out.iter().any(|o| o.name == spec.name) {
            return Err(bad(format!(
                "tools[{i}]: '{}' is declared twice",
                spec.name
            )));
        }
        out.push(spec);
    }
    Ok(out)
}

/// A core error's message without its kind prefix ("input: ").
fn strip_kind(m: &str) -> &str {
    m.strip_prefix("input: ").unwrap_or(m)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn request_id(prefix: &str) -> String {
    let n = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{prefix}-{n:x}")
}

fn finish_str(f: &FinishReason) -> &'static str {
    match f {
        FinishReason::Length => "length",
        _ => "stop",
    }
}

fn usage(prompt: usize, completion: usize) -> Value {
    json!({"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion})
}

/// Checks the requested model against the decoder this server runs.
fn check_decoder(state: &AppState, f: &Fields) -> Result<(), ApiError> {
    let model = f.string("model")?;
    let Some(name) = &state.decoder_name else {
        return Err(ApiError::model_not_found(&model, &state.model_names()));
    };
    if &model != name {
        return Err(ApiError::model_not_found(&model, &state.model_names()));
    }
    Ok(())
}

/// Queues a generation and returns its event stream.
fn submit(
    state: &AppState,
    prompt: Prompt,
    config: GenerationConfig,
    grammar: Option<OutputGrammar>,
) -> Result<UnboundedReceiver<Event>, ApiError> {
    let engine = state
        .engine
        .as_ref()
        .ok_or_else(|| ApiError::unavailable("this server runs no decoder"))?;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    engine.submit(Job::Generate(Box::new(GenJob {
        prompt,
        config,
        grammar,
        events: tx,
        arrived: Instant::now(),
    })))?;
    Ok(rx)
}

/// Waits for the whole generation: (text, finish, prompt tokens, completion tokens).
async fn collect(
    mut rx: UnboundedReceiver<Event>,
) -> Result<(String, FinishReason, usize, usize), ApiError> {
    let mut text = String::new();
    while let Some(e) = rx.recv().await {
        match e {
            Event::Started { .. } => {}
            Event::Text(t) => text.push_str(&t),
            Event::Done {
                finish,
                prompt_tokens,
                completion_tokens,
            } => {
                return Ok((text, finish, prompt_tokens, completion_tokens));
            }
            Event::Error(m) => return Err(ApiError::bad_request(m, None)),
        }
    }
    Err(ApiError::internal("the decoder stopped before finishing"))
}

/// Waits for the first event so that a prompt error is an HTTP error, not a broken stream.
async fn first_event(rx: &mut UnboundedReceiver<Event>) -> Result<usize, ApiError> {
    match rx.recv().await {
        Some(Event::Started { prompt_tokens }) => Ok(prompt_tokens),
        Some(Event::Error(m)) => Err(ApiError::bad_request(m, None)),
        _ => Err(ApiError::internal("the decoder stopped before starting")),
    }
}

/// Which route shapes a stream.
#[derive(Clone, Copy)]
enum Kind {
    Chat,
    Completion,
}

/// Makes the `data:` events of one streamed response: `chunk(choices,
/// usage)` wraps them in the response's id, object, created and model.
fn chunker(
    object: &'static str,
    model: String,
    include_usage: bool,
) -> impl Fn(Value, Option<Value>) -> SseEvent + Clone {
    let id = request_id(match object {
        "text_completion" => "cmpl",
        _ => "chatcmpl",
    });
    let created = now();
    move |choice: Value, usage_v: Option<Value>| -> SseEvent {
        let mut v = json!({"id": id, "object": object, "created": created, "model": model, "choices": choice});
        if include_usage {
            v["usage"] = usage_v.unwrap_or(Value::Null);
        }
        SseEvent::default().data(v.to_string())
    }
}

/// The end of a stream: the finishing chunk, the usage chunk when asked
/// for, and `[DONE]`.
fn closing(
    chunk: &impl Fn(Value, Option<Value>) -> SseEvent,
    finish_choice: Value,
    usage_counts: Option<(usize, usize)>,
) -> Vec<SseEvent> {
    let mut out = vec![chunk(finish_choice, None)];
    if let Some((p, c)) = usage_counts {
        out.push(chunk(json!([]), Some(usage(p, c))));
    }
    out.push(SseEvent::default().data("[DONE]"));
    out
}

/// A failure mid-stream: an error event, then `[DONE]`.
fn stream_error(m: String) -> Vec<SseEvent> {
    vec![
        SseEvent::default().data(ApiError::internal(m).body().to_string()),
        SseEvent::default().data("[DONE]"),
    ]
}

/// The SSE response of `first` and then `body`'s events.
fn sse_response(
    first: Option<SseEvent>,
    body: impl futures_util::Stream<Item = Vec<SseEvent>> + Send + 'static,
) -> Response {
    let events = futures_util::stream::iter(first.into_iter().map(|e| vec![e]))
        .chain(body)
        .flat_map(|v| futures_util::stream::iter(v.into_iter().map(Ok::<_, Infallible>)));
    Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// Turns engine events into OpenAI's SSE chunks, ending with `[DONE]`.
fn sse(kind: Kind, rx: UnboundedReceiver<Event>, model: String, include_usage: bool) -> Response {
    let object = match kind {
        Kind::Chat => "chat.completion.chunk",
        Kind::Completion => "text_completion",
    };
    let chunk = chunker(object, model, include_usage);
    let first = match kind {
        Kind::Chat => Some(chunk(
            json!([{"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": null, "finish_reason": null}]),
            None,
        )),
        Kind::Completion => None,
    };
    let body = UnboundedReceiverStream::new(rx).map(move |e| -> Vec<SseEvent> {
        match e {
            Event::Started { .. } => Vec::new(),
            Event::Text(t) => vec![chunk(
                match kind {
                    Kind::Chat => json!([{"index": 0, "delta": {"content": t}, "logprobs": null, "finish_reason": null}]),
                    Kind::Completion => json!([{"index": 0, "text": t, "logprobs": null, "finish_reason": null}]),
                },
                None,
            )],
            Event::Done { finish, prompt_tokens, completion_tokens } => {
                let fin = finish_str(&finish);
                let choice = match kind {
                    Kind::Chat => json!([{"index": 0, "delta": {}, "logprobs": null, "finish_reason": fin}]),
                    Kind::Completion => json!([{"index": 0, "text": "", "logprobs": null, "finish_reason": fin}]),
                };
                closing(&chunk, choice, include_usage.then_some((prompt_tokens, completion_tokens)))
            }
            Event::Error(m) => stream_error(m),
        }
    });
    sse_response(first, body)
}

/// `GET /v1/models`.
pub async fn models(State(state): State<Arc<AppState>>) -> Response {
    let created = state.started_unix;
    let data: Vec<Value> = state
        .model_names()
        .iter()
        .map(|id| json!({"id": id, "object": "model", "created": created, "owned_by": "cairn"}))
        .collect();
    axum::Json(json!({"object": "list", "data": data})).into_response()
}

/// `POST /v1/chat/completions`.
pub async fn chat_completions(
    State(state): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let mut known = SAMPLING_FIELDS.to_vec();
    known.extend([
        "messages",
        "max_completion_tokens",
        "tools",
        "tool_choice",
        "response_format",
        "parallel_tool_calls",
    ]);
    let f = Fields::new(parse_body(body)?, &known)?;
    check_decoder(&state, &f)?;
    let declared = tools(&f)?;
    let choice = match f.get("tool_choice") {
        None | Some(Value::Null) => ToolChoice::Auto,
        Some(v) => ToolChoice::from_openai(v, &declared)
            .map_err(|e| ApiError::bad_request(strip_kind(&e.to_string()), Some("tool_choice")))?,
    };
    let parallel = f.bool("parallel_tool_calls")?.unwrap_or(true);
    let response = response_format(&f)?;
    let turns = messages(&f)?;
    let config = generation_config(&f, state.default_max_tokens)?;
    let (stream, include_usage) = stream_flags(&f)?;
    let model = f.string("model")?;
    // Which tools the model may call in this answer.
    let callable: Vec<ToolSpec> = match &choice {
        _ if declared.is_empty() => Vec::new(),
        ToolChoice::None => Vec::new(),
        ToolChoice::Function(n) => declared.iter().filter(|t| &t.name == n).cloned().collect(),
        ToolChoice::Auto | ToolChoice::Required => declared.clone(),
    };
    let tool_err =
        |e: cairn_core::Error| ApiError::bad_request(strip_kind(&e.to_string()), Some("tools"));
    let grammar = match (&choice, callable.is_empty(), response) {
        (_, true, r) => r.map(OutputGrammar::Whole),
        (_, false, Some(_)) => {
            return Err(ApiError::bad_request(
                "response_format with callable tools is not supported; set tool_choice to \"none\" for a formatted answer",
                Some("response_format"),
            ));
        }
        (ToolChoice::Auto, false, None) => Some(OutputGrammar::AfterTrigger {
            trigger: CALL_OPEN.into(),
            grammar: RegexGrammar::new(&after_open_pattern(&callable, parallel).map_err(tool_err)?)
                .map_err(tool_err)?,
        }),
        (_, false, None) => Some(OutputGrammar::Whole(
            RegexGrammar::new(&calls_pattern(&callable, parallel).map_err(tool_err)?)
                .map_err(tool_err)?,
        )),
    };
    let with_tools = !declared.is_empty()
        || turns
            .iter()
            .any(|t| t.role == "tool" || !t.tool_calls.is_empty());
    let prompt = if with_tools {
        Prompt::ChatTools {
            turns,
            // tool_choice none: the tools stay declared, but no call is decoded.
            tools: declared,
        }
    } else {
        Prompt::Chat(
            turns
                .iter()
                .map(|t| ChatMessage::new(&t.role, &t.content))
                .collect(),
        )
    };
    let calls_possible = !callable.is_empty();
    let mut rx = submit(&state, prompt, config, grammar)?;
    if stream {
        first_event(&mut rx).await?;
        if calls_possible {
            return Ok(sse_tools(rx, model, include_usage));
        }
        return Ok(sse(Kind::Chat, rx, model, include_usage));
    }
    let (text, finish, p, c) = collect(rx).await?;
    let (message, finish) = if calls_possible {
        let parsed = match parse_tool_calls(&text) {
            Ok(p) => Ok(p),
            // Cut by max_tokens inside a call: the text as it stands.
            Err(_) if finish == FinishReason::Length => Ok((text.clone(), Vec::new())),
            Err(e) => Err(ApiError::internal(format!(
                "the model's tool call did not parse: {e}"
            ))),
        };
        let (content, calls) = parsed?;
        if calls.is_empty() {
            (
                json!({"role": "assistant", "content": text, "refusal": null}),
                finish_str(&finish),
            )
        } else {
            let content = if content.is_empty() {
                Value::Null
            } else {
                Value::String(content)
            };
            (
                json!({"role": "assistant", "content": content, "refusal": null,
                       "tool_calls": openai_calls(&calls)}),
                "tool_calls",
            )
        }
    } else {
        (
            json!({"role": "assistant", "content": text, "refusal": null}),
            finish_str(&finish),
        )
    };
    Ok(axum::Json(json!({
        "id": request_id("chatcmpl"),
        "object": "chat.completion",
        "created": now(),
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish}],
        "usage": usage(p, c),
    }))
    .into_response())
}

/// Calls in OpenAI's shape: ids, and arguments as a JSON string.
fn openai_calls(calls: &[ToolCall]) -> Vec<Value> {
    let base = request_id("call");
    calls
        .iter()
        .enumerate()
        .map(|(i, c)| {
            json!({"id": format!("{base}-{i}"), "type": "function",
                   "function": {"name": c.name, "arguments": c.arguments.to_string()}})
        })
        .collect()
}

/// The length of the longest suffix of `text` that is a proper prefix of
/// [`CALL_OPEN`] (text that may still turn into a call, held back).
fn partial_open(text: &str) -> usize {
    (1..CALL_OPEN.len())
        .rev()
        .find(|&n| {
            text.len() >= n
                && text.is_char_boundary(text.len() - n)
                && CALL_OPEN.starts_with(&text[text.len() - n..])
        })
        .unwrap_or(0)
}

/// Streams a chat answer that may call tools: text before a call streams
/// as `content` (holding back what may be the start of `<tool_call>`);
/// calls are sent whole as `tool_calls` deltas once decoded, then
/// `finish_reason` `tool_calls`.
fn sse_tools(rx: UnboundedReceiver<Event>, model: String, include_usage: bool) -> Response {
    let chunk = chunker("chat.completion.chunk", model, include_usage);
    let first = chunk(
        json!([{"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": null, "finish_reason": null}]),
        None,
    );
    let content = |t: &str| json!([{"index": 0, "delta": {"content": t}, "logprobs": null, "finish_reason": null}]);
    // (held-back text, whether a call began, everything after the call began)
    let mut held = String::new();
    let mut in_call = false;
    let mut call_text = String::new();
    let body = UnboundedReceiverStream::new(rx).map(move |e| -> Vec<SseEvent> {
        match e {
            Event::Started { .. } => Vec::new(),
            Event::Text(t) => {
                if in_call {
                    call_text.push_str(&t);
                    return Vec::new();
                }
                held.push_str(&t);
                if let Some(at) = held.find(CALL_OPEN) {
                    in_call = true;
                    call_text = held[at..].to_string();
                    let before = held[..at].to_string();
                    held.clear();
                    return if before.is_empty() { Vec::new() } else { vec![chunk(content(&before), None)] };
                }
                let keep = partial_open(&held);
                let ready: String = held[..held.len() - keep].to_string();
                held.drain(..held.len() - keep);
                if ready.is_empty() { Vec::new() } else { vec![chunk(content(&ready), None)] }
            }
            Event::Done { finish, prompt_tokens, completion_tokens } => {
                let mut out = Vec::new();
                let mut fin = finish_str(&finish);
                if !held.is_empty() {
                    out.push(chunk(content(&held), None));
                }
                if in_call {
                    match parse_tool_calls(&call_text) {
                        Ok((_, calls)) if !calls.is_empty() => {
                            let deltas: Vec<Value> = openai_calls(&calls)
                                .into_iter()
                                .enumerate()
                                .map(|(i, mut c)| {
                                    c["index"] = json!(i);
                                    c
                                })
                                .collect();
                            out.push(chunk(
                                json!([{"index": 0, "delta": {"tool_calls": deltas}, "logprobs": null, "finish_reason": null}]),
                                None,
                            ));
                            fin = "tool_calls";
                        }
                        _ => out.push(chunk(content(&call_text), None)),
                    }
                }
                out.extend(closing(
                    &chunk,
                    json!([{"index": 0, "delta": {}, "logprobs": null, "finish_reason": fin}]),
                    include_usage.then_some((prompt_tokens, completion_tokens)),
                ));
                out
            }
            Event::Error(m) => stream_error(m),
        }
    });
    sse_response(Some(first), body)
}

/// `POST /v1/completions`.
pub async fn completions(
    State(state): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let mut known = SAMPLING_FIELDS.to_vec();
    known.extend(["prompt", "echo", "suffix", "best_of", "response_format"]);
    let f = Fields::new(parse_body(body)?, &known)?;
    check_decoder(&state, &f)?;
    if f.bool("echo")?.unwrap_or(false) {
        return Err(ApiError::unsupported(
            "echo",
            "echoing the prompt is not supported",
        ));
    }
    if f.get("suffix").is_some() {
        return Err(ApiError::unsupported(
            "suffix",
            "fill-in-the-middle is not supported",
        ));
    }
    if f.u64("best_of")?.is_some_and(|b| b != 1) {
        return Err(ApiError::unsupported(
            "best_of",
            "only best_of = 1 is supported",
        ));
    }
    let prompts = f
        .strings("prompt")?
        .ok_or_else(|| ApiError::bad_request("prompt: required", Some("prompt")))?;
    let [prompt] = <[String; 1]>::try_from(prompts).map_err(|_| {
        ApiError::unsupported("prompt", "exactly one prompt per request is supported")
    })?;
    let config = generation_config(&f, state.default_max_tokens)?;
    let (stream, include_usage) = stream_flags(&f)?;
    let model = f.string("model")?;
    let grammar = response_format(&f)?.map(OutputGrammar::Whole);
    let mut rx = submit(&state, Prompt::Text(prompt), config, grammar)?;
    if stream {
        first_event(&mut rx).await?;
        return Ok(sse(Kind::Completion, rx, model, include_usage));
    }
    let (text, finish, p, c) = collect(rx).await?;
    Ok(axum::Json(json!({
        "id": request_id("cmpl"),
        "object": "text_completion",
        "created": now(),
        "model": model,
        "choices": [{"index": 0, "text": text, "logprobs": null, "finish_reason": finish_str(&finish)}],
        "usage": usage(p, c),
    }))
    .into_response())
}

/// Embeds texts through the batcher (shared with `/v1/ask`).
pub async fn embed(state: &AppState, texts: Vec<String>) -> Result<Embedded, ApiError> {
    let handle = state
        .embed
        .as_ref()
        .ok_or_else(|| ApiError::unavailable("this server runs no embedder"))?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    handle.submit(Work::Embed(EmbedJob { texts, reply: tx }))?;
    rx.await
        .map_err(|_| ApiError::internal("the embedder stopped"))?
        .map_err(|m| ApiError::bad_request(m, Some("input")))
}

/// `POST /v1/embeddings`.
pub async fn embeddings(
    State(state): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let f = Fields::new(
        parse_body(body)?,
        &["model", "input", "encoding_format", "dimensions", "user"],
    )?;
    let model = f.string("model")?;
    if state.embedder_name.as_deref() != Some(model.as_str()) {
        return Err(ApiError::model_not_found(&model, &state.model_names()));
    }
    let texts = f
        .strings("input")?
        .ok_or_else(|| ApiError::bad_request("input: required", Some("input")))?;
    if texts.is_empty() {
        return Err(ApiError::bad_request(
            "input: must not be empty",
            Some("input"),
        ));
    }
    if let Some(i) = texts.iter().position(String::is_empty) {
        return Err(ApiError::bad_request(
            format!("input[{i}]: must not be empty"),
            Some("input"),
        ));
    }
    let base64 = match f.opt_string("encoding_format")?.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(o) => {
            return Err(ApiError::bad_request(
                format!("encoding_format: '{o}' is not float or base64"),
                Some("encoding_format"),
            ));
        }
    };
    let full = state.embed.as_ref().map_or(0, |e| e.dim);
    let dims = match f.u64("dimensions")? {
        None => full,
        Some(d) if d >= 1 && (d as usize) <= full => d as usize,
        Some(d) => {
            return Err(ApiError::bad_request(
                format!("dimensions: must be in 1..={full}, got {d}"),
                Some("dimensions"),
            ));
        }
    };
    let out = embed(&state, texts).await?;
    let data: Vec<Value> = out
        .vectors
        .iter()
        .enumerate()
        .map(|(i, v)| {
            // Matryoshka: keep the first `dims` components, then renormalize.
            let mut v = v[..dims.min(v.len())].to_vec();
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            if norm > 0.0 && dims < full {
                v.iter_mut().for_each(|x| *x /= norm);
            }
            let embedding = if base64 {
                let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                json!(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                json!(v)
            };
            json!({"object": "embedding", "index": i, "embedding": embedding})
        })
        .collect();
    Ok(axum::Json(json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": out.tokens, "total_tokens": out.tokens},
    }))
    .into_response())
}
