//! `cairn serve` end to end: the real binary on a free loopback port with
//! the fetched SmolLM2 and MiniLM, driven with raw HTTP and with the
//! official `openai` Python client, compared with the CLI's own output.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::cairn;
use serde_json::{Value, json};

const DECODER: &str = "smollm2-135m-instruct";
const EMBEDDER: &str = "all-minilm-l6-v2";

/// A running server, killed on drop.
struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start(extra: &[&str]) -> Server {
        common::model(DECODER);
        common::model(EMBEDDER);
        let mut child = Command::new(env!("CARGO_BIN_EXE_cairn"))
            .args(["serve", "--port", "0"])
            .args(extra)
            .env("CAIRN_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start cairn serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("cairn serve: listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .to_string();
        let s = Server { child, addr };
        let t = Instant::now();
        loop {
            let (status, _, _) = s.request("GET", "/health", None, &[]);
            if status == 200 {
                break;
            }
            assert_eq!(status, 503, "health while loading");
            assert!(
                t.elapsed() < Duration::from_secs(120),
                "the server never became ready"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        s
    }

    /// One request; returns (status, headers lower-cased, body).
    fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        headers: &[(&str, &str)],
    ) -> (u16, Vec<(String, String)>, Vec<u8>) {
        let mut s = TcpStream::connect(&self.addr).unwrap();
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
            self.addr
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        if let Some(b) = body {
            if !headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            {
                req.push_str("Content-Type: application/json\r\n");
            }
            req.push_str(&format!("Content-Length: {}\r\n", b.len()));
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes()).unwrap();
        if let Some(b) = body {
            // A body over the limit may be refused before it is all sent.
            let _ = s.write_all(b);
        }
        let mut raw = Vec::new();
        let _ = s.read_to_end(&mut raw);
        parse_response(&raw)
    }

    fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let (st, _, b) = self.request("POST", path, Some(body.to_string().as_bytes()), &[]);
        (st, serde_json::from_slice(&b).unwrap_or(Value::Null))
    }

    fn metric(&self, name: &str) -> f64 {
        let (_, _, b) = self.request("GET", "/metrics", None, &[]);
        let text = String::from_utf8(b).unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no metric {name} in\n{text}"))
            .parse()
            .unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn parse_response(raw: &[u8]) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete response head");
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v == "chunked")
    {
        body = dechunk(&body);
    }
    (status, headers, body)
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(nl) = b.windows(2).position(|w| w == b"\r\n") {
        let n = usize::from_str_radix(std::str::from_utf8(&b[..nl]).unwrap().trim(), 16).unwrap();
        if n == 0 {
            break;
        }
        out.extend_from_slice(&b[nl + 2..nl + 2 + n]);
        b = &b[nl + 2 + n + 2..];
    }
    out
}

/// The `data:` payloads of an SSE body.
fn sse_data(body: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(body)
        .lines()
        .filter_map(|l| l.strip_prefix("data: ").map(str::to_string))
        .collect()
}

/// Concatenated deltas, the finish reason and the usage of a chat stream.
fn chat_stream_text(data: &[String]) -> (String, Option<String>, Option<Value>) {
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"), "{data:?}");
    let (mut text, mut finish, mut usage) = (String::new(), None, None);
    for d in &data[..data.len() - 1] {
        let v: Value = serde_json::from_str(d).unwrap();
        assert_eq!(v["object"], "chat.completion.chunk");
        if !v["usage"].is_null() {
            usage = Some(v["usage"].clone());
        }
        for c in v["choices"].as_array().unwrap() {
            if let Some(t) = c["delta"]["content"].as_str() {
                text.push_str(t);
            }
            if let Some(f) = c["finish_reason"].as_str() {
                finish = Some(f.to_string());
            }
        }
    }
    (text, finish, usage)
}

fn chat(prompt: &str, max_tokens: usize, stream: bool) -> Value {
    json!({
        "model": DECODER,
        "messages": [{"role": "user", "content": prompt}],
        "temperature": 0,
        "max_tokens": max_tokens,
        "stream": stream,
    })
}

/// `cairn generate --chat` (greedy) text for `prompt`.
fn cli_chat(prompt: &str, max_tokens: usize) -> String {
    let n = max_tokens.to_string();
    let (ok, out, err) = cairn(&["generate", "--chat", prompt, "--max-new-tokens", &n]);
    assert!(ok, "{err}");
    out.strip_suffix('\n').unwrap_or(&out).to_string()
}

/// Uploads files as a multipart body to collection `name`.
fn upload(server: &Server, name: &str, files: &[(&str, &[u8])]) -> (u16, Value) {
    let boundary = "cairn-test-boundary-7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for (file, bytes) in files {
        body.extend(format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        ).bytes());
        body.extend_from_slice(bytes);
        body.extend(b"\r\n");
    }
    body.extend(format!("--{boundary}--\r\n").bytes());
    let ct = format!("multipart/form-data; boundary={boundary}");
    let (st, _, b) = server.request(
        "POST",
        &format!("/v1/collections/{name}/documents"),
        Some(&body),
        &[("Content-Type", ct.as_str())],
    );
    (st, serde_json::from_slice(&b).unwrap_or(Value::Null))
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let n = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (n(a) * n(b))
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

