//! Options objects from JavaScript: camelCase keys (`maxNewTokens`) mapped
//! onto the core's settings, unknown keys rejected by name.
//!
//! Everything after the JS value is turned into JSON is plain Rust over
//! `serde_json` maps, so the parsers run (and are fuzzed,
//! `wasm/tests/fuzz_options.rs`) natively too.

use cairn_core::agent::ToolSpec;
use cairn_core::agent::react::AgentOptions;
use cairn_core::generate::{GenerationConfig, RegexGrammar};
use cairn_core::rag::answer::{AskOptions, SourceText};
use cairn_core::rag::{Method, SearchOptions};
use serde_json::{Map, Value};
use wasm_bindgen::prelude::*;

/// A bad options object: the message names the call and the option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionsError(pub String);

impl std::fmt::Display for OptionsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for OptionsError {}

fn err<T>(msg: String) -> Result<T, OptionsError> {
    Err(OptionsError(msg))
}

/// `maxNewTokens` → `max_new_tokens`.
pub fn snake_case(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 4);
    for c in key.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// `max_new_tokens` → `maxNewTokens`.
pub fn camel_case(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut up = false;
    for c in key.chars() {
        if c == '_' {
            up = true;
        } else if up {
            out.push(c.to_ascii_uppercase());
            up = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// A JS options object (or `undefined`/`null`) as a JSON map.
pub(crate) fn object(js: &JsValue, what: &str) -> Result<Map<String, Value>, JsError> {
    if js.is_undefined() || js.is_null() {
        return Ok(Map::new());
    }
    match serde_wasm_bindgen::from_value::<Value>(js.clone()) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(other) => Err(JsError::new(&format!(
            "{what}: expected an options object, got {other}"
        ))),
        Err(e) => Err(JsError::new(&format!("{what}: {e}"))),
    }
}

/// Decoding settings from the keys of `opts` (camelCase, as in
/// transformers.js: `maxNewTokens`, `doSample`, `temperature`, `topK`,
/// `topP`, `repetitionPenalty`, `noRepeatNgramSize`, `numBeams`,
/// `lengthPenalty`, `earlyStopping`, `stop`, `eosTokenIds`, `seed`).
/// A key that is none of these is an error listing them.
pub fn generation(opts: Map<String, Value>, what: &str) -> Result<GenerationConfig, OptionsError> {
    let defaults = serde_json::to_value(GenerationConfig::default())
        .map_err(|e| OptionsError(format!("{what}: {e}")))?;
    let known: Vec<String> = defaults
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    let mut snake = Map::new();
    for (k, v) in opts {
        let s = snake_case(&k);
        if !known.contains(&s) {
            let names: Vec<String> = known.iter().map(|k| camel_case(k)).collect();
            return err(format!(
                "{what}: unknown option '{k}' (decoding options: {})",
                names.join(", ")
            ));
        }
        snake.insert(s, v);
    }
    let config: GenerationConfig = serde_json::from_value(Value::Object(snake))
        .map_err(|e| OptionsError(format!("{what}: {e}")))?;
    config
        .validate()
        .map_err(|e| OptionsError(format!("{what}: {e}")))?;
    Ok(config)
}

/// Removes `key` from `opts` and reads it as `T`.
pub fn take<T: serde::de::DeserializeOwned>(
    opts: &mut Map<String, Value>,
    key: &str,
    what: &str,
) -> Result<Option<T>, OptionsError> {
    match opts.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => serde_json::from_value(v)
            .map(Some)
            .map_err(|e| OptionsError(format!("{what}: option '{key}': {e}"))),
    }
}

/// Search settings taken out of an options object: `method` (`"hybrid"`,
/// `"bm25"`, `"dense"`), `k`, `candidates`, `mmrLambda`, `collections`,
/// `weights` (`[bm25, dense]`). Other keys are left in `o`.
pub fn search_options(
    o: &mut Map<String, Value>,
    what: &str,
) -> Result<SearchOptions, OptionsError> {
    let mut s = SearchOptions::default();
    if let Some(m) = take::<String>(o, "method", what)? {
        s.method = match m.as_str() {
            "hybrid" => Method::Hybrid,
            "bm25" => Method::Bm25,
            "dense" => Method::Dense,
            other => {
                return err(format!(
                    "{what}: option 'method': unknown value '{other}' (use \"hybrid\", \"bm25\" or \"dense\")"
                ));
            }
        }
    }
    if let Some(k) = take(o, "k", what)? {
        s.k = k;
    }
    if let Some(c) = take(o, "candidates", what)? {
        s.candidates = c;
    }
    s.mmr_lambda = take(o, "mmrLambda", what)?;
    if let Some(c) = take(o, "collections", what)? {
        s.collections = c;
    }
    if let Some(w) = take(o, "weights", what)? {
        s.weights = w;
    }
    if s.k == 0 || s.candidates < s.k {
        return err(format!(
            "{what}: need 1 ≤ k ≤ candidates, got k = {}, candidates = {}",
            s.k, s.candidates
        ));
    }
    if let Some(l) = s.mmr_lambda
        && !(0.0..=1.0).contains(&l)
    {
        return err(format!(
            "{what}: option 'mmrLambda': must be in [0, 1], got {l}"
        ));
    }
    let (wb, wd) = s.weights;
    if [wb, wd].iter().any(|w| !w.is_finite() || *w < 0.0) {
        return err(format!(
            "{what}: option 'weights': must be finite and ≥ 0, got {:?}",
            s.weights
        ));
    }
    Ok(s)
}

/// The options of `Index.search`: the search settings and nothing else.
pub fn search(mut o: Map<String, Value>) -> Result<SearchOptions, OptionsError> {
    let s = search_options(&mut o, "search")?;
    match o.keys().next() {
        Some(k) => err(format!(
            "search: unknown option '{k}' (method, k, candidates, mmrLambda, collections, weights)"
        )),
        None => Ok(s),
    }
}

/// The options of `Index.ask`: search settings, `minCosine`, `context`
/// (`"matched"` or `"passage"`), `answer` (`"generate"`, the default, or
/// `"quote"`: the extractive answer, no decoder) and the decoding options.
/// The third value is whether to quote.
pub fn ask(mut o: Map<String, Value>) -> Result<(SearchOptions, AskOptions, bool), OptionsError> {
    let s = search_options(&mut o, "ask")?;
    let quote = match take::<String>(&mut o, "answer", "ask")?.as_deref() {
        None | Some("generate") => false,
        Some("quote") => true,
        Some(other) => {
            return err(format!(
                "ask: option 'answer': unknown value '{other}' (use \"generate\" or \"quote\")"
            ));
        }
    };
    let min_cosine = take::<f32>(&mut o, "minCosine", "ask")?;
    let context = take::<SourceText>(&mut o, "context", "ask")?;
    let g = generation(o, "ask")?;
    let mut ask = AskOptions {
        generation: g,
        ..Default::default()
    };
    if let Some(m) = min_cosine {
        if !m.is_finite() {
            return err(format!("ask: option 'minCosine': must be finite, got {m}"));
        }
        ask.min_cosine = m;
    }
    if let Some(c) = context {
        ask.source_text = c;
    }
    Ok((s, ask, quote))
}

/// The options of `Generator.generate`: the output grammar (`jsonSchema`,
/// `regex` or `choice`, at most one) and the decoding options.
pub fn generate(
    mut o: Map<String, Value>,
) -> Result<(Option<RegexGrammar>, GenerationConfig), OptionsError> {
    use cairn_core::generate::{json_schema, regex_constraint};
    let schema = o.remove("jsonSchema");
    let regex = take::<String>(&mut o, "regex", "generate")?;
    let choice = take::<Vec<String>>(&mut o, "choice", "generate")?;
    let pattern = match (schema, regex, choice) {
        (None, None, None) => None,
        (Some(s), None, None) => Some(
            json_schema::schema_to_regex(&s)
                .map_err(|e| OptionsError(format!("generate: jsonSchema: {e}")))?,
        ),
        (None, Some(r), None) => Some(r),
        (None, None, Some(c)) => Some(
            regex_constraint::choice_pattern(&c)
                .map_err(|e| OptionsError(format!("generate: choice: {e}")))?,
        ),
        _ => return err("generate: give at most one of jsonSchema, regex and choice".into()),
    };
    let grammar = match pattern {
        Some(p) => Some(RegexGrammar::new(&p).map_err(|e| OptionsError(format!("generate: {e}")))?),
        None => None,
    };
    Ok((grammar, generation(o, "generate")?))
}

/// The tools and options of `new Agent`: `tools` is `[{ name, description,
/// parameters }]`; options `maxSteps`, `maxStepTokens`, `examples`,
/// `constrained` and the decoding options.
pub fn agent(
    tools: Value,
    mut o: Map<String, Value>,
) -> Result<(Vec<ToolSpec>, AgentOptions), OptionsError> {
    let tools: Vec<ToolSpec> = serde_json::from_value(tools).map_err(|e| {
        OptionsError(format!(
            "agent: tools must be [{{ name, description, parameters }}] ({e})"
        ))
    })?;
    let mut a = AgentOptions::default();
    if let Some(n) = take::<usize>(&mut o, "maxSteps", "agent")? {
        a.max_steps = n;
    }
    if let Some(n) = take::<usize>(&mut o, "maxStepTokens", "agent")? {
        a.max_step_tokens = n;
    }
    if let Some(b) = take::<bool>(&mut o, "examples", "agent")? {
        a.examples = b;
    }
    if let Some(b) = take::<bool>(&mut o, "constrained", "agent")? {
        a.constrained = b;
    }
    a.generation = generation(o, "agent")?;
    Ok((tools, a))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_convert_both_ways() {
        assert_eq!(snake_case("maxNewTokens"), "max_new_tokens");
        assert_eq!(camel_case("max_new_tokens"), "maxNewTokens");
        assert_eq!(snake_case("seed"), "seed");
    }
}
