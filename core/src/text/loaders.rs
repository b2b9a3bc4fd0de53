//! Loaders: bytes of a PDF, HTML, Markdown or text file → a [`Document`].
//!
//! Every loader keeps where text came from: PDF segments carry their page
//! number (1-based), HTML and Markdown segments the path of headings above
//! them. A corrupt or encrypted PDF is an error naming the file; callers that
//! index many files report it and go on with the rest.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A run of text from one place in a document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    /// The text.
    pub text: String,
    /// 1-based page number (PDF only).
    pub page: Option<u32>,
    /// Headings above this text, outermost first (HTML, Markdown).
    pub headings: Vec<String>,
}

/// A loaded document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Document {
    /// Where it came from (a file name or URL).
    pub source: String,
    /// Its text, in reading order.
    pub segments: Vec<Segment>,
}

impl Document {
    /// All text, segments joined by blank lines.
    pub fn text(&self) -> String {
        self.segments
            .iter()
            .map(|s| s.text.as_str())
            .collect::<Vec<_>>()
            .join("\n\n")
    }
}

/// Loads `bytes` by the extension of `source` (`.pdf`, `.html`/`.htm`,
/// `.md`/`.markdown`, anything else as UTF-8 text).
pub fn load(source: &str, bytes: &[u8]) -> Result<Document> {
    let lower = source.to_ascii_lowercase();
    if lower.ends_with(".pdf") {
        load_pdf(source, bytes)
    } else if lower.ends_with(".html") || lower.ends_with(".htm") {
        Ok(load_html(source, &utf8(source, bytes)?))
    } else if lower.ends_with(".md") || lower.ends_with(".markdown") {
        Ok(load_markdown(source, &utf8(source, bytes)?))
    } else {
        Ok(load_text(source, &utf8(source, bytes)?))
    }
}

fn utf8(source: &str, bytes: &[u8]) -> Result<String> {
    String::from_utf8(bytes.to_vec())
        .map_err(|e| Error::Input(format!("{source}: not UTF-8 text ({e})")))
}

/// Plain text: one segment.
pub fn load_text(source: &str, text: &str) -> Document {
    Document {
        source: source.into(),
        segments: vec![Segment {
            text: text.replace("\r\n", "\n"),
            page: None,
            headings: Vec::new(),
        }],
    }
}

/// A PDF, one segment per page (empty pages dropped). Text is extracted by
/// `pdf-extract` (pure Rust, on lopdf). Files encrypted with a password are
/// refused (an empty user password, common for "no copying" flags, is fine).
pub fn load_pdf(source: &str, bytes: &[u8]) -> Result<Document> {
    let fail = |why: String| Error::Input(format!("{source}: cannot read PDF: {why}"));
    if !bytes.starts_with(b"%PDF") {
        return Err(fail(
            "no %PDF header (not a PDF, or truncated at the start)".into(),
        ));
    }
    check_inflated_size(bytes).map_err(fail)?;
    // lopdf and pdf-extract can panic on malformed files; natively the panic
    // becomes this file's error instead of ending the whole run (and the CLI's
    // panic hook keeps its trace out of the terminal).
    let (total, pages) = crate::util::catch_panic(|| {
        let doc = pdf_extract::Document::load_mem(bytes).map_err(|e| fail(e.to_string()))?;
        let total = doc.get_pages().len();
        drop(doc);
        let pages =
            pdf_extract::extract_text_from_mem_by_pages(bytes).map_err(|e| fail(e.to_string()))?;
        Ok::<_, Error>((total, pages))
    })
    .map_err(|why| {
        fail(format!(
            "the PDF library failed on malformed content ({why})"
        ))
    })??;
    // The extractor stops at the first page it cannot read; say which.
    if pages.len() < total {
        return Err(fail(format!(
            "page {} of {total} could not be extracted",
            pages.len() + 1
        )));
    }
    let segments: Vec<Segment> = pages
        .into_iter()
        .enumerate()
        .filter_map(|(i, text)| {
            let text = clean_pdf_text(&text);
            (!text.trim().is_empty()).then(|| Segment {
                text,
                page: Some(i as u32 + 1),
                headings: Vec::new(),
            })
        })
        .collect();
    if segments.is_empty() {
        return Err(fail(format!(
            "none of its {total} pages has extractable text (scanned images, or damaged)"
        )));
    }
    Ok(Document {
        source: source.into(),
        segments,
    })
}

/// Most bytes one PDF stream may inflate to.
pub const MAX_STREAM_INFLATED: u64 = 256 << 20;
/// Most bytes all of a PDF's streams together may inflate to.
pub const MAX_PDF_INFLATED: u64 = 1 << 30;

