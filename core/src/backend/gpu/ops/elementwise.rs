//! GPU ops: elementwise (unary.wgsl, binary.wgsl).

use super::*;

impl GpuBackend {
    pub(in crate::backend::gpu) fn f32_only(op: &'static str, ts: &[&GpuTensor]) -> Result<()> {
        if let Some(t) = ts.iter().find(|t| t.parts.is_some()) {
            return Err(Error::Shape {
                op,
                detail: format!(
                    "{t:?} is a weight matrix split over the storage-binding limit; only linear and embedding take it"
                ),
            });
        }
        if let Some(t) = ts.iter().find(|t| t.dtype != DType::F32) {
            return Err(Error::Shape {
                op,
                detail: format!("expects f32 tensors, got {t:?}"),
            });
        }
        Ok(())
    }

    pub(in crate::backend::gpu) fn unary(
        &self,
        t: &GpuTensor,
        op: u32,
        s: f32,
    ) -> Result<GpuTensor> {
        Self::f32_only("unary", &[t])?;
        let out = self.output("unary", &t.shape, DType::F32)?;
        let n = t.len();
        if n > 0 {
            let p = QuadF {
                a: u32_of("unary", n)?,
                b: op,
                f: s,
                d: 0,
            };
            self.dispatch(
                Kernel::Unary,
                &[t.buf(), out.buf()],
                &bytes_of(&p),
                2,
                groups_1d(n, 256),
            );
        }
        Ok(out)
    }

    pub(in crate::backend::gpu) fn binary(
        &self,
        op_name: &'static str,
        a: &GpuTensor,
        b: &GpuTensor,
        op: u32,
    ) -> Result<GpuTensor> {
        Self::f32_only(op_name, &[a, b])?;
        let rank = a.shape.len().max(b.shape.len());
        let pad = |s: &[usize]| -> Vec<usize> {
            let mut v = vec![1; rank - s.len()];
            v.extend_from_slice(s);
            v
        };
        let (sa, sb) = (pad(&a.shape), pad(&b.shape));
        let mut out_shape = Vec::with_capacity(rank);
        for (&x, &y) in sa.iter().zip(&sb) {
            if x != y && x != 1 && y != 1 {
                return Err(Error::Shape {
                    op: op_name,
                    detail: format!("cannot broadcast {:?} with {:?}", a.shape, b.shape),
                });
            }
            out_shape.push(x.max(y));
        }
        let strides = |s: &[usize]| -> Vec<usize> {
            contiguous_strides(s)
                .into_iter()
                .zip(s.iter().zip(&out_shape))
                .map(|(st, (&d, &o))| if d == 1 && o != 1 { 0 } else { st })
                .collect()
        };
        let out = self.output(op_name, &out_shape, DType::F32)?;
        let n = out.len();
        if n > 0 {
            let p = Shape4Params {
                shape: pad4(op_name, &out_shape, 1)?,
                s1: pad4(op_name, &strides(&sa), 0)?,
                s2: pad4(op_name, &strides(&sb), 0)?,
                n: u32_of(op_name, n)?,
                a: op,
                b: 0,
                c: 0,
            };
            self.dispatch(
                Kernel::Binary,
                &[a.buf(), b.buf(), out.buf()],
                &bytes_of(&p),
                3,
                groups_1d(n, 256),
            );
        }
        Ok(out)
    }

    pub(in crate::backend::gpu) fn op_add(
        &self,
        a: &GpuTensor,
        b: &GpuTensor,
    ) -> Result<GpuTensor> {
        self.binary("add", a, b, 0)
    }

    pub(in crate::backend::gpu) fn op_mul(
        &self,
        a: &GpuTensor,
        b: &GpuTensor,
    ) -> Result<GpuTensor> {
        self.binary("mul", a, b, 1)
    }

    pub(in crate::backend::gpu) fn op_scale(&self, t: &GpuTensor, s: f32) -> Result<GpuTensor> {
        self.unary(t, 0, s)
    }

    pub(in crate::backend::gpu) fn op_gelu(&self, t: &GpuTensor) -> Result<GpuTensor> {
        self.unary(t, 1, 0.0)
    }

    pub(in crate::backend::gpu) fn op_silu(&self, t: &GpuTensor) -> Result<GpuTensor> {
        self.unary(t, 2, 0.0)
    }

    pub(in crate::backend::gpu) fn op_tanh(&self, t: &GpuTensor) -> Result<GpuTensor> {
        self.unary(t, 3, 0.0)
    }

    pub(in crate::backend::gpu) fn op_relu(&self, t: &GpuTensor) -> Result<GpuTensor> {
        self.unary(t, 4, 0.0)
    }
}
