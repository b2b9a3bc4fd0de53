//! Tools and agents: OpenAI-style tool calling ([`tools`]), the built-in
//! tools ([`calculator`], and `search`/`read_page` over a
//! [`crate::rag::RagIndex`] in [`builtin`]), and the ReAct loop ([`Agent`]).

pub mod builtin;
pub mod calculator;
pub mod react;
pub mod tools;

pub use react::{Agent, AgentEvent, AgentOptions, Step, StepAction, Tool};
pub use tools::{ToolCall, ToolChoice, ToolSpec, Turn};
