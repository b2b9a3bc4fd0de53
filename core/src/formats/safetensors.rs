//! The safetensors header: a u64 little-endian length, then that many bytes of
//! JSON mapping tensor names to `{dtype, shape, data_offsets}` (plus an optional
//! `__metadata__` map of strings), then the raw data.

use std::collections::BTreeMap;
use std::io::Read;

use crate::error::{Error, Result};

/// Largest header accepted (the format's own limit is 100 MB).
const MAX_HEADER: u64 = 100_000_000;

/// One tensor entry of the header.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct TensorEntry {
    /// Element type (`F32`, `F16`, `BF16`, `I64`, ...).
    pub dtype: String,
    /// Shape, outermost first.
    pub shape: Vec<u64>,
    /// `[begin, end)` byte range relative to the end of the header.
    pub data_offsets: [u64; 2],
}

/// A parsed safetensors header.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    /// Tensors by name (sorted).
    pub tensors: BTreeMap<String, TensorEntry>,
    /// The free-form `__metadata__` map, if any.
    pub metadata: BTreeMap<String, String>,
    /// Absolute byte offset where tensor data begins.
    pub data_offset: u64,
}

fn dtype_size(dtype: &str) -> Option<u64> {
    Some(match dtype {
        "F64" | "I64" | "U64" => 8,
        "F32" | "I32" | "U32" => 4,
        "F16" | "BF16" | "I16" | "U16" => 2,
        "I8" | "U8" | "BOOL" | "F8_E4M3" | "F8_E5M2" => 1,
        _ => return None,
    })
}

impl Header {
    /// Bytes the file must hold: the header and every tensor's data.
    pub fn file_len(&self) -> u64 {
        let data = self
            .tensors
            .values()
            .map(|t| t.data_offsets[1])
            .max()
            .unwrap_or(0);
        self.data_offset.saturating_add(data)
    }

    /// Reads the header from the start of `r`; `name` (a file name) appears in errors.
    /// Each tensor's byte range is checked against its dtype and shape.
    pub fn read<R: Read>(r: &mut R, name: &str) -> Result<Self> {
        let err = |detail: String| Error::Format {
            format: format!("safetensors {name}"),
            detail,
        };
        let mut len = [0u8; 8];
        r.read_exact(&mut len)
            .map_err(|_| err("file is shorter than the 8-byte header length".into()))?;
        let len = u64::from_le_bytes(len);
        if len > MAX_HEADER {
            return Err(err(format!(
                "header length {len} exceeds {MAX_HEADER} bytes (not a safetensors file?)"
            )));
        }
        let mut json = vec![0u8; len as usize];
        r.read_exact(&mut json)
            .map_err(|_| err(format!("file ends inside the {len}-byte header")))?;
        let raw: BTreeMap<String, serde_json::Value> = serde_json::from_slice(&json)
            .map_err(|e| err(format!("header is not a JSON object: {e}")))?;
        let mut tensors = BTreeMap::new();
        let mut metadata = BTreeMap::new();
        for (key, value) in raw {
            if key == "__metadata__" {
                metadata = serde_json::from_value(value)
                    .map_err(|e| err(format!("__metadata__ must map strings to strings: {e}")))?;
                continue;
            }
            let entry: TensorEntry = serde_json::from_value(value)
                .map_err(|e| err(format!("tensor '{key}' has a malformed entry: {e}")))?;
            let size = dtype_size(&entry.dtype).ok_or_else(|| {
                err(format!(
                    "tensor '{key}' has unknown dtype '{}'",
                    entry.dtype
                ))
            })?;
            let [begin, end] = entry.data_offsets;
            let expected = entry
                .shape
                .iter()
                .try_fold(size, |acc, &d| acc.checked_mul(d))
                .ok_or_else(|| {
                    err(format!(
                        "tensor '{key}' has shape {:?} whose byte size overflows",
                        entry.shape
                    ))
                })?;
            if end < begin || end - begin != expected {
                return Err(err(format!(
                    "tensor '{key}' ({} {:?}) needs {expected} bytes but data_offsets span {begin}..{end}",
                    entry.dtype, entry.shape
                )));
            }
            tensors.insert(key, entry);
        }
        Ok(Header {
            tensors,
            metadata,
            data_offset: 8 + len,
        })
    }
}

/// A tensor on the host: name, shape, row-major f32 values.
pub type NamedTensor = (String, Vec<usize>, Vec<f32>);

/// Serialises f32 tensors (`name`, shape, row-major values) and a metadata
/// map into a safetensors file: what `safetensors.torch.load_file` and
/// Hugging Face `from_pretrained` read. Tensors are written sorted by name;
/// the header is padded with spaces to a multiple of 8 bytes, as the
/// reference implementation does. A value count that does not match its
/// shape is an error naming the tensor.
pub fn write_f32(tensors: &[NamedTensor], metadata: &BTreeMap<String, String>) -> Result<Vec<u8>> {
    let mut sorted: Vec<&NamedTensor> = tensors.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut header = serde_json::Map::new();
    if !metadata.is_empty() {
        header.insert(
            "__metadata__".into(),
            serde_json::Value::Object(
                metadata
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone().into()))
                    .collect(),
            ),
        );
    }
    let mut offset = 0u64;
    for (name, shape, values) in &sorted {
        if shape.iter().product::<usize>() != values.len() {
            return Err(Error::Shape {
                op: "safetensors write",
                detail: format!(
                    "tensor '{name}' has {} values for shape {shape:?}",
                    values.len()
                ),
            });
        }
        let end = offset + 4 * values.len() as u64;
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [offset, end]}),
        );
        offset = end;
    }
    let mut json = serde_json::Value::Object(header).to_string().into_bytes();
    while !(8 + json.len()).is_multiple_of(8) {
        json.push(b' ');
    }
    let mut out = Vec::with_capacity(8 + json.len() + offset as usize);
    out.extend((json.len() as u64).to_le_bytes());
    out.extend(json);
    for (_, _, values) in sorted {
        out.extend(values.iter().flat_map(|v| v.to_le_bytes()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(json: &str) -> Vec<u8> {
        let mut b = (json.len() as u64).to_le_bytes().to_vec();
        b.extend(json.as_bytes());
        b
    }

    #[test]
    fn reads_entries_and_metadata() {
        let b = file(
            r#"{"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}}"#,
        );
        let h = Header::read(&mut b.as_slice(), "m.safetensors").unwrap();
        assert_eq!(h.tensors["w"].shape, vec![2, 3]);
        assert_eq!(h.metadata["format"], "pt");
        assert_eq!(h.data_offset, b.len() as u64);
    }

    #[test]
    fn inconsistent_offsets_name_the_tensor() {
        let b = file(r#"{"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}}"#);
        let e = Header::read(&mut b.as_slice(), "m.safetensors")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("safetensors m.safetensors: tensor 'w'") && e.contains("needs 24 bytes"),
            "{e}"
        );
    }

    #[test]
    fn an_overflowing_shape_is_an_error() {
        let b =
            file(r#"{"w":{"dtype":"F32","shape":[4294967296,4294967296,4],"data_offsets":[0,0]}}"#);
        let e = Header::read(&mut b.as_slice(), "big.safetensors")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("tensor 'w' has shape") && e.contains("overflows"),
            "{e}"
        );
    }
}
