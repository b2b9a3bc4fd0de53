//! `Index`: the RAG index in the page — files ingested from bytes (PDF,
//! HTML, Markdown, text), hybrid search, grounded answers with citations.
//! The same index format as `cairn index` writes (`toBytes`/`fromBytes`).

use std::cell::RefCell;
use std::rc::Rc;

use cairn_core::rag::answer::answer;
use cairn_core::rag::{Hit, Ingestor, RagIndex, content_hash};
use wasm_bindgen::prelude::*;

use crate::embedder::Emb;
use crate::engine::on_backend;
use crate::generator::Streamer;
use crate::{Embedder, Generator, js_err, options, to_js};

/// A searchable collection of documents.
#[wasm_bindgen]
pub struct Index {
    ix: Rc<RefCell<RagIndex>>,
    embedder: Rc<Emb>,
}

/// One retrieved passage, for JavaScript.
#[derive(serde::Serialize)]
struct HitJs {
    /// 1-based number (as cited in answers).
    n: usize,
    collection: String,
    source: String,
    page: Option<u32>,
    headings: Vec<String>,
    /// The context passage (parent chunk).
    text: String,
    /// The child chunk that matched.
    matched: String,
    score: f32,
    cosine: f32,
    bm25: f32,
}

fn hits_js(hits: &[Hit]) -> Vec<HitJs> {
    hits.iter()
        .enumerate()
        .map(|(i, h)| HitJs {
            n: i + 1,
            collection: h.collection.clone(),
            source: h.chunk.source.clone(),
            page: h.chunk.page,
            headings: h.chunk.headings.clone(),
            text: h.chunk.text.clone(),
            matched: h.matched.text.clone(),
            score: h.score,
            cosine: h.cosine,
            bm25: h.bm25,
        })
        .collect()
}

/// What `addFile` did.
#[derive(serde::Serialize)]
struct AddedJs {
    source: String,
    collection: String,
    /// `false` when the same content was already indexed (nothing to do).
    indexed: bool,
    pages: usize,
    parents: usize,
    children: usize,
}

/// A grounded answer, for JavaScript.
#[derive(serde::Serialize)]
struct AnswerJs {
    text: String,
    sources: Vec<HitJs>,
    /// Source numbers the answer cites (`[n]`), ascending.
    cited: Vec<usize>,
    /// False when the sources did not support an answer.
    grounded: bool,
    #[serde(rename = "promptTokens")]
    prompt_tokens: usize,
    /// Tokens generated (0 when the documents did not support an answer).
    #[serde(rename = "generatedTokens")]
    generated_tokens: usize,
}

async fn embed_query(emb: &Emb, q: &str) -> Result<Vec<f32>, JsValue> {
    Ok(on_backend!(emb, e => e.encode_async(&[q], true).await)
        .map_err(js_err)?
        .data)
}

#[wasm_bindgen]
impl Index {
    /// An empty index for passages embedded by `embedder`; `embedderName`
    /// is recorded in the index (queries must use the same model; the
    /// native `cairn index` records `"all-minilm-l6-v2"`).
    #[wasm_bindgen(constructor)]
    pub fn new(embedder: &Embedder, embedder_name: String) -> Index {
        Index {
            ix: Rc::new(RefCell::new(RagIndex::new(&embedder_name, embedder.dim()))),
            embedder: embedder.inner.clone(),
        }
    }

    /// An index from the bytes `toBytes` (or `cairn index`) wrote; it must
    /// have been built with the same embedder.
    #[wasm_bindgen(js_name = fromBytes)]
    pub fn from_bytes(
        bytes: &[u8],
        embedder: &Embedder,
        embedder_name: String,
    ) -> Result<Index, JsError> {
        let ix = RagIndex::from_bytes(bytes, "index.cidx").map_err(js_err)?;
        if ix.embedder != embedder_name || ix.dim != embedder.dim() {
            return Err(JsError::new(&format!(
                "index.cidx was built with embedder '{}' ({} dims), not '{embedder_name}' ({})",
                ix.embedder,
                ix.dim,
                embedder.dim()
            )));
        }
        Ok(Index {
            ix: Rc::new(RefCell::new(ix)),
            embedder: embedder.inner.clone(),
        })
    }

    /// The index file's bytes (`CAIRNRAG` format, as `cairn index` writes).
    #[wasm_bindgen(js_name = toBytes)]
    pub fn to_bytes(&self) -> Result<Vec<u8>, JsError> {
        self.ix.borrow().to_bytes().map_err(js_err)
    }

