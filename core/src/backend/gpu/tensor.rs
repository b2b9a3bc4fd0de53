//! GPU tensors and quantized weight matrices: storage from the buffer pool,
//! row ranges of matrices split over the storage-binding limit.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Element type of a GPU tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DType {
    F32,
    U32,
    /// Weights only ([`Backend::weight_f32`] on an adapter with shader-f16).
    F16,
}

/// Free buffers by size class.
#[derive(Default)]
pub(super) struct Pool {
    pub(super) free: Mutex<HashMap<u64, Vec<wgpu::Buffer>>>,
}

/// A buffer that returns to its pool when dropped (pooled outputs) or is
/// freed (uploads).
pub(super) struct Storage {
    pub(super) buf: Option<wgpu::Buffer>,
    pub(super) class: u64,
    pub(super) pool: Option<Arc<Pool>>,
}

impl Drop for Storage {
    fn drop(&mut self) {
        if let (Some(pool), Some(buf)) = (&self.pool, self.buf.take()) {
            pool.free
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(self.class)
                .or_default()
                .push(buf);
        }
    }
}

impl Storage {
    pub(super) fn buffer(&self) -> &wgpu::Buffer {
        // Only `drop` takes the buffer out, so it is always here while the
        // storage is reachable.
        #[allow(clippy::expect_used)]
        self.buf
            .as_ref()
            .expect("storage buffer present until drop")
    }
}

/// A tensor on the GPU: a (shared) buffer, its shape and element type.
#[derive(Clone)]
pub struct GpuTensor {
    pub(super) storage: Arc<Storage>,
    pub(super) shape: Vec<usize>,
    pub(super) dtype: DType,
    /// For id tensors uploaded from the host: the largest id (checked by
    /// `embedding` without reading the GPU).
    pub(super) max_id: Option<u32>,
    /// A weight matrix over the storage-binding limit: its row ranges, each
    /// its own buffer (`storage` is then the first one's). Only `linear`,
    /// `embedding` and reads take such a tensor; every other op refuses it.
    pub(super) parts: Option<Arc<Vec<GpuTensor>>>,
}

impl std::fmt::Debug for GpuTensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GpuTensor({:?}, {:?}", self.dtype, self.shape)?;
        if let Some(parts) = &self.parts {
            write!(f, ", split into {} row ranges", parts.len())?;
        }
        write!(f, ")")
    }
}

impl GpuTensor {
    pub(super) fn len(&self) -> usize {
        self.shape.iter().product()
    }
    pub(super) fn buf(&self) -> &wgpu::Buffer {
        self.storage.buffer()
    }
    /// The row ranges of a weight matrix: itself when it is not split.
    pub(super) fn row_parts(&self) -> Vec<GpuTensor> {
        match &self.parts {
            Some(p) => p.to_vec(),
            None => vec![self.clone()],
        }
    }
}

/// A weight matrix for [`Backend::qlinear`]. Q8_0, Q4_0 and Q4_1 stay in
/// their block format on the GPU (repacked into aligned scale / min / quant
/// arrays, `shaders/qmatmul.wgsl` dequantizes in registers); other block
/// types are expanded to f32 on upload.
#[derive(Debug, Clone)]
pub struct GpuQMatrix {
    pub(super) kind: QKind,
    pub(super) rows: usize,
    pub(super) cols: usize,
}

#[derive(Debug, Clone)]
pub(super) enum QKind {
    /// `ty` is the qmatmul.wgsl type code; `parts` are row ranges, more than
    /// one when the matrix is over the storage-binding limit.
    Blocks {
        ty: u32,
        parts: Vec<QPart>,
    },
    Dense(GpuTensor),
}

/// Rows `first .. first + rows` of a quantized matrix, repacked.
#[derive(Debug, Clone)]
pub(super) struct QPart {
    pub(super) first: usize,
    pub(super) rows: usize,
    pub(super) scales: GpuTensor,
    pub(super) mins: GpuTensor,
    pub(super) quants: GpuTensor,
}
