//! `cairn train word2vec` and `cairn words` on a toy corpus of two topics
//! (tests/fixtures/word2vec_toy_corpus.txt: sentences of animals or of
//! vehicles, never both). The vectors file the CLI writes with one thread is
//! committed (tests/fixtures/word2vec_toy_vectors.txt) and read by the
//! node test of the wasm package; the comparison with gensim on the PDF
//! corpus is bench/scripts/word2vec_vs_gensim.py.

mod common;

const ANIMALS: [&str; 10] = [
    "cat", "dog", "mouse", "horse", "cow", "sheep", "goat", "pig", "duck", "hen",
];

fn train(out: &std::path::Path, extra: &[&str]) -> String {
    let corpus = common::fixture("word2vec_toy_corpus.txt");
    let mut args = vec![
        "train",
        "word2vec",
        corpus.to_str().unwrap(),
        "--dim",
        "8",
        "--window",
        "3",
        "--min-count",
        "1",
        "--sample",
        "0",
        "--epochs",
        "5",
        "--output",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let (ok, stdout, err) = common::cairn(&args);
    assert!(ok, "{err}");
    stdout
}

#[test]
fn one_thread_is_reproducible_and_matches_the_committed_vectors() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("v.txt");
    let log = train(&out, &["--threads", "1"]);
    assert!(
        log.contains("20 words × 8 (skip-gram), 4800 corpus words, 24000 trained over 5 epochs"),
        "{log}"
    );
    let fixture = std::fs::read_to_string(common::fixture("word2vec_toy_vectors.txt")).unwrap();
    assert_eq!(std::fs::read_to_string(&out).unwrap(), fixture);
}

#[test]
fn neighbours_analogies_and_similarity_from_the_cli() {
    let v = common::fixture("word2vec_toy_vectors.txt");
    let v = v.to_str().unwrap();
    let (ok, out, err) = common::cairn(&["words", "--vectors", v, "-k", "9", "cat"]);
    assert!(ok, "{err}");
    let near: Vec<&str> = out
        .lines()
        .map(|l| l.split_whitespace().nth(1).unwrap())
        .collect();
    assert_eq!(near.len(), 9);
    assert!(
        near.iter().all(|w| ANIMALS.contains(w) && *w != "cat"),
        "{out}"
    );
    // cat is to dog as car is to … a vehicle.
    let (ok, out, err) = common::cairn(&[
        "words",
        "--vectors",
        v,
        "--analogy",
        "-k",
        "3",
        "cat",
        "dog",
        "car",
    ]);
    assert!(ok, "{err}");
    assert!(
        out.lines()
            .all(|l| !ANIMALS.contains(&l.split_whitespace().nth(1).unwrap())),
        "{out}"
    );
    // --similarity equals the cosine of the two rows of the file.
    let (ok, out, _) = common::cairn(&["words", "--vectors", v, "--similarity", "cat", "car"]);
    assert!(ok);
    let rows: std::collections::HashMap<String, Vec<f32>> = std::fs::read_to_string(v)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let mut p = l.split_whitespace();
            (
                p.next().unwrap().to_string(),
                p.map(|x| x.parse().unwrap()).collect(),
            )
        })
        .collect();
    let (a, b) = (&rows["cat"], &rows["car"]);
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |x: &[f32]| x.iter().map(|v| v * v).sum::<f32>().sqrt();
    let want = dot / (norm(a) * norm(b));
    assert_eq!(out.trim(), format!("{want:.4}"));
    // Within-topic neighbours are closer than across topics.
    let (ok, same, _) = common::cairn(&["words", "--vectors", v, "--similarity", "cat", "dog"]);
    assert!(
        ok && same.trim().parse::<f32>().unwrap() > want + 0.3,
        "{same} vs {want}"
    );
    // Errors name the word, the file and the line.
    let (ok, _, err) = common::cairn(&["words", "--vectors", v, "zebra"]);
    assert!(
        !ok && err.contains("'zebra' is not in the vocabulary"),
        "{err}"
    );
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.txt");
    std::fs::write(&bad, "2 3\na 1 2 3\nb 1 x 3\n").unwrap();
    let (ok, _, err) = common::cairn(&["words", "--vectors", bad.to_str().unwrap(), "a"]);
    assert!(
        !ok && err.contains("bad.txt: line 3: 'x' is not a number"),
        "{err}"
    );
}

#[test]
fn cbow_and_two_threads_learn_the_topics_too() {
    let dir = tempfile::tempdir().unwrap();
    for extra in [&["--cbow", "--threads", "1"][..], &["--threads", "2"][..]] {
        let out = dir.path().join("v.txt");
        let log = train(&out, extra);
        assert!(log.contains("20 words × 8"), "{log}");
        let (ok, near, err) = common::cairn(&[
            "words",
            "--vectors",
            out.to_str().unwrap(),
            "-k",
            "5",
            "bus",
        ]);
        assert!(ok, "{err}");
        assert!(
            near.lines()
                .all(|l| !ANIMALS.contains(&l.split_whitespace().nth(1).unwrap())),
            "{extra:?}: {near}"
        );
    }
}
