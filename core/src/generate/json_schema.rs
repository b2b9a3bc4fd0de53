//! JSON Schema → a regular expression over compact JSON text (Outlines'
//! `build_regex_from_schema` approach), for [`super::regex_constraint`].
//!
//! Supported: `type` (object, array, string, integer, number, boolean,
//! null, or a list of them), `properties` (emitted in declaration order;
//! `required` ones always, optional ones may be left out), `additionalProperties`
//! (only `false` or absent: no other keys are generated), `enum`, `const`,
//! `items`, `minItems`/`maxItems`, `minLength`/`maxLength`, `pattern`
//! (a regex-syntax subset, anchored), `format` (date, time, date-time,
//! uuid, email), `anyOf`/`oneOf`, `$ref` to `#/$defs/…` or
//! `#/definitions/…` (not recursive), and descriptive keywords (`title`,
//! `description`, `default`, `examples`, `$schema`, `$id`). Integer
//! `minimum`/`maximum`/`exclusiveMinimum`/`exclusiveMaximum` (draft 4
//! booleans too) are exact digit-range patterns; number `minimum`/`maximum`
//! (whole numbers) likewise, written without an exponent. Any other keyword is an error
//! naming it. Whitespace: none, except one optional space after `:` and `,`.

use serde_json::{Map, Value};

use super::regex_constraint::regex_syntax_escape;
use crate::error::{Error, Result};

/// How deep `$ref`s may nest before the schema counts as recursive.
const MAX_REF_DEPTH: usize = 16;

const STRING_CHAR: &str = r#"([^"\\\x00-\x1F]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})"#;
const NUMBER: &str = r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?";
const SEP: &str = " ?";

/// The regex every output of `schema` matches.
pub fn schema_to_regex(schema: &Value) -> Result<String> {
    Compiler { root: schema }.value(schema, 0, "")
}

/// Any JSON object, nested up to `depth` levels (`response_format` `json_object`).
pub fn json_object_regex(depth: usize) -> String {
    let member = format!("\"{STRING_CHAR}*\":{SEP}{}", json_object_value(depth));
    format!(r"\{{({member}(,{SEP}{member})*)?\}}")
}

/// A regex of the integers in `[lo, hi]` (either end open), in JSON's
/// spelling (no leading zeros, `-` for negatives): llama.cpp's
/// `_generate_min_max_int` approach, digit by digit.
fn int_range(lo: Option<i64>, hi: Option<i64>) -> String {
    let mut alts = Vec::new();
    // Non-negative part.
    let nlo = lo.map_or(0, |l| l.max(0));
    if hi.is_none_or(|h| h >= nlo) {
        alts.push(uint_range(nlo as u64, hi.map(|h| h as u64)));
    }
    // Negative part: -[|min(hi, -1)|, |lo|].
    let nhi = hi.map_or(-1, |h| h.min(-1));
    if lo.is_none_or(|l| l <= nhi) {
        let a = nhi.unsigned_abs();
        let b = lo.map(i64::unsigned_abs);
        alts.push(format!("-{}", uint_range(a, b)));
    }
    match alts.len() {
        1 => alts.remove(0),
        _ => format!("({})", alts.join("|")),
    }
}

