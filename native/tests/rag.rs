//! The RAG pipeline end to end on a small committed PDF
//! (tests/fixtures/mini.pdf, made by tests/scripts/make_mini_pdf.py) plus a
//! Markdown file and a broken PDF: loading, chunking, incremental indexing,
//! hybrid retrieval, the "don't know" rule, the token budget, citations.

mod common;

use std::path::Path;

use cairn::generate::load_generator;
use cairn::rag::{index_dir, read_index};
use cairn_core::backend::block_on_ready;
use cairn_core::backend::cpu::CpuBackend;
use cairn_core::embedder::Embedder;
use cairn_core::rag::answer::{
    AskOptions, NO_ANSWER, SourceText, answer, attribute, build_prompt, quote,
};
use cairn_core::rag::{Method, RagIndex, SearchOptions};

fn embedder() -> Embedder<CpuBackend> {
    common::minilm()
}

fn corpus(dir: &Path) {
    std::fs::copy(common::fixture("mini.pdf"), dir.join("mini.pdf")).unwrap();
    std::fs::write(
        dir.join("notes.md"),
        "# Cooking\n## Bread\nKnead the dough for ten minutes and let it rise for an hour.\n",
    )
    .unwrap();
    let pdf = std::fs::read(common::fixture("mini.pdf")).unwrap();
    std::fs::write(dir.join("broken.pdf"), &pdf[..pdf.len() / 3]).unwrap();
}

#[test]
fn pdf_loader_keeps_pages() {
    let bytes = std::fs::read(common::fixture("mini.pdf")).unwrap();
    let d = cairn_core::text::load("mini.pdf", &bytes).unwrap();
    let pages: Vec<u32> = d.segments.iter().map(|s| s.page.unwrap()).collect();
    assert_eq!(pages, vec![1, 2, 3]);
    assert!(
        d.segments[0].text.contains("R CMD INSTALL pkg_1.0.tar.gz"),
        "{:?}",
        d.segments[0].text
    );
    assert!(d.segments[2].text.contains("/etc/network/interfaces"));
    let e = cairn_core::text::load("cut.pdf", &bytes[..bytes.len() / 3]).unwrap_err();
    assert!(e.to_string().contains("cut.pdf: cannot read PDF"), "{e}");
}

#[test]
fn the_reranker_interface_orders_passages() {
    use cairn_core::retrieve::Reranker;
    let emb = embedder();
    let passages = [
        "Bread dough rises for an hour.",
        "Run R CMD INSTALL on the package tarball to install it.",
        "Network interfaces are configured in /etc/network/interfaces.",
    ];
    let order = emb
        .rerank("How do I install an R package?", &passages, 2)
        .unwrap();
    assert_eq!(order.len(), 2);
    assert_eq!(order[0].0, 1);
    assert!(order[0].1 > order[1].1);
}