/// `cairn embed` vectors for `texts`.
fn cli_embed(texts: &[&str]) -> Vec<Vec<f32>> {
    let mut args = vec!["embed"];
    args.extend(texts);
    let (ok, out, err) = cairn(&args);
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    v["embeddings"]
        .as_array()
        .unwrap()
        .iter()
        .map(floats)
        .collect()
}

fn write_jsonl(path: &Path, rows: &[(&str, &str)]) {
    let text: String = rows
        .iter()
        .map(|(t, l)| json!({"text": t, "label": l}).to_string() + "\n")
        .collect();
    std::fs::write(path, text).unwrap();
}

/// `cairn train classify --data DATA --out OUT --epochs 1` with `extra` flags.
fn train_classify(data: &Path, out: &Path, extra: &[&str]) -> PathBuf {
    let mut args = vec![
        "train",
        "classify",
        "--data",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--epochs",
        "1",
    ];
    args.extend(extra);
    let (ok, _, err) = cairn(&args);
    assert!(ok, "{err}");
    out.to_path_buf()
}

/// A small pets/money classifier trained by `cairn train classify` (one epoch).
fn train_classifier(dir: &Path) -> PathBuf {
    let rows = [
        ("My cat sleeps on the sofa.", "pets"),
        ("The puppy chewed my shoes.", "pets"),
        ("Dogs need a walk twice a day.", "pets"),
        ("The parrot learned to say hello.", "pets"),
        ("The bank raised its rates.", "money"),
        ("I paid off my credit card.", "money"),
        ("Stocks fell sharply on Monday.", "money"),
        ("She opened a savings account.", "money"),
    ];
    let data = dir.join("train.jsonl");
    write_jsonl(&data, &rows);
    train_classify(
        &data,
        &dir.join("petsmoney"),
        &["--batch-size", "8", "--max-length", "32"],
    )
}

/// A one-label cross-encoder (`cairn train classify --multi-label` on
/// question–passage pairs, one epoch): enough to rerank, not to rerank well.
fn train_reranker(dir: &Path) -> PathBuf {
    let mut rows = String::new();
    for (q, p, rel) in [
        (
            "Which pet needs walks?",
            "Dogs need a walk twice a day.",
            true,
        ),
        (
            "Which pet needs walks?",
            "The bank raised its rates.",
            false,
        ),
        ("How do I pay my loan?", "I paid off my credit card.", true),
        ("How do I pay my loan?", "My cat sleeps on the sofa.", false),
    ] {
        let labels: Vec<&str> = if rel { vec!["relevant"] } else { vec![] };
        rows += &(json!({"text": q, "text_pair": p, "labels": labels}).to_string() + "\n");
    }
    let data = dir.join("pairs.jsonl");
    std::fs::write(&data, rows).unwrap();
    train_classify(
        &data,
        &dir.join("rerank"),
        &["--multi-label", "--batch-size", "4", "--max-length", "48"],
    )
}

