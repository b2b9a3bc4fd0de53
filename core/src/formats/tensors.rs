//! Tensor data from a safetensors file held in memory, converted to f32.

use super::safetensors::Header;
use crate::error::{Error, Result};

/// A safetensors file's bytes with its parsed header.
#[derive(Debug)]
pub struct SafeTensors<'a> {
    header: Header,
    data: &'a [u8],
    file: String,
}

impl<'a> SafeTensors<'a> {
    /// Parses `bytes` (a whole `.safetensors` file); `file` names it in errors.
    pub fn parse(bytes: &'a [u8], file: &str) -> Result<Self> {
        let header = Header::read(&mut &bytes[..], file)?;
        let data = usize::try_from(header.data_offset)
            .ok()
            .and_then(|o| bytes.get(o..))
            .ok_or_else(|| Error::Model {
                file: file.into(),
                detail: format!(
                    "the header ends at byte {} of a {}-byte file",
                    header.data_offset,
                    bytes.len()
                ),
            })?;
        let needed = header
            .tensors
            .values()
            .map(|t| t.data_offsets[1])
            .max()
            .unwrap_or(0);
        if (data.len() as u64) < needed {
            return Err(Error::Format {
                format: format!("safetensors {file}"),
                detail: format!(
                    "the header describes {needed} bytes of data but the file holds {} (truncated?)",
                    data.len()
                ),
            });
        }
        Ok(Self {
            header,
            data,
            file: file.to_string(),
        })
    }

    /// The file name given to [`SafeTensors::parse`].
    pub fn file(&self) -> &str {
        &self.file
    }

    /// Whether a tensor of this name exists.
    pub fn contains(&self, name: &str) -> bool {
        self.header.tensors.contains_key(name)
    }

    /// All tensor names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.header.tensors.keys().map(String::as_str)
    }

    /// The shape of a tensor, if present.
    pub fn shape(&self, name: &str) -> Option<Vec<usize>> {
        self.header
            .tensors
            .get(name)
            .map(|t| t.shape.iter().map(|&d| d as usize).collect())
    }

    /// A floating-point tensor (F32, F16 or BF16) as f32 values and its shape.
    pub fn f32(&self, name: &str) -> Result<(Vec<f32>, Vec<usize>)> {
        let t = self.header.tensors.get(name).ok_or_else(|| Error::Model {
            file: self.file.clone(),
            detail: format!("tensor '{name}' not found"),
        })?;
        let [begin, end] = t.data_offsets;
        let raw = usize::try_from(begin)
            .ok()
            .zip(usize::try_from(end).ok())
            .and_then(|(b, e)| self.data.get(b..e))
            .ok_or_else(|| Error::Model {
                file: self.file.clone(),
                detail: format!(
                    "tensor '{name}' (bytes {begin}..{end}) lies outside the data ({} bytes)",
                    self.data.len()
                ),
            })?;
        let values = match t.dtype.as_str() {
            "F32" => raw
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap_or_default()))
                .collect(),
            "F16" => raw
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes(c.try_into().unwrap_or_default()).to_f32())
                .collect(),
            "BF16" => raw
                .chunks_exact(2)
                .map(|c| half::bf16::from_le_bytes(c.try_into().unwrap_or_default()).to_f32())
                .collect(),
            other => {
                return Err(Error::Model {
                    file: self.file.clone(),
                    detail: format!(
                        "tensor '{name}' has dtype {other}; a float type (F32, F16, BF16) is required"
                    ),
                });
            }
        };
        Ok((values, t.shape.iter().map(|&d| d as usize).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_f16_and_reports_missing_tensors() {
        let json = r#"{"h":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}"#;
        let mut bytes = (json.len() as u64).to_le_bytes().to_vec();
        bytes.extend(json.as_bytes());
        bytes.extend(half::f16::from_f32(1.5).to_le_bytes());
        bytes.extend(half::f16::from_f32(-2.0).to_le_bytes());
        let st = SafeTensors::parse(&bytes, "m.safetensors").unwrap();
        assert_eq!(st.f32("h").unwrap(), (vec![1.5, -2.0], vec![2]));
        let e = st.f32("nope").unwrap_err().to_string();
        assert_eq!(e, "m.safetensors: tensor 'nope' not found");
        let e = SafeTensors::parse(&bytes[..bytes.len() - 1], "cut.safetensors")
            .unwrap_err()
            .to_string();
        assert!(e.contains("truncated"), "{e}");
    }
}