#[test]
fn index_retrieve_update_and_answer() {
    let emb = embedder();
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    std::fs::create_dir(&docs).unwrap();
    corpus(&docs);
    let ix_path = dir.path().join("rag.cidx");
    let r = index_dir(&emb, "all-minilm-l6-v2", &docs, "manuals", &ix_path).unwrap();
    assert_eq!((r.indexed, r.unchanged, r.removed), (2, 0, 0));
    assert_eq!(r.failed.len(), 1);
    assert!(
        r.failed[0].contains("broken.pdf: cannot read PDF"),
        "{:?}",
        r.failed
    );
    assert_eq!(r.pages, 3);

    let mut ix = read_index(&ix_path, "all-minilm-l6-v2", 384).unwrap();
    let ask = |ix: &mut RagIndex, q: &str, method: Method| {
        let qv = emb.encode(&[q], true).unwrap().data;
        ix.search(
            q,
            &qv,
            &SearchOptions {
                method,
                k: 3,
                ..Default::default()
            },
        )
        .unwrap()
    };
    for method in [Method::Hybrid, Method::Bm25, Method::Dense] {
        let hits = ask(
            &mut ix,
            "How do I install a package from a local file?",
            method,
        );
        assert_eq!(hits[0].chunk.page, Some(1), "{method:?}: {hits:?}");
        let hits = ask(
            &mut ix,
            "Where are network interfaces configured on Debian?",
            method,
        );
        assert_eq!(hits[0].chunk.page, Some(3), "{method:?}");
    }
    let hits = ask(&mut ix, "how long should bread dough rise", Method::Hybrid);
    assert!(hits[0].chunk.source.ends_with("notes.md"));
    assert_eq!(hits[0].chunk.headings, vec!["Cooking", "Bread"]);
    // Collections filter, and an unknown one is named.
    let qv = emb.encode(&["plots"], true).unwrap().data;
    let e = ix
        .search(
            "plots",
            &qv,
            &SearchOptions {
                collections: vec!["nope".into()],
                ..Default::default()
            },
        )
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("no collection 'nope' in the index (collections: manuals)"),
        "{e}"
    );
    // MMR keeps k results.
    let hits = ix
        .search(
            "plots",
            &qv,
            &SearchOptions {
                mmr_lambda: Some(0.5),
                k: 2,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(hits.len(), 2);

    // Incremental: nothing changed; then one file edited; then one removed.
    let r = index_dir(&emb, "all-minilm-l6-v2", &docs, "manuals", &ix_path).unwrap();
    assert_eq!((r.indexed, r.unchanged), (0, 2));
    std::fs::write(
        docs.join("notes.md"),
        "# Cooking\nBoil pasta for nine minutes.\n",
    )
    .unwrap();
    let r = index_dir(&emb, "all-minilm-l6-v2", &docs, "manuals", &ix_path).unwrap();
    assert_eq!((r.indexed, r.unchanged), (1, 1));
    std::fs::remove_file(docs.join("notes.md")).unwrap();
    let r = index_dir(&emb, "all-minilm-l6-v2", &docs, "manuals", &ix_path).unwrap();
    assert_eq!(r.removed, 1);
    let mut ix = read_index(&ix_path, "all-minilm-l6-v2", 384).unwrap();
    let hits = ask(&mut ix, "how long should bread dough rise", Method::Hybrid);
    assert!(hits.iter().all(|h| h.chunk.source.ends_with("mini.pdf")));
    // No temporary files left beside the index.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name() != "rag.cidx" && e.file_name() != "docs")
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // A corrupt index is a clear error, and the embedder must match.
    let bytes = std::fs::read(&ix_path).unwrap();
    std::fs::write(dir.path().join("bad.cidx"), &bytes[..bytes.len() / 2]).unwrap();
    let e = read_index(&dir.path().join("bad.cidx"), "all-minilm-l6-v2", 384).unwrap_err();
    assert!(e.to_string().contains("corrupt or truncated"), "{e}");
    let e = read_index(&ix_path, "other-model", 384).unwrap_err();
    assert!(
        e.to_string()
            .contains("was built with embedder 'all-minilm-l6-v2'"),
        "{e}"
    );

    // Answering: unrelated questions get the "don't know" answer without generation.
    let g = load_generator(CpuBackend::new(), &common::model("smollm2-135m-instruct")).unwrap();
    let q = "What is the boiling point of mercury on Venus?";
    let hits = ask(&mut ix, q, Method::Hybrid);
    let a = block_on_ready(answer(&g, q, &hits, &AskOptions::default(), |_| true)).unwrap();
    assert_eq!(a.text, NO_ANSWER);
    assert!(!a.grounded);
    // A supported question: sources numbered in the prompt, within budget.
    let q = "How do I install a package from a local file?";
    let hits = ask(&mut ix, q, Method::Hybrid);
    let (prompt, used, _) = build_prompt(&g, q, &hits, SourceText::Passage, 8192).unwrap();
    assert!(prompt.contains("[1] (mini.pdf, page 1)"), "{prompt}");
    assert_eq!(used.len(), hits.len());
    // A tight budget drops or cuts sources but never exceeds the limit.
    // The rule: whole sources while they fit; the first that does not is cut
    // to the tokens left (less 16 for the template) if at least 32 are left,
    // else dropped. Checked with the longest hit last, on two budgets.
    let mut reordered = hits.clone();
    let longest = (0..reordered.len())
        .max_by_key(|&i| reordered[i].chunk.text.len())
        .unwrap();
    let h = reordered.remove(longest);
    reordered.push(h);
    let last = reordered[reordered.len() - 1].chunk.text.clone();
    let ids = g.tokenizer().encode(&last, false).unwrap().ids;
    let (base, _, n_base) = build_prompt(
        &g,
        q,
        &reordered[..reordered.len() - 1],
        SourceText::Passage,
        8192,
    )
    .unwrap();
    assert!(ids.len() > 40, "{last}");
    // 40 tokens of room: the last source is cut to exactly those.
    let budget = n_base + 16 + 40;
    let (small, used_small, n_small) =
        build_prompt(&g, q, &reordered, SourceText::Passage, budget).unwrap();
    assert_eq!(g.encode(&small).unwrap().len(), n_small);
    assert!(n_small <= budget, "{n_small} > {budget}");
    assert_eq!(used_small.len(), reordered.len());
    assert!(small.contains(&g.decode(&ids[..40])), "{small}");
    assert!(!small.contains(last.as_str()));
    // 31 tokens of room: dropped; the prompt is the one without it.
    let (small, used_small, n_small) =
        build_prompt(&g, q, &reordered, SourceText::Passage, n_base + 16 + 31).unwrap();
    assert_eq!(
        (small, used_small.len(), n_small),
        (base, reordered.len() - 1, n_base)
    );
    let opts = AskOptions {
        generation: cairn_core::generate::GenerationConfig {
            max_new_tokens: 48,
            ..Default::default()
        },
        ..Default::default()
    };
    let mut streamed = String::new();
    let a = block_on_ready(answer(&g, q, &hits, &opts, |p| {
        streamed.push_str(p);
        true
    }))
    .unwrap();
    assert!(a.grounded, "{}", a.text);
    assert!(!a.text.is_empty());
    assert_eq!(streamed.trim(), a.text);
    assert!(a.cited.iter().all(|&c| c >= 1 && c <= a.sources.len()));
    // The checks below need an answer that cites: this one does (greedy
    // decoding is deterministic), so they cannot pass vacuously.
    assert!(
        !a.cited.is_empty() && a.text.contains('['),
        "no citation in {:?}",
        a.text
    );
    // Constrained decoding: every bracket in the raw answer is a citation of a given source.
    for (i, _) in a.text.match_indices('[') {
        let inner: String = a.text[i + 1..].chars().take_while(|&c| c != ']').collect();
        assert!(
            inner.split(',').all(|n| n
                .trim()
                .parse::<usize>()
                .is_ok_and(|n| (1..=a.sources.len()).contains(&n))),
            "invalid citation [{inner}] in {:?}",
            a.text
        );
    }

    // Post-hoc attribution: a sentence that restates a source is traced to
    // it; an unrelated sentence is traced to none.
    let answer_text = "Run R CMD INSTALL on the package file to install it. Bananas are yellow.";
    let found = block_on_ready(attribute(&emb, answer_text, &a.sources, 0.6)).unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        &answer_text[found[0].sentence.clone()],
        "Run R CMD INSTALL on the package file to install it."
    );
    let src = &a.sources[found[0].source - 1];
    assert_eq!(
        (src.chunk.source.ends_with("mini.pdf"), src.chunk.page),
        (true, Some(1))
    );
    assert!(found[0].cosine >= 0.6 && found[0].cosine <= 1.0 + 1e-5);

    // Extractive answers: the sentence closest to the question, quoted
    // verbatim with the number of the source it comes from.
    let quoted = block_on_ready(quote(&emb, q, &hits, SourceText::Matched, 2, 0.5)).unwrap();
    assert!(quoted.grounded && quoted.generated_tokens == 0);
    let first = quoted.text.lines().next().unwrap();
    let (body, n) = first.rsplit_once(" [").unwrap();
    let n: usize = n.trim_end_matches(']').parse().unwrap();
    let body = body.trim_matches('"');
    assert_eq!(
        body,
        "Installing packages To install a package from a local file, run R CMD INSTALL \
         pkg_1.0.tar.gz in a shell, or call install.packages with repos set to NULL inside R."
    );
    assert_eq!(quoted.sources[n - 1].chunk.page, Some(1));
    assert!(quoted.cited.contains(&n));
    // The reference: every quoted line is its source's text, whitespace joined,
    // and the first is the one of highest cosine with the question.
    let norm = |t: &str| t.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut best = (f32::MIN, String::new());
    for h in &hits {
        let s = norm(&h.matched.text);
        let e = emb.encode(&[q, s.as_str()], true).unwrap();
        let c = cairn_core::util::dot(e.row(0), e.row(1));
        if c > best.0 {
            best = (c, s);
        }
    }
    assert_eq!(best.1, body, "mini.pdf's chunks are one sentence each");
    assert!(quoted.text.lines().count() <= 2);
    for line in quoted.text.lines() {
        let (body, n) = line.rsplit_once(" [").unwrap();
        let n: usize = n.trim_end_matches(']').parse().unwrap();
        assert!(norm(&quoted.sources[n - 1].matched.text).contains(body.trim_matches('"')));
    }
    // Nothing close enough: "I don't know", nothing cited.
    let none = block_on_ready(quote(
        &emb,
        "What is the boiling point of mercury on Venus?",
        &hits,
        SourceText::Matched,
        2,
        0.5,
    ))
    .unwrap();
    assert_eq!((none.text.as_str(), none.grounded), (NO_ANSWER, false));
    // The CLI's `--answer quote` prints the same answer.
    let (ok, out, err) = common::cairn(&[
        "ask",
        q,
        "--index",
        ix_path.to_str().unwrap(),
        "--answer",
        "quote",
        "--quote-sentences",
        "2",
        "--k",
        "3",
    ]);
    assert!(ok, "{err}");
    assert!(out.starts_with(&quoted.text), "{out}");
    assert!(out.contains("Sources cited:"), "{out}");
}
