//! GPU ops: linear (matmul_f32.wgsl, matvec_f32.wgsl, qmatmul.wgsl).

use super::*;

impl GpuBackend {
    /// `[.., m, k] · [.., k, n]` (or `· [.., n, k]ᵀ`), batch dimensions equal
    /// or one side unbatched, plus an optional bias over `n`.
    pub(in crate::backend::gpu) fn matmul_impl(
        &self,
        op: &'static str,
        a: &GpuTensor,
        b: &GpuTensor,
        transpose_b: bool,
        bias: Option<&GpuTensor>,
    ) -> Result<GpuTensor> {
        // f16 weights are a linear layer's B (transposed, unbatched).
        if b.dtype == DType::F16 && transpose_b && b.shape.len() == 2 && b.parts.is_none() {
            Self::f32_only(op, &[a])?;
        } else {
            Self::f32_only(op, &[a, b])?;
        }
        let f16 = b.dtype == DType::F16;
        let (ad, bd) = (&a.shape, &b.shape);
        let bad = || Error::Shape {
            op,
            detail: format!(
                "cannot multiply {ad:?} by {}{bd:?}",
                if transpose_b { "the transpose of " } else { "" }
            ),
        };
        if ad.len() < 2 || bd.len() < 2 {
            return Err(bad());
        }
        let (m, k) = (ad[ad.len() - 2], ad[ad.len() - 1]);
        let (kb, n) = if transpose_b {
            (bd[bd.len() - 1], bd[bd.len() - 2])
        } else {
            (bd[bd.len() - 2], bd[bd.len() - 1])
        };
        if k != kb {
            return Err(bad());
        }
        let (lead_a, lead_b) = (&ad[..ad.len() - 2], &bd[..bd.len() - 2]);
        let (ba, bb): (usize, usize) = (lead_a.iter().product(), lead_b.iter().product());
        let (batch, lead) = if bb == 1 || (ba == bb && lead_a == lead_b) {
            (ba, lead_a.to_vec())
        } else if ba == 1 {
            (bb, lead_b.to_vec())
        } else {
            return Err(bad());
        };
        if let Some(bias) = bias
            && bias.shape != [n]
        {
            return Err(Error::Shape {
                op,
                detail: format!("bias {:?} does not fit {n} outputs", bias.shape),
            });
        }
        let mut out_shape = lead;
        out_shape.extend([m, n]);
        let out = self.output(op, &out_shape, DType::F32)?;
        if out.len() == 0 {
            return Ok(out);
        }
        if batch > 65_535 {
            return Err(Error::Shape {
                op,
                detail: format!("batch {batch} exceeds 65,535 dispatch groups"),
            });
        }
        let p = MatmulParams {
            m: u32_of(op, m)?,
            n: u32_of(op, n)?,
            k: u32_of(op, k)?,
            transpose_b: transpose_b as u32,
            a_stride: if ba == 1 { 0 } else { u32_of(op, m * k)? },
            b_stride: if bb == 1 { 0 } else { u32_of(op, k * n)? },
            has_bias: bias.is_some() as u32,
            pad: 0,
        };
        let bias_buf = bias.map(GpuTensor::buf).unwrap_or(b.buf());
        if transpose_b && m <= MATVEC_MAX_ROWS && m * batch <= 65_535 {
            // Few rows against a weight: one workgroup per output, no idle tile rows.
            let (x, y, _) = groups_1d(n, 16);
            self.dispatch(
                if f16 {
                    Kernel::MatvecF16w
                } else {
                    Kernel::MatvecF32
                },
                &[a.buf(), b.buf(), out.buf(), bias_buf],
                &bytes_of(&p),
                3,
                (x, y, (m * batch) as u32),
            );
            return Ok(out);
        }
        self.dispatch(
            if f16 {
                Kernel::MatmulF16w
            } else {
                Kernel::MatmulF32
            },
            &[a.buf(), b.buf(), out.buf(), bias_buf],
            &bytes_of(&p),
            3,
            (
                (n as u32).div_ceil(TILE),
                (m as u32).div_ceil(TILE),
                batch as u32,
            ),
        );
        Ok(out)
    }

    pub(in crate::backend::gpu) fn op_matmul(
        &self,
        a: &GpuTensor,
        b: &GpuTensor,
    ) -> Result<GpuTensor> {
        self.matmul_impl("matmul", a, b, false, None)
    }

    pub(in crate::backend::gpu) fn op_linear(
        &self,
        x: &GpuTensor,
        w: &GpuTensor,
        bias: Option<&GpuTensor>,
    ) -> Result<GpuTensor> {
        let inner = *x.shape.last().unwrap_or(&0);
        if w.shape.len() != 2 || w.shape[1] != inner {
            return Err(Error::Shape {
                op: "linear",
                detail: format!(
                    "input {:?} does not fit weight {:?} (expected [out, {inner}])",
                    x.shape, w.shape
                ),
            });
        }
        let rows = x.len() / inner.max(1);
        let x2 = self.reshape(x, &[rows, inner])?;
        let y = match &w.parts {
            None => self.matmul_impl("linear", &x2, w, true, bias)?,
            Some(parts) => {
                // One product per row range of the weight, joined along the outputs.
                let mut ys = Vec::with_capacity(parts.len());
                let mut first = 0;
                for p in parts.iter() {
                    let n = p.shape[0];
                    let b = bias.map(|b| self.narrow(b, 0, first, n)).transpose()?;
                    ys.push(self.matmul_impl("linear", &x2, p, true, b.as_ref())?);
                    first += n;
                }
                self.cat(&ys, 1)?
            }
        };
        let mut shape = x.shape.clone();
        if let Some(last) = shape.last_mut() {
            *last = w.shape[0];
        }
        self.reshape(&y, &shape)
    }

