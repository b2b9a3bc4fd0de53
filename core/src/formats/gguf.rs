//! GGUF (llama.cpp's model file): header, metadata and tensor directory.
//!
//! Layout (little-endian): magic `GGUF`, u32 version (2 or 3), u64 tensor count,
//! u64 metadata count, the metadata key/values, the tensor infos (name, dims,
//! ggml type, offset relative to the data section), then padding to
//! `general.alignment` (default 32) and the tensor data.
//!
//! The reader takes any [`std::io::Read`] and stops after the header, so a
//! multi-gigabyte file costs only its header to inspect. Counts and lengths
//! are bounded so a corrupt file is an error, never an allocation bomb.
//!
//! Size: ~710 lines of code (reader and writer of one format, kept together
//! so the two stay symmetric) and ~215 of unit tests after `#[cfg(test)]`.

use std::io::Read;

use crate::error::{Error, Result};

/// The four magic bytes at the start of every GGUF file.
pub const MAGIC: [u8; 4] = *b"GGUF";
/// Data-section alignment when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// Longest string accepted in a header (keys, values, tensor names).
const MAX_STRING: u64 = 1 << 26;
/// Most elements accepted in one metadata array.
const MAX_ARRAY: u64 = 1 << 26;
/// Most tensors or metadata entries accepted.
const MAX_ENTRIES: u64 = 1 << 24;
/// Most dimensions of one tensor (ggml's GGML_MAX_DIMS).
const MAX_DIMS: u32 = 4;

/// The ggml block types live with the block codecs; the format re-exports them.
pub use crate::quant::GgmlType;

/// One metadata value.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)]
pub enum Value {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    U64(u64),
    I64(i64),
    F32(f32),
    F64(f64),
    Bool(bool),
    String(String),
    Array(Vec<Value>),
}

impl Value {
    /// The value as an unsigned integer, if it is a non-negative integer of any width.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::U8(v) => Some(v.into()),
            Value::U16(v) => Some(v.into()),
            Value::U32(v) => Some(v.into()),
            Value::U64(v) => Some(v),
            Value::I8(v) => u64::try_from(v).ok(),
            Value::I16(v) => u64::try_from(v).ok(),
            Value::I32(v) => u64::try_from(v).ok(),
            Value::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// The value as a float, if it is numeric.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::F32(v) => Some(v.into()),
            Value::F64(v) => Some(v),
            _ => self.as_u64().map(|v| v as f64),
        }
    }

    /// The value as a string slice, if it is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The value as an array, if it is one.
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(v) => Some(v),
            _ => None,
        }
    }

    /// A short rendering for listings: arrays show their length and first items.
    pub fn summary(&self) -> String {
        match self {
            Value::String(s) if s.chars().count() > 60 => {
                format!("{:?}…", s.chars().take(60).collect::<String>())
            }
            Value::String(s) => format!("{s:?}"),
            Value::Array(v) => {
                let head: Vec<String> = v.iter().take(3).map(Value::summary).collect();
                format!(
                    "[{} items: {}{}]",
                    v.len(),
                    head.join(", "),
                    if v.len() > 3 { ", …" } else { "" }
                )
            }
            Value::Bool(b) => b.to_string(),
            Value::F32(f) => f.to_string(),
            Value::F64(f) => f.to_string(),
            other => other
                .as_u64()
                .map(|u| u.to_string())
                .unwrap_or_else(|| format!("{other:?}")),
        }
    }
}

/// One entry of the tensor directory.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    /// Tensor name (e.g. `blk.0.attn_q.weight`).
    pub name: String,
    /// Dimensions in ggml order: `dims[0]` is the fastest-varying (row length).
    pub dims: Vec<u64>,
    /// Element type.
    pub ggml_type: GgmlType,
    /// Byte offset of the data, relative to the start of the data section.
    pub offset: u64,
}

impl TensorInfo {
    /// Number of elements.
    pub fn elements(&self) -> u64 {
        self.dims.iter().fold(1u64, |a, &d| a.saturating_mul(d))
    }