    /// Indexes one file into `collection` (default `"documents"`): the
    /// format comes from the name's extension (`.pdf`, `.html`/`.htm`,
    /// `.md`/`.markdown`, anything else as UTF-8 text). Re-adding the same
    /// content is a no-op; new content under the same name replaces the old.
    /// `onProgress(done, total)` follows the embedding of the file's chunks
    /// and may return `false` to cancel. A file that cannot be read rejects
    /// with an error naming it, and the index keeps what it had.
    #[wasm_bindgen(js_name = addFile)]
    pub fn add_file(
        &self,
        name: String,
        bytes: Vec<u8>,
        collection: Option<String>,
        on_progress: Option<js_sys::Function>,
    ) -> js_sys::Promise {
        let ix = self.ix.clone();
        let emb = self.embedder.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let collection = collection.unwrap_or_else(|| "documents".into());
            let hash = content_hash(&bytes);
            if ix.borrow().is_current(&collection, &name, &hash) {
                return to_js(&AddedJs {
                    source: name,
                    collection,
                    indexed: false,
                    pages: 0,
                    parents: 0,
                    children: 0,
                });
            }
            let mut thrown = None;
            let progress = |done: usize, total: usize| match &on_progress {
                None => true,
                Some(f) => match f.call2(&JsValue::NULL, &done.into(), &total.into()) {
                    Ok(v) => v.as_bool() != Some(false),
                    Err(e) => {
                        thrown = Some(e);
                        false
                    }
                },
            };
            let chunks = on_backend!(&*emb, e => {
                let ingest = Ingestor::new(e).map_err(js_err)?;
                ingest.file_chunks(&name, &bytes, hash, progress).await
            });
            if let Some(e) = thrown {
                return Err(e);
            }
            let chunks = chunks.map_err(js_err)?;
            let added = AddedJs {
                source: name,
                collection: collection.clone(),
                indexed: true,
                pages: chunks.pages,
                parents: chunks.parents.len(),
                children: chunks.children.len(),
            };
            ix.borrow_mut()
                .add_file(&collection, chunks)
                .map_err(js_err)?;
            to_js(&added)
        })
    }

    /// Removes a file from `collection` (default `"documents"`); `false` if it was not there.
    #[wasm_bindgen(js_name = removeFile)]
    pub fn remove_file(&self, name: &str, collection: Option<String>) -> bool {
        let collection = collection.unwrap_or_else(|| "documents".into());
        self.ix.borrow_mut().remove_file(&collection, name)
    }

    /// Indexed files: `[{ collection, source, pages, chunks }]`.
    pub fn files(&self) -> Result<JsValue, JsValue> {
        #[derive(serde::Serialize)]
        struct FileJs {
            collection: String,
            source: String,
            pages: usize,
            chunks: usize,
        }
        let ix = self.ix.borrow();
        let mut out = Vec::new();
        for (name, c) in &ix.collections {
            for (source, f) in &c.files {
                out.push(FileJs {
                    collection: name.clone(),
                    source: source.clone(),
                    pages: f.pages,
                    chunks: f.children.len(),
                });
            }
        }
        to_js(&out)
    }

    /// Retrieves passages for `query`. Options: `method` (`"hybrid"`
    /// default, `"bm25"`, `"dense"`), `k` (5), `candidates` (20),
    /// `mmrLambda`, `collections`, `weights`. Resolves to
    /// `[{ n, collection, source, page, headings, text, matched, score, cosine, bm25 }]`.
    pub fn search(&self, query: String, options: JsValue) -> js_sys::Promise {
        let ix = self.ix.clone();
        let emb = self.embedder.clone();
        let opts = options::object(&options, "search")
            .and_then(|o| options::search(o).map_err(JsError::from));
        wasm_bindgen_futures::future_to_promise(async move {
            let opts = opts?;
            let qv = embed_query(&emb, &query).await?;
            let hits = ix.borrow_mut().search(&query, &qv, &opts).map_err(js_err)?;
            to_js(&hits_js(&hits))
        })
    }

    /// Answers `question` from the index with `generator`, streaming the
    /// answer's pieces to `onText`. Options: the search options (`k`
    /// default 5 of `candidates` 20, `method`, ...), `minCosine` (0.35:
    /// below it the answer is "I don't know" without generating), `context`
    /// (`"matched"`: the matched chunk, the default; `"passage"`: its whole
    /// passage), `answer` (`"generate"`, the default, or `"quote"`: the
    /// source sentences closest to the question quoted verbatim with their
    /// numbers, no decoder) and the decoding options (`maxNewTokens` 256,
    /// ...). Resolves to
    /// `{ text, sources, cited, grounded, promptTokens, generatedTokens }`: `sources` are
    /// the passages numbered as the prompt gave them, `cited` the numbers
    /// the answer cites.
    pub fn ask(
        &self,
        generator: &Generator,
        question: String,
        options: JsValue,
        on_text: Option<js_sys::Function>,
    ) -> js_sys::Promise {
        let ix = self.ix.clone();
        let emb = self.embedder.clone();
        let gen_ = generator.inner.clone();
        let opts =
            options::object(&options, "ask").and_then(|o| options::ask(o).map_err(JsError::from));
        wasm_bindgen_futures::future_to_promise(async move {
            let (search, ask, quote) = opts?;
            let qv = embed_query(&emb, &question).await?;
            let hits = ix
                .borrow_mut()
                .search(&question, &qv, &search)
                .map_err(js_err)?;
            let mut s = Streamer::new(on_text);
            let a = if quote {
                let a = on_backend!(&*emb, e => cairn_core::rag::answer::quote(
                    e,
                    &question,
                    &hits,
                    ask.source_text,
                    cairn_core::rag::answer::QUOTE_SENTENCES,
                    cairn_core::rag::answer::QUOTE_MIN_COSINE,
                )
                .await);
                if let Ok(a) = &a {
                    s.push(&a.text);
                }
                a
            } else {
                on_backend!(&*gen_, g => answer(g, &question, &hits, &ask, |p| s.push(p)).await)
            };
            if let Some(e) = s.error {
                return Err(e);
            }
            let a = a.map_err(js_err)?;
            to_js(&AnswerJs {
                text: a.text,
                sources: hits_js(&a.sources),
                cited: a.cited,
                grounded: a.grounded,
                prompt_tokens: a.prompt_tokens,
                generated_tokens: a.generated_tokens,
            })
        })
    }
}
