//! GPU ops: norm (layer_norm.wgsl, rms_norm.wgsl, softmax.wgsl, max_dim.wgsl).

use super::*;

impl GpuBackend {
    pub(in crate::backend::gpu) fn op_layer_norm(
        &self,
        x: &GpuTensor,
        weight: &GpuTensor,
        bias: &GpuTensor,
        eps: f32,
    ) -> Result<GpuTensor> {
        Self::f32_only("layer_norm", &[x, weight, bias])?;
        let cols = *x.shape.last().unwrap_or(&0);
        if weight.shape != [cols] || bias.shape != [cols] {
            return Err(Error::Shape {
                op: "layer_norm",
                detail: format!(
                    "weight {:?} / bias {:?} do not fit input {:?}",
                    weight.shape, bias.shape, x.shape
                ),
            });
        }
        let out = self.output("layer_norm", &x.shape, DType::F32)?;
        let rows = x.len() / cols.max(1);
        if rows > 0 {
            let p = QuadF {
                a: u32_of("layer_norm", rows)?,
                b: u32_of("layer_norm", cols)?,
                f: eps,
                d: 0,
            };
            self.dispatch(
                Kernel::LayerNorm,
                &[x.buf(), weight.buf(), bias.buf(), out.buf()],
                &bytes_of(&p),
                4,
                Self::rows_groups(rows),
            );
        }
        Ok(out)
    }

    pub(in crate::backend::gpu) fn op_max_dim(
        &self,
        t: &GpuTensor,
        dim: usize,
    ) -> Result<GpuTensor> {
        Self::f32_only("max_dim", &[t])?;
        if dim >= t.shape.len() {
            return Err(Error::Shape {
                op: "max_dim",
                detail: format!("dim {dim} of {:?}", t.shape),
            });
        }
        let outer: usize = t.shape[..dim].iter().product();
        let inner: usize = t.shape[dim + 1..].iter().product();
        let mut shape = t.shape.clone();
        shape.remove(dim);
        let out = self.output("max_dim", &shape, DType::F32)?;
        if outer * inner > 0 {
            let p = Quad {
                a: u32_of("max_dim", outer)?,
                b: u32_of("max_dim", t.shape[dim])?,
                c: u32_of("max_dim", inner)?,
                d: 0,
            };
            self.dispatch(
                Kernel::MaxReduce,
                &[t.buf(), out.buf()],
                &bytes_of(&p),
                2,
                groups_1d(outer * inner, 256),
            );
        }
        Ok(out)
    }

    pub(in crate::backend::gpu) fn op_softmax_last(&self, t: &GpuTensor) -> Result<GpuTensor> {
        Self::f32_only("softmax_last", &[t])?;
        let cols = *t.shape.last().unwrap_or(&0);
        let rows = t.len() / cols.max(1);
        let out = self.output("softmax_last", &t.shape, DType::F32)?;
        if rows > 0 && cols > 0 {
            let p = Quad {
                a: u32_of("softmax_last", rows)?,
                b: u32_of("softmax_last", cols)?,
                c: 0,
                d: 0,
            };
            self.dispatch(
                Kernel::Softmax,
                &[t.buf(), out.buf()],
                &bytes_of(&p),
                2,
                Self::rows_groups(rows),
            );
        }
        Ok(out)
    }

    pub(in crate::backend::gpu) fn op_rms_norm(
        &self,
        x: &GpuTensor,
        weight: &GpuTensor,
        eps: f32,
    ) -> Result<GpuTensor> {
        Self::f32_only("rms_norm", &[x, weight])?;
        let cols = *x.shape.last().unwrap_or(&0);
        if weight.shape != [cols] {
            return Err(Error::Shape {
                op: "rms_norm",
                detail: format!("weight {:?} does not fit input {:?}", weight.shape, x.shape),
            });
        }
        let out = self.output("rms_norm", &x.shape, DType::F32)?;
        let rows = x.len() / cols.max(1);
        if rows > 0 {
            let p = QuadF {
                a: u32_of("rms_norm", rows)?,
                b: u32_of("rms_norm", cols)?,
                f: eps,
                d: 0,
            };
            self.dispatch(
                Kernel::RmsNorm,
                &[x.buf(), weight.buf(), out.buf()],
                &bytes_of(&p),
                3,
                Self::rows_groups(rows),
            );
        }
        Ok(out)
    }
}
