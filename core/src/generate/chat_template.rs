//! Chat templates: the Jinja template a model ships with (`tokenizer.chat_template`
//! in GGUF metadata or `tokenizer_config.json`), rendered with minijinja the way
//! `transformers`' `apply_chat_template` renders it (`trim_blocks`,
//! `lstrip_blocks`, `raise_exception`, `bos_token`/`eos_token` in scope).

use minijinja::{Environment, ErrorKind, context};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::formats::gguf::{Header, Value};

/// One turn of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// The text of the turn.
    pub content: String,
}

impl ChatMessage {
    /// A message with the given role.
    pub fn new(role: &str, content: &str) -> Self {
        ChatMessage {
            role: role.into(),
            content: content.into(),
        }
    }
}

/// ChatML, the format of SmolLM2, Qwen and many others; used when a model
/// ships no template of its own.
pub const CHATML: &str = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/// A compiled-and-checked chat template.
#[derive(Debug, Clone)]
pub struct ChatTemplate {
    source: String,
    bos_token: String,
    eos_token: String,
}

/// Instructions a template may run for one rendering: real chat templates
/// take a few thousand; a hostile one (nested loops, huge ranges) stops
/// here with an error instead of running for minutes.
const TEMPLATE_FUEL: u64 = 2_000_000;

/// Nesting depth of includes, macros and calls a template may reach.
const TEMPLATE_RECURSION: usize = 64;

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_fuel(Some(TEMPLATE_FUEL));
    env.set_recursion_limit(TEMPLATE_RECURSION);
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    // Python's string and dict methods (`.strip()`, `.startswith()`,
    // `.split()`, `.items()`, ...), which published templates call.
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_function(
        "raise_exception",
        |msg: String| -> std::result::Result<String, minijinja::Error> {
            Err(minijinja::Error::new(ErrorKind::InvalidOperation, msg))
        },
    );
    env
}

impl ChatTemplate {
    /// Parses `source`; `bos_token`/`eos_token` are the strings templates may
    /// reference. A syntax error is reported here, not at first use.
    pub fn new(source: &str, bos_token: &str, eos_token: &str) -> Result<Self> {
        environment()
            .template_from_str(source)
            .map_err(|e| Error::Input(format!("chat template does not parse: {e}")))?;
        Ok(ChatTemplate {
            source: source.into(),
            bos_token: bos_token.into(),
            eos_token: eos_token.into(),
        })
    }