/// Refuses a decompression bomb before the PDF library inflates anything
/// (it inflates whole streams into memory, object streams already while
/// loading): every `stream` body that starts with a zlib header is inflated
/// into a counter, nothing kept, and a stream past [`MAX_STREAM_INFLATED`]
/// or a file past [`MAX_PDF_INFLATED`] is an error.
fn check_inflated_size(bytes: &[u8]) -> std::result::Result<(), String> {
    use std::io::Read;
    let mut total = 0u64;
    let mut at = 0usize;
    let mut buf = vec![0u8; 64 << 10];
    while let Some(i) = bytes
        .get(at..)
        .and_then(|rest| rest.windows(6).position(|w| w == b"stream"))
    {
        let kw = at + i;
        at = kw + 6;
        if kw >= 3 && bytes.get(kw - 3..kw) == Some(b"end") {
            continue;
        }
        let mut s = at;
        if bytes.get(s) == Some(&b'\r') {
            s += 1;
        }
        if bytes.get(s) == Some(&b'\n') {
            s += 1;
        }
        let Some(body) = bytes.get(s..) else { break };
        let zlib = matches!(body, [cmf, flg, ..] if cmf & 0x0F == 8 && (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 == 0);
        if !zlib {
            continue;
        }
        let mut dec = flate2::read::ZlibDecoder::new(body);
        let mut n = 0u64;
        loop {
            match dec.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(k) => {
                    n += k as u64;
                    if n > MAX_STREAM_INFLATED {
                        return Err(format!(
                            "a stream at byte {kw} inflates to more than {} MiB (a decompression bomb?)",
                            MAX_STREAM_INFLATED >> 20
                        ));
                    }
                    if total + n > MAX_PDF_INFLATED {
                        return Err(format!(
                            "its streams inflate to more than {} MiB in all (a decompression bomb?)",
                            MAX_PDF_INFLATED >> 20
                        ));
                    }
                }
            }
        }
        total += n;
        at = s + usize::try_from(dec.total_in()).unwrap_or(0);
    }
    Ok(())
}

/// Trims trailing spaces of every line and blank lines at the ends.
fn clean_pdf_text(t: &str) -> String {
    let mut out = String::with_capacity(t.len());
    for line in t.lines() {
        let line = line.trim_end();
        out.push_str(line);
        out.push('\n');
    }
    out.trim_matches('\n').to_string()
}

/// Markdown: one segment per section, with the heading path (`#`, `##`, ...)
/// above it. Code fences are kept as text (and `#` inside them is not a heading).
pub fn load_markdown(source: &str, text: &str) -> Document {
    let mut segments = Vec::new();
    let mut path: Vec<(usize, String)> = Vec::new();
    let mut buf = String::new();
    let mut in_fence = false;
    let flush = |buf: &mut String, path: &[(usize, String)], segments: &mut Vec<Segment>| {
        if !buf.trim().is_empty() {
            segments.push(Segment {
                text: buf.trim().to_string(),
                page: None,
                headings: path.iter().map(|(_, h)| h.clone()).collect(),
            });
        }
        buf.clear();
    };
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
        }
        let level = line.chars().take_while(|&c| c == '#').count();
        if !in_fence && (1..=6).contains(&level) && line[level..].starts_with(' ') {
            flush(&mut buf, &path, &mut segments);
            path.retain(|(l, _)| *l < level);
            path.push((level, line[level..].trim().to_string()));
            continue;
        }
        buf.push_str(line);
        buf.push('\n');
    }
    flush(&mut buf, &path, &mut segments);
    Document {
        source: source.into(),
        segments,
    }
}

