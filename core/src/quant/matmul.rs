//! Matrix products against 4- and 8-bit block weights with f32 activations.
//!
//! ggml (and candle's port of it) quantizes the activations to 8 bits before
//! the dot product. That is fast but not exact: on SmolLM2-135M it flips the
//! first answer token of "What is the capital of France?" (top-2 gap ≈ 0.08).
//! These kernels keep activations in f32 and only the weights quantized, so
//! results equal an f32 matmul against the dequantized weights up to
//! summation order.
//!
//! At load time blocks are repacked into struct-of-arrays form: per-block
//! scale `d` and offset `m` as f32 (Q4_0's `−8·d` becomes its offset), and
//! the quants in ggml's in-block order. The 4-bit dot product of one block is
//! `d·Σ qᵢxᵢ + m·Σ xᵢ`, with `Σ xᵢ` computed once per input row.
//!
//! The inner loops are plain Rust shaped for auto-vectorisation; on x86_64
//! they are compiled a second time with AVX2+FMA and picked at run time, and
//! wasm32 builds get `simd128` from the build flags. Rows are split over
//! threads with rayon (one thread in the browser).

// Block and row offsets come from the matrix shape checked when the weights
// are packed (`PackedMatrix::new`) and from the activation width checked on
// each call; indexing inside the kernels is bounded by those checks.
#![allow(clippy::indexing_slicing)]

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::quant::GgmlType;

const QK: usize = 32;

/// A weight matrix repacked for the f32-activation kernels.
#[derive(Debug, Clone)]
pub struct PackedMatrix {
    rows: usize,
    cols: usize,
    kind: Packed,
}

#[derive(Debug, Clone)]
enum Packed {
    /// `x = d·q + m`, q in 0..16; two quants per byte (low nibbles = first 16 of a block).
    Q4 {
        d: Vec<f32>,
        m: Vec<f32>,
        q: Vec<u8>,
    },
    /// `x = d·q`, q an i8.
    Q8 { d: Vec<f32>, q: Vec<i8> },
}

fn f16_at(b: &[u8], i: usize) -> f32 {
    half::f16::from_le_bytes([b[i], b[i + 1]]).to_f32()
}

impl PackedMatrix {
    /// Whether `ty` has a kernel here: Q4_0, Q4_1, Q8_0, and two types that
    /// repack exactly into them — Q4_K (each 32-value sub-block is a 4-bit
    /// block with scale `d·sc` and offset `−dmin·m`) and Q5_0 (5-bit values
    /// minus 16 fit an i8).
    pub fn supports(ty: GgmlType) -> bool {
        matches!(
            ty,
            GgmlType::Q4_0 | GgmlType::Q4_1 | GgmlType::Q8_0 | GgmlType::Q4K | GgmlType::Q5_0
        )
    }

