//! Documents over HTTP: `POST /v1/collections/{name}/documents` (multipart
//! upload, indexed into the persistent index) and
//! `DELETE /v1/collections/{name}/documents/{document}`.
//!
//! An uploaded file is kept under `<index dir>/uploads/<collection>/` (the
//! index's sources are files a reader can open), chunked and embedded on the
//! embedder thread, then added under the index's [`WriteLock`] — the lock
//! `cairn index` takes — to the index as it is on disk (so a concurrent
//! `cairn index` run loses nothing), written atomically, and only then
//! swapped into the server's copy.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cairn_core::rag::FileChunks;
use serde_json::{Value, json};

use super::AppState;
use super::embedder::{IngestJob, Work};
use super::error::ApiError;
use crate::atomic::{WriteLock, write_atomic};

/// Whether `name` can name a collection: 1–64 of letters, digits, `_-.`.
fn valid_collection(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && !name.starts_with('.')
}

/// Checks an uploaded file's name: a plain file name with a loader's extension.
fn valid_file_name(name: &str) -> Result<(), ApiError> {
    let bad = |why: &str| ApiError::bad_request(format!("file '{name}': {why}"), Some("file"));
    if name.is_empty() || name.len() > 200 {
        return Err(bad("the name must be 1 to 200 bytes"));
    }
    if name.contains(['/', '\\', '\0']) || name.starts_with('.') {
        return Err(bad(
            "the name must be a plain file name (no path, not hidden)",
        ));
    }
    let ext = Path::new(name)
        .extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    if !crate::rag::DOCUMENT_EXTENSIONS.contains(&ext.as_str()) {
        return Err(bad(&format!(
            "only {} files can be indexed",
            crate::rag::DOCUMENT_EXTENSIONS.join(", ")
        )));
    }
    Ok(())
}

fn index_path(state: &AppState) -> Result<PathBuf, ApiError> {
    state
        .index_path
        .clone()
        .ok_or_else(|| ApiError::unavailable("this server has no RAG index (--index FILE)"))
}

/// Where uploads of `collection` are kept (created, canonical).
fn upload_dir(index: &Path, collection: &str) -> Result<PathBuf, ApiError> {
    let dir = index
        .parent()
        .unwrap_or(Path::new("."))
        .join("uploads")
        .join(collection);
    std::fs::create_dir_all(&dir)
        .and_then(|()| dir.canonicalize())
        .map_err(|e| ApiError::internal(format!("creating {}: {e}", dir.display())))
}

