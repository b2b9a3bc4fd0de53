//! `cairn agent`: a ReAct agent that solves a task with tools (`calculator`,
//! and `search` / `read_page` over the RAG index), streaming each step.

use std::path::Path;
use std::sync::{Arc, Mutex};

use cairn_core::agent::builtin::{BUILTIN, Calculator, QueryEmbedder, ReadPage, Search};
use cairn_core::agent::react::{AgentEvent, Outcome, Stop};
use cairn_core::agent::{Agent, AgentOptions, StepAction, Tool};
use cairn_core::backend::cpu::CpuBackend;
use cairn_core::embedder::EmbedderOptions;

use super::args::{DecodingArgs, IndexArgs};
use super::generate::DecoderArgs;
use crate::cache::resolve_model;
use crate::embed::load_embedder;
use crate::error::{Error, Result};
use crate::generate::load_adapted;
use crate::on_backend;

/// Arguments of `cairn agent`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The task, e.g. "What is 17.5% of 2,340 plus the square root of 144?".
    pub task: String,
    /// Tools the agent may call (comma-separated: calculator, search,
    /// read_page). Default: all three when the RAG index exists, else calculator.
    #[arg(long, value_delimiter = ',')]
    pub tools: Vec<String>,
    /// Steps before the agent gives up.
    #[arg(long, default_value_t = 6)]
    pub max_steps: usize,
    /// Longest a tool call may run, in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    pub tool_timeout_ms: u64,
    /// Passages `search` returns (small models follow one passage best; raise
    /// it for larger ones).
    #[arg(long, default_value_t = 1)]
    pub search_k: usize,
    /// Leave out the worked examples of the step format from the prompt.
    #[arg(long)]
    pub no_examples: bool,
    /// Decode steps without the step grammar (malformed steps and unknown
    /// tools then come back to the model as errors).
    #[arg(long)]
    pub unconstrained: bool,
    /// Print the whole transcript as JSON at the end (instead of streaming the steps).
    #[arg(long)]
    pub json: bool,
    /// The RAG index `search` and `read_page` use.
    #[command(flatten)]
    pub index: IndexArgs,
    /// The decoder.
    #[command(flatten)]
    pub decoder: DecoderArgs,
    /// Decoding options (`--max-new-tokens` is per step).
    #[command(flatten)]
    pub decoding: DecodingArgs,
}

/// The tools named by `--tools` (or the default set).
fn build_tools(a: &Args, cache: &Path) -> Result<Vec<Arc<dyn Tool>>> {
    let index_path = a.index.path(cache);
    let names: Vec<String> = if a.tools.is_empty() {
        if index_path.exists() {
            BUILTIN.iter().map(|s| s.to_string()).collect()
        } else {
            vec!["calculator".into()]
        }
    } else {
        a.tools.iter().map(|s| s.trim().to_string()).collect()
    };
    let mut shared = None;
    let mut out: Vec<Arc<dyn Tool>> = Vec::new();
    for name in &names {
        if out.iter().any(|t| &t.spec().name == name) {
            continue;
        }
        let tool: Arc<dyn Tool> = match name.as_str() {
            "calculator" => Arc::new(Calculator::default()),
            "search" | "read_page" => {
                if shared.is_none() {
                    shared = Some(open_index(a, cache, &index_path)?);
                }
                let Some((ix, embed)) = shared.clone() else {
                    return Err(Error::Model("the index did not load".into()));
                };
                if name == "search" {
                    Arc::new(Search::new(ix, Some(embed), a.search_k))
                } else {
                    Arc::new(ReadPage::new(ix))
                }
            }
            other => {
                return Err(Error::Usage(format!(
                    "unknown tool '{other}' (tools: {})",
                    BUILTIN.join(", ")
                )));
            }
        };
        out.push(tool);
    }
    if out.is_empty() {
        return Err(Error::Usage("--tools names no tool".into()));
    }
    Ok(out)
}

type Opened = (cairn_core::agent::builtin::SharedIndex, Arc<QueryEmbedder>);

/// The index and a CPU query embedder for it.
fn open_index(a: &Args, cache: &Path, path: &Path) -> Result<Opened> {
    if !path.exists() {
        return Err(Error::Model(format!(
            "search and read_page need a RAG index, and there is none at {}; build one with `cairn index DIR --collection NAME`",
            path.display()
        )));
    }
    let emb_dir = resolve_model(&a.index.embedder, cache)?;
    let emb = load_embedder(CpuBackend::new(), &emb_dir, &EmbedderOptions::default())?;
    let ix = crate::rag::read_index(path, &a.index.embedder, emb.dim())?;
    let embed: Arc<QueryEmbedder> =
        Arc::new(move |q: &str| Ok(pollster::block_on(emb.encode_async(&[q], true))?.data));
    Ok((Arc::new(Mutex::new(ix)), embed))
}

/// Runs `cairn agent`.
pub fn run(a: Args, cache: &Path) -> Result<()> {
    let tools = build_tools(&a, cache)?;
    let generation = a.decoding.config()?;
    let max_step_tokens = generation.max_new_tokens;
    let options = AgentOptions {
        max_steps: a.max_steps,
        max_step_tokens,
        examples: !a.no_examples,
        constrained: !a.unconstrained,
        tool_timeout_ms: a.tool_timeout_ms,
        generation,
        ..AgentOptions::default()
    };
    let outcome = on_backend!(a.decoder.backend.pick()?, b => {
        let generator = load_adapted(
            b,
            &resolve_model(&a.decoder.model, cache)?,
            a.decoder.adapter.as_deref(),
        )?;
        let specs = tools.iter().map(|t| t.spec().clone()).collect();
        let mut agent = Agent::new(specs, &a.task, options)?;
        pollster::block_on(agent.run(&generator, &tools, |e| {
            if !a.json {
                print_event(&e);
            }
        }))?
    });
    report(&a, &outcome)
}

/// Streams a step to stdout as the model writes it.
fn print_event(e: &AgentEvent<'_>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match e {
        AgentEvent::Text(t) => {
            let _ = write!(out, "{t}");
        }
        AgentEvent::Step(s) => {
            let _ = writeln!(out);
            if let Some(obs) = &s.observation {
                let _ = writeln!(out, "Observation: {obs}");
            }
            let _ = writeln!(out);
        }
    }
    let _ = out.flush();
}

fn report(a: &Args, outcome: &Outcome) -> Result<()> {
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(outcome).unwrap_or_default()
        );
    }
    let calls = outcome
        .steps
        .iter()
        .filter(|s| matches!(s.action, StepAction::Call(_)))
        .count();
    tracing::info!(steps = outcome.steps.len(), calls, "agent finished");
    match outcome.stop {
        Stop::Answered => Ok(()),
        Stop::StepCap => Err(Error::Model(format!(
            "the agent stopped after {} steps without an answer (raise --max-steps)",
            outcome.steps.len()
        ))),
    }
}