    /// Size of the tensor's data in bytes.
    pub fn byte_len(&self) -> u64 {
        let (per_block, bytes) = self.ggml_type.block();
        // Saturating: the reader refuses tensors whose size overflows, so
        // this only matters for hand-built `TensorInfo`s.
        (self.elements() / per_block).saturating_mul(bytes)
    }
}

/// A parsed GGUF header.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    /// Format version (2 or 3).
    pub version: u32,
    /// Metadata in file order.
    pub metadata: Vec<(String, Value)>,
    /// The tensor directory in file order.
    pub tensors: Vec<TensorInfo>,
    /// Data-section alignment (`general.alignment`, default 32).
    pub alignment: u64,
    /// Absolute byte offset of the data section in the file.
    pub data_offset: u64,
}

impl Header {
    /// Looks up a metadata value by key.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// `general.architecture` (e.g. `llama`), if present.
    pub fn architecture(&self) -> Option<&str> {
        self.get("general.architecture").and_then(Value::as_str)
    }

    /// Looks up a tensor by name.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// Total bytes the data section must hold (end of the last tensor).
    pub fn data_len(&self) -> u64 {
        self.tensors
            .iter()
            .map(|t| t.offset.saturating_add(t.byte_len()))
            .max()
            .unwrap_or(0)
    }

    /// Reads a header from `r`, which must be positioned at the start of the file.
    /// `name` (a file name) is used in error messages.
    pub fn read<R: Read>(r: &mut R, name: &str) -> Result<Self> {
        let mut p = Parser { r, pos: 0, name };
        let magic: [u8; 4] = p.array("magic")?;
        if magic != MAGIC {
            return Err(p.err(format!(
                "not a GGUF file: magic is {magic:?}, expected \"GGUF\""
            )));
        }
        let version = p.u32("version")?;
        if !(2..=3).contains(&version) {
            return Err(p.err(format!(
                "unsupported GGUF version {version} (supported: 2, 3)"
            )));
        }
        let n_tensors = p.count("tensor count")?;
        let n_kv = p.count("metadata count")?;
        // Counts come from the file: reserve little up front, so a header
        // claiming millions of entries costs only what it really holds.
        let mut metadata = Vec::with_capacity(n_kv.min(1024) as usize);
        for i in 0..n_kv {
            let key = p.string(&format!("metadata key #{i}"))?;
            let ty = p.u32(&format!("type of metadata '{key}'"))?;
            let value = p.value(ty, &key)?;
            metadata.push((key, value));
        }
        let mut tensors = Vec::with_capacity(n_tensors.min(1024) as usize);
        for i in 0..n_tensors {
            let tname = p.string(&format!("tensor name #{i}"))?;
            let n_dims = p.u32(&format!("dimension count of tensor '{tname}'"))?;
            if n_dims == 0 || n_dims > MAX_DIMS {
                return Err(p.err(format!(
                    "tensor '{tname}' has {n_dims} dimensions (1..={MAX_DIMS} allowed)"
                )));
            }
            let mut dims = Vec::with_capacity(n_dims as usize);
            for d in 0..n_dims {
                dims.push(p.u64(&format!("dimension {d} of tensor '{tname}'"))?);
            }
            let type_id = p.u32(&format!("type of tensor '{tname}'"))?;
            let ggml_type = GgmlType::from_id(type_id).ok_or_else(|| {
                p.err(format!(
                    "tensor '{tname}' has unknown ggml type id {type_id}"
                ))
            })?;
            let offset = p.u64(&format!("offset of tensor '{tname}'"))?;
            let info = TensorInfo {
                name: tname,
                dims,
                ggml_type,
                offset,
            };
            let elements = info
                .dims
                .iter()
                .try_fold(1u64, |acc, &d| acc.checked_mul(d));
            match elements {
                None => {
                    return Err(p.err(format!(
                        "tensor '{}' has dimensions {:?} whose product overflows",
                        info.name, info.dims
                    )));
                }
                Some(n)
                    if (n / ggml_type.block().0)
                        .checked_mul(ggml_type.block().1)
                        .is_none() =>
                {
                    return Err(p.err(format!(
                        "tensor '{}' has dimensions {:?} whose byte size overflows",
                        info.name, info.dims
                    )));
                }
                Some(n) if n % ggml_type.block().0 != 0 => {
                    return Err(p.err(format!(
                        "tensor '{}' has {n} elements, not a multiple of the {} block size {}",
                        info.name,
                        ggml_type.name(),
                        ggml_type.block().0
                    )));
                }
                _ => {}
            }
            if info.offset.checked_add(info.byte_len()).is_none() {
                return Err(p.err(format!(
                    "tensor '{}' at offset {} with {} bytes of data ends past 2^64 (corrupt tensor directory)",
                    info.name,
                    info.offset,
                    info.byte_len()
                )));
            }
            tensors.push(info);
        }
        let alignment = match metadata.iter().find(|(k, _)| k == "general.alignment") {
            None => DEFAULT_ALIGNMENT,
            Some((_, v)) => match v.as_u64() {
                Some(a) if a > 0 && a.is_power_of_two() => a,
                _ => {
                    return Err(p.err(format!(
                        "general.alignment must be a power of two, got {}",
                        v.summary()
                    )));
                }
            },
        };
        for t in &tensors {
            if t.offset % alignment != 0 {
                return Err(p.err(format!(
                    "tensor '{}' offset {} is not aligned to {alignment}",
                    t.name, t.offset
                )));
            }
        }
        let data_offset = p.pos.div_ceil(alignment) * alignment;
        Ok(Header {
            version,
            metadata,
            tensors,
            alignment,
            data_offset,
        })
    }
}