/// A regex of the decimal numbers in `[lo, hi]` (whole-number bounds,
/// either end open): an integer part in range with any fraction, or the
/// upper bound itself with only zeros after the point. No exponent.
fn number_range(lo: Option<i64>, hi: Option<i64>) -> String {
    const FRAC: &str = r"(\.[0-9]+)?";
    const ZEROS: &str = r"(\.0+)?";
    const NONZERO_FRAC: &str = r"\.[0-9]*[1-9][0-9]*";
    let mut alts = Vec::new();
    // Non-negative values in [max(lo, 0), hi].
    let p = lo.map_or(0, |l| l.max(0));
    match hi {
        None => alts.push(format!("{}{FRAC}", uint_range(p as u64, None))),
        Some(h) if h >= p => {
            if h > p {
                alts.push(format!(
                    "{}{FRAC}",
                    uint_range(p as u64, Some(h as u64 - 1))
                ));
            }
            alts.push(format!("{h}{ZEROS}"));
        }
        Some(_) => {}
    }
    // Negative values -x with x in [max(-hi, 0), -lo] (x > 0).
    if lo.is_none_or(|l| l < 0) {
        let top = lo.map(i64::unsigned_abs); // x at most this
        let bottom = hi.map_or(0, |h| if h < 0 { h.unsigned_abs() } else { 0 }); // x at least this
        let mut neg = Vec::new();
        if bottom == 0 {
            // 0 < x < 1.
            neg.push(format!("0{NONZERO_FRAC}"));
        }
        let from = bottom.max(1);
        match top {
            None => neg.push(format!("{}{FRAC}", uint_range(from, None))),
            Some(t) if t >= from => {
                if t > from {
                    neg.push(format!("{}{FRAC}", uint_range(from, Some(t - 1))));
                }
                neg.push(format!("{t}{ZEROS}"));
            }
            Some(_) => {}
        }
        if !neg.is_empty() {
            alts.push(format!("-({})", neg.join("|")));
        }
    }
    format!("({})", alts.join("|"))
}

/// Non-negative integers in `[a, b]` (`b` open when `None`).
fn uint_range(a: u64, b: Option<u64>) -> String {
    let la = a.to_string().len();
    let mut alts = Vec::new();
    match b {
        Some(b) => {
            let lb = b.to_string().len();
            for len in la..=lb {
                let from = if len == la {
                    a
                } else {
                    10u64.pow(len as u32 - 1)
                };
                let to = if len == lb {
                    b
                } else {
                    10u64.pow(len as u32) - 1
                };
                alts.push(same_len(&from.to_string(), &to.to_string()));
            }
        }
        None => {
            let top = 10u64.saturating_pow(la as u32) - 1;
            alts.push(same_len(&a.to_string(), &top.to_string()));
            alts.push(format!("[1-9][0-9]{{{la},}}"));
        }
    }
    if alts.len() == 1 {
        alts.remove(0)
    } else {
        format!("({})", alts.join("|"))
    }
}

/// Digit strings of one length between `a` and `b` (inclusive).
fn same_len(a: &str, b: &str) -> String {
    let (ab, bb) = (a.as_bytes(), b.as_bytes());
    let n = ab.len();
    if a == b {
        return a.to_string();
    }
    let (Some(&a0), Some(&b0)) = (ab.first(), bb.first()) else {
        return a.to_string();
    };
    if n == 1 {
        return format!("[{}-{}]", a0 as char, b0 as char);
    }
    if a0 == b0 {
        return format!("{}{}", a0 as char, same_len(&a[1..], &b[1..]));
    }
    let rest = n - 1;
    let mut parts = vec![format!(
        "{}{}",
        a0 as char,
        same_len(&a[1..], &"9".repeat(rest))
    )];
    if b0 - a0 > 1 {
        parts.push(format!(
            "[{}-{}][0-9]{{{rest}}}",
            (a0 + 1) as char,
            (b0 - 1) as char
        ));
    }
    parts.push(format!(
        "{}{}",
        b0 as char,
        same_len(&"0".repeat(rest), &b[1..])
    ));
    format!("({})", parts.join("|"))
}

struct Compiler<'a> {
    root: &'a Value,
}

const DESCRIPTIVE: &[&str] = &[
    "title",
    "description",
    "default",
    "examples",
    "$schema",
    "$id",
    "$comment",
    "$defs",
    "definitions",
];