    /// Repacks `[rows, cols]` GGUF blocks of type `ty`. `name` is used in errors.
    pub fn new(ty: GgmlType, data: &[u8], rows: usize, cols: usize, name: &str) -> Result<Self> {
        let want = crate::quant::byte_len(ty, rows * cols, name)?;
        if !cols.is_multiple_of(QK) || data.len() != want || !Self::supports(ty) {
            return Err(Error::Shape {
                op: "qmatrix",
                detail: format!(
                    "{name}: {} bytes of {} for [{rows}, {cols}] (expected {want}, rows a multiple of {QK})",
                    data.len(),
                    ty.name()
                ),
            });
        }
        let blocks = rows * cols / QK;
        let kind = match ty {
            GgmlType::Q4K => {
                let mut d = Vec::with_capacity(blocks);
                let mut m = Vec::with_capacity(blocks);
                let mut q = Vec::with_capacity(rows * cols / 2);
                for b in data.chunks_exact(144) {
                    let (dd, dmin) = (f16_at(b, 0), f16_at(b, 2));
                    let scales = &b[4..16];
                    let qs = &b[16..144];
                    // ggml's get_scale_min_k4: 6-bit scale and min of sub-block j.
                    let scale_min = |j: usize| -> (u8, u8) {
                        if j < 4 {
                            (scales[j] & 63, scales[j + 4] & 63)
                        } else {
                            (
                                (scales[j + 4] & 0x0F) | ((scales[j - 4] >> 6) << 4),
                                (scales[j + 4] >> 4) | ((scales[j] >> 6) << 4),
                            )
                        }
                    };
                    // 64 values per 32 bytes: low nibbles, then high nibbles.
                    for (c, chunk) in qs.chunks_exact(32).enumerate() {
                        for (half, shift) in [(0usize, 0u8), (1, 4)] {
                            let (sc, mn) = scale_min(2 * c + half);
                            d.push(dd * f32::from(sc));
                            m.push(-(dmin * f32::from(mn)));
                            let v = |l: usize| (chunk[l] >> shift) & 0x0F;
                            q.extend((0..16).map(|j| v(j) | (v(j + 16) << 4)));
                        }
                    }
                }
                Packed::Q4 { d, m, q }
            }
            GgmlType::Q5_0 => {
                let mut d = Vec::with_capacity(blocks);
                let mut q = Vec::with_capacity(rows * cols);
                for b in data.chunks_exact(22) {
                    d.push(f16_at(b, 0));
                    let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
                    let qs = &b[6..22];
                    let hi = |bit: usize| (((qh >> bit) & 1) << 4) as u8;
                    q.extend((0..16).map(|j| ((qs[j] & 0x0F) | hi(j)) as i8 - 16));
                    q.extend((0..16).map(|j| ((qs[j] >> 4) | hi(j + 12 + 4)) as i8 - 16));
                }
                Packed::Q8 { d, q }
            }
            GgmlType::Q8_0 => {
                let mut d = Vec::with_capacity(blocks);
                let mut q = Vec::with_capacity(rows * cols);
                for b in data.chunks_exact(34) {
                    d.push(f16_at(b, 0));
                    q.extend(b[2..].iter().map(|&v| v as i8));
                }
                Packed::Q8 { d, q }
            }
            GgmlType::Q4_0 | GgmlType::Q4_1 => {
                let size = if ty == GgmlType::Q4_0 { 18 } else { 20 };
                let mut d = Vec::with_capacity(blocks);
                let mut m = Vec::with_capacity(blocks);
                let mut q = Vec::with_capacity(rows * cols / 2);
                for b in data.chunks_exact(size) {
                    let scale = f16_at(b, 0);
                    d.push(scale);
                    if ty == GgmlType::Q4_0 {
                        m.push(-8.0 * scale);
                        q.extend_from_slice(&b[2..18]);
                    } else {
                        m.push(f16_at(b, 2));
                        q.extend_from_slice(&b[4..20]);
                    }
                }
                Packed::Q4 { d, m, q }
            }
            _ => unreachable!("checked by supports()"),
        };
        Ok(PackedMatrix { rows, cols, kind })
    }

