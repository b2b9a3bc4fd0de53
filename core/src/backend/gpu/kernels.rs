//! The WGSL kernels, embedded at compile time from `shaders/`.

/// `shaders/common.wgsl` followed by `shaders/<name>.wgsl`, at compile time.
macro_rules! wgsl {
    ($name:literal) => {
        concat!(
            include_str!("../../../../shaders/common.wgsl"),
            include_str!(concat!("../../../../shaders/", $name, ".wgsl"))
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
    /// `shaders/qmatvec.wgsl`: `x · Wᵀ` with W in Q8_0 / Q4_0 / Q4_1 blocks.
    QMatvec,
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
}

impl Kernel {
    /// Every kernel, for compiling them all up front (e.g. in a conformance test).
    pub const ALL: &'static [Kernel] = &[
        Kernel::MatmulF32,
        Kernel::MatvecF32,
        Kernel::QMatvec,
        Kernel::Binary,
        Kernel::Unary,
        Kernel::LayerNorm,
        Kernel::RmsNorm,
        Kernel::Softmax,
        Kernel::GatherRows,
        Kernel::CopyStrided,
        Kernel::MaxReduce,
        Kernel::RopePairs,
    ];

    /// The file name under `shaders/`.
    pub fn file_name(self) -> &'static str {
        match self {
            Kernel::MatmulF32 => "matmul_f32.wgsl",
            Kernel::MatvecF32 => "matvec_f32.wgsl",
            Kernel::QMatvec => "qmatvec.wgsl",
            Kernel::Binary => "binary.wgsl",
            Kernel::Unary => "unary.wgsl",
            Kernel::LayerNorm => "layer_norm.wgsl",
            Kernel::RmsNorm => "rms_norm.wgsl",
            Kernel::Softmax => "softmax.wgsl",
            Kernel::GatherRows => "gather_rows.wgsl",
            Kernel::CopyStrided => "copy_strided.wgsl",
            Kernel::MaxReduce => "max_reduce.wgsl",
            Kernel::RopePairs => "rope_pairs.wgsl",
        }
    }

    /// The WGSL source: `shaders/common.wgsl` (shared helpers) followed by the kernel's file.
    pub fn source(self) -> &'static str {
        match self {
            Kernel::MatmulF32 => wgsl!("matmul_f32"),
            Kernel::MatvecF32 => wgsl!("matvec_f32"),
            Kernel::QMatvec => wgsl!("qmatvec"),
            Kernel::Binary => wgsl!("binary"),
            Kernel::Unary => wgsl!("unary"),
            Kernel::LayerNorm => wgsl!("layer_norm"),
            Kernel::RmsNorm => wgsl!("rms_norm"),
            Kernel::Softmax => wgsl!("softmax"),
            Kernel::GatherRows => wgsl!("gather_rows"),
            Kernel::CopyStrided => wgsl!("copy_strided"),
            Kernel::MaxReduce => wgsl!("max_reduce"),
            Kernel::RopePairs => wgsl!("rope_pairs"),
        }
    }
}