/// `POST /v1/collections/{name}/documents`: every `file` part of a
/// multipart body is indexed into collection `name` (created if new; a file
/// of the same name is replaced).
pub async fn upload(
    State(state): State<Arc<AppState>>,
    UrlPath(collection): UrlPath<String>,
    form: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    if !valid_collection(&collection) {
        return Err(ApiError::bad_request(
            format!("collection '{collection}': use 1–64 letters, digits, '_', '-' or '.'"),
            Some("collection"),
        ));
    }
    let index = index_path(&state)?;
    let embed = state
        .embed
        .clone()
        .ok_or_else(|| ApiError::unavailable("this server runs no embedder"))?;
    let mut form = form.map_err(|r| ApiError {
        status: r.status(),
        message: format!("expected a multipart/form-data body: {}", r.body_text()),
        param: None,
        code: None,
    })?;
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    loop {
        let field = form.next_field().await.map_err(|e| ApiError {
            status: e.status(),
            message: format!("reading the multipart body: {}", e.body_text()),
            param: None,
            code: None,
        })?;
        let Some(field) = field else { break };
        let Some(name) = field.file_name().map(ToString::to_string) else {
            return Err(ApiError::bad_request(
                format!(
                    "part '{}' has no file name: send documents as file parts",
                    field.name().unwrap_or("")
                ),
                Some("file"),
            ));
        };
        valid_file_name(&name)?;
        let bytes = field.bytes().await.map_err(|e| ApiError {
            status: e.status(),
            message: format!("reading file '{name}': {}", e.body_text()),
            param: Some("file".into()),
            code: None,
        })?;
        if bytes.is_empty() {
            return Err(ApiError::bad_request(
                format!("file '{name}' is empty"),
                Some("file"),
            ));
        }
        files.push((name, bytes.to_vec()));
    }
    if files.is_empty() {
        return Err(ApiError::bad_request(
            "no file parts in the body",
            Some("file"),
        ));
    }
    let dir = {
        let (index, c) = (index.clone(), collection.clone());
        tokio::task::spawn_blocking(move || upload_dir(&index, &c))
            .await
            .map_err(|e| ApiError::internal(e.to_string()))??
    };
    // Chunk and embed each file before touching the index.
    let mut ready: Vec<(PathBuf, Vec<u8>, FileChunks)> = Vec::new();
    for (name, bytes) in files {
        let path = dir.join(&name);
        let (tx, rx) = tokio::sync::oneshot::channel();
        embed.submit(Work::Ingest(IngestJob {
            source: path.display().to_string(),
            bytes: bytes.clone(),
            reply: tx,
        }))?;
        let chunks = rx
            .await
            .map_err(|_| ApiError::internal("the embedder stopped"))?
            .map_err(|m| ApiError {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                message: format!("file '{name}' cannot be indexed: {m}"),
                param: Some("file".into()),
                code: None,
            })?;
        ready.push((path, bytes, chunks));
    }
    let st = state.clone();
    let c = collection.clone();
    let report = tokio::task::spawn_blocking(move || -> Result<Vec<Value>, ApiError> {
        let _lock = WriteLock::acquire(&index)?;
        let (name, dim) = (
            st.embedder_name.clone().unwrap_or_default(),
            st.embed.as_ref().map_or(0, |e| e.dim),
        );
        let mut ix = crate::rag::read_index(&index, &name, dim)?;
        let mut report = Vec::new();
        for (path, bytes, chunks) in ready {
            write_atomic(&path, &bytes)?;
            let replaced = ix
                .collections
                .get(&c)
                .is_some_and(|col| col.files.contains_key(&chunks.source));
            report.push(json!({
                "file": path.file_name().map(|n| n.to_string_lossy().into_owned()),
                "source": chunks.source,
                "pages": chunks.pages,
                "chunks": chunks.children.len(),
                "replaced": replaced,
            }));
            ix.add_file(&c, chunks)?;
        }
        write_atomic(&index, &ix.to_bytes()?)?;
        if let Some(mem) = &st.index {
            *mem.lock()
                .map_err(|_| ApiError::internal("the index lock is poisoned"))? = ix;
        }
        Ok(report)
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))??;
    tracing::info!(collection = %collection, files = report.len(), "documents indexed");
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({"collection": collection, "documents": report})),
    )
        .into_response())
}

/// `DELETE /v1/collections/{name}/documents/{document}`: removes a document
/// (its full source path, or its file name when that is unique in the
/// collection) from the index; an uploaded file is deleted too.
pub async fn delete(
    State(state): State<Arc<AppState>>,
    UrlPath((collection, document)): UrlPath<(String, String)>,
) -> Result<Response, ApiError> {
    let index = index_path(&state)?;
    let st = state.clone();
    tokio::task::spawn_blocking(move || -> Result<Response, ApiError> {
        let _lock = WriteLock::acquire(&index)?;
        let (name, dim) = (st.embedder_name.clone().unwrap_or_default(), st.embed.as_ref().map_or(0, |e| e.dim));
        let mut ix = crate::rag::read_index(&index, &name, dim)?;
        let Some(col) = ix.collections.get(&collection) else {
            return Err(ApiError::not_found(format!("no collection '{collection}' in the index")));
        };
        let matches: Vec<String> = col
            .files
            .keys()
            .filter(|s| {
                s.as_str() == document
                    || Path::new(s).file_name().is_some_and(|n| n.to_string_lossy() == document)
            })
            .cloned()
            .collect();
        let source = match matches.as_slice() {
            [one] => one.clone(),
            [] => {
                return Err(ApiError::not_found(format!(
                    "no document '{document}' in collection '{collection}'"
                )));
            }
            many => {
                return Err(ApiError {
                    status: StatusCode::CONFLICT,
                    message: format!(
                        "'{document}' names {} documents in '{collection}' ({}); give the full source",
                        many.len(),
                        many.join(", ")
                    ),
                    param: Some("document".into()),
                    code: None,
                });
            }
        };
        ix.remove_file(&collection, &source);
        write_atomic(&index, &ix.to_bytes()?)?;
        if let Some(mem) = &st.index {
            *mem.lock().map_err(|_| ApiError::internal("the index lock is poisoned"))? = ix;
        }
        // An uploaded copy goes too; documents indexed from elsewhere stay on disk.
        if let Ok(uploads) = upload_dir(&index, &collection)
            && Path::new(&source).starts_with(&uploads)
        {
            let _ = std::fs::remove_file(&source);
        }
        tracing::info!(collection = %collection, source = %source, "document removed");
        Ok(axum::Json(json!({"collection": collection, "deleted": source})).into_response())
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?
}