    /// `[rows, cols]`.
    pub fn shape(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    /// The whole matrix as f32, row-major `[rows, cols]` (for prefill, where
    /// one f32 GEMM over many tokens beats per-token dot products).
    pub fn dequantize(&self) -> Vec<f32> {
        let nb = self.cols / QK;
        let mut out = vec![0f32; self.rows * self.cols];
        out.par_chunks_mut(self.cols)
            .enumerate()
            .for_each(|(r, row)| {
                for (b, o) in row.chunks_exact_mut(QK).enumerate() {
                    let i = r * nb + b;
                    match &self.kind {
                        Packed::Q4 { d, m, q } => {
                            let qb = &q[i * QK / 2..(i + 1) * QK / 2];
                            for j in 0..QK / 2 {
                                o[j] = d[i] * f32::from(qb[j] & 0x0F) + m[i];
                                o[j + QK / 2] = d[i] * f32::from(qb[j] >> 4) + m[i];
                            }
                        }
                        Packed::Q8 { d, q } => {
                            for (j, v) in o.iter_mut().enumerate() {
                                *v = d[i] * f32::from(q[i * QK + j]);
                            }
                        }
                    }
                }
            });
        out
    }

    /// `y[n, rows] = x[n, cols] · Wᵀ`.
    pub fn matmul(&self, x: &[f32], n: usize) -> Vec<f32> {
        debug_assert_eq!(x.len(), n * self.cols);
        let nb = self.cols / QK;
        // Per-block input sums for the 4-bit offset term.
        let sums: Vec<f32> = x.chunks_exact(QK).map(|c| c.iter().sum()).collect();
        let mut yt = vec![0f32; self.rows * n];
        let chunk = (self.rows / (4 * rayon::current_num_threads().max(1))).clamp(16, 256);
        let work = |(ci, out): (usize, &mut [f32])| {
            let r0 = ci * chunk;
            let xt = |t: usize| &x[t * self.cols..(t + 1) * self.cols];
            let st = |t: usize| &sums[t * nb..(t + 1) * nb];
            for (i, o) in out.chunks_exact_mut(n).enumerate() {
                let r = r0 + i;
                // Four rows at a time share each decoded weight block.
                let mut t = 0;
                #[cfg(target_arch = "x86_64")]
                if has_avx2() {
                    while t + 4 <= n {
                        let ts = [t, t + 1, t + 2, t + 3];
                        o[t..t + 4].copy_from_slice(&self.row_dot4(r, ts.map(xt), ts.map(st)));
                        t += 4;
                    }
                }
                for (t, slot) in o.iter_mut().enumerate().skip(t) {
                    *slot = self.row_dot(r, xt(t), st(t));
                }
            }
        };
        // Small products stay on this thread: waking workers costs more.
        if self.rows * self.cols * n < crate::util::PARALLEL_MIN_WORK {
            yt.chunks_mut(chunk * n).enumerate().for_each(work);
        } else {
            yt.par_chunks_mut(chunk * n).enumerate().for_each(work);
        }
        // yt is [rows, n]; callers want [n, rows].
        if n == 1 {
            return yt;
        }
        let mut y = vec![0f32; n * self.rows];
        for r in 0..self.rows {
            for t in 0..n {
                y[t * self.rows + r] = yt[r * n + t];
            }
        }
        y
    }

    /// [`Self::row_dot`] of four activation rows (AVX2 only), bitwise equal to four calls.
    #[cfg(target_arch = "x86_64")]
    fn row_dot4(&self, r: usize, x: [&[f32]; 4], sums: [&[f32]; 4]) -> [f32; 4] {
        let nb = self.cols / QK;
        match &self.kind {
            // SAFETY: the caller checked AVX2 and FMA; slices hold whole blocks.
            Packed::Q4 { d, m, q } => unsafe {
                dot_q4_avx2_x4(
                    &d[r * nb..(r + 1) * nb],
                    &m[r * nb..(r + 1) * nb],
                    &q[r * self.cols / 2..(r + 1) * self.cols / 2],
                    x,
                    sums,
                )
            },
            // SAFETY: as above.
            Packed::Q8 { d, q } => unsafe {
                dot_q8_avx2_x4(
                    &d[r * nb..(r + 1) * nb],
                    &q[r * self.cols..(r + 1) * self.cols],
                    x,
                )
            },
        }
    }

    fn row_dot(&self, r: usize, x: &[f32], sums: &[f32]) -> f32 {
        let nb = self.cols / QK;
        match &self.kind {
            Packed::Q4 { d, m, q } => dot_q4(
                &d[r * nb..(r + 1) * nb],
                &m[r * nb..(r + 1) * nb],
                &q[r * self.cols / 2..(r + 1) * self.cols / 2],
                x,
                sums,
            ),
            Packed::Q8 { d, q } => dot_q8(
                &d[r * nb..(r + 1) * nb],
                &q[r * self.cols..(r + 1) * self.cols],
                x,
            ),
        }
    }
}

#[inline(always)]
fn dot_q4_generic(d: &[f32], m: &[f32], q: &[u8], x: &[f32], sums: &[f32]) -> f32 {
    let mut acc = 0f32;
    for (b, (qb, xb)) in q.chunks_exact(QK / 2).zip(x.chunks_exact(QK)).enumerate() {
        let mut s = [0f32; QK / 2];
        for j in 0..QK / 2 {
            s[j] = f32::from(qb[j] & 0x0F) * xb[j] + f32::from(qb[j] >> 4) * xb[j + QK / 2];
        }
        acc += d[b] * s.iter().sum::<f32>() + m[b] * sums[b];
    }
    acc
}

#[inline(always)]
fn dot_q8_generic(d: &[f32], q: &[i8], x: &[f32]) -> f32 {
    let mut acc = 0f32;
    for (b, (qb, xb)) in q.chunks_exact(QK).zip(x.chunks_exact(QK)).enumerate() {
        let mut s = [0f32; 8];
        for j in 0..QK {
            s[j % 8] += f32::from(qb[j]) * xb[j];
        }
        acc += d[b] * s.iter().sum::<f32>();
    }
    acc
}

/// One row of 4-bit blocks against f32 activations, 8 lanes at a time.
///
/// # Safety
/// The CPU must support AVX2 and FMA; `q` holds 16 bytes per block of `d`,
/// `x` 32 values per block.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_q4_avx2(d: &[f32], m: &[f32], q: &[u8], x: &[f32], sums: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    debug_assert!(q.len() == d.len() * 16 && x.len() == d.len() * QK);
    let mask = _mm_set1_epi8(0x0F);
    let mut acc = _mm256_setzero_ps();
    let mut acc_m = 0f32;
    for b in 0..d.len() {
        // SAFETY: bounds as documented; unaligned loads throughout.
        unsafe {
            let qb = _mm_loadu_si128(q.as_ptr().add(b * 16) as *const __m128i);
            let lo = _mm_and_si128(qb, mask);
            let hi = _mm_and_si128(_mm_srli_epi16(qb, 4), mask);
            let xp = x.as_ptr().add(b * QK);
            let f = |v: __m128i| _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(v));
            let mut s = _mm256_mul_ps(f(lo), _mm256_loadu_ps(xp));
            s = _mm256_fmadd_ps(f(_mm_srli_si128(lo, 8)), _mm256_loadu_ps(xp.add(8)), s);
            s = _mm256_fmadd_ps(f(hi), _mm256_loadu_ps(xp.add(16)), s);
            s = _mm256_fmadd_ps(f(_mm_srli_si128(hi, 8)), _mm256_loadu_ps(xp.add(24)), s);
            acc = _mm256_fmadd_ps(_mm256_set1_ps(*d.get_unchecked(b)), s, acc);
        }
        acc_m += m[b] * sums[b];
    }
    hsum_avx(acc) + acc_m
}

