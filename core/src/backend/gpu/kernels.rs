//! The WGSL kernels, embedded at compile time from `shaders/`.

use std::borrow::Cow;

/// `shaders/common.wgsl` followed by `shaders/<name>.wgsl`, at compile time.
macro_rules! wgsl {
    ($name:literal) => {
        concat!(
            include_str!("shaders/common.wgsl"),
            include_str!(concat!("shaders/", $name, ".wgsl"))
        )
    };
}

/// A compute kernel: a WGSL source file with one `main` entry point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// `shaders/matmul_f32.wgsl`: tiled, batched f32 matrix multiply (optionally `A · Bᵀ`, + bias).
    MatmulF32,
    /// `shaders/matvec_f32.wgsl`: `A · Bᵀ` for few rows (decoding), one workgroup per output.
    MatvecF32,
    /// `shaders/qmatmul.wgsl`: `x · Wᵀ` with W in Q8_0 / Q4_0 / Q4_1 blocks (tiles of 8 rows).
    QMatmul,
    /// `shaders/binary.wgsl`: add / multiply with broadcasting.
    Binary,
    /// `shaders/unary.wgsl`: scale, GELU (erf), SiLU.
    Unary,
    /// `shaders/layer_norm.wgsl`: layer normalisation over the last dimension.
    LayerNorm,
    /// `shaders/rms_norm.wgsl`: RMS normalisation over the last dimension.
    RmsNorm,
    /// `shaders/softmax.wgsl`: softmax over the last dimension.
    Softmax,
    /// `shaders/gather_rows.wgsl`: embedding lookup.
    GatherRows,
    /// `shaders/copy_strided.wgsl`: transpose, narrow, cat, in-place slice writes.
    CopyStrided,
    /// `shaders/max_reduce.wgsl`: maximum over one dimension.
    MaxReduce,
    /// `shaders/rope_pairs.wgsl`: rotary embedding on adjacent pairs.
    RopePairs,
    /// `shaders/attention.wgsl`: fused attention with an online softmax (decode, prefill, encoder).
    Attention,
    /// `shaders/argmax.wgsl`: index of each row's largest value.
    Argmax,
    /// [`Kernel::MatmulF32`] reading f16 weights (adapters with shader-f16).
    MatmulF16w,
    /// [`Kernel::MatvecF32`] reading f16 weights.
    MatvecF16w,
    /// [`Kernel::GatherRows`] from an f16 table.
    GatherRowsF16,
}

impl Kernel {
    /// Every kernel, for compiling them all up front (e.g. in a conformance test).
    pub const ALL: &'static [Kernel] = &[
        Kernel::MatmulF32,
        Kernel::MatvecF32,
        Kernel::QMatmul,
        Kernel::Binary,
        Kernel::Unary,
        Kernel::LayerNorm,
        Kernel::RmsNorm,
        Kernel::Softmax,
        Kernel::GatherRows,
        Kernel::CopyStrided,
        Kernel::MaxReduce,
        Kernel::RopePairs,
        Kernel::Attention,
        Kernel::Argmax,
    ];

    /// The f16-weight variants, compiled only where the device has shader-f16.
    pub const F16_WEIGHTS: &'static [Kernel] = &[
        Kernel::MatmulF16w,
        Kernel::MatvecF16w,
        Kernel::GatherRowsF16,
    ];

    /// The file name under `shaders/`.
    pub fn file_name(self) -> &'static str {
        match self {
            Kernel::MatmulF32 | Kernel::MatmulF16w => "matmul_f32.wgsl",
            Kernel::MatvecF32 | Kernel::MatvecF16w => "matvec_f32.wgsl",
            Kernel::QMatmul => "qmatmul.wgsl",
            Kernel::Binary => "binary.wgsl",
            Kernel::Unary => "unary.wgsl",
            Kernel::LayerNorm => "layer_norm.wgsl",
            Kernel::RmsNorm => "rms_norm.wgsl",
            Kernel::Softmax => "softmax.wgsl",
            Kernel::GatherRows | Kernel::GatherRowsF16 => "gather_rows.wgsl",
            Kernel::CopyStrided => "copy_strided.wgsl",
            Kernel::MaxReduce => "max_reduce.wgsl",
            Kernel::RopePairs => "rope_pairs.wgsl",
            Kernel::Attention => "attention.wgsl",
            Kernel::Argmax => "argmax.wgsl",
        }
    }

    /// The WGSL source: `shaders/common.wgsl` (shared helpers) followed by
    /// the kernel's file; the f16-weight variants enable f16 and set the
    /// file's weight type alias `WT` to f16.
    pub fn source(self) -> Cow<'static, str> {
        let f16 = |base: Kernel| {
            Cow::Owned(format!(
                "enable f16;\n{}",
                base.source().replace("alias WT = f32;", "alias WT = f16;")
            ))
        };
        Cow::Borrowed(match self {
            Kernel::MatmulF16w => return f16(Kernel::MatmulF32),
            Kernel::MatvecF16w => return f16(Kernel::MatvecF32),
            Kernel::GatherRowsF16 => return f16(Kernel::GatherRows),
            Kernel::MatmulF32 => wgsl!("matmul_f32"),
            Kernel::MatvecF32 => wgsl!("matvec_f32"),
            Kernel::QMatmul => wgsl!("qmatmul"),
            Kernel::Binary => wgsl!("binary"),
            Kernel::Unary => wgsl!("unary"),
            Kernel::LayerNorm => wgsl!("layer_norm"),
            Kernel::RmsNorm => wgsl!("rms_norm"),
            Kernel::Softmax => wgsl!("softmax"),
            Kernel::GatherRows => wgsl!("gather_rows"),
            Kernel::CopyStrided => wgsl!("copy_strided"),
            Kernel::MaxReduce => wgsl!("max_reduce"),
            Kernel::RopePairs => wgsl!("rope_pairs"),
            Kernel::Attention => wgsl!("attention"),
            Kernel::Argmax => wgsl!("argmax"),
        })
    }
}
