//! Shared dispatch helpers: workgroup counts, rank-4 padding, and the
//! uniform parameter blocks of the kernels (`#[repr(C)]`, 16-byte multiples).

use crate::error::{Error, Result};

/// Up to this many rows, `A · Bᵀ` runs as matrix-vector products
/// (`shaders/matvec_f32.wgsl`); from here on the tiled kernel wins.
pub(super) const MATVEC_MAX_ROWS: usize = 4;

/// Input rows per workgroup of `shaders/qmatmul.wgsl`.
pub(super) const QMATMUL_ROWS: usize = 8;

/// Query rows per workgroup of `shaders/attention.wgsl`, and the largest
/// head dimension it takes (larger heads use the composed ops).
pub(super) const ATTN_ROWS: usize = 8;
pub(super) const ATTN_MAX_D: usize = 128;

/// Groups for `n` one-element-per-invocation items (256 per group), spread
/// over two dimensions to stay under 65,535 groups per dimension.
pub(super) fn groups_1d(n: usize, per_group: usize) -> (u32, u32, u32) {
    let g = n.div_ceil(per_group).max(1);
    let x = g.min(65_535);
    (x as u32, g.div_ceil(x) as u32, 1)
}

pub(super) fn contiguous_strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// Pads a shape/stride list to rank 4 (leading 1s / 0 strides).
pub(super) fn pad4(op: &'static str, v: &[usize], fill: usize) -> Result<[u32; 4]> {
    if v.len() > 4 {
        return Err(Error::Shape {
            op,
            detail: format!("rank {} is above the GPU kernels' 4", v.len()),
        });
    }
    let mut out = [fill as u32; 4];
    for (i, &x) in v.iter().enumerate() {
        out[4 - v.len() + i] = u32::try_from(x).map_err(|_| Error::Shape {
            op,
            detail: format!("{x} exceeds u32"),
        })?;
    }
    Ok(out)
}

pub(super) fn u32_of(op: &'static str, v: usize) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::Shape {
        op,
        detail: format!("{v} exceeds u32"),
    })
}

pub(super) fn bytes_of<T: bytemuck::Pod>(v: &T) -> Vec<u8> {
    bytemuck::bytes_of(v).to_vec()
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(super) struct Shape4Params {
    pub(super) shape: [u32; 4],
    pub(super) s1: [u32; 4],
    pub(super) s2: [u32; 4],
    pub(super) n: u32,
    pub(super) a: u32,
    pub(super) b: u32,
    pub(super) c: u32,
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(super) struct Quad {
    pub(super) a: u32,
    pub(super) b: u32,
    pub(super) c: u32,
    pub(super) d: u32,
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(super) struct QuadF {
    pub(super) a: u32,
    pub(super) b: u32,
    pub(super) f: f32,
    pub(super) d: u32,
}

/// Uniforms of `shaders/qmatmul.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(super) struct QMatmulParams {
    pub(super) n: u32,
    pub(super) k: u32,
    pub(super) ty: u32,
    pub(super) rows: u32,
    pub(super) out_stride: u32,
    pub(super) out_offset: u32,
    pub(super) pad: [u32; 2],
}

/// Uniforms of `shaders/attention.wgsl` (element strides; see its header).
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(super) struct AttentionParams {
    pub(super) t: u32,
    pub(super) keys: u32,
    pub(super) d: u32,
    pub(super) rep: u32,
    pub(super) heads: u32,
    pub(super) causal: u32,
    pub(super) scale: f32,
    pub(super) q_off: u32,
    pub(super) q_b: u32,
    pub(super) q_h: u32,
    pub(super) q_t: u32,
    pub(super) k_off: u32,
    pub(super) k_b: u32,
    pub(super) k_h: u32,
    pub(super) k_t: u32,
    pub(super) v_off: u32,
}

pub(super) fn check_count(op: &'static str, len: usize, shape: &[usize]) -> Result<()> {
    let want: usize = shape.iter().product();
    if len != want {
        return Err(Error::Shape {
            op,
            detail: format!("{len} values do not fill shape {shape:?} ({want} elements)"),
        });
    }
    Ok(())
}