/// [`dot_q4_avx2`] of one weight row against four activation rows: each
/// block is decoded once, and each row gets exactly the operations (and
/// order) it would get alone, so the results are bitwise equal.
///
/// # Safety
/// As [`dot_q4_avx2`], for each of the four rows.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_q4_avx2_x4(
    d: &[f32],
    m: &[f32],
    q: &[u8],
    x: [&[f32]; 4],
    sums: [&[f32]; 4],
) -> [f32; 4] {
    use std::arch::x86_64::*;
    debug_assert!(q.len() == d.len() * 16 && x.iter().all(|x| x.len() == d.len() * QK));
    let mask = _mm_set1_epi8(0x0F);
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut acc_m = [0f32; 4];
    for b in 0..d.len() {
        // SAFETY: bounds as documented; unaligned loads throughout.
        unsafe {
            let qb = _mm_loadu_si128(q.as_ptr().add(b * 16) as *const __m128i);
            let lo = _mm_and_si128(qb, mask);
            let hi = _mm_and_si128(_mm_srli_epi16(qb, 4), mask);
            let f = |v: __m128i| _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(v));
            let w = [
                f(lo),
                f(_mm_srli_si128(lo, 8)),
                f(hi),
                f(_mm_srli_si128(hi, 8)),
            ];
            let db = _mm256_set1_ps(*d.get_unchecked(b));
            for t in 0..4 {
                let xp = x[t].as_ptr().add(b * QK);
                let mut s = _mm256_mul_ps(w[0], _mm256_loadu_ps(xp));
                s = _mm256_fmadd_ps(w[1], _mm256_loadu_ps(xp.add(8)), s);
                s = _mm256_fmadd_ps(w[2], _mm256_loadu_ps(xp.add(16)), s);
                s = _mm256_fmadd_ps(w[3], _mm256_loadu_ps(xp.add(24)), s);
                acc[t] = _mm256_fmadd_ps(db, s, acc[t]);
            }
        }
        for t in 0..4 {
            acc_m[t] += m[b] * sums[t][b];
        }
    }
    [
        hsum_avx(acc[0]) + acc_m[0],
        hsum_avx(acc[1]) + acc_m[1],
        hsum_avx(acc[2]) + acc_m[2],
        hsum_avx(acc[3]) + acc_m[3],
    ]
}

