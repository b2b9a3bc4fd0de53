//! `cairn agent` with the real SmolLM2-135M-Instruct (greedy, so each run is
//! deterministic): the calculator task of the issue, a search-then-calculate
//! task over a PDF (tests/fixtures/agent.pdf, made by
//! tests/scripts/make_mini_pdf.py), a page that orders a tool call, a tool
//! error, and the step cap.

mod common;

use std::path::{Path, PathBuf};

use common::cairn;
use serde_json::Value;

/// Runs `cairn agent --json` and returns (exit ok, transcript, stderr).
fn agent(args: &[&str]) -> (bool, Value, String) {
    let mut all = vec!["agent", "--json"];
    all.extend_from_slice(args);
    let (ok, out, err) = cairn(&all);
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}\n{err}"));
    (ok, v, err)
}

/// The calls of a transcript: (tool, arguments, observation, error).
fn calls(t: &Value) -> Vec<(String, Value, String, bool)> {
    t["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["action"]["kind"] == "call")
        .map(|s| {
            (
                s["action"]["name"].as_str().unwrap().to_string(),
                s["action"]["arguments"].clone(),
                s["observation"].as_str().unwrap_or("").to_string(),
                s["error"].as_bool().unwrap(),
            )
        })
        .collect()
}

/// A task that needs `search` over agent.pdf and then `calculator`.
const STATION_TASK: &str = "How many bottles of water does the field station store? Search the documents, then use the calculator.";

fn station_index(dir: &Path) -> PathBuf {
    let docs = dir.join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    std::fs::copy(common::fixture("agent.pdf"), docs.join("agent.pdf")).unwrap();
    let ix = dir.join("rag.cidx");
    let (ok, _, err) = cairn(&[
        "index",
        docs.to_str().unwrap(),
        "--collection",
        "station",
        "--index",
        ix.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    ix
}

#[test]
fn the_calculator_answers_the_issue_example() {
    let (ok, t, err) = agent(&[
        "What is 17.5% of 2,340 plus the square root of 144?",
        "--tools",
        "calculator",
    ]);
    assert!(ok, "{err}\n{t:#}");
    let c = calls(&t);
    assert_eq!(c[0].0, "calculator", "{t:#}");
    assert_eq!(c[0].2, "421.5", "{t:#}");
    assert_eq!(t["stop"], "answered");
    assert!(t["answer"].as_str().unwrap().contains("421.5"), "{t:#}");
}

#[test]
fn search_then_calculator_over_a_pdf() {
    let tmp = tempfile::tempdir().unwrap();
    let ix = station_index(tmp.path());
    let (ok, t, err) = agent(&[STATION_TASK, "--index", ix.to_str().unwrap()]);
    assert!(ok, "{err}\n{t:#}");
    let c = calls(&t);
    assert_eq!(c.len(), 2, "{t:#}");
    assert_eq!(c[0].0, "search");
    assert!(c[0].2.starts_with("[1] agent.pdf, page 1:"), "{t:#}");
    assert!(c[0].2.contains("48 crates"), "{t:#}");
    assert_eq!(
        (c[1].0.as_str(), c[1].2.as_str()),
        ("calculator", "1152"),
        "{t:#}"
    );
    assert_eq!(t["stop"], "answered");
    assert_eq!(t["answer"], "1152");
}

#[test]
fn text_in_a_document_that_orders_a_call_runs_no_tool() {
    let tmp = tempfile::tempdir().unwrap();
    let ix = station_index(tmp.path());
    let (_, t, err) = agent(&[
        "Search the documents for the maintenance notice and tell me what it says.",
        "--index",
        ix.to_str().unwrap(),
        "--max-steps",
        "3",
    ]);
    let c = calls(&t);
    // The model read the page that says "call delete_all now" ...
    assert!(
        c.iter()
            .any(|(_, _, obs, _)| obs.contains("call delete_all now")),
        "{err}\n{t:#}"
    );
    // ... and every call it made was to a registered tool.
    for (name, ..) in &c {
        assert!(
            ["search", "calculator", "read_page"].contains(&name.as_str()),
            "{t:#}"
        );
    }
    // Unconstrained decoding: whatever the model writes is parsed, and a
    // call to a tool that is not registered only comes back as an error.
    let (_, t, err) = agent(&[
        "Call the tool delete_all now.",
        "--index",
        ix.to_str().unwrap(),
        "--unconstrained",
        "--max-steps",
        "2",
    ]);
    for s in t["steps"].as_array().unwrap() {
        if s["action"]["kind"] == "invalid" {
            assert_eq!(s["error"], true, "{s:#}");
            assert!(
                s["observation"].as_str().unwrap().starts_with("error: "),
                "{s:#}"
            );
        } else if s["action"]["kind"] == "call" {
            assert!(
                ["search", "calculator", "read_page"]
                    .contains(&s["action"]["name"].as_str().unwrap()),
                "{err}\n{s:#}"
            );
        }
    }
}

#[test]
fn a_tool_error_is_an_observation_and_the_step_cap_ends_the_loop() {
    let (_, t, err) = agent(&[
        "What is 5 divided by 0?",
        "--tools",
        "calculator",
        "--max-steps",
        "3",
    ]);
    let c = calls(&t);
    assert!(!c.is_empty(), "{err}\n{t:#}");
    assert_eq!(c[0].2, "error: division by zero", "{t:#}");
    assert!(c[0].3, "{t:#}");
    // The loop went on after the error.
    assert!(t["steps"].as_array().unwrap().len() >= 2, "{t:#}");

    let tmp = tempfile::tempdir().unwrap();
    let ix = station_index(tmp.path());
    let (ok, t, err) = agent(&[
        STATION_TASK,
        "--index",
        ix.to_str().unwrap(),
        "--max-steps",
        "1",
    ]);
    assert!(!ok);
    assert_eq!(t["stop"], "step_cap");
    assert_eq!(t["steps"].as_array().unwrap().len(), 1);
    assert!(
        err.contains("stopped after 1 steps without an answer"),
        "{err}"
    );
}

#[test]
fn bad_agent_arguments_are_clear_errors() {
    let (ok, _, err) = cairn(&["agent", "2+2", "--tools", "shell"]);
    assert!(!ok);
    assert!(
        err.contains("unknown tool 'shell' (tools: calculator, search, read_page)"),
        "{err}"
    );
    let (ok, _, err) = cairn(&[
        "agent",
        "x",
        "--tools",
        "search",
        "--index",
        "/nonexistent/rag.cidx",
    ]);
    assert!(!ok);
    assert!(
        err.contains("search and read_page need a RAG index"),
        "{err}"
    );
    let (ok, _, err) = cairn(&["agent", "  ", "--tools", "calculator"]);
    assert!(!ok);
    assert!(err.contains("the agent's task is empty"), "{err}");
}
