//! GPU ops: layout (copy_strided.wgsl, embedding.wgsl, (cat and write_slice copy through copy_strided)).

use super::*;

impl GpuBackend {
    /// Copies `shape` elements from `src` to `dst`, each given as
    /// (tensor, element strides, element offset).
    pub(in crate::backend::gpu) fn copy_strided(
        &self,
        shape: &[usize],
        (src, src_strides, src_offset): (&GpuTensor, &[usize], usize),
        (dst, dst_strides, dst_offset): (&GpuTensor, &[usize], usize),
    ) -> Result<()> {
        let n: usize = shape.iter().product();
        if n == 0 {
            return Ok(());
        }
        let p = Shape4Params {
            shape: pad4("copy", shape, 1)?,
            s1: pad4("copy", src_strides, 0)?,
            s2: pad4("copy", dst_strides, 0)?,
            n: u32_of("copy", n)?,
            a: u32_of("copy", src_offset)?,
            b: u32_of("copy", dst_offset)?,
            c: 0,
        };
        self.dispatch(
            Kernel::CopyStrided,
            &[src.buf(), dst.buf()],
            &bytes_of(&p),
            2,
            groups_1d(n, 256),
        );
        Ok(())
    }

    pub(in crate::backend::gpu) fn op_reshape(
        &self,
        t: &GpuTensor,
        shape: &[usize],
    ) -> Result<GpuTensor> {
        check_count("reshape", t.len(), shape)?;
        let mut r = t.clone();
        r.shape = shape.to_vec();
        Ok(r)
    }

    pub(in crate::backend::gpu) fn op_transpose(
        &self,
        t: &GpuTensor,
        d0: usize,
        d1: usize,
    ) -> Result<GpuTensor> {
        let rank = t.shape.len();
        if d0 >= rank || d1 >= rank {
            return Err(Error::Shape {
                op: "transpose",
                detail: format!("dims {d0}, {d1} of a rank-{rank} tensor"),
            });
        }
        Self::f32_only("transpose", &[t])?;
        let mut shape = t.shape.clone();
        shape.swap(d0, d1);
        let mut src = contiguous_strides(&t.shape);
        src.swap(d0, d1);
        let out = self.output("transpose", &shape, DType::F32)?;
        self.copy_strided(&shape, (t, &src, 0), (&out, &contiguous_strides(&shape), 0))?;
        Ok(out)
    }

    pub(in crate::backend::gpu) fn op_narrow(
        &self,
        t: &GpuTensor,
        dim: usize,
        start: usize,
        len: usize,
    ) -> Result<GpuTensor> {
        if dim >= t.shape.len() || start + len > t.shape[dim] {
            return Err(Error::Shape {
                op: "narrow",
                detail: format!("{start}..{} of dim {dim} in {:?}", start + len, t.shape),
            });
        }
        Self::f32_only("narrow", &[t])?;
        let mut shape = t.shape.clone();
        shape[dim] = len;
        let src = contiguous_strides(&t.shape);
        let out = self.output("narrow", &shape, DType::F32)?;
        self.copy_strided(
            &shape,
            (t, &src, start * src[dim]),
            (&out, &contiguous_strides(&shape), 0),
        )?;
        Ok(out)
    }

    pub(in crate::backend::gpu) fn op_embedding(
        &self,
        ids: &GpuTensor,
        table: &GpuTensor,
    ) -> Result<GpuTensor> {
        if table.shape.len() != 2 || table.dtype == DType::U32 {
            return Err(Error::Shape {
                op: "embedding",
                detail: format!("table must be f32 (or f16) [vocab, dim], got {table:?}"),
            });
        }
        if ids.dtype != DType::U32 {
            return Err(Error::Shape {
                op: "embedding",
                detail: format!("ids must be u32, got {ids:?}"),
            });
        }
        let (vocab, cols) = (table.shape[0], table.shape[1]);
        match ids.max_id {
            Some(m) if m as usize >= vocab => {
                return Err(Error::Shape {
                    op: "embedding",
                    detail: format!("id {m} is out of range for a table of {vocab} rows"),
                });
            }
            _ => {}
        }
        let rows = ids.len();
        let mut shape = ids.shape.clone();
        shape.push(cols);
        let out = self.output("embedding", &shape, DType::F32)?;
        if rows * cols > 0 {
            // One dispatch per row range of a split table; each writes the ids it holds.
            let mut first = 0;
            for part in table.row_parts() {
                let count = part.shape[0];
                let p = Quad {
                    a: u32_of("embedding", rows)?,
                    b: u32_of("embedding", cols)?,
                    c: u32_of("embedding", first)?,
                    d: u32_of("embedding", count)?,
                };
                self.dispatch(
                    if part.dtype == DType::F16 {
                        Kernel::GatherRowsF16
                    } else {
                        Kernel::GatherRows
                    },
                    &[ids.buf(), part.buf(), out.buf()],
                    &bytes_of(&p),
                    3,
                    groups_1d(rows * cols, 256),
                );
                first += count;
            }
        }
        Ok(out)
    }

    pub(in crate::backend::gpu) fn op_cat(
        &self,
        parts: &[GpuTensor],
        dim: usize,
    ) -> Result<GpuTensor> {
        let Some(first) = parts.first() else {
            return Err(Error::Shape {
                op: "cat",
                detail: "nothing to join".into(),
            });
        };
        let refs: Vec<&GpuTensor> = parts.iter().collect();
        Self::f32_only("cat", &refs)?;
        let rank = first.shape.len();
        let fits = dim < rank
            && parts.iter().all(|p| {
                p.shape.len() == rank
                    && p.shape
                        .iter()
                        .zip(&first.shape)
                        .enumerate()
                        .all(|(i, (a, b))| i == dim || a == b)
            });
        if !fits {
            return Err(Error::Shape {
                op: "cat",
                detail: format!(
                    "cannot join {:?} along dim {dim}",
                    parts.iter().map(|p| p.shape.clone()).collect::<Vec<_>>()
                ),
            });
        }
        let mut shape = first.shape.clone();
        shape[dim] = parts.iter().map(|p| p.shape[dim]).sum();
        let out = self.output("cat", &shape, DType::F32)?;
        let dst = contiguous_strides(&shape);
        let mut at = 0;
        for p in parts {
            self.copy_strided(
                &p.shape,
                (p, &contiguous_strides(&p.shape), 0),
                (&out, &dst, at * dst[dim]),
            )?;
            at += p.shape[dim];
        }
        Ok(out)
    }

    pub(in crate::backend::gpu) fn op_zeros(&self, shape: &[usize]) -> Result<GpuTensor> {
        let out = self.output("zeros", shape, DType::F32)?;
        self.record(|encoder| encoder.clear_buffer(out.buf(), 0, None));
        Ok(out)
    }

    pub(in crate::backend::gpu) fn op_write_slice(
        &self,
        dst: &GpuTensor,
        src: &GpuTensor,
        dim: usize,
        start: usize,
    ) -> Result<()> {
        let (dd, sd) = (&dst.shape, &src.shape);
        crate::backend::check_write_slice(dd, sd, dim, start)?;
        Self::f32_only("write_slice", &[dst, src])?;
        let ds = contiguous_strides(dd);
        self.copy_strided(
            sd,
            (src, &contiguous_strides(sd), 0),
            (dst, &ds, start * ds[dim]),
        )
    }
}
