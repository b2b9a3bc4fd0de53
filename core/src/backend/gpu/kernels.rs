//! The WGSL kernels, embedded at compile time from `shaders/`.

/// A compute kernel: a WGSL source file with one `main` entry point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// `shaders/matmul_f32.wgsl`: tiled f32 matrix multiply (optionally `A · Bᵀ`).
    MatmulF32,
}

impl Kernel {
    /// Every kernel, for compiling them all up front (e.g. in a conformance test).
    pub const ALL: &'static [Kernel] = &[Kernel::MatmulF32];

    /// The file name under `shaders/`.
    pub fn file_name(self) -> &'static str {
        match self {
            Kernel::MatmulF32 => "matmul_f32.wgsl",
        }
    }

    /// The WGSL source.
    pub fn source(self) -> &'static str {
        match self {
            Kernel::MatmulF32 => include_str!("../../../../shaders/matmul_f32.wgsl"),
        }
    }
}
