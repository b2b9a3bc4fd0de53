//! `cairn index` never loses what was stored: sibling folders, one folder
//! spelled three ways, two writers at once, and folders with entries that
//! cannot be read (dangling links, link loops, FIFOs).

mod common;

use std::path::Path;
use std::process::Command;

use cairn::rag::{document_files, index_dir, read_index};
use cairn_core::backend::cpu::CpuBackend;
use cairn_core::embedder::Embedder;

fn embedder() -> Embedder<CpuBackend> {
    common::minilm()
}

fn write_docs(dir: &Path, topic: &str, n: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..n {
        std::fs::write(
            dir.join(format!("{topic}{i}.txt")),
            format!(
                "Notes about {topic}, part {i}. The {topic} section explains item number {i}.\n"
            ),
        )
        .unwrap();
    }
}

/// The names in a directory.
fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// Sources of `collection` in the index at `path`.
fn sources(path: &Path, collection: &str) -> Vec<String> {
    let ix = read_index(path, "all-minilm-l6-v2", 384).unwrap();
    ix.collections
        .get(collection)
        .map(|c| c.files.keys().cloned().collect())
        .unwrap_or_default()
}

#[test]
fn a_sibling_folder_with_a_shared_prefix_keeps_its_documents() {
    let emb = embedder();
    let tmp = tempfile::tempdir().unwrap();
    let (d, d2) = (tmp.path().join("d"), tmp.path().join("d2"));
    write_docs(&d, "alpha", 2);
    write_docs(&d2, "beta", 3);
    let ix = tmp.path().join("rag.cidx");
    index_dir(&emb, "all-minilm-l6-v2", &d2, "c", &ix).unwrap();
    let r = index_dir(&emb, "all-minilm-l6-v2", &d, "c", &ix).unwrap();
    assert_eq!((r.indexed, r.removed), (2, 0));
    assert_eq!(sources(&ix, "c").len(), 5);
    // A file removed from d leaves; d2's stay.
    std::fs::remove_file(d.join("alpha0.txt")).unwrap();
    let r = index_dir(&emb, "all-minilm-l6-v2", &d, "c", &ix).unwrap();
    assert_eq!((r.indexed, r.unchanged, r.removed), (0, 1, 1));
    let s = sources(&ix, "c");
    assert_eq!(s.len(), 4, "{s:?}");
    assert_eq!(s.iter().filter(|s| s.contains("beta")).count(), 3);
}

#[test]
fn several_paths_index_into_one_collection_and_keep_each_other() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    write_docs(&a, "alpha", 2);
    write_docs(&b, "beta", 1);
    let single = tmp.path().join("single.txt");
    std::fs::write(&single, "A single file about gamma rays.").unwrap();
    let ix = tmp.path().join("rag.cidx");
    let run = |paths: &[&Path]| {
        let mut args: Vec<String> = vec!["index".into()];
        args.extend(paths.iter().map(|p| p.display().to_string()));
        args.extend(["--collection", "c", "--index"].map(String::from));
        args.push(ix.display().to_string());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (ok, out, err) = common::cairn(&args);
        assert!(ok, "{err}");
        out
    };
    let out = run(&[&a, &b, &single]);
    // One line per path, each naming it.
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines[0].contains("2 files indexed") && lines[0].contains(&*a.display().to_string()));
    assert!(lines[1].contains("1 files indexed") && lines[1].contains(&*b.display().to_string()));
    assert!(lines[2].contains("1 files indexed"), "{out}");
    assert_eq!(sources(&ix, "c").len(), 4);
    // Again: nothing changed, nothing removed (the paths do not evict each other).
    let out = run(&[&a, &b, &single]);
    assert_eq!(out.matches("0 files indexed").count(), 3, "{out}");
    assert_eq!(out.matches("0 removed").count(), 3, "{out}");
    assert_eq!(sources(&ix, "c").len(), 4);
}

