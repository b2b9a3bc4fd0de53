//! OpenAI-style tool calling: tool declarations, the prompt that shows them
//! to a model, the grammar a call is decoded under, and the parser of calls.
//!
//! The call syntax is the one Qwen2.5, Hermes and SmolLM3 templates use
//! (the documented default for templates without tool support):
//!
//! ```text
//! <tool_call>
//! {"name": "calculator", "arguments": {"expression": "2 + 2"}}
//! </tool_call>
//! ```
//!
//! A template that renders `tools` and `tool_calls` itself and uses this
//! syntax (it mentions `<tool_call>`) renders the conversation; any other
//! template gets the tools in the system message and calls and results as
//! text (`<tool_response>` blocks in a user turn).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::generate::chat_template::{ChatMessage, ChatTemplate};
use crate::generate::json_schema::schema_to_regex;
use crate::generate::regex_constraint::{RegexGrammar, regex_syntax_escape};

/// Opens a tool call in the model's output.
pub const CALL_OPEN: &str = "<tool_call>";
/// Closes a tool call.
pub const CALL_CLOSE: &str = "</tool_call>";

/// A declared tool: OpenAI's `{"type": "function", "function": {...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    /// Name the model calls it by (`[A-Za-z0-9_-]`, at most 64).
    pub name: String,
    /// What it does, for the model.
    #[serde(default)]
    pub description: String,
    /// JSON Schema of its arguments (an object).
    #[serde(default = "empty_object_schema")]
    pub parameters: Value,
}

fn empty_object_schema() -> Value {
    json!({"type": "object", "properties": {}})
}

impl ToolSpec {
    /// A tool, checked: a valid name and an argument schema the grammar
    /// compiler supports (an unsupported keyword is an error naming it).
    pub fn new(name: &str, description: &str, parameters: Value) -> Result<Self> {
        let spec = ToolSpec {
            name: name.into(),
            description: description.into(),
            parameters,
        };
        spec.check()?;
        Ok(spec)
    }

    /// Checks the name and the schema.
    pub fn check(&self) -> Result<()> {
        let ok = !self.name.is_empty()
            && self.name.len() <= 64
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !ok {
            return Err(Error::Input(format!(
                "tool name '{}' must be 1 to 64 characters of A-Z, a-z, 0-9, '_' or '-'",
                self.name
            )));
        }
        if self.parameters.get("type").and_then(Value::as_str) != Some("object") {
            return Err(Error::Input(format!(
                "tool '{}': parameters must be a JSON schema with \"type\": \"object\"",
                self.name
            )));
        }
        schema_to_regex(&self.parameters)
            .map_err(|e| Error::Input(format!("tool '{}' parameters: {e}", self.name)))?;
        Ok(())
    }

    /// The OpenAI JSON form.
    pub fn to_openai(&self) -> Value {
        json!({"type": "function", "function": {
            "name": self.name, "description": self.description, "parameters": self.parameters}})
    }

    /// Checks `args` against the parameter schema: its compact JSON (keys
    /// sorted) must match the schema's grammar, so exactly what constrained
    /// decoding could produce is accepted (additional properties are
    /// refused unless the schema declares them).
    pub fn validate(&self, args: &Value) -> Result<()> {
        let pattern = schema_to_regex(&self.parameters)?;
        let text = serde_json::to_string(args)
            .map_err(|e| Error::Input(format!("tool '{}' arguments: {e}", self.name)))?;
        if RegexGrammar::new(&pattern)?.is_match(&text) {
            Ok(())
        } else {
            Err(Error::Input(format!(
                "the arguments {text} do not match tool '{}''s parameter schema {}",
                self.name, self.parameters
            )))
        }
    }
}

/// One call the model made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The tool's name.
    pub name: String,
    /// Its arguments (a JSON object).
    pub arguments: Value,
}

/// Which calls the model may or must make (OpenAI's `tool_choice`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ToolChoice {
    /// The model answers or calls, as it chooses (a call is constrained once it starts).
    #[default]
    Auto,
    /// No calls: a plain answer.
    None,
    /// At least one call, to any declared tool.
    Required,
    /// A call to this tool.
    Function(String),
}