/// HTML: visible text (no `<script>`, `<style>`, `<head>` or comments), block
/// elements as line breaks, entities decoded, one segment per `<h1>`–`<h6>`
/// section with its heading path.
pub fn load_html(source: &str, html: &str) -> Document {
    let mut segments = Vec::new();
    let mut path: Vec<(usize, String)> = Vec::new();
    let mut buf = String::new();
    let mut heading: Option<(usize, String)> = None;
    let mut skip_until: Option<String> = None;
    let mut rest = html;
    let flush = |buf: &mut String, path: &[(usize, String)], segments: &mut Vec<Segment>| {
        let text = collapse_ws(buf);
        if !text.is_empty() {
            segments.push(Segment {
                text,
                page: None,
                headings: path.iter().map(|(_, h)| h.clone()).collect(),
            });
        }
        buf.clear();
    };
    while !rest.is_empty() {
        if let Some(stripped) = rest.strip_prefix("<!--") {
            rest = stripped
                .find("-->")
                .map(|i| &stripped[i + 3..])
                .unwrap_or("");
            continue;
        }
        if rest.starts_with('<') {
            // An unclosed `<` at the end of the file is a tag running to the end.
            let (tag, after) = match rest.find('>') {
                Some(i) => (&rest[1..i], &rest[i + 1..]),
                None => (&rest[1..], ""),
            };
            rest = after;
            let closing = tag.starts_with('/');
            let name: String = tag
                .trim_start_matches('/')
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect::<String>()
                .to_ascii_lowercase();
            if let Some(until) = &skip_until {
                if closing && &name == until {
                    skip_until = None;
                }
                continue;
            }
            if !closing
                && matches!(name.as_str(), "script" | "style" | "head" | "noscript")
                && !tag.ends_with('/')
            {
                skip_until = Some(name);
                continue;
            }
            let level = match name.as_bytes() {
                [b'h', d @ b'1'..=b'6'] => Some((d - b'0') as usize),
                _ => None,
            };
            match (level, closing) {
                (Some(l), false) => {
                    flush(&mut buf, &path, &mut segments);
                    heading = Some((l, String::new()));
                }
                (Some(_), true) => {
                    if let Some((l, h)) = heading.take() {
                        path.retain(|(pl, _)| *pl < l);
                        path.push((l, collapse_ws(&h)));
                    }
                }
                _ => {
                    if matches!(
                        name.as_str(),
                        "p" | "br"
                            | "div"
                            | "li"
                            | "tr"
                            | "pre"
                            | "section"
                            | "article"
                            | "ul"
                            | "ol"
                            | "table"
                            | "dt"
                            | "dd"
                            | "blockquote"
                    ) {
                        buf.push('\n');
                    } else if matches!(name.as_str(), "td" | "th") {
                        buf.push(' ');
                    }
                }
            }
            continue;
        }
        let end = rest.find('<').unwrap_or(rest.len());
        if skip_until.is_none() {
            let text = decode_entities(&rest[..end]);
            match &mut heading {
                Some((_, h)) => h.push_str(&text),
                None => buf.push_str(&text),
            }
        }
        rest = &rest[end..];
    }
    flush(&mut buf, &path, &mut segments);
    Document {
        source: source.into(),
        segments,
    }
}