impl Compiler<'_> {
    fn value(&self, schema: &Value, depth: usize, at: &str) -> Result<String> {
        let err = |m: String| {
            Error::Input(format!(
                "json schema at '{}': {m}",
                if at.is_empty() { "#" } else { at }
            ))
        };
        if depth > MAX_REF_DEPTH {
            return Err(err(
                "the schema is recursive ($ref cycle); only finite schemas can be enforced".into(),
            ));
        }
        let obj = match schema {
            Value::Bool(true) => return Ok(json_object_value(2)),
            Value::Object(o) => o,
            _ => return Err(err("a schema must be an object".into())),
        };
        if obj.is_empty() {
            return Ok(json_object_value(2));
        }
        if let Some(r) = obj.get("$ref") {
            let target = self.resolve(r).ok_or_else(|| {
                err(format!(
                    "$ref {r} does not point into #/$defs or #/definitions"
                ))
            })?;
            return self.value(target, depth + 1, &format!("{at}/$ref"));
        }
        for k in obj.keys() {
            let known = DESCRIPTIVE.contains(&k.as_str())
                || matches!(
                    k.as_str(),
                    "type"
                        | "properties"
                        | "required"
                        | "additionalProperties"
                        | "enum"
                        | "const"
                        | "items"
                        | "minItems"
                        | "maxItems"
                        | "minLength"
                        | "maxLength"
                        | "pattern"
                        | "format"
                        | "anyOf"
                        | "oneOf"
                        | "minimum"
                        | "exclusiveMinimum"
                        | "maximum"
                        | "exclusiveMaximum"
                );
            if !known {
                return Err(err(format!("the keyword '{k}' is not supported")));
            }
        }
        if let Some(c) = obj.get("const") {
            return Ok(literal(c));
        }
        if let Some(e) = obj.get("enum") {
            let list = e
                .as_array()
                .filter(|a| !a.is_empty())
                .ok_or_else(|| err("enum must be a non-empty list".into()))?;
            return Ok(format!(
                "({})",
                list.iter().map(literal).collect::<Vec<_>>().join("|")
            ));
        }
        for key in ["anyOf", "oneOf"] {
            if let Some(list) = obj.get(key) {
                let list = list
                    .as_array()
                    .filter(|a| !a.is_empty())
                    .ok_or_else(|| err(format!("{key} must be a non-empty list")))?;
                let alts = list
                    .iter()
                    .enumerate()
                    .map(|(i, s)| self.value(s, depth + 1, &format!("{at}/{key}/{i}")))
                    .collect::<Result<Vec<_>>>()?;
                return Ok(format!("({})", alts.join("|")));
            }
        }
        let types: Vec<String> = match obj.get("type") {
            Some(Value::String(t)) => vec![t.clone()],
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|t| t.as_str().map(str::to_string))
                .collect(),
            Some(_) => return Err(err("type must be a string or a list of strings".into())),
            // Untyped: infer from the keywords present.
            None if obj.contains_key("properties") => vec!["object".into()],
            None if obj.contains_key("items") => vec!["array".into()],
            None => return Ok(json_object_value(2)),
        };
        let alts = types
            .iter()
            .map(|t| self.typed(obj, t, depth, at))
            .collect::<Result<Vec<_>>>()?;
        Ok(if alts.len() == 1 {
            alts.into_iter().next().unwrap_or_default()
        } else {
            format!("({})", alts.join("|"))
        })
    }

    fn typed(&self, obj: &Map<String, Value>, ty: &str, depth: usize, at: &str) -> Result<String> {
        let err = |m: String| {
            Error::Input(format!(
                "json schema at '{}': {m}",
                if at.is_empty() { "#" } else { at }
            ))
        };
        let uint = |k: &str| -> Result<Option<usize>> {
            match obj.get(k) {
                None => Ok(None),
                Some(v) => v
                    .as_u64()
                    .map(|n| Some(n as usize))
                    .ok_or_else(|| err(format!("{k} must be a non-negative integer"))),
            }
        };
        match ty {
            "string" => {
                if let Some(p) = obj.get("pattern") {
                    let p = p
                        .as_str()
                        .ok_or_else(|| err("pattern must be a string".into()))?;
                    let p = p.strip_prefix('^').unwrap_or(p);
                    let p = p.strip_suffix('$').unwrap_or(p);
                    return Ok(format!("\"({p})\""));
                }
                if let Some(f) = obj.get("format") {
                    let f = f.as_str().unwrap_or_default();
                    let body = match f {
                        "date" => r"[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])".to_string(),
                        "time" => r"([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]+)?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])?".to_string(),
                        "date-time" => r"[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]+)?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])".to_string(),
                        "uuid" => r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}".to_string(),
                        "email" => r"[a-zA-Z0-9._%+-]+@[a-zA-Z0-9-]+(\.[a-zA-Z0-9-]+)+".to_string(),
                        other => return Err(err(format!("format '{other}' is not supported (date, time, date-time, uuid, email)"))),
                    };
                    return Ok(format!("\"{body}\""));
                }
                let (lo, hi) = (uint("minLength")?.unwrap_or(0), uint("maxLength")?);
                if hi.is_some_and(|h| h < lo) {
                    return Err(err("maxLength is below minLength".into()));
                }
                Ok(match hi {
                    Some(h) => format!("\"{STRING_CHAR}{{{lo},{h}}}\""),
                    None => format!("\"{STRING_CHAR}{{{lo},}}\""),
                })
            }
            "integer" => {
                let bound = |key: &str, exclusive_key: &str, lower: bool| -> Result<Option<i64>> {
                    let mut out: Option<i64> = None;
                    let mut tighten = |v: i64| {
                        out = Some(match out {
                            Some(o) if lower => o.max(v),
                            Some(o) => o.min(v),
                            None => v,
                        });
                    };
                    let num = |k: &str| -> Result<Option<f64>> {
                        match obj.get(k) {
                            None | Some(Value::Bool(_)) => Ok(None),
                            Some(v) => {
                                v.as_f64()
                                    .filter(|x| x.abs() < 9e15)
                                    .map(Some)
                                    .ok_or_else(|| {
                                        err(format!("{k} must be a number of magnitude below 9e15"))
                                    })
                            }
                        }
                    };
                    // Draft 4: "exclusiveMinimum": true makes "minimum" exclusive.
                    let old_exclusive = obj.get(exclusive_key) == Some(&Value::Bool(true));
                    if let Some(m) = num(key)? {
                        let v = if lower { m.ceil() } else { m.floor() } as i64;
                        let strict = old_exclusive && m.fract() == 0.0;
                        tighten(if strict {
                            if lower { v + 1 } else { v - 1 }
                        } else {
                            v
                        });
                    }
                    if let Some(m) = num(exclusive_key)? {
                        let v = if lower {
                            m.floor() as i64 + 1
                        } else {
                            m.ceil() as i64 - 1
                        };
                        tighten(v);
                    }
                    Ok(out)
                };
                let lo = bound("minimum", "exclusiveMinimum", true)?;
                let hi = bound("maximum", "exclusiveMaximum", false)?;
                if let (Some(l), Some(h)) = (lo, hi)
                    && l > h
                {
                    return Err(err(format!(
                        "no integer lies between the bounds {l} and {h}"
                    )));
                }
                Ok(int_range(lo, hi))
            }
            "number" => {
                if let Some(k) = ["exclusiveMinimum", "exclusiveMaximum"]
                    .iter()
                    .find(|k| obj.contains_key(**k))
                {
                    return Err(err(format!(
                        "{k} on a number is not supported (use minimum/maximum, or type integer)"
                    )));
                }
                let whole = |k: &str| -> Result<Option<i64>> {
                    match obj.get(k) {
                        None => Ok(None),
                        Some(v) => match v.as_f64() {
                            Some(x) if x.fract() == 0.0 && x.abs() < 9e15 => Ok(Some(x as i64)),
                            _ => Err(err(format!(
                                "{k} on a number must be a whole number below 9e15 in magnitude, got {v}"
                            ))),
                        },
                    }
                };
                let (lo, hi) = (whole("minimum")?, whole("maximum")?);
                if let (Some(l), Some(h)) = (lo, hi)
                    && l > h
                {
                    return Err(err(format!("minimum {l} is above maximum {h}")));
                }
                Ok(match (lo, hi) {
                    (None, None) => NUMBER.to_string(),
                    _ => number_range(lo, hi),
                })
            }
            "boolean" => Ok("(true|false)".into()),
            "null" => Ok("null".into()),
            "array" => {
                let item = match obj.get("items") {
                    Some(s) => self.value(s, depth + 1, &format!("{at}/items"))?,
                    None => json_object_value(2),
                };
                let lo = uint("minItems")?.unwrap_or(0);
                let hi = uint("maxItems")?;
                if hi.is_some_and(|h| h < lo) {
                    return Err(err("maxItems is below minItems".into()));
                }
                let rest = format!("(,{SEP}{item})");
                let body = match (lo, hi) {
                    (_, Some(0)) => String::new(),
                    (0, None) => format!("({item}{rest}*)?"),
                    (0, Some(h)) => format!("({item}{rest}{{0,{}}})?", h - 1),
                    (l, None) => format!("{item}{rest}{{{},}}", l - 1),
                    (l, Some(h)) => format!("{item}{rest}{{{},{}}}", l - 1, h - 1),
                };
                Ok(format!(r"\[{body}\]"))
            }
            "object" => {
                match obj.get("additionalProperties") {
                    None | Some(Value::Bool(false)) => {}
                    Some(_) => {
                        return Err(err(
                            "additionalProperties: only false (or absent) is supported".into(),
                        ));
                    }
                }
                let props = match obj.get("properties") {
                    None => return Ok(json_object_regex(1)),
                    Some(Value::Object(p)) => p,
                    Some(_) => return Err(err("properties must be an object".into())),
                };
                let required: Vec<&str> = obj
                    .get("required")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                if let Some(r) = required.iter().find(|r| !props.contains_key(**r)) {
                    return Err(err(format!("required property '{r}' is not in properties")));
                }
                let members: Vec<(bool, String)> = props
                    .iter()
                    .map(|(k, s)| {
                        let v = self.value(s, depth + 1, &format!("{at}/properties/{k}"))?;
                        Ok((
                            required.contains(&k.as_str()),
                            format!("{}:{SEP}{v}", literal(&Value::String(k.clone()))),
                        ))
                    })
                    .collect::<Result<_>>()?;
                Ok(format!(r"\{{{}\}}", members_regex(&members)))
            }
            other => Err(err(format!("type '{other}' is not a JSON Schema type"))),
        }
    }

    fn resolve(&self, r: &Value) -> Option<&Value> {
        let r = r.as_str()?;
        let path = r.strip_prefix("#/")?;
        let mut v = self.root;
        for part in path.split('/') {
            v = v.get(part)?;
        }
        Some(v)
    }
}

