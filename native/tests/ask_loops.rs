//! `ask` with its defaults never runs away in a loop, on the real model and
//! the real corpus: SmolLM2-135M-Instruct answering from pages of "Writing R
//! Extensions" (R-exts.pdf, fetched by `cairn fetch`) repeats
//! "install.packages::install_packages::…" until the token budget when
//! nothing stops it; with the defaults (`stop_on_loop`, always on for RAG
//! answers) every answer ends within the guard's bound.

mod common;

use cairn::generate::load_generator;
use cairn::rag::{index_dir, read_index};
use cairn_core::backend::block_on_ready;
use cairn_core::backend::cpu::CpuBackend;
use cairn_core::generate::{GenerationConfig, loop_period};
use cairn_core::rag::SearchOptions;
use cairn_core::rag::answer::{AskOptions, SourceText, answer, build_prompt};

/// The most copies of one unit (2 to 40 characters) that follow each other
/// anywhere in `text`: an independent, character-level look at repetition.
fn max_back_to_back(text: &str) -> usize {
    let c: Vec<char> = text.chars().collect();
    let mut best = 1;
    for p in 2..=40usize {
        let mut run = 0;
        for i in p..c.len() {
            if c[i] == c[i - p] {
                run += 1;
                best = best.max(1 + run / p);
            } else {
                run = 0;
            }
        }
    }
    best
}

#[test]
fn ask_answers_from_the_r_manuals_never_loop() {
    let cache = cairn::cache::cache_dir(None);
    let pdf = cache.join("corpus/r-manuals/R-exts.pdf");
    let bytes = std::fs::read(&pdf).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (the test command runs `cairn fetch` first)",
            pdf.display()
        )
    });
    let doc = cairn_core::text::loaders::load_pdf("R-exts.pdf", &bytes).unwrap();
    // Pages 50–56: installing packages, repositories, the pages the loop came from.
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    std::fs::create_dir(&docs).unwrap();
    for s in doc
        .segments
        .iter()
        .filter(|s| matches!(s.page, Some(50..=56)))
    {
        let page = s.page.unwrap_or_default();
        std::fs::write(docs.join(format!("R-exts-p{page}.txt")), &s.text).unwrap();
    }
    let emb = common::minilm();
    let ix_path = dir.path().join("rag.cidx");
    index_dir(&emb, "all-minilm-l6-v2", &docs, "r-devel", &ix_path).unwrap();
    let mut ix = read_index(&ix_path, "all-minilm-l6-v2", 384).unwrap();
    let g = load_generator(CpuBackend::new(), &common::model("smollm2-135m-instruct")).unwrap();
    let questions = [
        "How do I set the default CRAN mirror for install.packages?",
        "How do I install a package from a local tarball?",
        "What does R CMD INSTALL do with the package sources?",
        "Where does install.packages put the installed packages?",
        "How can I check a package before submitting it to CRAN?",
    ];
    let opts = AskOptions::default();
    let budget = opts.generation.max_new_tokens;
    for (i, q) in questions.iter().enumerate() {
        let qv = emb.encode(&[q], true).unwrap().data;
        let hits = ix.search(q, &qv, &SearchOptions::default()).unwrap();
        let a = block_on_ready(answer(&g, q, &hits, &opts, |_| true)).unwrap();
        let reps = max_back_to_back(&a.text);
        eprintln!(
            "{q}: {} tokens, {reps} back-to-back copies at most\n{}\n",
            a.generated_tokens, a.text
        );
        // The guard's bound: 32 copies of one token at most, so 16 of a
        // two-character unit; a runaway fills the budget with many more.
        assert!(reps <= 16, "{q}: a unit repeats {reps} times:\n{}", a.text);
        if i == 0 {
            // The reference: the same prompt decoded without the guard loops
            // to the budget, so this question does exercise it.
            let (prompt, _, _) =
                build_prompt(&g, q, &hits, SourceText::Matched, 8192 - budget).unwrap();
            let free = block_on_ready(g.generate(
                &prompt,
                &GenerationConfig {
                    max_new_tokens: budget,
                    ..Default::default()
                },
            ))
            .unwrap();
            assert!(
                loop_period(&free.token_ids).is_some(),
                "without the guard the answer did not loop:\n{}",
                free.text
            );
            assert!(a.generated_tokens < free.token_ids.len(), "{}", a.text);
        }
    }
}
