//! GPU ops: attention (attention.wgsl, rope.wgsl).

use super::*;

impl GpuBackend {
    /// Records `shaders/attention.wgsl` over `rep · t` query rows per KV head.
    /// `mask` is the encoder's padding mask (`None`: causal).
    pub(in crate::backend::gpu) fn fused_attention(
        &self,
        (q, k, v): (&GpuTensor, &GpuTensor, &GpuTensor),
        p: AttentionParams,
        batch: usize,
        kv_heads: usize,
        mask: Option<&GpuTensor>,
    ) -> Result<GpuTensor> {
        let (t, d, heads) = (p.t as usize, p.d as usize, p.heads as usize);
        let out = self.output("attention", &[batch, t, heads * d], DType::F32)?;
        let tiles = (p.rep as usize * t).div_ceil(ATTN_ROWS);
        if out.len() == 0 {
            return Ok(out);
        }
        if tiles > 65_535 || kv_heads > 65_535 || batch > 65_535 {
            return Err(Error::Shape {
                op: "attention",
                detail: format!(
                    "{tiles} query tiles × {kv_heads} KV heads × batch {batch} exceed 65,535 dispatch groups per dimension"
                ),
            });
        }
        let mask_buf = mask.map(GpuTensor::buf).unwrap_or(&self.inner.unused);
        self.dispatch(
            Kernel::Attention,
            &[q.buf(), k.buf(), v.buf(), mask_buf, out.buf()],
            &bytes_of(&p),
            5,
            (tiles as u32, kv_heads as u32, batch as u32),
        );
        Ok(out)
    }

    pub(in crate::backend::gpu) fn rows_groups(rows: usize) -> (u32, u32, u32) {
        groups_1d(rows, 1)
    }

    pub(in crate::backend::gpu) fn op_rope_pairs(
        &self,
        x: &GpuTensor,
        cos: &GpuTensor,
        sin: &GpuTensor,
    ) -> Result<GpuTensor> {
        Self::f32_only("rope_pairs", &[x, cos, sin])?;
        let (xd, cd) = (&x.shape, &cos.shape);
        if xd.len() != 4
            || cd.len() != 2
            || cd[0] != xd[2]
            || cd[1] * 2 != xd[3]
            || sin.shape != *cd
        {
            return Err(Error::Shape {
                op: "rope_pairs",
                detail: format!(
                    "x must be [batch, heads, seq, head_dim] and cos/sin [seq, head_dim/2]; got {xd:?} and {cd:?}"
                ),
            });
        }
        let out = self.output("rope_pairs", xd, DType::F32)?;
        let (rows, seq, half) = (xd[0] * xd[1], xd[2], cd[1]);
        if rows * seq * half > 0 {
            let p = Quad {
                a: u32_of("rope_pairs", rows)?,
                b: u32_of("rope_pairs", seq)?,
                c: u32_of("rope_pairs", half)?,
                d: 0,
            };
            self.dispatch(
                Kernel::RopePairs,
                &[x.buf(), cos.buf(), sin.buf(), out.buf()],
                &bytes_of(&p),
                4,
                groups_1d(rows * seq * half, 256),
            );
        }
        Ok(out)
    }

    pub(in crate::backend::gpu) fn op_attention(
        &self,
        q: &GpuTensor,
        k_cache: &GpuTensor,
        v_cache: &GpuTensor,
        len: usize,
    ) -> Result<GpuTensor> {
        let (qd, kd) = (&q.shape, &k_cache.shape);
        let fits = qd.len() == 4
            && kd.len() == 4
            && qd[0] == 1
            && kd[0] == 1
            && qd[3] == kd[3]
            && kd[1] > 0
            && qd[1] % kd[1] == 0
            && v_cache.shape == *kd
            && qd[2] <= len
            && len <= kd[2];
        if !fits || qd[3] > ATTN_MAX_D {
            // Shape errors are named there; large heads take the composed ops.
            return crate::backend::composed_attention(self, q, k_cache, v_cache, len);
        }
        Self::f32_only("attention", &[q, k_cache, v_cache])?;
        let (nh, t, d, nkv, cap) = (qd[1], qd[2], qd[3], kd[1], kd[2]);
        let u = |v: usize| u32_of("attention", v);
        let p = AttentionParams {
            t: u(t)?,
            keys: u(len)?,
            d: u(d)?,
            rep: u(nh / nkv)?,
            heads: u(nh)?,
            causal: 1,
            scale: 1.0 / (d as f32).sqrt(),
            q_off: 0,
            q_b: u(nh * t * d)?,
            q_h: u(t * d)?,
            q_t: u(d)?,
            k_off: 0,
            k_b: u(nkv * cap * d)?,
            k_h: u(cap * d)?,
            k_t: u(d)?,
            v_off: 0,
        };
        self.fused_attention((q, k_cache, v_cache), p, 1, nkv, None)
    }

    pub(in crate::backend::gpu) fn op_encoder_attention(
        &self,
        qkv: &GpuTensor,
        mask: &[u32],
        heads: usize,
    ) -> Result<GpuTensor> {
        let (batch, seq, h) =
            crate::backend::encoder_attention_shape(&qkv.shape, mask.len(), heads)?;
        let d = h / heads;
        if d > ATTN_MAX_D {
            return crate::backend::composed_encoder_attention(self, qkv, mask, heads);
        }
        Self::f32_only("encoder_attention", &[qkv])?;
        let u = |v: usize| u32_of("encoder_attention", v);
        let p = AttentionParams {
            t: u(seq)?,
            keys: u(seq)?,
            d: u(d)?,
            rep: 1,
            heads: u(heads)?,
            causal: 0,
            scale: 1.0 / (d as f32).sqrt(),
            q_off: 0,
            q_b: u(seq * 3 * h)?,
            q_h: u(d)?,
            q_t: u(3 * h)?,
            k_off: u(h)?,
            k_b: u(seq * 3 * h)?,
            k_h: u(d)?,
            k_t: u(3 * h)?,
            v_off: u(2 * h)?,
        };
        let mask = self.tensor_u32(mask, &[batch, seq])?;
        self.fused_attention((qkv, qkv, qkv), p, batch, heads, Some(&mask))
    }
}