#[test]
fn one_folder_spelled_three_ways_is_stored_once() {
    let emb = embedder();
    let tmp = tempfile::tempdir().unwrap();
    let docs = tmp.path().join("docs");
    write_docs(&docs, "gamma", 2);
    let ix = tmp.path().join("rag.cidx");
    let dotted = tmp.path().join(".").join("docs").join("..").join("docs");
    let r = index_dir(&emb, "all-minilm-l6-v2", &docs, "c", &ix).unwrap();
    assert_eq!(r.indexed, 2);
    let r = index_dir(&emb, "all-minilm-l6-v2", &dotted, "c", &ix).unwrap();
    assert_eq!((r.indexed, r.unchanged, r.removed), (0, 2, 0));
    // Relative to the working directory, as a user types it.
    let out = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .current_dir(tmp.path())
        .args([
            "index",
            "./docs",
            "--collection",
            "c",
            "--index",
            "rag.cidx",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("0 files indexed, 2 unchanged, 0 removed"),
        "{stdout}"
    );
    let canon = docs.canonicalize().unwrap();
    let s = sources(&ix, "c");
    assert_eq!(s.len(), 2);
    assert!(s.iter().all(|s| Path::new(s).starts_with(&canon)), "{s:?}");
}

#[test]
fn two_writers_on_one_index_lose_nothing() {
    common::model("all-minilm-l6-v2");
    let tmp = tempfile::tempdir().unwrap();
    let ix = tmp.path().join("rag.cidx");
    let ix_s = ix.to_str().unwrap();
    for round in 0..2 {
        let mut children = Vec::new();
        for name in ["left", "right"] {
            let dir = tmp.path().join(format!("{name}{round}"));
            write_docs(&dir, name, 6);
            children.push(
                Command::new(env!("CARGO_BIN_EXE_cairn"))
                    .args(["index", dir.to_str().unwrap(), "--collection"])
                    .arg(format!("{name}{round}"))
                    .args(["--index", ix_s])
                    .env("CAIRN_LOG", "warn")
                    .spawn()
                    .unwrap(),
            );
        }
        for mut c in children {
            assert!(c.wait().unwrap().success());
        }
        for name in ["left", "right"] {
            assert_eq!(
                sources(&ix, &format!("{name}{round}")).len(),
                6,
                "round {round} {name}"
            );
        }
    }
    // Every collection of both rounds is there, and nothing but the index is left.
    let ix_read = read_index(&ix, "all-minilm-l6-v2", 384).unwrap();
    assert_eq!(ix_read.collections.len(), 4);
    let left: Vec<String> = entries(tmp.path())
        .into_iter()
        .filter(|n| n.ends_with(".lock") || n.contains(".partial-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[cfg(unix)]
#[test]
fn unreadable_entries_are_skipped_and_reported_not_fatal() {
    use std::os::unix::fs::symlink;
    let tmp = tempfile::tempdir().unwrap();
    let docs = tmp.path().join("docs");
    write_docs(&docs, "delta", 2);
    let sub = docs.join("sub");
    write_docs(&sub, "eps", 1);
    symlink(docs.join("missing.txt"), docs.join("dangling.txt")).unwrap();
    symlink(docs.join("loop_b.txt"), docs.join("loop_a.txt")).unwrap();
    symlink(docs.join("loop_a.txt"), docs.join("loop_b.txt")).unwrap();
    symlink(&docs, sub.join("up")).unwrap(); // a cycle through the tree
    symlink(".", docs.join("self")).unwrap();
    symlink(docs.join("delta0.txt"), docs.join("again.txt")).unwrap(); // same file twice
    let fifo = docs.join("pipe.txt");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );

    let walk = document_files(&docs).unwrap();
    let names: Vec<String> = walk
        .files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["delta0.txt", "delta1.txt", "eps0.txt"]);
    let skipped = walk.skipped.join("\n");
    for want in [
        "dangling.txt",
        "loop_a.txt",
        "loop_b.txt",
        "pipe.txt: not a regular file",
        "already walked",
    ] {
        assert!(skipped.contains(want), "{want} not in {skipped}");
    }

    // The CLI indexes the good files (it does not hang on the FIFO) and says what it skipped.
    common::model("all-minilm-l6-v2");
    let ix = tmp.path().join("rag.cidx");
    let out = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args([
            "index",
            docs.to_str().unwrap(),
            "--collection",
            "c",
            "--index",
            ix.to_str().unwrap(),
        ])
        .env("CAIRN_LOG", "warn")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("skipping") && stderr.contains("pipe.txt"),
        "{stderr}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("3 files indexed"));
}

/// `cairn index` killed with SIGKILL at random moments (model load, chunking,
/// embedding, mid-write) always leaves a loadable index (the previous one or
/// a newer one); the next run sweeps what the killed ones left and finishes
/// with every file indexed, no temporary or lock file remaining.
/// `CAIRN_KILLS=100` runs more rounds (default 12).
#[cfg(unix)]
#[test]
fn killed_runs_leave_a_loadable_index() {
    use std::os::unix::process::ExitStatusExt;
    common::model("all-minilm-l6-v2");
    let tmp = tempfile::tempdir().unwrap();
    let docs = tmp.path().join("docs");
    write_docs(&docs, "kappa", 8);
    let ix = tmp.path().join("rag.cidx");
    let rounds: usize = std::env::var("CAIRN_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12);
    let mut rng = cairn_core::util::Rng::new(2026);
    let (mut killed, mut finished) = (0, 0);
    for round in 0..rounds {
        // New content each round, so every run has files to (re)index.
        for i in 0..8 {
            std::fs::write(
                docs.join(format!("kappa{i}.txt")),
                format!(
                    "Round {round}, note {i}: the kappa section explains item {i} of {round}.\n"
                ),
            )
            .unwrap();
        }
        let mut child = Command::new(env!("CARGO_BIN_EXE_cairn"))
            .args([
                "index",
                docs.to_str().unwrap(),
                "--collection",
                "c",
                "--index",
            ])
            .arg(&ix)
            .env("CAIRN_LOG", "error")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let delay = rng.below(900) as u64;
        std::thread::sleep(std::time::Duration::from_millis(delay));
        let _ = child.kill();
        let status = child.wait().unwrap();
        if status.signal() == Some(9) {
            killed += 1;
        } else {
            assert!(status.success(), "round {round}: {status}");
            finished += 1;
        }
        if ix.exists() {
            let r = read_index(&ix, "all-minilm-l6-v2", 384);
            assert!(
                r.is_ok(),
                "round {round} (killed after {delay} ms): {:?}",
                r.err()
            );
        }
    }
    eprintln!("{killed} runs killed, {finished} finished; the index loaded after every one");
    assert!(
        killed > 0,
        "no run was killed: the delays are too long for this machine"
    );
    let emb = embedder();
    let r = index_dir(&emb, "all-minilm-l6-v2", &docs, "c", &ix).unwrap();
    assert_eq!(r.indexed + r.unchanged, 8);
    assert_eq!(sources(&ix, "c").len(), 8);
    let left: Vec<String> = entries(tmp.path())
        .into_iter()
        .filter(|n| n != "rag.cidx" && n != "docs")
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// A 10 GB file (sparse: no disk used) is reported as too large, not read
/// into memory, and the other documents are indexed.
#[cfg(unix)]
#[test]
fn a_huge_file_is_reported_not_loaded() {
    let emb = embedder();
    let tmp = tempfile::tempdir().unwrap();
    let docs = tmp.path().join("docs");
    write_docs(&docs, "lambda", 2);
    let big = std::fs::File::create(docs.join("huge.txt")).unwrap();
    big.set_len(10 << 30).unwrap();
    let ix = tmp.path().join("rag.cidx");
    let r = index_dir(&emb, "all-minilm-l6-v2", &docs, "c", &ix).unwrap();
    assert_eq!(r.indexed, 2);
    assert_eq!(r.failed.len(), 1, "{:?}", r.failed);
    assert!(
        r.failed[0].contains("huge.txt: 10737418240 bytes is above the 268435456-byte limit"),
        "{:?}",
        r.failed
    );
}

/// A 1 MB single-line "sentence" (words with no break, and one 1 MB word
/// with no whitespace at all) is chunked with the index's own settings:
/// every child within 128 tokens and every parent within 512, the children
/// tile their parent's text in order, and the parents cover the whole line.
#[test]
fn a_one_megabyte_single_line_is_chunked_within_the_limits() {
    use cairn_core::text::chunk::{Splitter, small_to_big};
    use cairn_core::text::loaders::load_text;
    let emb = embedder();
    let tok = emb.tokenizer();
    let (parent, child) = cairn_core::rag::ingest::chunk_options();
    let parent = Splitter::new(parent, Some(tok)).unwrap();
    let child = Splitter::new(child, Some(tok)).unwrap();
    let words: String = (0..)
        .map(|i| ["alpha ", "beta ", "gamma ", "delta "][i % 4])
        .take(1 << 18)
        .collect::<String>();
    let one_word = "x".repeat(1 << 20);
    for (name, text) in [
        ("words", &words[..1 << 20]),
        ("one word", one_word.as_str()),
    ] {
        assert_eq!(text.len(), 1 << 20);
        let doc = load_text("line.txt", text);
        let started = std::time::Instant::now();
        let (parents, children) = small_to_big(&doc, &parent, &child).unwrap();
        let count = |s: &str| tok.encode(s, false).unwrap().ids.len();
        assert!(parents.iter().all(|p| count(&p.text) <= 512), "{name}");
        assert!(children.iter().all(|c| count(&c.text) <= 128), "{name}");
        // Parents start where the previous one's overlap begins and reach the end.
        assert_eq!(parents[0].start, 0, "{name}");
        let last = parents.last().unwrap();
        assert_eq!(
            last.start + last.text.len(),
            text.trim_end().len(),
            "{name}"
        );
        for w in parents.windows(2) {
            assert!(
                w[1].start > w[0].start && w[1].start <= w[0].start + w[0].text.len(),
                "{name}"
            );
        }
        // Each child is a slice of its parent, in order.
        for c in &children {
            let p = &parents[c.parent.unwrap()];
            let at = c.start - p.start;
            assert_eq!(&p.text[at..at + c.text.len()], c.text, "{name}");
        }
        eprintln!(
            "{name}: {} parents, {} children in {:.1} s",
            parents.len(),
            children.len(),
            started.elapsed().as_secs_f64()
        );
    }
}

#[test]
fn an_ivf_quantizer_is_trained_kept_across_updates_and_used_by_ask() {
    let tmp = tempfile::tempdir().unwrap();
    let docs = tmp.path().join("docs");
    write_docs(&docs, "alpha", 3);
    write_docs(&docs, "omega", 3);
    let ix = tmp.path().join("rag.cidx");
    let ix_s = ix.to_str().unwrap();
    let index = |extra: &[&str]| {
        let mut args = vec![
            "index",
            docs.to_str().unwrap(),
            "--collection",
            "c",
            "--index",
            ix_s,
        ];
        args.extend_from_slice(extra);
        let (ok, out, err) = common::cairn(&args);
        assert!(ok, "{err}");
        out
    };
    let out = index(&["--ivf-nlist", "2", "--ivf-nprobe", "1"]);
    assert!(
        out.contains("collection 'c': IVF of 2 cells over 6 chunks"),
        "{out}"
    );
    assert!(out.contains("1 scanned per query"), "{out}");
    // More cells than chunks: a clear error, and the index keeps its quantizer.
    let (ok, _, err) = common::cairn(&[
        "index",
        docs.to_str().unwrap(),
        "--collection",
        "c",
        "--index",
        ix_s,
        "--ivf-nlist",
        "7",
    ]);
    assert!(
        !ok && err.contains("has 6 chunks, fewer than the 7 IVF cells"),
        "{err}"
    );
    // A file added later is assigned to the trained cells by a plain `cairn index`.
    write_docs(&docs.join("more"), "omega-extra", 1);
    index(&[]);
    let rag = read_index(&ix, "all-minilm-l6-v2", 384).unwrap();
    let c = &rag.collections["c"];
    let ivf = c.ivf.as_ref().expect("the quantizer is kept");
    assert_eq!((ivf.nlist, ivf.nprobe, ivf.cells.len()), (2, 1, 7));
    // Dense retrieval scans one cell: only chunks of the query's cell come back.
    let (ok, out, err) = common::cairn(&[
        "ask",
        "--index",
        ix_s,
        "--retrieve-only",
        "--method",
        "dense",
        "--k",
        "7",
        "--candidates",
        "7",
        "Notes about alpha, part 1",
    ]);
    assert!(ok, "{err}");
    let hits: serde_json::Value = serde_json::from_str(&out).unwrap();
    let hits = hits
        .as_array()
        .or_else(|| hits["hits"].as_array())
        .expect("hits");
    let q_cell = ivf.cells[c
        .children
        .iter()
        .position(|ch| {
            ch.as_ref()
                .is_some_and(|ch| ch.text.contains("alpha, part 1"))
        })
        .unwrap()];
    let in_cell = ivf.cells.iter().filter(|&&cell| cell == q_cell).count();
    assert_eq!(hits.len(), in_cell, "{out}");
    assert!(
        in_cell < 7,
        "two cells should split seven chunks: {:?}",
        ivf.cells
    );
    assert!(hits[0].to_string().contains("alpha, part 1"), "{out}");
    // --ivf-nlist 0 removes it: every chunk again.
    let out = index(&["--ivf-nlist", "0"]);
    assert!(out.contains("IVF removed"), "{out}");
    assert!(
        read_index(&ix, "all-minilm-l6-v2", 384)
            .unwrap()
            .collections["c"]
            .ivf
            .is_none()
    );
}