    pub(in crate::backend::gpu) fn op_matmul_t(
        &self,
        a: &GpuTensor,
        b: &GpuTensor,
    ) -> Result<GpuTensor> {
        self.matmul_impl("matmul_t", a, b, true, None)
    }

    pub(in crate::backend::gpu) fn op_qmatrix(
        &self,
        ty: GgmlType,
        data: &[u8],
        rows: usize,
        cols: usize,
        name: &str,
    ) -> Result<GpuQMatrix> {
        let (code, block_bytes) = match ty {
            GgmlType::Q8_0 => (0u32, 34usize),
            GgmlType::Q4_0 => (1, 18),
            GgmlType::Q4_1 => (2, 20),
            _ => {
                let values = crate::quant::dequantize(ty, data, rows * cols, name)?;
                return Ok(GpuQMatrix {
                    kind: QKind::Dense(self.weight_f32(&values, &[rows, cols])?),
                    rows,
                    cols,
                });
            }
        };
        let nb = cols / 32;
        if !cols.is_multiple_of(32) || data.len() != rows * nb * block_bytes {
            return Err(Error::Shape {
                op: "qmatrix",
                detail: format!(
                    "tensor '{name}' ({ty:?}, [{rows}, {cols}]) has {} bytes; expected {} in blocks of 32 columns",
                    data.len(),
                    rows * cols.div_ceil(32) * block_bytes
                ),
            });
        }
        let f16 = |b: &[u8]| half::f16::from_le_bytes([b[0], b[1]]).to_f32();
        let words = if code == 0 { 8 } else { 4 };
        // Row ranges whose quants fit one storage binding.
        let row_bytes = (nb * words * 4).max(1) as u64;
        let per_part = (self.inner.max_binding / row_bytes) as usize;
        if per_part == 0 {
            self.check_size(&format!("one row of '{name}'"), row_bytes)?;
        }
        let mut parts = Vec::new();
        for first in (0..rows).step_by(per_part.max(1)) {
            let n = per_part.min(rows - first);
            let blocks = n * nb;
            let mut scales = Vec::with_capacity(blocks);
            let mut mins = Vec::with_capacity(if code == 2 { blocks } else { 1 });
            let mut quants: Vec<u32> = Vec::with_capacity(blocks * words);
            let bytes = &data[first * nb * block_bytes..(first + n) * nb * block_bytes];
            for blk in bytes.chunks_exact(block_bytes) {
                scales.push(f16(blk));
                let q = match code {
                    2 => {
                        mins.push(f16(&blk[2..]));
                        &blk[4..]
                    }
                    _ => &blk[2..],
                };
                quants.extend(
                    q.chunks_exact(4)
                        .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]])),
                );
            }
            if mins.is_empty() {
                mins.push(0.0);
            }
            parts.push(QPart {
                first,
                rows: n,
                scales: self.tensor_f32(&scales, &[scales.len()])?,
                mins: self.tensor_f32(&mins, &[mins.len()])?,
                quants: self.upload(bytemuck::cast_slice(&quants), &[quants.len()], DType::U32)?,
            });
        }
        Ok(GpuQMatrix {
            kind: QKind::Blocks { ty: code, parts },
            rows,
            cols,
        })
    }

    pub(in crate::backend::gpu) fn op_qmatrix_shape(&self, w: &GpuQMatrix) -> (usize, usize) {
        (w.rows, w.cols)
    }

    pub(in crate::backend::gpu) fn op_qlinear(
        &self,
        x: &GpuTensor,
        w: &GpuQMatrix,
    ) -> Result<GpuTensor> {
        let (parts, ty) = match &w.kind {
            QKind::Dense(t) => return self.linear(x, t, None),
            QKind::Blocks { ty, parts } => (parts, *ty),
        };
        Self::f32_only("qlinear", &[x])?;
        if x.shape.last() != Some(&w.cols) {
            return Err(Error::Shape {
                op: "qlinear",
                detail: format!(
                    "input {:?} does not fit quantized weight [{}, {}]",
                    x.shape, w.rows, w.cols
                ),
            });
        }
        let rows = x.len() / w.cols.max(1);
        let mut shape = x.shape.clone();
        if let Some(last) = shape.last_mut() {
            *last = w.rows;
        }
        let out = self.output("qlinear", &shape, DType::F32)?;
        if rows == 0 || w.rows == 0 {
            return Ok(out);
        }
        let tiles = rows.div_ceil(QMATMUL_ROWS);
        if tiles > 65_535 {
            return Err(Error::Shape {
                op: "qlinear",
                detail: format!(
                    "{rows} input rows exceed 65,535 dispatch groups of {QMATMUL_ROWS}"
                ),
            });
        }
        // Each row range of the weight writes its columns of the output.
        for part in parts {
            let p = QMatmulParams {
                n: u32_of("qlinear", part.rows)?,
                k: u32_of("qlinear", w.cols)?,
                ty,
                rows: u32_of("qlinear", rows)?,
                out_stride: u32_of("qlinear", w.rows)?,
                out_offset: u32_of("qlinear", part.first)?,
                pad: [0; 2],
            };
            let (gx, gy, _) = groups_1d(part.rows, 16);
            self.dispatch(
                Kernel::QMatmul,
                &[
                    x.buf(),
                    part.scales.buf(),
                    part.mins.buf(),
                    part.quants.buf(),
                    out.buf(),
                ],
                &bytes_of(&p),
                5,
                (gx, gy, tiles as u32),
            );
        }
        Ok(out)
    }
}