/// A RAG index over the test PDF and a Markdown note, built by `cairn index`.
fn build_index(dir: &Path) -> PathBuf {
    let docs = dir.join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    std::fs::copy(common::fixture("mini.pdf"), docs.join("mini.pdf")).unwrap();
    std::fs::write(
        docs.join("bread.md"),
        "# Cooking\n## Bread\nKnead the dough for ten minutes and let it rise for an hour.\n",
    )
    .unwrap();
    let ix = dir.join("rag.cidx");
    let (ok, _, err) = cairn(&[
        "index",
        docs.to_str().unwrap(),
        "--collection",
        "kitchen",
        "--index",
        ix.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    ix
}

#[test]
fn openai_api_matches_the_cli_and_batching_changes_no_token() {
    let tmp = tempfile::tempdir().unwrap();
    let clf = train_classifier(tmp.path());
    let rer = train_reranker(tmp.path());
    let ix = build_index(tmp.path());
    let server = Server::start(&[
        "--index",
        ix.to_str().unwrap(),
        "--classifier",
        clf.to_str().unwrap(),
        "--reranker",
        rer.to_str().unwrap(),
        "--max-concurrency",
        "16",
    ]);

    // Models.
    let (st, _, b) = server.request("GET", "/v1/models", None, &[]);
    assert_eq!(st, 200);
    let v: Value = serde_json::from_slice(&b).unwrap();
    let ids: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![DECODER, EMBEDDER, "rerank", "petsmoney"]);

    // A greedy chat, whole and streamed, equals `cairn generate --chat`.
    let prompt = "What is the capital of France?";
    let want_chat = cli_chat(prompt, 24);
    assert!(!want_chat.is_empty());
    let want = want_chat.clone();
    let (st, v) = server.post("/v1/chat/completions", &chat(prompt, 24, false));
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["choices"][0]["message"]["content"], want.as_str());
    assert_eq!(v["choices"][0]["message"]["role"], "assistant");
    let fin = v["choices"][0]["finish_reason"].as_str().unwrap();
    let u = &v["usage"];
    assert_eq!(
        u["total_tokens"],
        u["prompt_tokens"].as_u64().unwrap() + u["completion_tokens"].as_u64().unwrap()
    );
    assert!(u["completion_tokens"].as_u64().unwrap() <= 24);
    assert_eq!(fin == "length", u["completion_tokens"] == 24, "{v}");
    let mut req = chat(prompt, 24, true);
    req["stream_options"] = json!({"include_usage": true});
    let (st, h, b) = server.request(
        "POST",
        "/v1/chat/completions",
        Some(req.to_string().as_bytes()),
        &[],
    );
    assert_eq!(st, 200);
    assert!(
        h.iter()
            .any(|(k, v)| k == "content-type" && v.starts_with("text/event-stream"))
    );
    let (text, finish, usage) = chat_stream_text(&sse_data(&b));
    assert_eq!(text, want);
    assert_eq!(finish.as_deref(), Some(fin));
    assert_eq!(usage.unwrap(), *u);

    // A raw completion equals `cairn generate`.
    let (ok, out, err) = cairn(&[
        "generate",
        "The capital of France is",
        "--max-new-tokens",
        "8",
    ]);
    assert!(ok, "{err}");
    let (st, v) = server.post(
        "/v1/completions",
        &json!({"model": DECODER, "prompt": "The capital of France is", "temperature": 0, "max_tokens": 8}),
    );
    assert_eq!(st, 200, "{v}");
    let completion = out.strip_suffix('\n').unwrap().to_string();
    assert_eq!(v["choices"][0]["text"], completion.as_str());
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    // A prompt longer than the context is a 400 naming it, and the server goes on.
    let (st, v) = server.post(
        "/v1/completions",
        &json!({"model": DECODER, "prompt": "a ".repeat(9000), "max_tokens": 4}),
    );
    assert_eq!(st, 400, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("context"),
        "{v}"
    );

    // Embeddings equal `cairn embed`'s; base64 and Matryoshka dimensions.
    let texts = ["The cat sat on the mat.", "Stocks fell."];
    let cli = cli_embed(&texts);
    let (st, v) = server.post(
        "/v1/embeddings",
        &json!({"model": EMBEDDER, "input": texts}),
    );
    assert_eq!(st, 200, "{v}");
    for (i, d) in v["data"].as_array().unwrap().iter().enumerate() {
        assert_eq!(d["index"], i);
        let e = floats(&d["embedding"]);
        assert_eq!(e.len(), 384);
        assert!(
            cosine(&e, &cli[i]) >= 0.9999,
            "text {i}: {}",
            cosine(&e, &cli[i])
        );
    }
    assert!(v["usage"]["prompt_tokens"].as_u64().unwrap() > 4);
    let (_, v) = server.post(
        "/v1/embeddings",
        &json!({"model": EMBEDDER, "input": texts[0], "dimensions": 64}),
    );
    let e = floats(&v["data"][0]["embedding"]);
    assert_eq!(e.len(), 64);
    assert!((e.iter().map(|x| x * x).sum::<f32>() - 1.0).abs() < 1e-4);
    assert!(cosine(&e, &cli[0][..64]) > 0.9999);

    // Embedding requests of concurrent clients share batches.
    let batches = server.metric("cairn_embed_batches_total");
    std::thread::scope(|s| {
        for i in 0..16 {
            let server = &server;
            s.spawn(move || {
                let (st, v) = server.post(
                    "/v1/embeddings",
                    &json!({"model": EMBEDDER, "input": format!("text number {i}")}),
                );
                assert_eq!(st, 200, "{v}");
            });
        }
    });
    let used = server.metric("cairn_embed_batches_total") - batches;
    assert!(
        used < 16.0,
        "16 concurrent requests ran in {used} batches: not batched"
    );

    // Classify returns what `cairn classify` prints; rerank what the core reranker computes.
    let (ok, out, err) = cairn(&[
        "classify",
        "--model",
        clf.to_str().unwrap(),
        "My dog barks.",
        "Bonds rallied.",
    ]);
    assert!(ok, "{err}");
    let cli: Value = serde_json::from_str(&out).unwrap();
    let (st, v) = server.post(
        "/v1/classify",
        &json!({"model": "petsmoney", "input": ["My dog barks.", "Bonds rallied."]}),
    );
    assert_eq!(st, 200, "{v}");
    for i in 0..2 {
        assert_eq!(v["data"][i]["labels"], cli[i]["labels"]);
        for (label, s) in cli[i]["scores"].as_object().unwrap() {
            let got = v["data"][i]["scores"][label].as_f64().unwrap();
            assert!(
                (got - s.as_f64().unwrap()).abs() < 1e-6,
                "{label}: {got} vs {s}"
            );
        }
    }
    let docs = [
        "The kitten purrs.",
        "Interest rates rose.",
        "A dog in the park.",
    ];
    let reranker = cairn::train::load_classifier(&rer, None).unwrap();
    let want = cairn_core::retrieve::Reranker::rerank(&reranker, "pets", &docs, 3).unwrap();
    let (st, v) = server.post(
        "/v1/rerank",
        &json!({"query": "pets", "documents": docs, "return_documents": true}),
    );
    assert_eq!(st, 200, "{v}");
    let got: Vec<(usize, f32)> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["index"].as_u64().unwrap() as usize,
                r["relevance_score"].as_f64().unwrap() as f32,
            )
        })
        .collect();
    assert_eq!(got.len(), 3);
    for ((gi, gs), (wi, ws)) in got.iter().zip(&want) {
        assert_eq!(gi, wi);
        assert!((gs - ws).abs() < 1e-6);
    }
    assert_eq!(v["results"][0]["document"]["text"], docs[want[0].0]);

    // Collections and ask: the answer `cairn ask` gives, with its sources.
    let (st, _, b) = server.request("GET", "/v1/collections", None, &[]);
    assert_eq!(st, 200);
    let v: Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(v["data"][0]["name"], "kitchen");
    assert_eq!(v["data"][0]["documents"].as_array().unwrap().len(), 2);
    let q = "How long should bread dough be kneaded?";
    // The server reranks with `rer`: so does the CLI.
    let (ok, out, err) = cairn(&[
        "ask",
        q,
        "--index",
        ix.to_str().unwrap(),
        "--reranker",
        rer.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let cli_answer = out.split("\n\nSources").next().unwrap().trim();
    let (st, v) = server.post("/v1/ask", &json!({"question": q}));
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["answer"].as_str().unwrap(), cli_answer);
    assert!(v["grounded"].as_bool().unwrap());
    let files: Vec<&str> = v["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["file"].as_str().unwrap())
        .collect();
    assert!(files.iter().any(|f| f.ends_with("bread.md")), "{files:?}");
    for n in v["cited"].as_array().unwrap() {
        let n = n.as_u64().unwrap() as usize;
        assert_eq!(v["sources"][n - 1]["cited"], true);
    }
    // The sources listed are the CLI's: cited ones, else attributed ones, else all.
    let cli_sources: Vec<u64> = out
        .split("\n\nSources")
        .nth(1)
        .unwrap()
        .lines()
        .filter_map(|l| l.trim().strip_prefix('[')?.split(']').next()?.parse().ok())
        .collect();
    let flag = |k: &str| -> Vec<u64> {
        v["sources"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s[k] == true)
            .map(|s| s["n"].as_u64().unwrap())
            .collect()
    };
    let listed = if !flag("cited").is_empty() {
        flag("cited")
    } else if !flag("attributed").is_empty() {
        flag("attributed")
    } else {
        (1..=v["sources"].as_array().unwrap().len() as u64).collect()
    };
    assert_eq!(listed, cli_sources, "server {v}\nCLI {out}");
    // The extractive answer: the CLI's `--answer quote`, the same quotes.
    let (ok, out, err) = cairn(&[
        "ask",
        q,
        "--index",
        ix.to_str().unwrap(),
        "--answer",
        "quote",
        "--reranker",
        rer.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let cli_quote = out.split("\n\nSources").next().unwrap().trim();
    assert!(cli_quote.contains("Knead the dough"), "{out}");
    let (st, v) = server.post("/v1/ask", &json!({"question": q, "answer": "quote"}));
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        v["answer"].as_str().unwrap(),
        cli_quote,
        "server {v}\nCLI {out}"
    );
    assert_eq!(v["usage"]["completion_tokens"], 0, "{v}");
    let (st, v) = server.post("/v1/ask", &json!({"question": q, "answer": "poem"}));
    assert_eq!(
        (st, v["error"]["param"].as_str()),
        (400, Some("answer")),
        "{v}"
    );
    let (st, _, b) = server.request(
        "POST",
        "/v1/ask",
        Some(
            json!({"question": q, "stream": true})
                .to_string()
                .as_bytes(),
        ),
        &[],
    );
    assert_eq!(st, 200);
    let body = String::from_utf8(b).unwrap();
    assert!(body.starts_with("event: sources\n"), "{body}");
    let done = body
        .split("event: done\ndata: ")
        .nth(1)
        .unwrap()
        .lines()
        .next()
        .unwrap();
    let done: Value = serde_json::from_str(done).unwrap();
    assert_eq!(done["answer"].as_str().unwrap(), cli_answer);
    let streamed: String = body
        .split("event: text\ndata: ")
        .skip(1)
        .map(|p| {
            serde_json::from_str::<Value>(p.lines().next().unwrap()).unwrap()["text"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(streamed.trim(), cli_answer);

    // An uploaded PDF becomes searchable; a deleted one is gone, from the file too.
    let pdf = std::fs::read(common::fixture("mini.pdf")).unwrap();
    let (st, v) = upload(&server, "debian", &[("guide.pdf", &pdf)]);
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["documents"][0]["pages"], 3);
    assert_eq!(v["documents"][0]["replaced"], false);
    let source = v["documents"][0]["source"].as_str().unwrap().to_string();
    assert!(
        Path::new(&source).exists(),
        "the upload is kept at its source path"
    );
    let on_disk = cairn::rag::read_index(&ix, EMBEDDER, 384).unwrap();
    assert!(on_disk.collections["debian"].files.contains_key(&source));
    assert!(
        on_disk.collections["kitchen"].files.len() == 2,
        "other collections are kept"
    );
    let net = json!({"question": "Where are network interfaces configured on Debian?", "collections": ["debian"], "max_tokens": 8});
    let (st, v) = server.post("/v1/ask", &net);
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["retrieved"][0]["file"], source.as_str());
    let pages: Vec<u64> = v["retrieved"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["page"].as_u64().unwrap())
        .collect();
    assert!(
        pages.contains(&3),
        "the page on network interfaces is retrieved: {pages:?}"
    );
    let (st, v) = upload(&server, "debian", &[("guide.pdf", &pdf)]);
    assert_eq!(
        (st, &v["documents"][0]["replaced"]),
        (201, &json!(true)),
        "{v}"
    );
    let (st, v) = upload(&server, "debian", &[("notes.exe", b"MZ")]);
    assert_eq!(
        (st, v["error"]["param"].as_str()),
        (400, Some("file")),
        "{v}"
    );
    let (st, v) = upload(&server, "debian", &[("../escape.md", b"# x")]);
    assert_eq!(st, 400, "{v}");
    let (st, v) = upload(&server, "debian", &[("half.pdf", &pdf[..pdf.len() / 3])]);
    assert_eq!(st, 422, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("half.pdf"),
        "{v}"
    );
    let (st, _, b) = server.request(
        "DELETE",
        "/v1/collections/debian/documents/guide.pdf",
        None,
        &[],
    );
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&b));
    assert!(!Path::new(&source).exists(), "the uploaded copy is deleted");
    let on_disk = cairn::rag::read_index(&ix, EMBEDDER, 384).unwrap();
    assert!(on_disk.collections["debian"].files.is_empty());
    let (st, _, _) = server.request(
        "DELETE",
        "/v1/collections/debian/documents/guide.pdf",
        None,
        &[],
    );
    assert_eq!(st, 404);
    let (_, v) = server.post("/v1/ask", &net);
    assert_eq!(v["retrieved"], json!([]), "{v}");

    // 16 concurrent greedy streams each get exactly the text they get alone.
    let prompts: Vec<String> = (0..16)
        .map(|i| format!("Write one sentence about the number {i}."))
        .collect();
    let alone: Vec<String> = prompts
        .iter()
        .map(|p| {
            let (st, v) = server.post("/v1/chat/completions", &chat(p, 20, false));
            assert_eq!(st, 200, "{v}");
            v["choices"][0]["message"]["content"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let steps_before = server.metric("cairn_decode_steps_total");
    let tokens_before = server.metric("cairn_generated_tokens_total");
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(prompts.len()));
    let together: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = prompts
            .iter()
            .map(|p| {
                let (server, barrier) = (&server, barrier.clone());
                s.spawn(move || {
                    barrier.wait();
                    let (st, _, b) = server.request(
                        "POST",
                        "/v1/chat/completions",
                        Some(chat(p, 20, true).to_string().as_bytes()),
                        &[],
                    );
                    assert_eq!(st, 200);
                    chat_stream_text(&sse_data(&b)).0
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, (a, t)) in alone.iter().zip(&together).enumerate() {
        assert_eq!(a, t, "stream {i}: batched text differs from its text alone");
    }
    let steps = server.metric("cairn_decode_steps_total") - steps_before;
    let tokens = server.metric("cairn_generated_tokens_total") - tokens_before;
    // Alone, every token costs a step; batched, many tokens share one.
    assert!(
        tokens / steps > 4.0,
        "{tokens} tokens in {steps} steps: not batched"
    );

    // A client that disconnects mid-stream frees its slot.
    let cancelled = server.metric("cairn_cancelled_total");
    {
        let mut s = TcpStream::connect(&server.addr).unwrap();
        let body = chat("Count from one to one thousand.", 400, true).to_string();
        write!(
            s,
            "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut first = [0u8; 256];
        let n = s.read(&mut first).unwrap();
        assert!(String::from_utf8_lossy(&first[..n]).starts_with("HTTP/1.1 200"));
        // Dropped here, long before 400 tokens.
    }
    let t = Instant::now();
    while server.metric("cairn_cancelled_total") < cancelled + 1.0 {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "the disconnected stream was never cancelled"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(server.metric("cairn_active_sequences"), 0.0);

    // The official openai client, unchanged.
    let url = format!("http://{}", server.addr);
    let py = common::python_json("serve/openai_client.py", &[&url, DECODER, EMBEDDER, prompt]);
    assert_eq!(
        py["models"],
        json!([
            "all-minilm-l6-v2",
            "petsmoney",
            "rerank",
            "smollm2-135m-instruct"
        ])
    );
    assert_eq!(py["chat"]["text"], want_chat.as_str());
    assert_eq!(py["chat_stream"]["text"], py["chat"]["text"]);
    assert_eq!(
        py["chat_stream"]["finish_reason"],
        py["chat"]["finish_reason"]
    );
    assert_eq!(py["chat_stream"]["usage"][1], py["chat"]["usage"][1]);
    let e = floats(&py["embeddings"][0]);
    assert!(cosine(&e, &cli_embed(&texts)[0]) >= 0.9999);
    assert_eq!(floats(&py["embedding_b64"]), e);
    assert_eq!(py["embedding_128"].as_array().unwrap().len(), 128);
    assert_eq!(py["errors"]["unknown_model"], json!([404, "model"]));
    assert_eq!(py["errors"]["n"], json!([400, "n"]));
    assert_eq!(py["completion"]["text"], completion.as_str());

    // LangChain's ChatOpenAI and OpenAIEmbeddings, unchanged.
    let lc = common::python_json(
        "serve/langchain_client.py",
        &[&url, DECODER, EMBEDDER, prompt],
    );
    assert_eq!(lc["invoke"], want_chat.as_str());
    assert_eq!(lc["stream"], want_chat.as_str());
    let cli = cli_embed(&texts);
    for (i, c) in cli.iter().enumerate() {
        assert!(cosine(&floats(&lc["documents"][i]), c) >= 0.9999);
    }
    assert!(cosine(&floats(&lc["query"]), &cli[0]) >= 0.9999);
}

#[test]
fn errors_have_openai_shape_and_status_and_the_server_keeps_serving() {
    let server = Server::start(&[
        "--api-key",
        "sesame",
        "--max-body-bytes",
        "2048",
        "--max-concurrency",
        "1",
        "--queue",
        "1",
    ]);
    let auth = [("Authorization", "Bearer sesame")];
    let post = |body: &[u8], headers: &[(&str, &str)]| {
        let (st, h, b) = server.request("POST", "/v1/chat/completions", Some(body), headers);
        let v: Value = serde_json::from_slice(&b).unwrap_or(Value::Null);
        (st, h, v)
    };
    let check = |st: u16, v: &Value, want: u16, kind: &str, param: Option<&str>| {
        assert_eq!(st, want, "{v}");
        let e = &v["error"];
        assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
        assert_eq!(e["type"], kind, "{v}");
        assert_eq!(e["param"].as_str(), param, "{v}");
    };
    let ok_body = chat("Say hi.", 4, false).to_string();

    // 401: no key, wrong key. /health needs none.
    let (st, h, v) = post(ok_body.as_bytes(), &[]);
    check(st, &v, 401, "authentication_error", None);
    assert!(h.iter().any(|(k, _)| k == "www-authenticate"));
    let (st, _, v) = post(ok_body.as_bytes(), &[("Authorization", "Bearer nope")]);
    check(st, &v, 401, "authentication_error", None);
    // 400: malformed JSON, unknown field, unsupported n, bad temperature, bad messages.
    let (st, _, v) = post(b"{\"model\": ", &auth);
    check(st, &v, 400, "invalid_request_error", None);
    let mut r = chat("hi", 4, false);
    r["frobnicate"] = json!(1);
    let (st, _, v) = post(r.to_string().as_bytes(), &auth);
    check(st, &v, 400, "invalid_request_error", Some("frobnicate"));
    r = chat("hi", 4, false);
    r["n"] = json!(2);
    let (st, _, v) = post(r.to_string().as_bytes(), &auth);
    check(st, &v, 400, "invalid_request_error", Some("n"));
    r = chat("hi", 4, false);
    r["temperature"] = json!(7);
    let (st, _, v) = post(r.to_string().as_bytes(), &auth);
    check(st, &v, 400, "invalid_request_error", Some("temperature"));
    r = chat("hi", 4, false);
    r["tools"] = json!([{"type": "function", "function": {"name": "bad name"}}]);
    let (st, _, v) = post(r.to_string().as_bytes(), &auth);
    check(st, &v, 400, "invalid_request_error", Some("tools"));
    let (st, _, v) = post(
        json!({"model": DECODER, "messages": []})
            .to_string()
            .as_bytes(),
        &auth,
    );
    check(st, &v, 400, "invalid_request_error", Some("messages"));
    // 404: unknown model, unknown route.
    r = chat("hi", 4, false);
    r["model"] = json!("gpt-9");
    let (st, _, v) = post(r.to_string().as_bytes(), &auth);
    check(st, &v, 404, "not_found_error", Some("model"));
    let (st, _, b) = server.request("GET", "/v1/nothing", None, &auth);
    check(
        st,
        &serde_json::from_slice(&b).unwrap(),
        404,
        "not_found_error",
        None,
    );
    // 413: a body over the limit.
    let big =
        json!({"model": DECODER, "messages": [{"role": "user", "content": "x".repeat(4096)}]});
    let (st, _, v) = post(big.to_string().as_bytes(), &auth);
    check(st, &v, 413, "invalid_request_error", None);

    // 429: one sequence decoding, one waiting, the next refused with Retry-After.
    let long = chat("Count from one to five hundred.", 300, true).to_string();
    let mut a = TcpStream::connect(&server.addr).unwrap();
    write!(
        a,
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sesame\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{long}",
        long.len()
    )
    .unwrap();
    let mut first = [0u8; 64];
    let _ = a.read(&mut first).unwrap();
    let waiting = std::thread::scope(|s| {
        let b = s.spawn(|| post(ok_body.as_bytes(), &auth).0);
        let t = Instant::now();
        while server.metric("cairn_queue_depth") < 1.0 {
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "the second request never queued"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let (st, h, v) = post(ok_body.as_bytes(), &auth);
        check(st, &v, 429, "rate_limit_error", None);
        assert!(
            h.iter().any(|(k, v)| k == "retry-after" && v == "1"),
            "{h:?}"
        );
        drop(a);
        b.join().unwrap()
    });
    assert_eq!(
        waiting, 200,
        "the queued request is served once the slot frees"
    );

    // response_format: a JSON Schema, any JSON object, and a bad schema.
    let mut r = chat("Describe Alice, aged 30, as JSON.", 60, false);
    r["response_format"] = json!({"type": "json_schema", "json_schema": {"name": "person", "schema": {
        "type": "object", "properties": {"name": {"type": "string", "maxLength": 20}, "age": {"type": "integer", "minimum": 0}},
        "required": ["name", "age"], "additionalProperties": false}}});
    let (st, _, v) = post(r.to_string().as_bytes(), &auth);
    assert_eq!(st, 200, "{v}");
    let person: Value =
        serde_json::from_str(v["choices"][0]["message"]["content"].as_str().unwrap()).unwrap();
    assert!(
        person["name"].is_string() && person["age"].is_u64(),
        "{person}"
    );
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    let mut r = chat("Give Alice's age, 30, as a JSON object.", 120, false);
    r["response_format"] = json!({"type": "json_object"});
    let (st, _, v) = post(r.to_string().as_bytes(), &auth);
    assert_eq!(v["choices"][0]["finish_reason"], "stop", "{v}");
    assert_eq!(st, 200, "{v}");
    let any: Value =
        serde_json::from_str(v["choices"][0]["message"]["content"].as_str().unwrap()).unwrap();
    assert!(any.is_object(), "{any}");
    r["response_format"] = json!({"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object", "patternProperties": {}}}});
    let (st, _, v) = post(r.to_string().as_bytes(), &auth);
    check(
        st,
        &v,
        400,
        "invalid_request_error",
        Some("response_format"),
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("patternProperties"),
        "{v}"
    );

    // Still serving, with the key.
    let (st, _, v) = post(ok_body.as_bytes(), &auth);
    assert_eq!(st, 200, "{v}");
    assert!(v["choices"][0]["finish_reason"].as_str().is_some(), "{v}");
    let (st, _, _) = server.request("GET", "/health", None, &[]);
    assert_eq!(st, 200);
}

#[test]
fn sigterm_lets_the_stream_in_flight_finish_and_serves_the_demo_page() {
    let www = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../www");
    let mut server = Server::start(&["--static-dir", www.to_str().unwrap()]);
    let (st, h, b) = server.request("GET", "/", None, &[]);
    assert_eq!(st, 200);
    assert!(
        h.iter()
            .any(|(k, v)| k == "content-type" && v.starts_with("text/html"))
    );
    assert_eq!(b, std::fs::read(www.join("index.html")).unwrap());
    // A stream in flight when SIGTERM arrives still ends with its last chunk and [DONE].
    let mut s = TcpStream::connect(&server.addr).unwrap();
    let body = chat("Tell me about lighthouses.", 48, true).to_string();
    write!(
        s,
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut head = [0u8; 32];
    s.read_exact(&mut head).unwrap();
    assert!(head.starts_with(b"HTTP/1.1 200"));
    let term = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).unwrap();
    let mut raw = head.to_vec();
    raw.extend(rest);
    let (_, _, b) = parse_response(&raw);
    let (text, finish, _) = chat_stream_text(&sse_data(&b));
    assert!(!text.is_empty());
    assert_eq!(finish.as_deref(), Some("length"));
    let status = server.child.wait().unwrap();
    assert!(status.success(), "exit status after SIGTERM: {status}");
    // New connections are refused once it has stopped.
    assert!(TcpStream::connect(&server.addr).is_err());
}

#[test]
fn tool_calls_round_trip_with_the_openai_client() {
    let server = Server::start(&[]);
    let url = format!("http://{}", server.addr);
    // The official client: calls under tool_choice required / named, the
    // result sent back as a `tool` message, a streamed call, errors.
    let py = common::python_json("serve/openai_tools.py", &[&url, DECODER]);
    println!("{py:#}");
    let req = &py["required"];
    assert_eq!(req["finish_reason"], "tool_calls", "{py:#}");
    assert_eq!(req["calls"][0]["name"], "get_weather", "{py:#}");
    assert_eq!(
        req["calls"][0]["arguments"],
        json!({"city": "Paris", "unit": "celsius"})
    );
    assert!(req["calls"][0]["id"].as_str().unwrap().starts_with("call-"));
    assert_eq!(py["named"]["finish_reason"], "tool_calls");
    assert_eq!(py["named"]["calls"][0]["name"], "calculator");
    let after = &py["after_result"];
    assert_eq!(after["finish_reason"], "stop", "{py:#}");
    assert_eq!(after["calls"], json!([]));
    assert!(
        !after["content"].as_str().unwrap().trim().is_empty(),
        "{py:#}"
    );
    assert_eq!(py["stream"]["finish_reason"], "tool_calls");
    assert_eq!(py["stream"]["calls"][0]["name"], "calculator");
    assert_eq!(py["errors"]["unknown_choice"][0], 400);
    assert_eq!(py["errors"]["unknown_choice"][1], "tool_choice");
    assert!(
        py["errors"]["unknown_choice"][2]
            .as_str()
            .unwrap()
            .contains("'nope'"),
        "{py:#}"
    );
    assert_eq!(py["errors"]["bad_schema"][1], "tools");
    assert!(
        py["errors"]["bad_schema"][2]
            .as_str()
            .unwrap()
            .contains("contentMediaType"),
        "{py:#}"
    );
    assert_eq!(py["errors"]["required_without_tools"][1], "tool_choice");

    // tool_choice auto (raw HTTP): the model chooses; streamed and whole
    // answers agree, and a call, when made, is well formed.
    let calc = json!({"type": "function", "function": {"name": "calculator",
        "parameters": {"type": "object", "properties": {"expression": {"type": "string"}}, "required": ["expression"]}}});
    for prompt in ["What is 6 times 7? Use the calculator.", "Say hello."] {
        let body = json!({"model": DECODER, "messages": [{"role": "user", "content": prompt}],
            "tools": [calc], "temperature": 0, "max_tokens": 60});
        let (status, whole) = server.post("/v1/chat/completions", &body);
        assert_eq!(status, 200, "{whole}");
        let msg = &whole["choices"][0]["message"];
        let finish = whole["choices"][0]["finish_reason"].as_str().unwrap();
        if let Some(calls) = msg["tool_calls"].as_array() {
            assert_eq!(finish, "tool_calls");
            let args: Value =
                serde_json::from_str(calls[0]["function"]["arguments"].as_str().unwrap()).unwrap();
            assert!(args["expression"].is_string(), "{whole}");
        } else {
            assert!(msg["content"].is_string(), "{whole}");
        }
        let mut sbody = body.clone();
        sbody["stream"] = json!(true);
        let (status, _, raw) = server.request(
            "POST",
            "/v1/chat/completions",
            Some(sbody.to_string().as_bytes()),
            &[],
        );
        assert_eq!(status, 200);
        let data = sse_data(&raw);
        let mut text = String::new();
        let mut streamed_calls = Vec::new();
        let mut sfinish = None;
        for d in data.iter().filter(|d| d.as_str() != "[DONE]") {
            let v: Value = serde_json::from_str(d).unwrap();
            let c = &v["choices"][0];
            if let Some(t) = c["delta"]["content"].as_str() {
                text.push_str(t);
            }
            if let Some(tc) = c["delta"]["tool_calls"].as_array() {
                streamed_calls.extend(tc.iter().map(|t| t["function"].clone()));
            }
            if let Some(f) = c["finish_reason"].as_str() {
                sfinish = Some(f.to_string());
            }
        }
        assert_eq!(sfinish.as_deref(), Some(finish), "{prompt}");
        match msg["tool_calls"].as_array() {
            Some(calls) => assert_eq!(
                streamed_calls,
                calls
                    .iter()
                    .map(|c| c["function"].clone())
                    .collect::<Vec<_>>()
            ),
            None => assert_eq!(text, msg["content"].as_str().unwrap()),
        }
    }
}