impl ToolChoice {
    /// Parses OpenAI's `tool_choice`: `"auto"`, `"none"`, `"required"` or
    /// `{"type": "function", "function": {"name": …}}`, checked against `tools`.
    pub fn from_openai(v: &Value, tools: &[ToolSpec]) -> Result<Self> {
        let choice = match v {
            Value::String(s) if s == "auto" => ToolChoice::Auto,
            Value::String(s) if s == "none" => ToolChoice::None,
            Value::String(s) if s == "required" => ToolChoice::Required,
            Value::Object(o) => match o.get("function").and_then(|f| f.get("name")) {
                Some(Value::String(n)) => ToolChoice::Function(n.clone()),
                _ => {
                    return Err(Error::Input(
                        "tool_choice: an object needs {\"type\": \"function\", \"function\": {\"name\": ...}}".into(),
                    ));
                }
            },
            other => {
                return Err(Error::Input(format!(
                    "tool_choice: expected \"auto\", \"none\", \"required\" or a function object, got {other}"
                )));
            }
        };
        if let ToolChoice::Function(n) = &choice
            && !tools.iter().any(|t| &t.name == n)
        {
            return Err(Error::Input(format!(
                "tool_choice names '{n}', which is not among the declared tools"
            )));
        }
        if choice != ToolChoice::None && choice != ToolChoice::Auto && tools.is_empty() {
            return Err(Error::Input(
                "tool_choice needs at least one tool in tools".into(),
            ));
        }
        Ok(choice)
    }
}

/// The system-prompt text declaring `tools` (Qwen2.5/Hermes wording).
pub fn tools_system_prompt(tools: &[ToolSpec]) -> String {
    let mut s = String::from(
        "# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>",
    );
    for t in tools {
        s.push('\n');
        s.push_str(&t.to_openai().to_string());
    }
    s.push_str("\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call>");
    s
}

/// The pattern of one call's JSON object, `{"name": …, "arguments": …}`,
/// over `tools` (each name with its own argument grammar).
pub fn call_json_pattern(tools: &[ToolSpec]) -> Result<String> {
    if tools.is_empty() {
        return Err(Error::Input("no tools to call".into()));
    }
    let mut alts = Vec::new();
    for t in tools {
        let args = schema_to_regex(&t.parameters)
            .map_err(|e| Error::Input(format!("tool '{}' parameters: {e}", t.name)))?;
        alts.push(format!(
            r#"\{{"name": ?"{}", ?"arguments": ?{args}\}}"#,
            regex_syntax_escape(&t.name)
        ));
    }
    Ok(format!("({})", alts.join("|")))
}

/// The pattern of the text after [`CALL_OPEN`]: the call, [`CALL_CLOSE`],
/// and with `parallel` further `<tool_call>` blocks.
pub fn after_open_pattern(tools: &[ToolSpec], parallel: bool) -> Result<String> {
    let call = call_json_pattern(tools)?;
    let close = regex_syntax_escape(CALL_CLOSE);
    let open = regex_syntax_escape(CALL_OPEN);
    let more = if parallel {
        format!(r"(\n{open}\n{call}\n{close})*")
    } else {
        String::new()
    };
    Ok(format!(r"\n{call}\n{close}{more}"))
}

/// The pattern of a whole output that is only calls (`tool_choice`
/// `required` or a named function).
pub fn calls_pattern(tools: &[ToolSpec], parallel: bool) -> Result<String> {
    Ok(format!(
        "{}{}",
        regex_syntax_escape(CALL_OPEN),
        after_open_pattern(tools, parallel)?
    ))
}