/// Metadata accessors that name the missing or mistyped key in their error.
impl Header {
    fn meta_err(&self, key: &str, what: &str) -> Error {
        Error::Format {
            format: "GGUF".into(),
            detail: format!("metadata '{key}' {what}"),
        }
    }

    /// A required non-negative integer.
    pub fn require_u64(&self, key: &str) -> Result<u64> {
        match self.get(key) {
            None => Err(self.meta_err(key, "is missing")),
            Some(v) => v.as_u64().ok_or_else(|| {
                self.meta_err(key, &format!("is {}, expected an integer", v.summary()))
            }),
        }
    }

    /// A required number (integer or float).
    pub fn require_f64(&self, key: &str) -> Result<f64> {
        match self.get(key) {
            None => Err(self.meta_err(key, "is missing")),
            Some(v) => v.as_f64().ok_or_else(|| {
                self.meta_err(key, &format!("is {}, expected a number", v.summary()))
            }),
        }
    }

    /// A required string.
    pub fn require_str(&self, key: &str) -> Result<&str> {
        match self.get(key) {
            None => Err(self.meta_err(key, "is missing")),
            Some(v) => v.as_str().ok_or_else(|| {
                self.meta_err(key, &format!("is {}, expected a string", v.summary()))
            }),
        }
    }

    /// A required array.
    pub fn require_array(&self, key: &str) -> Result<&[Value]> {
        match self.get(key) {
            None => Err(self.meta_err(key, "is missing")),
            Some(v) => v.as_array().ok_or_else(|| {
                self.meta_err(key, &format!("is {}, expected an array", v.summary()))
            }),
        }
    }
}

/// A whole GGUF file held in memory: the header plus access to each tensor's bytes.
#[derive(Debug, Clone)]
pub struct Gguf<'a> {
    /// The parsed header.
    pub header: Header,
    bytes: &'a [u8],
    name: String,
}