    /// The template in a GGUF file's `tokenizer.chat_template`, with its BOS/EOS
    /// token strings; `None` when the file has no template.
    pub fn from_gguf(h: &Header) -> Result<Option<Self>> {
        let Some(src) = h.get("tokenizer.chat_template").and_then(Value::as_str) else {
            return Ok(None);
        };
        let tokens = h.require_array("tokenizer.ggml.tokens")?;
        let token = |key: &str| {
            h.get(key)
                .and_then(Value::as_u64)
                .and_then(|id| tokens.get(id as usize))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        Self::new(
            src,
            &token("tokenizer.ggml.bos_token_id"),
            &token("tokenizer.ggml.eos_token_id"),
        )
        .map(Some)
    }

    /// The template source.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Renders a conversation; `add_generation_prompt` appends the opening of
    /// the assistant's turn so the model answers next.
    pub fn render(&self, messages: &[ChatMessage], add_generation_prompt: bool) -> Result<String> {
        let values: Vec<serde_json::Value> = messages
            .iter()
            .map(|m| serde_json::json!({"role": m.role, "content": m.content}))
            .collect();
        self.render_values(&values, None, add_generation_prompt)
    }

    /// Renders messages given as JSON (with fields such as `tool_calls`
    /// that [`ChatMessage`] lacks), and `tools` when given.
    pub fn render_values(
        &self,
        messages: &[serde_json::Value],
        tools: Option<&[serde_json::Value]>,
        add_generation_prompt: bool,
    ) -> Result<String> {
        let env = environment();
        let tmpl = env
            .template_from_str(&self.source)
            .map_err(|e| Error::Input(format!("chat template does not parse: {e}")))?;
        tmpl.render(context! {
            messages => messages,
            tools => tools,
            add_generation_prompt => add_generation_prompt,
            bos_token => &self.bos_token,
            eos_token => &self.eos_token,
        })
        .map_err(|e| Error::Input(format!("chat template failed to render: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SmolLM2-135M-Instruct's template, as stored in its GGUF metadata.
    const SMOLLM2: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

    #[test]
    fn smollm2_template_renders_chatml_with_default_system() {
        let t = ChatTemplate::new(SMOLLM2, "<|im_start|>", "<|im_end|>").unwrap();
        let out = t.render(&[ChatMessage::new("user", "Hi")], true).unwrap();
        assert_eq!(
            out,
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
        let out = t
            .render(
                &[
                    ChatMessage::new("system", "Be brief."),
                    ChatMessage::new("user", "Hi"),
                    ChatMessage::new("assistant", "Hello!"),
                    ChatMessage::new("user", "Bye"),
                ],
                false,
            )
            .unwrap();
        assert_eq!(
            out,
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n"
        );
    }

    #[test]
    fn template_errors_are_clear() {
        let e = ChatTemplate::new("{% for %}", "", "").unwrap_err();
        assert!(
            e.to_string().contains("chat template does not parse"),
            "{e}"
        );
        let t = ChatTemplate::new("{{ raise_exception('roles must alternate') }}", "", "").unwrap();
        let e = t.render(&[], true).unwrap_err();
        assert!(e.to_string().contains("roles must alternate"), "{e}");
        let chatml = ChatTemplate::new(CHATML, "", "").unwrap();
        assert_eq!(
            chatml
                .render(&[ChatMessage::new("user", "x")], true)
                .unwrap(),
            "<|im_start|>user\nx<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn python_string_methods_render_as_jinja2_renders_them() {
        // Expected text: jinja2 3.x ImmutableSandboxedEnvironment(trim_blocks,
        // lstrip_blocks) — what transformers' apply_chat_template uses.
        let src = "{%- for m in messages -%}\n{{ m['role'].upper() }}: {{ m['content'].strip() }}{% if m['content'].strip().startswith('Hi') %} (greeting){% endif %} [{{ m['content'].split()|length }} words, ends {{ m['content'].rstrip().endswith('?') }}]\n{% endfor -%}\n{%- if add_generation_prompt %}{{ 'assistant: '.title() }}{% endif %}";
        let t = ChatTemplate::new(src, "", "").unwrap();
        let out = t
            .render(
                &[
                    ChatMessage::new("user", "  Hi there, how are you?  "),
                    ChatMessage::new("assistant", "Fine.\n"),
                ],
                true,
            )
            .unwrap();
        assert_eq!(
            out,
            "USER: Hi there, how are you? (greeting) [5 words, ends True]\nASSISTANT: Fine. [1 words, ends False]\nAssistant: "
        );
    }

    #[test]
    fn hostile_templates_stop_with_an_error() {
        for (src, want) in [
            // 10^4 × 10^4 iterations: out of fuel long before.
            (
                "{% for i in range(10000) %}{% for j in range(10000) %}x{% endfor %}{% endfor %}",
                "fuel",
            ),
            // Unbounded recursion through a macro.
            (
                "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
                "recursion",
            ),
        ] {
            let t = ChatTemplate::new(src, "", "").unwrap();
            let started = std::time::Instant::now();
            let e = t
                .render(&[ChatMessage::new("user", "x")], true)
                .unwrap_err();
            assert!(e.to_string().contains(want), "{src}: {e}");
            assert!(
                started.elapsed().as_secs() < 30,
                "{src} ran {:?}",
                started.elapsed()
            );
        }
    }
}