/// Splits a model's output into the text before the first call and the
/// calls. A block that does not parse is an error quoting it.
pub fn parse_tool_calls(text: &str) -> Result<(String, Vec<ToolCall>)> {
    let Some(first) = text.find(CALL_OPEN) else {
        return Ok((text.trim().to_string(), Vec::new()));
    };
    let content = text[..first].trim().to_string();
    let mut calls = Vec::new();
    let mut rest = &text[first..];
    while let Some(at) = rest.find(CALL_OPEN) {
        let after = &rest[at + CALL_OPEN.len()..];
        let lead = after.len() - after.trim_start().len();
        // Read exactly one JSON value (a string inside it may even contain
        // "</tool_call>"), then the closing tag.
        let mut values = serde_json::Deserializer::from_str(&after[lead..]).into_iter::<Value>();
        let v = match values.next() {
            Some(Ok(v)) => v,
            Some(Err(e)) => {
                return Err(Error::Input(format!(
                    "a tool call is not valid JSON ({e}): {}",
                    after.trim()
                )));
            }
            None => {
                return Err(Error::Input("a tool call is empty".into()));
            }
        };
        let end = lead + values.byte_offset();
        let tail = after[end..].trim_start();
        let next = match tail.strip_prefix(CALL_CLOSE) {
            Some(t) => t,
            None => tail,
        };
        let body = &after[..end];
        let name = v.get("name").and_then(Value::as_str).ok_or_else(|| {
            Error::Input(format!(
                "a tool call has no \"name\" string: {}",
                body.trim()
            ))
        })?;
        let arguments = match v.get("arguments").or_else(|| v.get("parameters")) {
            Some(Value::String(s)) => serde_json::from_str(s).map_err(|e| {
                Error::Input(format!("tool call '{name}': arguments are not JSON ({e})"))
            })?,
            Some(a) => a.clone(),
            None => json!({}),
        };
        calls.push(ToolCall {
            name: name.into(),
            arguments,
        });
        rest = next;
    }
    Ok((content, calls))
}

/// One turn of a conversation with tools: a chat message that may carry
/// the assistant's calls, or (role `tool`) a call's result.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Turn {
    /// `system`, `user`, `assistant` or `tool`.
    pub role: String,
    /// The text (a tool's result for role `tool`).
    pub content: String,
    /// The assistant's calls.
    pub tool_calls: Vec<ToolCall>,
}

impl Turn {
    /// A turn without calls.
    pub fn new(role: &str, content: &str) -> Self {
        Turn {
            role: role.into(),
            content: content.into(),
            tool_calls: Vec::new(),
        }
    }
}

/// Whether `template` renders `tools` and `tool_calls` in the
/// `<tool_call>` syntax itself.
pub fn template_has_tools(template: &ChatTemplate) -> bool {
    let s = template.source();
    s.contains("tools") && s.contains(CALL_OPEN)
}

/// A call as text, the way it appears in the model's output.
pub fn call_text(call: &ToolCall) -> String {
    // Name first, as the grammar has the model write it.
    format!(
        "{CALL_OPEN}\n{{\"name\": {}, \"arguments\": {}}}\n{CALL_CLOSE}",
        Value::String(call.name.clone()),
        call.arguments
    )
}

