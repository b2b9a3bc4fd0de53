//! GPU ops: readback (argmax.wgsl).

use super::*;

impl GpuBackend {
    pub(in crate::backend::gpu) async fn op_read_f32(&self, t: &GpuTensor) -> Result<Vec<f32>> {
        self.flush();
        if let Some(parts) = &t.parts {
            let mut all = Vec::with_capacity(t.len());
            for p in parts.iter() {
                all.extend(Box::pin(self.read_f32(p)).await?);
            }
            return Ok(all);
        }
        let n = t.len();
        if n == 0 {
            return Ok(Vec::new());
        }
        let words = match t.dtype {
            DType::F16 => n.div_ceil(2),
            DType::F32 | DType::U32 => n,
        };
        let raw = read_f32(
            self.device(),
            &self.inner.ctx.queue,
            t.buf(),
            "tensor",
            (words * 4) as u64,
        )
        .await?;
        Ok(match t.dtype {
            DType::F32 => raw,
            DType::U32 => raw.iter().map(|v| v.to_bits() as f32).collect(),
            DType::F16 => bytemuck::cast_slice::<f32, half::f16>(&raw)[..n]
                .iter()
                .map(|h| h.to_f32())
                .collect(),
        })
    }

    pub(in crate::backend::gpu) async fn op_read_argmax(&self, t: &GpuTensor) -> Result<Vec<u32>> {
        Self::f32_only("argmax", &[t])?;
        let cols = *t.shape.last().unwrap_or(&0);
        if cols == 0 {
            return Err(Error::Shape {
                op: "argmax",
                detail: format!("rows of {:?} are empty", t.shape),
            });
        }
        let rows = t.len() / cols;
        let out = self.output("argmax", &[rows], DType::U32)?;
        let p = Quad {
            a: u32_of("argmax", rows)?,
            b: u32_of("argmax", cols)?,
            c: 0,
            d: 0,
        };
        self.dispatch(
            Kernel::Argmax,
            &[t.buf(), out.buf()],
            &bytes_of(&p),
            2,
            Self::rows_groups(rows),
        );
        self.flush();
        let raw = read_f32(
            self.device(),
            &self.inner.ctx.queue,
            out.buf(),
            "argmax",
            (rows * 4) as u64,
        )
        .await?;
        Ok(raw.iter().map(|v| v.to_bits()).collect())
    }
}