impl<'a> Gguf<'a> {
    /// Parses the header of `bytes` (a whole file) and checks that the file
    /// holds every tensor's data. `name` is used in error messages.
    pub fn parse(bytes: &'a [u8], name: &str) -> Result<Self> {
        let header = Header::read(&mut &bytes[..], name)?;
        let need = header.data_offset.saturating_add(header.data_len());
        if (bytes.len() as u64) < need {
            let short = header
                .tensors
                .iter()
                .find(|t| {
                    header
                        .data_offset
                        .saturating_add(t.offset)
                        .saturating_add(t.byte_len())
                        > bytes.len() as u64
                })
                .map(|t| format!(" (tensor '{}' is cut off)", t.name))
                .unwrap_or_default();
            return Err(Error::Format {
                format: format!("GGUF {name}"),
                detail: format!(
                    "file is truncated: {} bytes, but its tensors need {need}{short}",
                    bytes.len()
                ),
            });
        }
        Ok(Gguf {
            header,
            bytes,
            name: name.to_string(),
        })
    }

    /// The file name given to [`Gguf::parse`].
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A tensor's directory entry and raw bytes.
    pub fn tensor(&self, name: &str) -> Result<(&TensorInfo, &'a [u8])> {
        let info = self.header.tensor(name).ok_or_else(|| Error::Format {
            format: format!("GGUF {}", self.name),
            detail: format!("tensor '{name}' is missing"),
        })?;
        let start = self.header.data_offset.saturating_add(info.offset);
        let end = start.saturating_add(info.byte_len());
        let data = usize::try_from(start)
            .ok()
            .zip(usize::try_from(end).ok())
            .and_then(|(s, e)| self.bytes.get(s..e))
            .ok_or_else(|| Error::Format {
                format: format!("GGUF {}", self.name),
                detail: format!(
                    "tensor '{name}' (bytes {start}..{end}) lies past the end of the file ({} bytes)",
                    self.bytes.len()
                ),
            })?;
        Ok((info, data))
    }

    /// A tensor's values as f32 and its shape outermost-first (PyTorch order,
    /// the reverse of GGUF's dimension list).
    pub fn dequantize(&self, name: &str) -> Result<(Vec<f32>, Vec<usize>)> {
        let (info, data) = self.tensor(name)?;
        let what = format!("GGUF {} tensor '{name}'", self.name);
        let values =
            crate::quant::dequantize(info.ggml_type, data, info.elements() as usize, &what)?;
        Ok((
            values,
            info.dims.iter().rev().map(|&d| d as usize).collect(),
        ))
    }
}

/// One tensor to write into a GGUF file.
#[derive(Debug, Clone)]
pub struct TensorData<'a> {
    /// Tensor name.
    pub name: String,
    /// Element type of `data`.
    pub ggml_type: GgmlType,
    /// Dimensions in ggml order (`dims[0]` is the row length).
    pub dims: Vec<u64>,
    /// The packed bytes (blocks for quantized types).
    pub data: std::borrow::Cow<'a, [u8]>,
}

/// The GGUF type id of a metadata value.
fn value_type_id(v: &Value) -> u32 {
    match v {
        Value::U8(_) => 0,
        Value::I8(_) => 1,
        Value::U16(_) => 2,
        Value::I16(_) => 3,
        Value::U32(_) => 4,
        Value::I32(_) => 5,
        Value::F32(_) => 6,
        Value::Bool(_) => 7,
        Value::String(_) => 8,
        Value::Array(_) => 9,
        Value::U64(_) => 10,
        Value::I64(_) => 11,
        Value::F64(_) => 12,
    }
}

fn put_string(out: &mut Vec<u8>, s: &str) {
    out.extend((s.len() as u64).to_le_bytes());
    out.extend(s.as_bytes());
}