/// Renders a conversation with tools into a prompt (see the module docs for
/// which syntax is used).
pub fn render_with_tools(
    template: &ChatTemplate,
    turns: &[Turn],
    tools: &[ToolSpec],
    add_generation_prompt: bool,
) -> Result<String> {
    if template_has_tools(template) && !tools.is_empty() {
        let messages: Vec<Value> = turns
            .iter()
            .map(|t| {
                let mut m = serde_json::Map::new();
                m.insert("role".into(), json!(t.role));
                m.insert("content".into(), json!(t.content));
                if !t.tool_calls.is_empty() {
                    m.insert(
                        "tool_calls".into(),
                        t.tool_calls
                            .iter()
                            .map(|c| json!({"type": "function", "function": {"name": c.name, "arguments": c.arguments}}))
                            .collect(),
                    );
                }
                Value::Object(m)
            })
            .collect();
        let tools: Vec<Value> = tools.iter().map(ToolSpec::to_openai).collect();
        return template.render_values(&messages, Some(&tools), add_generation_prompt);
    }
    let mut messages: Vec<ChatMessage> = Vec::new();
    let declared = (!tools.is_empty()).then(|| tools_system_prompt(tools));
    let mut iter = turns.iter().peekable();
    match (iter.peek(), &declared) {
        (Some(t), Some(d)) if t.role == "system" => {
            messages.push(ChatMessage::new("system", &format!("{}\n\n{d}", t.content)));
            iter.next();
        }
        (_, Some(d)) => messages.push(ChatMessage::new("system", d)),
        _ => {}
    }
    for t in iter {
        match t.role.as_str() {
            "tool" => {
                let block = format!("<tool_response>\n{}\n</tool_response>", t.content);
                // Consecutive results share one user turn.
                match messages.last_mut() {
                    Some(m) if m.role == "user" && m.content.ends_with("</tool_response>") => {
                        m.content.push('\n');
                        m.content.push_str(&block);
                    }
                    _ => messages.push(ChatMessage::new("user", &block)),
                }
            }
            "assistant" if !t.tool_calls.is_empty() => {
                let mut text = t.content.trim().to_string();
                for c in &t.tool_calls {
                    if !text.is_empty() {
                        text.push('\n');
                    }
                    text.push_str(&call_text(c));
                }
                messages.push(ChatMessage::new("assistant", &text));
            }
            _ => messages.push(ChatMessage::new(&t.role, &t.content)),
        }
    }
    template.render(&messages, add_generation_prompt)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calc() -> ToolSpec {
        ToolSpec::new(
            "calculator",
            "Evaluates arithmetic.",
            json!({"type": "object", "properties": {"expression": {"type": "string"}}, "required": ["expression"]}),
        )
        .unwrap()
    }

    fn weather() -> ToolSpec {
        ToolSpec::new(
            "get_weather",
            "Weather in a city.",
            json!({"type": "object", "properties": {
                "city": {"type": "string", "minLength": 1},
                "unit": {"enum": ["c", "f"]}}, "required": ["city"]}),
        )
        .unwrap()
    }

    #[test]
    fn calls_grammar_accepts_calls_of_declared_tools_only() {
        let tools = [calc(), weather()];
        let g = RegexGrammar::new(&calls_pattern(&tools, false).unwrap()).unwrap();
        assert!(g.is_match("<tool_call>\n{\"name\": \"calculator\", \"arguments\": {\"expression\": \"1+1\"}}\n</tool_call>"));
        assert!(g.is_match("<tool_call>\n{\"name\":\"get_weather\",\"arguments\":{\"city\":\"Oslo\",\"unit\":\"c\"}}\n</tool_call>"));
        // Wrong arguments for the tool, an unknown tool, an unknown unit.
        assert!(!g.is_match("<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"expression\": \"1\"}}\n</tool_call>"));
        assert!(!g.is_prefix("<tool_call>\n{\"name\": \"delete_all"));
        assert!(!g.is_match("<tool_call>\n{\"name\":\"get_weather\",\"arguments\":{\"city\":\"Oslo\",\"unit\":\"k\"}}\n</tool_call>"));
        let two = "<tool_call>\n{\"name\": \"calculator\", \"arguments\": {\"expression\": \"1\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"calculator\", \"arguments\": {\"expression\": \"2\"}}\n</tool_call>";
        assert!(!g.is_match(two));
        let par = RegexGrammar::new(&calls_pattern(&tools, true).unwrap()).unwrap();
        assert!(par.is_match(two));
    }

    #[test]
    fn parse_and_validate() {
        let (content, calls) = parse_tool_calls(
            "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"calculator\", \"arguments\": \"{\\\"expression\\\": \\\"2\\\"}\"}\n</tool_call>",
        )
        .unwrap();
        assert_eq!(content, "Let me check.");
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0].name, "get_weather");
        assert_eq!(calls[0].arguments, json!({"city": "Oslo"}));
        assert_eq!(calls[1].arguments, json!({"expression": "2"}));
        weather().validate(&calls[0].arguments).unwrap();
        let e = weather().validate(&json!({"city": ""})).unwrap_err();
        assert!(e.to_string().contains("get_weather"), "{e}");
        assert!(
            weather().validate(&json!({"unit": "c"})).is_err(),
            "city is required"
        );
        assert!(calc().validate(&json!({"expression": 3})).is_err());
        let (_, tricky) = parse_tool_calls(
            "<tool_call>\n{\"name\": \"calculator\", \"arguments\": {\"expression\": \"</tool_call>1\"}}\n</tool_call>",
        )
        .unwrap();
        assert_eq!(tricky[0].arguments, json!({"expression": "</tool_call>1"}));
        let e = parse_tool_calls("<tool_call>\n{not json}\n</tool_call>").unwrap_err();
        assert!(e.to_string().contains("{not json}"), "{e}");
        assert_eq!(parse_tool_calls("plain").unwrap(), ("plain".into(), vec![]));
    }

    #[test]
    fn bad_declarations_are_clear_errors() {
        let e = ToolSpec::new("rm -rf", "", json!({"type": "object"})).unwrap_err();
        assert!(e.to_string().contains("'rm -rf'"), "{e}");
        let e = ToolSpec::new("t", "", json!({"type": "string"})).unwrap_err();
        assert!(e.to_string().contains("\"type\": \"object\""), "{e}");
        let e = ToolSpec::new("t", "", json!({"type": "object", "properties": {"a": {"type": "string", "contentEncoding": "x"}}})).unwrap_err();
        assert!(e.to_string().contains("contentEncoding"), "{e}");
        let tools = [calc()];
        assert_eq!(
            ToolChoice::from_openai(&json!("required"), &tools).unwrap(),
            ToolChoice::Required
        );
        assert_eq!(
            ToolChoice::from_openai(
                &json!({"type": "function", "function": {"name": "calculator"}}),
                &tools
            )
            .unwrap(),
            ToolChoice::Function("calculator".into())
        );
        let e = ToolChoice::from_openai(
            &json!({"type": "function", "function": {"name": "nope"}}),
            &tools,
        )
        .unwrap_err();
        assert!(e.to_string().contains("'nope'"), "{e}");
        assert!(ToolChoice::from_openai(&json!("sometimes"), &tools).is_err());
    }

    #[test]
    fn default_rendering_puts_tools_in_the_system_turn_and_results_in_user_turns() {
        let t = ChatTemplate::new(crate::generate::chat_template::CHATML, "", "").unwrap();
        let turns = vec![
            Turn::new("system", "Be brief."),
            Turn::new("user", "2+2?"),
            Turn {
                role: "assistant".into(),
                content: String::new(),
                tool_calls: vec![ToolCall {
                    name: "calculator".into(),
                    arguments: json!({"expression": "2+2"}),
                }],
            },
            Turn::new("tool", "4"),
        ];
        let out = render_with_tools(&t, &turns, &[calc()], true).unwrap();
        assert!(
            out.starts_with("<|im_start|>system\nBe brief.\n\n# Tools\n"),
            "{out}"
        );
        assert!(
            out.contains("<tools>\n{\"function\":{\"description\":\"Evaluates arithmetic.\""),
            "{out}"
        );
        assert!(out.ends_with("<|im_start|>assistant\n<tool_call>\n{\"name\": \"calculator\", \"arguments\": {\"expression\":\"2+2\"}}\n</tool_call><|im_end|>\n<|im_start|>user\n<tool_response>\n4\n</tool_response><|im_end|>\n<|im_start|>assistant\n"), "{out}");
    }

    #[test]
    fn a_template_with_tool_support_renders_tools_itself() {
        // The tool parts of Qwen2.5's template.
        let src = "{%- if tools %}<|im_start|>system\n{% for tool in tools %}{{ tool | tojson }}\n{% endfor %}<|im_end|>\n{% endif %}{%- for message in messages %}{%- if message.role == 'assistant' and message.tool_calls %}<|im_start|>assistant\n{% for tc in message.tool_calls %}<tool_call>\n{\"name\": \"{{ tc.function.name }}\", \"arguments\": {{ tc.function.arguments | tojson }}}\n</tool_call>{% endfor %}<|im_end|>\n{%- elif message.role == 'tool' %}<|im_start|>user\n<tool_response>\n{{ message.content }}\n</tool_response><|im_end|>\n{%- else %}<|im_start|>{{ message.role }}\n{{ message.content }}<|im_end|>\n{%- endif %}{%- endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";
        let t = ChatTemplate::new(src, "", "").unwrap();
        assert!(template_has_tools(&t));
        let turns = vec![
            Turn::new("user", "2+2?"),
            Turn {
                role: "assistant".into(),
                content: String::new(),
                tool_calls: vec![ToolCall {
                    name: "calculator".into(),
                    arguments: json!({"expression": "2+2"}),
                }],
            },
            Turn::new("tool", "4"),
        ];
        let out = render_with_tools(&t, &turns, &[calc()], true).unwrap();
        assert!(
            out.starts_with("<|im_start|>system\n{\"function\":"),
            "{out}"
        );
        assert!(out.contains("<tool_call>\n{\"name\": \"calculator\", \"arguments\": {\"expression\":\"2+2\"}}\n</tool_call>"), "{out}");
        assert!(
            out.ends_with("<tool_response>\n4\n</tool_response><|im_end|><|im_start|>assistant\n"),
            "{out}"
        );
    }
}