/// [`dot_q8_avx2`] of one weight row against four activation rows, bitwise
/// equal to four calls (see [`dot_q4_avx2_x4`]).
///
/// # Safety
/// As [`dot_q8_avx2`], for each of the four rows.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_q8_avx2_x4(d: &[f32], q: &[i8], x: [&[f32]; 4]) -> [f32; 4] {
    use std::arch::x86_64::*;
    debug_assert!(q.len() == d.len() * QK && x.iter().all(|x| x.len() == d.len() * QK));
    let mut acc = [_mm256_setzero_ps(); 4];
    for b in 0..d.len() {
        // SAFETY: bounds as documented; unaligned loads throughout.
        unsafe {
            let qp = q.as_ptr().add(b * QK) as *const __m128i;
            let q0 = _mm_loadu_si128(qp);
            let q1 = _mm_loadu_si128(qp.add(1));
            let f = |v: __m128i| _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v));
            let w = [
                f(q0),
                f(_mm_srli_si128(q0, 8)),
                f(q1),
                f(_mm_srli_si128(q1, 8)),
            ];
            let db = _mm256_set1_ps(*d.get_unchecked(b));
            for t in 0..4 {
                let xp = x[t].as_ptr().add(b * QK);
                let mut s = _mm256_mul_ps(w[0], _mm256_loadu_ps(xp));
                s = _mm256_fmadd_ps(w[1], _mm256_loadu_ps(xp.add(8)), s);
                s = _mm256_fmadd_ps(w[2], _mm256_loadu_ps(xp.add(16)), s);
                s = _mm256_fmadd_ps(w[3], _mm256_loadu_ps(xp.add(24)), s);
                acc[t] = _mm256_fmadd_ps(db, s, acc[t]);
            }
        }
    }
    [
        hsum_avx(acc[0]),
        hsum_avx(acc[1]),
        hsum_avx(acc[2]),
        hsum_avx(acc[3]),
    ]
}

/// One row of 8-bit blocks against f32 activations.
///
/// # Safety
/// The CPU must support AVX2 and FMA; `q` and `x` hold 32 values per block of `d`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_q8_avx2(d: &[f32], q: &[i8], x: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    debug_assert!(q.len() == d.len() * QK && x.len() == d.len() * QK);
    let mut acc = _mm256_setzero_ps();
    for b in 0..d.len() {
        // SAFETY: bounds as documented; unaligned loads throughout.
        unsafe {
            let qp = q.as_ptr().add(b * QK) as *const __m128i;
            let q0 = _mm_loadu_si128(qp);
            let q1 = _mm_loadu_si128(qp.add(1));
            let xp = x.as_ptr().add(b * QK);
            let f = |v: __m128i| _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v));
            let mut s = _mm256_mul_ps(f(q0), _mm256_loadu_ps(xp));
            s = _mm256_fmadd_ps(f(_mm_srli_si128(q0, 8)), _mm256_loadu_ps(xp.add(8)), s);
            s = _mm256_fmadd_ps(f(q1), _mm256_loadu_ps(xp.add(16)), s);
            s = _mm256_fmadd_ps(f(_mm_srli_si128(q1, 8)), _mm256_loadu_ps(xp.add(24)), s);
            acc = _mm256_fmadd_ps(_mm256_set1_ps(*d.get_unchecked(b)), s, acc);
        }
    }
    hsum_avx(acc)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn hsum_avx(v: std::arch::x86_64::__m256) -> f32 {
    use std::arch::x86_64::*;
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    _mm_cvtss_f32(s)
}