fn put_value(out: &mut Vec<u8>, key: &str, v: &Value) -> Result<()> {
    match v {
        Value::U8(x) => out.extend(x.to_le_bytes()),
        Value::I8(x) => out.extend(x.to_le_bytes()),
        Value::U16(x) => out.extend(x.to_le_bytes()),
        Value::I16(x) => out.extend(x.to_le_bytes()),
        Value::U32(x) => out.extend(x.to_le_bytes()),
        Value::I32(x) => out.extend(x.to_le_bytes()),
        Value::F32(x) => out.extend(x.to_le_bytes()),
        Value::Bool(x) => out.push(u8::from(*x)),
        Value::String(s) => put_string(out, s),
        Value::U64(x) => out.extend(x.to_le_bytes()),
        Value::I64(x) => out.extend(x.to_le_bytes()),
        Value::F64(x) => out.extend(x.to_le_bytes()),
        Value::Array(items) => {
            // An empty array needs some element type; llama.cpp's writer uses the
            // declared one, and readers accept any, so u8 (0) is as good as any.
            let elem = items.first().map(value_type_id).unwrap_or(0);
            if elem == 9 {
                return Err(Error::Input(format!(
                    "metadata '{key}': arrays of arrays cannot be written to GGUF"
                )));
            }
            if let Some(bad) = items.iter().find(|i| value_type_id(i) != elem) {
                return Err(Error::Input(format!(
                    "metadata '{key}': array mixes element types ({} among {})",
                    bad.summary(),
                    items.first().map(Value::summary).unwrap_or_default()
                )));
            }
            out.extend(elem.to_le_bytes());
            out.extend((items.len() as u64).to_le_bytes());
            for i in items {
                put_value(out, key, i)?;
            }
        }
    }
    Ok(())
}

/// Writes a GGUF v3 file: header, metadata in the given order, tensor
/// directory, then each tensor's data padded to `alignment` (llama.cpp's
/// layout; `general.alignment` is written when it is not the default 32).
/// Every tensor's byte count is checked against its type and dimensions first.
pub fn write<W: std::io::Write>(
    w: &mut W,
    metadata: &[(String, Value)],
    tensors: &[TensorData<'_>],
    alignment: u64,
) -> Result<()> {
    if alignment == 0 || !alignment.is_power_of_two() {
        return Err(Error::Input(format!(
            "GGUF alignment must be a power of two, got {alignment}"
        )));
    }
    let mut meta: Vec<(String, Value)> = metadata
        .iter()
        .filter(|(k, _)| k != "general.alignment")
        .cloned()
        .collect();
    if alignment != DEFAULT_ALIGNMENT {
        meta.push(("general.alignment".into(), Value::U32(alignment as u32)));
    }
    let mut head = Vec::new();
    head.extend(MAGIC);
    head.extend(3u32.to_le_bytes());
    head.extend((tensors.len() as u64).to_le_bytes());
    head.extend((meta.len() as u64).to_le_bytes());
    for (k, v) in &meta {
        put_string(&mut head, k);
        head.extend(value_type_id(v).to_le_bytes());
        put_value(&mut head, k, v)?;
    }
    let mut offset = 0u64;
    let mut offsets = Vec::with_capacity(tensors.len());
    for t in tensors {
        if t.dims.is_empty() || t.dims.len() > MAX_DIMS as usize {
            return Err(Error::Input(format!(
                "tensor '{}' has {} dimensions (1..={MAX_DIMS} allowed)",
                t.name,
                t.dims.len()
            )));
        }
        let info = TensorInfo {
            name: t.name.clone(),
            dims: t.dims.clone(),
            ggml_type: t.ggml_type,
            offset,
        };
        if !info.elements().is_multiple_of(t.ggml_type.block().0)
            || info.byte_len() != t.data.len() as u64
        {
            return Err(Error::Shape {
                op: "gguf write",
                detail: format!(
                    "tensor '{}' has {} bytes, but {} dims {:?} need {}",
                    t.name,
                    t.data.len(),
                    t.ggml_type.name(),
                    t.dims,
                    info.byte_len()
                ),
            });
        }
        put_string(&mut head, &t.name);
        head.extend((t.dims.len() as u32).to_le_bytes());
        for d in &t.dims {
            head.extend(d.to_le_bytes());
        }
        head.extend(t.ggml_type.id().to_le_bytes());
        head.extend(offset.to_le_bytes());
        offsets.push(offset);
        offset = (offset + t.data.len() as u64).div_ceil(alignment) * alignment;
    }
    let pad = |len: u64| vec![0u8; (len.div_ceil(alignment) * alignment - len) as usize];
    head.extend(pad(head.len() as u64));
    let io = |e| Error::Io {
        context: "writing GGUF".into(),
        source: e,
    };
    w.write_all(&head).map_err(io)?;
    for t in tensors {
        w.write_all(&t.data).map_err(io)?;
        w.write_all(&pad(t.data.len() as u64)).map_err(io)?;
    }
    Ok(())
}

struct Parser<'a, R> {
    r: &'a mut R,
    pos: u64,
    name: &'a str,
}

