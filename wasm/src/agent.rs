//! `Agent`: the ReAct loop of `cairn agent` in JavaScript. The page (or the
//! worker) drives it step by step: `next()` decodes a step under the step
//! grammar; when the step calls a tool, the caller runs it (a JS function,
//! or the built-in calculator via [`calculate`]) and hands the result to
//! `observe()`.

use std::cell::RefCell;
use std::rc::Rc;

use cairn_core::agent::Agent as CoreAgent;
use cairn_core::agent::react::StepAction;
use wasm_bindgen::prelude::*;

use crate::engine::on_backend;
use crate::generator::{Gen, Generator, Streamer};
use crate::{js_err, options, to_js};

/// A ReAct agent over a [`Generator`].
#[wasm_bindgen]
pub struct Agent {
    generator: Rc<Gen>,
    inner: Rc<RefCell<CoreAgent>>,
}

#[wasm_bindgen]
impl Agent {
    /// An agent for `task`. `tools` is `[{ name, description, parameters }]`
    /// (parameters: a JSON Schema object; an unsupported keyword is an error
    /// naming it). Options: `maxSteps` (6), `maxStepTokens` (256),
    /// `examples` (true: worked examples of the step format in the prompt),
    /// `constrained` (true: steps decoded under the step grammar), and the
    /// decoding options of `generate`.
    #[wasm_bindgen(constructor)]
    pub fn new(
        generator: &Generator,
        task: &str,
        #[wasm_bindgen(
            unchecked_param_type = "{ name: string; description?: string; parameters?: object }[]"
        )]
        tools: JsValue,
        options: JsValue,
    ) -> Result<Agent, JsError> {
        let tools: serde_json::Value = serde_wasm_bindgen::from_value(tools).map_err(|e| {
            JsError::new(&format!(
                "agent: tools must be [{{ name, description, parameters }}] ({e})"
            ))
        })?;
        let (tools, o) = options::agent(tools, options::object(&options, "agent")?)?;
        let inner = CoreAgent::new(tools, task, o).map_err(js_err)?;
        Ok(Agent {
            generator: generator.inner.clone(),
            inner: Rc::new(RefCell::new(inner)),
        })
    }

    /// Decodes the next step, calling `onText(piece)` as it is written.
    /// Resolves to `{ index, thought, action, observation, error, raw }`
    /// where `action` is `{ kind: "call", name, arguments }`,
    /// `{ kind: "answer", text }` or `{ kind: "invalid", error }`.
    pub fn next(&self, on_text: Option<js_sys::Function>) -> js_sys::Promise {
        let generator = self.generator.clone();
        let inner = self.inner.clone();
        // Held across the step's await on purpose: JS is single-threaded, and
        // a second `next`/`observe` meanwhile gets a clear "already running"
        // error from `try_borrow_mut` instead of interleaving.
        #[allow(clippy::await_holding_refcell_ref)]
        wasm_bindgen_futures::future_to_promise(async move {
            let mut agent = inner
                .try_borrow_mut()
                .map_err(|_| JsError::new("agent.next: a step is already running"))?;
            let mut s = Streamer::new(on_text);
            let step = on_backend!(&*generator, g => agent.next(g, |t| {
                s.push(t);
            }).await)
            .map_err(js_err)?
            .clone();
            if let Some(e) = s.error {
                return Err(e);
            }
            to_js(&step)
        })
    }

    /// Gives the result of the last step's call (`isError`: the tool
    /// failed; the model sees the message either way). Resolves to the
    /// step with its observation.
    pub fn observe(&self, result: String, is_error: bool) -> Result<JsValue, JsError> {
        let mut agent = self
            .inner
            .try_borrow_mut()
            .map_err(|_| JsError::new("agent.observe: a step is running"))?;
        let r = if is_error { Err(result) } else { Ok(result) };
        let step = agent.observe(r).map_err(js_err)?.clone();
        to_js(&step).map_err(|e| JsError::new(&format!("{e:?}")))
    }

    /// Whether the loop is over (an answer, or the step cap).
    #[wasm_bindgen(getter, js_name = isDone)]
    pub fn is_done(&self) -> bool {
        self.inner.try_borrow().is_ok_and(|a| a.is_done())
    }

    /// Whether the last step called a tool that has no result yet.
    #[wasm_bindgen(getter, js_name = pendingCall)]
    pub fn pending_call(&self) -> JsValue {
        let Ok(a) = self.inner.try_borrow() else {
            return JsValue::NULL;
        };
        match a.transcript().last() {
            Some(s) if s.observation.is_none() => match &s.action {
                StepAction::Call(c) => to_js(c).unwrap_or(JsValue::NULL),
                _ => JsValue::NULL,
            },
            _ => JsValue::NULL,
        }
    }

    /// `{ answer, stop: "answered" | "step_cap", steps }`.
    pub fn outcome(&self) -> Result<JsValue, JsError> {
        let a = self
            .inner
            .try_borrow()
            .map_err(|_| JsError::new("agent.outcome: a step is running"))?;
        to_js(&a.outcome()).map_err(|e| JsError::new(&format!("{e:?}")))
    }
}

/// The built-in calculator: evaluates an arithmetic expression exactly
/// where possible (a parser; it never evaluates code). Throws with the
/// reason on a bad expression.
#[wasm_bindgen]
pub fn calculate(expression: &str) -> Result<String, JsError> {
    cairn_core::agent::calculator::evaluate(expression)
        .map(|n| n.to_string())
        .map_err(js_err)
}

/// The built-in calculator's declaration `{ name, description, parameters }`.
#[wasm_bindgen(js_name = calculatorSpec)]
pub fn calculator_spec() -> Result<JsValue, JsError> {
    to_js(&cairn_core::agent::builtin::calculator_spec())
        .map_err(|e| JsError::new(&format!("{e:?}")))
}
