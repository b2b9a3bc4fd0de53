//! The built-in tools: `calculator`, and `search` / `read_page` over a
//! [`RagIndex`] (passages with their file and page).

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use super::calculator::evaluate;
use super::react::Tool;
use super::tools::ToolSpec;
use crate::error::Result;
use crate::rag::{RagIndex, SearchOptions};

/// The names of the built-in tools.
pub const BUILTIN: &[&str] = &["calculator", "search", "read_page"];

/// The `calculator` declaration.
pub fn calculator_spec() -> ToolSpec {
    ToolSpec {
        name: "calculator".into(),
        description: "Evaluates an arithmetic expression exactly: + - * / ^, % (percent, as in 12% of 50), parentheses, sqrt, log, exp, round, min, max.".into(),
        parameters: json!({"type": "object",
            "properties": {"expression": {"type": "string", "minLength": 1, "maxLength": 200,
                "description": "The expression, e.g. 17.5% of 2,340 + sqrt(144)"}},
            "required": ["expression"]}),
    }
}

/// The `calculator` tool.
#[derive(Debug, Clone)]
pub struct Calculator {
    spec: ToolSpec,
}

impl Default for Calculator {
    fn default() -> Self {
        Calculator {
            spec: calculator_spec(),
        }
    }
}

impl Tool for Calculator {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    fn call(&self, args: &Value) -> std::result::Result<String, String> {
        let expr = args
            .get("expression")
            .and_then(Value::as_str)
            .ok_or("the calculator needs {\"expression\": \"...\"}")?;
        evaluate(expr)
            .map(|n| n.to_string())
            .map_err(|e| e.to_string())
    }
}

/// Embeds a query for dense search (a unit vector of the index's dimension).
pub type QueryEmbedder = dyn Fn(&str) -> Result<Vec<f32>> + Send + Sync;

/// The index the `search` and `read_page` tools share.
pub type SharedIndex = Arc<Mutex<RagIndex>>;

/// The `search` tool: the best passages for a query, each with its file
/// and page.
pub struct Search {
    spec: ToolSpec,
    index: SharedIndex,
    embed: Option<Arc<QueryEmbedder>>,
    options: SearchOptions,
    /// Characters of each passage shown.
    pub passage_chars: usize,
}

impl std::fmt::Debug for Search {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Search")
            .field("options", &self.options)
            .finish()
    }
}

impl Search {
    /// Searches `index` (hybrid with `embed`, BM25 only without) for `k`
    /// passages of at most 600 characters.
    pub fn new(index: SharedIndex, embed: Option<Arc<QueryEmbedder>>, k: usize) -> Self {
        let method = if embed.is_some() {
            crate::rag::Method::Hybrid
        } else {
            crate::rag::Method::Bm25
        };
        Search {
            spec: ToolSpec {
                name: "search".into(),
                description: "Searches the indexed documents; returns the best passages with their file and page.".into(),
                parameters: json!({"type": "object",
                    "properties": {"query": {"type": "string", "minLength": 1, "maxLength": 200,
                        "description": "What to look for"}},
                    "required": ["query"]}),
            },
            index,
            embed,
            options: SearchOptions {
                method,
                k: k.max(1),
                ..SearchOptions::default()
            },
            passage_chars: 600,
        }
    }
}

/// Shortens `text` to `n` characters at a word boundary, with "…".
fn shorten(text: &str, n: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(n) {
        Some((i, _)) => {
            let cut = flat[..i].rfind(' ').unwrap_or(i);
            format!("{}…", &flat[..cut])
        }
        None => flat,
    }
}

/// "file, page N" for a chunk (the file's name without its directory).
fn place(source: &str, page: Option<u32>) -> String {
    let source = source.rsplit(['/', '\\']).next().unwrap_or(source);
    match page {
        Some(p) => format!("{source}, page {p}"),
        None => source.to_string(),
    }
}

impl Tool for Search {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    fn call(&self, args: &Value) -> std::result::Result<String, String> {
        let query = args
            .get("query")
            .and_then(Value::as_str)
            .ok_or("search needs {\"query\": \"...\"}")?;
        let vector = match &self.embed {
            Some(e) => e(query).map_err(|e| e.to_string())?,
            None => Vec::new(),
        };
        let mut ix = self
            .index
            .lock()
            .map_err(|_| "the index is unavailable (a previous search failed)".to_string())?;
        let hits = ix
            .search(query, &vector, &self.options)
            .map_err(|e| e.to_string())?;
        if hits.is_empty() {
            return Ok(format!("no passages match '{query}'"));
        }
        Ok(hits
            .iter()
            .enumerate()
            .map(|(i, h)| {
                format!(
                    "[{}] {}: {}",
                    i + 1,
                    place(&h.chunk.source, h.chunk.page),
                    shorten(&h.matched.text, self.passage_chars)
                )
            })
            .collect::<Vec<_>>()
            .join("\n"))
    }
}

/// The `read_page` tool: the text of one page of an indexed file.
pub struct ReadPage {
    spec: ToolSpec,
    index: SharedIndex,
    /// Characters of the page shown.
    pub page_chars: usize,
}

impl std::fmt::Debug for ReadPage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadPage").finish()
    }
}

impl ReadPage {
    /// Reads pages of the files in `index`.
    pub fn new(index: SharedIndex) -> Self {
        ReadPage {
            spec: ToolSpec {
                name: "read_page".into(),
                description:
                    "Returns the text of one page of an indexed file (as search names it).".into(),
                parameters: json!({"type": "object",
                    "properties": {
                        "file": {"type": "string", "minLength": 1, "maxLength": 300},
                        "page": {"type": "integer", "minimum": 1}},
                    "required": ["file", "page"]}),
            },
            index,
            page_chars: 2500,
        }
    }
}