/// Collapses runs of spaces within lines and drops blank lines.
fn collapse_ws(s: &str) -> String {
    s.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let end = rest.find(';').filter(|&e| e <= 10);
        let decoded = end.and_then(|e| {
            let ent = &rest[1..e];
            let c = match ent {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "nbsp" => Some(' '),
                _ if ent.starts_with("#x") || ent.starts_with("#X") => {
                    u32::from_str_radix(&ent[2..], 16)
                        .ok()
                        .and_then(char::from_u32)
                }
                _ if ent.starts_with('#') => ent[1..].parse().ok().and_then(char::from_u32),
                _ => None,
            };
            c.map(|c| (c, e))
        });
        match decoded {
            Some((c, e)) => {
                out.push(c);
                rest = &rest[e + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A one-page PDF whose content stream is `content` compressed with
    /// zlib, then `pad` more bytes of spaces in the same compressed stream.
    fn flate_pdf(content: &str, pad: u64) -> Vec<u8> {
        use std::io::Write;
        let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(content.as_bytes()).unwrap();
        let chunk = vec![b' '; 1 << 20];
        let mut left = pad;
        while left > 0 {
            let k = left.min(chunk.len() as u64) as usize;
            enc.write_all(&chunk[..k]).unwrap();
            left -= k as u64;
        }
        pdf_with_stream("/Filter /FlateDecode", &enc.finish().unwrap())
    }

    #[test]
    fn compressed_pdfs_load_and_a_decompression_bomb_is_refused() {
        let page = "BT /F1 12 Tf 72 720 Td (Inflated text reads fine) Tj ET";
        let d = load_pdf("ok.pdf", &flate_pdf(page, 0)).unwrap();
        assert_eq!(d.segments[0].text, "Inflated text reads fine");
        assert_eq!(d.segments[0].page, Some(1));
        // 300 MiB of spaces compress to a few MB; the check refuses the file
        // before the PDF library would inflate it into memory.
        let bomb = flate_pdf(page, 300 << 20);
        assert!(bomb.len() < 16 << 20, "{}", bomb.len());
        let started = std::time::Instant::now();
        let e = load_pdf("bomb.pdf", &bomb).unwrap_err().to_string();
        assert!(
            e.contains("bomb.pdf: cannot read PDF: a stream at byte")
                && e.contains("inflates to more than 256 MiB (a decompression bomb?)"),
            "{e}"
        );
        assert!(started.elapsed().as_secs() < 30, "{:?}", started.elapsed());
    }

    #[test]
    fn markdown_keeps_heading_paths() {
        let d = load_markdown(
            "a.md",
            "intro\n# Install\n## From source\nrun make\n```\n# not a heading\n```\n## Binary\napt install r\n# Use\nstart R\n",
        );
        let got: Vec<(Vec<String>, &str)> = d
            .segments
            .iter()
            .map(|s| (s.headings.clone(), s.text.as_str()))
            .collect();
        assert_eq!(got[0], (vec![], "intro"));
        assert_eq!(
            got[1],
            (
                vec!["Install".to_string(), "From source".to_string()],
                "run make\n```\n# not a heading\n```"
            )
        );
        assert_eq!(got[2].0, vec!["Install".to_string(), "Binary".to_string()]);
        assert_eq!(got[3], (vec!["Use".to_string()], "start R"));
    }

    #[test]
    fn html_visible_text_with_headings_and_entities() {
        let d = load_html(
            "a.html",
            "<html><head><title>T</title><style>p{}</style></head><body><!-- c --><h1>Guide &amp; FAQ</h1><p>Use <b>apt</b>&nbsp;get.</p><script>var x = '<p>';</script><h2>Q&#233;</h2><ul><li>one</li><li>two</li></ul></body></html>",
        );
        assert_eq!(d.segments.len(), 2);
        assert_eq!(d.segments[0].headings, vec!["Guide & FAQ"]);
        assert_eq!(d.segments[0].text, "Use apt get.");
        assert_eq!(d.segments[1].headings, vec!["Guide & FAQ", "Qé"]);
        assert_eq!(d.segments[1].text, "one\ntwo");
    }

    #[test]
    fn bad_pdfs_are_named_errors() {
        let e = load("broken.pdf", b"hello").unwrap_err();
        assert!(
            e.to_string()
                .contains("broken.pdf: cannot read PDF: no %PDF header"),
            "{e}"
        );
        let e = load("cut.pdf", b"%PDF-1.4\n1 0 obj <<").unwrap_err();
        assert!(
            e.to_string().starts_with("input: cut.pdf: cannot read PDF"),
            "{e}"
        );
        let e = load("x.txt", &[0xff, 0xfe]).unwrap_err();
        assert!(e.to_string().contains("x.txt: not UTF-8"), "{e}");
    }

    /// A valid one-page PDF whose page draws `content` (xref offsets computed).
    fn one_page_pdf(content: &str) -> Vec<u8> {
        pdf_with_stream("", content.as_bytes())
    }

    /// A valid one-page PDF (Helvetica) whose content stream is `stream`,
    /// with `filter` in its dictionary.
    fn pdf_with_stream(filter: &str, stream: &[u8]) -> Vec<u8> {
        let mut content = format!("<< /Length {} {filter} >>\nstream\n", stream.len()).into_bytes();
        content.extend_from_slice(stream);
        content.extend_from_slice(b"\nendstream");
        let objs: [Vec<u8>; 5] = [
            b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>".to_vec(),
            content,
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_vec(),
        ];
        let mut out = b"%PDF-1.4\n".to_vec();
        let mut offsets = Vec::new();
        for (i, o) in objs.iter().enumerate() {
            offsets.push(out.len());
            out.extend(format!("{} 0 obj\n", i + 1).as_bytes());
            out.extend_from_slice(o);
            out.extend(b"\nendobj\n");
        }
        let xref = out.len();
        out.extend(format!("xref\n0 {}\n0000000000 65535 f \n", objs.len() + 1).as_bytes());
        for off in offsets {
            out.extend(format!("{off:010} 00000 n \n").as_bytes());
        }
        out.extend(
            format!(
                "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
                objs.len() + 1
            )
            .as_bytes(),
        );
        out
    }

    #[test]
    fn a_pdf_without_any_text_is_an_error_not_an_empty_document() {
        let text = load(
            "t.pdf",
            &one_page_pdf("BT /F1 12 Tf 20 100 Td (Hello cairn) Tj ET"),
        )
        .unwrap();
        assert_eq!(text.segments.len(), 1);
        assert!(
            text.segments[0].text.contains("Hello cairn"),
            "{:?}",
            text.segments
        );
        let e = load("scan.pdf", &one_page_pdf("0 0 m 10 10 l S"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("scan.pdf: cannot read PDF: none of its 1 pages has extractable text"),
            "{e}"
        );
    }
}
