//! Options objects from JavaScript: camelCase keys (`maxNewTokens`) mapped
//! onto the core's settings, unknown keys rejected by name.

use cairn_core::generate::GenerationConfig;
use serde_json::{Map, Value};
use wasm_bindgen::prelude::*;

/// `maxNewTokens` → `max_new_tokens`.
pub(crate) fn snake_case(key: &str) -> String {
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
pub(crate) fn camel_case(key: &str) -> String {
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
pub(crate) fn generation(
    opts: Map<String, Value>,
    what: &str,
) -> Result<GenerationConfig, JsError> {
    let defaults = serde_json::to_value(GenerationConfig::default()).map_err(crate::js_err)?;
    let known: Vec<String> = defaults
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    let mut snake = Map::new();
    for (k, v) in opts {
        let s = snake_case(&k);
        if !known.contains(&s) {
            let names: Vec<String> = known.iter().map(|k| camel_case(k)).collect();
            return Err(JsError::new(&format!(
                "{what}: unknown option '{k}' (decoding options: {})",
                names.join(", ")
            )));
        }
        snake.insert(s, v);
    }
    let config: GenerationConfig = serde_json::from_value(Value::Object(snake))
        .map_err(|e| JsError::new(&format!("{what}: {e}")))?;
    config.validate().map_err(crate::js_err)?;
    Ok(config)
}

/// Removes `key` from `opts` and reads it as `T`.
pub(crate) fn take<T: serde::de::DeserializeOwned>(
    opts: &mut Map<String, Value>,
    key: &str,
    what: &str,
) -> Result<Option<T>, JsError> {
    match opts.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => serde_json::from_value(v)
            .map(Some)
            .map_err(|e| JsError::new(&format!("{what}: option '{key}': {e}"))),
    }
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