/// Members in order, each required one present, optional ones skippable,
/// commas only between present members.
fn members_regex(members: &[(bool, String)]) -> String {
    // first: the members i.. where the first present one starts the text
    // (no leading comma); rest: the same after a present member (leading
    // commas). Built from the last member back.
    let (mut first, mut rest) = (String::new(), String::new());
    for (req, m) in members.iter().rev() {
        let with_first = format!("{m}{rest}");
        let with_rest = format!(",{SEP}{m}{rest}");
        if *req {
            first = with_first;
            rest = with_rest;
        } else {
            first = format!("({with_first}|{first})");
            rest = format!("({with_rest}|{rest})");
        }
    }
    first
}

/// Any JSON value, nested up to `depth` levels.
fn json_object_value(depth: usize) -> String {
    let s = format!("\"{STRING_CHAR}*\"");
    let mut alts = vec![
        s,
        NUMBER.to_string(),
        "true".into(),
        "false".into(),
        "null".into(),
    ];
    if depth > 0 {
        alts.push(json_object_regex(depth - 1));
        let v = json_object_value(depth - 1);
        alts.push(format!(r"\[({v}(,{SEP}{v})*)?\]"));
    }
    format!("({})", alts.join("|"))
}

/// A JSON value written compactly, as a regex literal.
fn literal(v: &Value) -> String {
    regex_syntax_escape(&v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::regex_constraint::RegexGrammar;
    use serde_json::json;

    fn grammar(schema: Value) -> RegexGrammar {
        RegexGrammar::new(&schema_to_regex(&schema).unwrap()).unwrap()
    }

    #[test]
    fn objects_with_required_and_optional_properties() {
        let g = grammar(json!({
            "type": "object",
            "properties": {"name": {"type": "string", "maxLength": 5}, "age": {"type": "integer", "minimum": 0}, "ok": {"type": "boolean"}},
            "required": ["name"],
            "additionalProperties": false
        }));
        // Keys come in sorted order: age, name, ok.
        for good in [
            r#"{"name":"Ann"}"#,
            r#"{"age":3,"name":"Ann"}"#,
            r#"{"name": "Ann", "ok": true}"#,
            r#"{"age":0,"name":"","ok":false}"#,
        ] {
            assert!(g.is_match(good), "{good}");
        }
        assert!(g.is_prefix(r#"{"age":3,"na"#) && !g.is_prefix(r#"{"x"#));
        for bad in [
            r#"{}"#,
            r#"{"age":3}"#,
            r#"{"name":"Annabel"}"#,
            r#"{"age":-1,"name":"A"}"#,
            r#"{"name":"A",}"#,
            r#"{"name":"A","age":1}"#,
        ] {
            assert!(!g.is_match(bad), "{bad}");
        }
    }

    #[test]
    fn arrays_enums_consts_formats_refs_and_alternatives() {
        let g = grammar(
            json!({"type": "array", "items": {"enum": ["a", 1, null]}, "minItems": 1, "maxItems": 2}),
        );
        assert!(g.is_match(r#"["a"]"#) && g.is_match(r#"[1, null]"#));
        assert!(!g.is_match("[]") && !g.is_match(r#"["a","a","a"]"#) && !g.is_match(r#"["b"]"#));
        let g = grammar(json!({"const": {"k": [1, 2]}}));
        assert!(g.is_match(r#"{"k":[1,2]}"#) && !g.is_match(r#"{"k":[1]}"#));
        let g = grammar(json!({"type": "string", "format": "date"}));
        assert!(g.is_match(r#""2026-12-01""#) && !g.is_match(r#""2026-13-01""#));
        let g = grammar(
            json!({"$defs": {"p": {"type": "number"}}, "anyOf": [{"$ref": "#/$defs/p"}, {"type": "null"}]}),
        );
        assert!(g.is_match("-1.5e3") && g.is_match("null") && !g.is_match("\"x\""));
        let g = grammar(json!({"type": "string", "pattern": "^[A-Z]{2}[0-9]$"}));
        assert!(g.is_match(r#""AB1""#) && !g.is_match(r#""ab1""#));
        let g = grammar(json!({"type": ["integer", "null"]}));
        assert!(g.is_match("42") && g.is_match("null") && !g.is_match("4.2"));
    }

    #[test]
    fn unsupported_and_recursive_schemas_are_named_errors() {
        let e = schema_to_regex(&json!({"type": "object", "patternProperties": {}}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("'patternProperties' is not supported"), "{e}");
        let e = schema_to_regex(&json!({"$defs": {"n": {"type": "object", "properties": {"next": {"$ref": "#/$defs/n"}}}}, "$ref": "#/$defs/n"}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("recursive"), "{e}");
        let e = schema_to_regex(&json!({"type": "integer", "minimum": 5, "maximum": 2}))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no integer lies between the bounds 5 and 2"),
            "{e}"
        );
        let e = schema_to_regex(&json!({"type": "object", "properties": {}, "required": ["x"]}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("'x' is not in properties"), "{e}");
    }

    #[test]
    fn integer_bounds_admit_exactly_the_range() {
        let cases = [
            (json!({"type": "integer", "minimum": 1}), 1, 5000),
            (
                json!({"type": "integer", "minimum": 17, "maximum": 342}),
                17,
                342,
            ),
            (
                json!({"type": "integer", "minimum": -25, "maximum": 7}),
                -25,
                7,
            ),
            (
                json!({"type": "integer", "exclusiveMinimum": 9, "exclusiveMaximum": 100}),
                10,
                99,
            ),
            (json!({"type": "integer", "maximum": -3}), -3000, -3),
            (json!({"type": "integer", "minimum": 0, "maximum": 0}), 0, 0),
            (
                json!({"type": "integer", "minimum": 2.5, "maximum": 1000}),
                3,
                1000,
            ),
            (
                json!({"type": "integer", "minimum": 5, "exclusiveMinimum": true}),
                6,
                5000,
            ),
        ];
        for (schema, lo, hi) in cases {
            let g = RegexGrammar::new(&schema_to_regex(&schema).unwrap()).unwrap();
            for v in -5000i64..=5000 {
                let inside = (lo..=hi).contains(&v)
                    || (hi == 5000 && v > 5000)
                    || (lo == -3000 && v < -3000);
                assert_eq!(g.is_match(&v.to_string()), inside, "{schema} {v}");
            }
            assert!(
                !g.is_match("01") && !g.is_match("-0") && !g.is_match("+1"),
                "{schema}"
            );
        }
    }

    #[test]
    fn number_bounds_admit_exactly_the_range() {
        let cases = [
            (
                json!({"type": "number", "minimum": 0, "maximum": 100}),
                0.0,
                100.0,
            ),
            (
                json!({"type": "number", "minimum": -90, "maximum": 90}),
                -90.0,
                90.0,
            ),
            (
                json!({"type": "number", "minimum": -5, "maximum": -2}),
                -5.0,
                -2.0,
            ),
            (json!({"type": "number", "minimum": 1}), 1.0, f64::INFINITY),
            (
                json!({"type": "number", "maximum": 3}),
                f64::NEG_INFINITY,
                3.0,
            ),
            (
                json!({"type": "number", "maximum": -1}),
                f64::NEG_INFINITY,
                -1.0,
            ),
            (json!({"type": "number", "minimum": 0}), 0.0, f64::INFINITY),
        ];
        let texts: Vec<String> = (-1200..=1200)
            .flat_map(|i| {
                let x = i as f64 / 10.0;
                [
                    format!("{}", i / 10),
                    format!("{x:.1}"),
                    format!("{x:.3}"),
                    format!("{}.0", i / 10),
                ]
            })
            .chain(
                [
                    "0.5", "-0.5", "-0.0", "-0", "1e3", "01", "100.000", "100.001",
                ]
                .map(String::from),
            )
            .collect();
        for (schema, lo, hi) in cases {
            let g = RegexGrammar::new(&schema_to_regex(&schema).unwrap()).unwrap();
            for t in &texts {
                let x: f64 = t.parse().unwrap();
                // The grammar writes no exponent, no leading zero and no -0.
                let neg_zero = t.starts_with('-') && x == 0.0;
                let plain = !t.contains('e') && !t.starts_with("01") && !neg_zero;
                let want = plain && x >= lo && x <= hi;
                assert_eq!(g.is_match(t), want, "{schema} {t}");
            }
        }
        for (bad, msg) in [
            (json!({"type": "number", "minimum": 0.5}), "whole number"),
            (
                json!({"type": "number", "exclusiveMinimum": 0}),
                "exclusiveMinimum on a number",
            ),
            (
                json!({"type": "number", "minimum": 3, "maximum": 1}),
                "minimum 3 is above maximum 1",
            ),
        ] {
            let e = schema_to_regex(&bad).unwrap_err().to_string();
            assert!(e.contains(msg), "{bad}: {e}");
        }
    }

    #[test]
    fn json_object_mode_accepts_nested_objects_only() {
        let g = RegexGrammar::new(&json_object_regex(3)).unwrap();
        assert!(g.is_match(r#"{"a": [1, {"b": null}], "c": "d"}"#));
        assert!(!g.is_match("[1]") && !g.is_match(r#"{"a":}"#));
    }
}