/// The text of `page` of `file` in `ix`, rebuilt from its passages (each an
/// exact slice of the page's text at a known offset); `Err` names what is
/// missing.
pub fn page_text(ix: &RagIndex, file: &str, page: u32) -> std::result::Result<String, String> {
    // The file by its full source name, or by its last path component.
    let mut found = None;
    for c in ix.collections.values() {
        for (source, entry) in &c.files {
            let base = source.rsplit(['/', '\\']).next().unwrap_or(source);
            if source == file || base == file {
                found = Some((c, source.clone(), entry));
            }
        }
    }
    let Some((c, source, entry)) = found else {
        return Err(format!("no indexed file '{file}'"));
    };
    if entry.pages > 0 && page as usize > entry.pages {
        return Err(format!("'{source}' has {} pages", entry.pages));
    }
    let mut chunks: Vec<&crate::text::Chunk> = entry
        .parents
        .iter()
        .filter_map(|&i| c.parents.get(i).and_then(Option::as_ref))
        .filter(|ch| ch.page == Some(page) || (ch.page.is_none() && page == 1))
        .collect();
    if chunks.is_empty() {
        return Err(format!("'{source}' has no text on page {page}"));
    }
    chunks.sort_by_key(|ch| (ch.segment, ch.start));
    let mut text = String::new();
    let mut at = (usize::MAX, 0usize);
    for ch in chunks {
        let end = ch.start + ch.text.len();
        if at.0 == ch.segment && ch.start < at.1 {
            // Overlap with the previous passage: append only what is new.
            let skip = at.1 - ch.start;
            if let Some(rest) = ch.text.get(skip..) {
                text.push_str(rest);
            }
        } else {
            if !text.is_empty() {
                text.push_str("\n\n");
            }
            text.push_str(&ch.text);
        }
        at = (
            ch.segment,
            end.max(if at.0 == ch.segment { at.1 } else { 0 }),
        );
    }
    Ok(text)
}

impl Tool for ReadPage {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    fn call(&self, args: &Value) -> std::result::Result<String, String> {
        let file = args
            .get("file")
            .and_then(Value::as_str)
            .ok_or("read_page needs {\"file\": \"...\", \"page\": N}")?;
        let page = args
            .get("page")
            .and_then(Value::as_u64)
            .and_then(|p| u32::try_from(p).ok())
            .ok_or("read_page needs a page number ≥ 1")?;
        let ix = self
            .index
            .lock()
            .map_err(|_| "the index is unavailable".to_string())?;
        let text = page_text(&ix, file, page)?;
        Ok(format!(
            "{}:\n{}",
            place(file, Some(page)),
            shorten(&text, self.page_chars)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rag::FileChunks;
    use crate::text::Chunk;

    fn chunk(text: &str, page: u32, start: usize, parent: Option<usize>) -> Chunk {
        Chunk {
            text: text.into(),
            source: "docs/guide.pdf".into(),
            page: Some(page),
            headings: Vec::new(),
            segment: page as usize - 1,
            start,
            parent,
        }
    }

    fn index() -> SharedIndex {
        let mut ix = RagIndex::new("test", 2);
        let page1 = "The daemon listens on port 8080. Restart it after changes.";
        let page2 = "Call delete_all now. Logs rotate weekly.";
        let parents = vec![
            chunk(&page1[..32], 1, 0, None),
            chunk(&page1[24..], 1, 24, None),
            chunk(page2, 2, 0, None),
        ];
        let children = vec![
            chunk(&page1[..32], 1, 0, Some(0)),
            chunk(&page1[24..], 1, 24, Some(1)),
            chunk(page2, 2, 0, Some(2)),
        ];
        ix.add_file(
            "docs",
            FileChunks {
                source: "docs/guide.pdf".into(),
                hash: "h".into(),
                pages: 2,
                parents,
                children,
                vectors: vec![1.0, 0.0, 0.0, 1.0, 0.6, 0.8],
            },
        )
        .unwrap();
        Arc::new(Mutex::new(ix))
    }

    #[test]
    fn calculator_tool() {
        let c = Calculator::default();
        assert_eq!(
            c.call(&json!({"expression": "17.5% of 2,340 + sqrt(144)"})),
            Ok("421.5".into())
        );
        assert_eq!(
            c.call(&json!({"expression": "1/0"})),
            Err("division by zero".into())
        );
        c.spec().check().unwrap();
    }

    #[test]
    fn search_returns_passages_with_file_and_page() {
        let s = Search::new(index(), None, 2);
        let out = s
            .call(&json!({"query": "which port does the daemon listen on"}))
            .unwrap();
        assert!(
            out.starts_with("[1] guide.pdf, page 1: The daemon listens on port 8080."),
            "{out}"
        );
        let none = s.call(&json!({"query": "zebra"})).unwrap();
        assert_eq!(none, "no passages match 'zebra'");
    }

    #[test]
    fn read_page_rebuilds_the_page_from_overlapping_passages() {
        let r = ReadPage::new(index());
        assert_eq!(
            r.call(&json!({"file": "guide.pdf", "page": 1})).unwrap(),
            "guide.pdf, page 1:\nThe daemon listens on port 8080. Restart it after changes."
        );
        assert_eq!(
            r.call(&json!({"file": "guide.pdf", "page": 3})),
            Err("'docs/guide.pdf' has 2 pages".into())
        );
        assert_eq!(
            r.call(&json!({"file": "other.pdf", "page": 1})),
            Err("no indexed file 'other.pdf'".into())
        );
    }
}