#[cfg(target_arch = "x86_64")]
fn has_avx2() -> bool {
    use std::sync::OnceLock;
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"))
}

fn dot_q4(d: &[f32], m: &[f32], q: &[u8], x: &[f32], sums: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: the CPU supports AVX2 and FMA (checked at run time).
        return unsafe { dot_q4_avx2(d, m, q, x, sums) };
    }
    dot_q4_generic(d, m, q, x, sums)
}

fn dot_q8(d: &[f32], q: &[i8], x: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: the CPU supports AVX2 and FMA (checked at run time).
        return unsafe { dot_q8_avx2(d, q, x) };
    }
    dot_q8_generic(d, q, x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::{dequantize, quantize};

    #[test]
    fn every_row_of_a_batch_is_bitwise_the_row_alone() {
        // 7 rows: one group of four (the shared-decode kernel) and three single rows.
        let (rows, cols, n) = (24, 128, 7);
        let w = crate::util::pseudo_random(rows * cols, 21);
        let x = crate::util::pseudo_random(n * cols, 22);
        for ty in [GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_1] {
            let bytes = quantize(ty, &w, "w").unwrap();
            let m = PackedMatrix::new(ty, &bytes, rows, cols, "w").unwrap();
            let batch = m.matmul(&x, n);
            for t in 0..n {
                let alone = m.matmul(&x[t * cols..(t + 1) * cols], 1);
                assert_eq!(
                    &batch[t * rows..(t + 1) * rows],
                    alone.as_slice(),
                    "{ty:?} row {t}"
                );
            }
        }
    }

    #[test]
    fn equals_f32_matmul_against_dequantized_weights() {
        let (rows, cols, n) = (40, 96, 3);
        let w = crate::util::pseudo_random(rows * cols, 11);
        let x = crate::util::pseudo_random(n * cols, 12);
        for ty in [GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_1] {
            let bytes = quantize(ty, &w, "w").unwrap();
            let deq = dequantize(ty, &bytes, rows * cols, "w").unwrap();
            let p = PackedMatrix::new(ty, &bytes, rows, cols, "w").unwrap();
            let y = p.matmul(&x, n);
            for t in 0..n {
                for r in 0..rows {
                    let want: f32 = (0..cols).map(|k| x[t * cols + k] * deq[r * cols + k]).sum();
                    let got = y[t * rows + r];
                    assert!((want - got).abs() < 1e-4, "{}: {want} vs {got}", ty.name());
                }
            }
            assert_eq!(p.matmul(&x[..cols], 1), y[..rows].to_vec());
            assert_eq!(p.dequantize(), deq);
        }
        // A size that is not the shape's: named.
        let e = PackedMatrix::new(GgmlType::Q4K, &[0; 144], 1, 512, "w").unwrap_err();
        assert!(e.to_string().contains("w: 144 bytes of Q4_K"), "{e}");
        // Q4_K repacks (quantized here by cairn's own Q4_K writer): the same
        // values and products as the dequantized matrix.
        let (rows, cols) = (8, 256);
        let w = crate::util::pseudo_random(rows * cols, 13);
        let x = crate::util::pseudo_random(2 * cols, 14);
        let bytes = quantize(GgmlType::Q4K, &w, "w").unwrap();
        let deq = dequantize(GgmlType::Q4K, &bytes, rows * cols, "w").unwrap();
        let p = PackedMatrix::new(GgmlType::Q4K, &bytes, rows, cols, "w").unwrap();
        assert_eq!(p.dequantize(), deq);
        let y = p.matmul(&x, 2);
        for t in 0..2 {
            for r in 0..rows {
                let want: f32 = (0..cols).map(|k| x[t * cols + k] * deq[r * cols + k]).sum();
                assert!((want - y[t * rows + r]).abs() < 1e-4);
            }
        }
    }
}