impl<R: Read> Parser<'_, R> {
    fn err(&self, detail: String) -> Error {
        Error::Format {
            format: format!("GGUF {}", self.name),
            detail: format!("{detail} (at byte {})", self.pos),
        }
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        let mut buf = [0u8; N];
        self.r.read_exact(&mut buf).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                self.err(format!("file ends while reading {what}"))
            } else {
                Error::Io {
                    context: format!("GGUF {}: reading {what}", self.name),
                    source: e,
                }
            }
        })?;
        self.pos += N as u64;
        Ok(buf)
    }

    fn u32(&mut self, what: &str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    fn count(&mut self, what: &str) -> Result<u64> {
        let n = self.u64(what)?;
        if n > MAX_ENTRIES {
            return Err(self.err(format!("{what} {n} is implausibly large (corrupt header?)")));
        }
        Ok(n)
    }

    fn string(&mut self, what: &str) -> Result<String> {
        let len = self.u64(&format!("length of {what}"))?;
        if len > MAX_STRING {
            return Err(self.err(format!(
                "{what} has length {len}, more than the {MAX_STRING} allowed (corrupt header?)"
            )));
        }
        let mut buf = vec![0u8; len as usize];
        self.r
            .read_exact(&mut buf)
            .map_err(|_| self.err(format!("file ends inside {what}")))?;
        self.pos += len;
        String::from_utf8(buf).map_err(|_| self.err(format!("{what} is not valid UTF-8")))
    }

    fn value(&mut self, ty: u32, key: &str) -> Result<Value> {
        Ok(match ty {
            0 => Value::U8(u8::from_le_bytes(self.array(key)?)),
            1 => Value::I8(i8::from_le_bytes(self.array(key)?)),
            2 => Value::U16(u16::from_le_bytes(self.array(key)?)),
            3 => Value::I16(i16::from_le_bytes(self.array(key)?)),
            4 => Value::U32(self.u32(key)?),
            5 => Value::I32(i32::from_le_bytes(self.array(key)?)),
            6 => Value::F32(f32::from_le_bytes(self.array(key)?)),
            7 => match u8::from_le_bytes(self.array(key)?) {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                b => {
                    return Err(self.err(format!("metadata '{key}' is a bool with byte value {b}")));
                }
            },
            8 => Value::String(self.string(&format!("value of metadata '{key}'"))?),
            9 => {
                let elem_ty = self.u32(&format!("element type of metadata array '{key}'"))?;
                if elem_ty == 9 {
                    return Err(self.err(format!(
                        "metadata '{key}' is an array of arrays, which GGUF readers do not support"
                    )));
                }
                let n = self.u64(&format!("length of metadata array '{key}'"))?;
                if n > MAX_ARRAY {
                    return Err(self.err(format!(
                        "metadata array '{key}' has {n} elements (corrupt header?)"
                    )));
                }
                let mut items = Vec::with_capacity(n.min(1 << 16) as usize);
                for _ in 0..n {
                    items.push(self.value(elem_ty, key)?);
                }
                Value::Array(items)
            }
            10 => Value::U64(self.u64(key)?),
            11 => Value::I64(i64::from_le_bytes(self.array(key)?)),
            12 => Value::F64(f64::from_le_bytes(self.array(key)?)),
            other => {
                return Err(self.err(format!("metadata '{key}' has unknown value type {other}")));
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a minimal GGUF header by hand, the way llama.cpp's writer lays it out.
    fn tiny_gguf() -> Vec<u8> {
        let mut b = Vec::new();
        let s = |b: &mut Vec<u8>, s: &str| {
            b.extend((s.len() as u64).to_le_bytes());
            b.extend(s.as_bytes());
        };
        b.extend(b"GGUF");
        b.extend(3u32.to_le_bytes());
        b.extend(2u64.to_le_bytes()); // tensors
        b.extend(3u64.to_le_bytes()); // kv
        s(&mut b, "general.architecture");
        b.extend(8u32.to_le_bytes());
        s(&mut b, "llama");
        s(&mut b, "llama.block_count");
        b.extend(4u32.to_le_bytes());
        b.extend(30u32.to_le_bytes());
        s(&mut b, "tokenizer.ggml.tokens");
        b.extend(9u32.to_le_bytes());
        b.extend(8u32.to_le_bytes());
        b.extend(2u64.to_le_bytes());
        s(&mut b, "<s>");
        s(&mut b, "hello");
        s(&mut b, "token_embd.weight");
        b.extend(2u32.to_le_bytes());
        b.extend(64u64.to_le_bytes());
        b.extend(2u64.to_le_bytes());
        b.extend(8u32.to_le_bytes()); // Q8_0
        b.extend(0u64.to_le_bytes());
        s(&mut b, "output_norm.weight");
        b.extend(1u32.to_le_bytes());
        b.extend(64u64.to_le_bytes());
        b.extend(0u32.to_le_bytes()); // F32
        b.extend(160u64.to_le_bytes()); // 4 Q8_0 blocks = 136 bytes, padded to 160
        b
    }

    #[test]
    fn parses_hand_built_header() {
        let bytes = tiny_gguf();
        let h = Header::read(&mut bytes.as_slice(), "tiny.gguf").unwrap();
        assert_eq!(h.version, 3);
        assert_eq!(h.architecture(), Some("llama"));
        assert_eq!(h.get("llama.block_count").and_then(Value::as_u64), Some(30));
        let toks = h
            .get("tokenizer.ggml.tokens")
            .and_then(Value::as_array)
            .unwrap();
        assert_eq!(toks[1].as_str(), Some("hello"));
        let emb = h.tensor("token_embd.weight").unwrap();
        assert_eq!(emb.ggml_type, GgmlType::Q8_0);
        assert_eq!(emb.byte_len(), 4 * 34);
        assert_eq!(h.data_len(), 160 + 256);
        assert_eq!(h.data_offset % 32, 0);
        assert!(h.data_offset >= bytes.len() as u64);
    }

    #[test]
    fn truncation_is_a_clear_error() {
        let bytes = tiny_gguf();
        for cut in [3, 10, 30, bytes.len() - 5] {
            let err = Header::read(&mut &bytes[..cut], "cut.gguf")
                .unwrap_err()
                .to_string();
            assert!(
                err.starts_with("GGUF cut.gguf: file ends"),
                "cut at {cut}: {err}"
            );
        }
    }

    #[test]
    fn bad_magic_and_version_and_type_are_named() {
        let mut bytes = tiny_gguf();
        bytes[0] = b'X';
        let err = Header::read(&mut bytes.as_slice(), "x.gguf")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a GGUF file"), "{err}");

        let mut bytes = tiny_gguf();
        bytes[4] = 9;
        let err = Header::read(&mut bytes.as_slice(), "v.gguf")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unsupported GGUF version 9"), "{err}");

        let mut bytes = tiny_gguf();
        let n = bytes.len();
        // The type id of the last tensor sits 12 bytes from the end (u32 type + u64 offset).
        bytes[n - 12] = 77;
        let err = Header::read(&mut bytes.as_slice(), "t.gguf")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("tensor 'output_norm.weight' has unknown ggml type id 77"),
            "{err}"
        );
    }

    #[test]
    fn huge_counts_are_rejected_not_allocated() {
        let mut bytes = tiny_gguf();
        bytes[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
        let err = Header::read(&mut bytes.as_slice(), "big.gguf")
            .unwrap_err()
            .to_string();
        assert!(err.contains("tensor count"), "{err}");
    }

    #[test]
    fn type_ids_round_trip() {
        for id in 0..40 {
            if let Some(t) = GgmlType::from_id(id) {
                assert_eq!(t.id(), id);
            }
        }
    }

    #[test]
    fn written_files_read_back_with_data() {
        let q = crate::quant::quantize(GgmlType::Q8_0, &crate::util::pseudo_random(64, 1), "w")
            .unwrap();
        let f: Vec<u8> = [1.0f32, 2.0, 3.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let meta = vec![
            (
                "general.architecture".to_string(),
                Value::String("llama".into()),
            ),
            ("llama.rope.freq_base".to_string(), Value::F32(10000.0)),
            (
                "tokenizer.ggml.tokens".to_string(),
                Value::Array(vec![Value::String("a".into()), Value::String("b".into())]),
            ),
        ];
        let tensors = vec![
            TensorData {
                name: "w".into(),
                ggml_type: GgmlType::Q8_0,
                dims: vec![32, 2],
                data: q.clone().into(),
            },
            TensorData {
                name: "v".into(),
                ggml_type: GgmlType::F32,
                dims: vec![3],
                data: f.into(),
            },
        ];
        let mut out = Vec::new();
        write(&mut out, &meta, &tensors, 32).unwrap();
        let g = Gguf::parse(&out, "mem.gguf").unwrap();
        assert_eq!(g.header.metadata, meta);
        assert_eq!(g.tensor("w").unwrap().1, &q[..]);
        assert_eq!(g.dequantize("v").unwrap(), (vec![1.0, 2.0, 3.0], vec![3]));
        assert_eq!(
            g.header.require_str("general.architecture").unwrap(),
            "llama"
        );
        let e = g.header.require_u64("llama.block_count").unwrap_err();
        assert!(
            e.to_string().contains("'llama.block_count' is missing"),
            "{e}"
        );
        // Truncated data is named, with the first tensor that is cut off.
        let e = Gguf::parse(&out[..out.len() - 40], "cut.gguf").unwrap_err();
        assert!(e.to_string().contains("file is truncated"), "{e}");
        assert!(e.to_string().contains("tensor 'v' is cut off"), "{e}");
        // A wrong byte count is refused before anything is written.
        let mut bad = tensors.clone();
        bad[1].dims = vec![4];
        let mut sink = Vec::new();
        let e = write(&mut sink, &meta, &bad, 32).unwrap_err();
        assert!(e.to_string().contains("tensor 'v' has 12 bytes"), "{e}");
        assert!(sink.is_empty());
    }

    #[test]
    fn crafted_counts_and_offsets_are_errors_not_allocations_or_wraps() {
        // A header claiming 2^24 metadata entries but holding none: an error
        // at the first missing key (and no 2^24-entry reservation first).
        let mut b = MAGIC.to_vec();
        b.extend(3u32.to_le_bytes());
        b.extend(0u64.to_le_bytes());
        b.extend((1u64 << 24).to_le_bytes());
        let err = Header::read(&mut b.as_slice(), "many.gguf")
            .unwrap_err()
            .to_string();
        assert!(err.contains("many.gguf: file ends"), "{err}");
        // One F32 tensor whose offset is within 64 bytes of 2^64: the end
        // would wrap to a small number and pass the size check.
        let mut b = MAGIC.to_vec();
        b.extend(3u32.to_le_bytes());
        b.extend(1u64.to_le_bytes());
        b.extend(0u64.to_le_bytes());
        b.extend(1u64.to_le_bytes());
        b.extend(b"w");
        b.extend(1u32.to_le_bytes());
        b.extend(16u64.to_le_bytes());
        b.extend(0u32.to_le_bytes());
        b.extend((u64::MAX - 31).to_le_bytes());
        b.resize(b.len() + 128, 0);
        let err = Gguf::parse(&b, "wrap.gguf").unwrap_err().to_string();
        assert!(
            err.contains("tensor 'w'") && err.contains("ends past 2^64"),
            "{err}"
        );
    }
}
