//! One case per op, for every backend: the list the GPU conformance test
//! runs in check mode (each case on the CPU and on the GPU, compared within
//! the case's tolerance) and the per-op benchmark runs in timing mode (the
//! same cases timed on each backend), in the spirit of llama.cpp's
//! `test-backend-ops` (`-o OP` filter, `perf` mode).
//!
//! Inputs are deterministic ([`crate::util::pseudo_random`]), so every
//! platform and run sees the same data. Shapes include odd sizes and
//! non-multiples of the kernels' tiles.

use crate::backend::Backend;
use crate::error::{Error, Result};

/// The op a case runs, with its non-tensor arguments.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// `a · b` (batched, `b` may broadcast).
    Matmul,
    /// `a · bᵀ`.
    MatmulT,
    /// `x · wᵀ + bias`.
    LinearBias,
    /// Element-wise sum with broadcasting.
    Add,
    /// Element-wise product with broadcasting.
    Mul,
    /// Multiplication by a constant.
    Scale(f32),
    /// GELU (erf).
    Gelu,
    /// SiLU.
    Silu,
    /// tanh.
    Tanh,
    /// ReLU.
    Relu,
    /// Softmax over the last dimension.
    Softmax,
    /// Layer normalisation with weight and bias, epsilon.
    LayerNorm(f32),
    /// RMS normalisation with weight, epsilon.
    RmsNorm(f32),
    /// Maximum over one dimension.
    MaxDim(usize),
    /// `len` elements from `start` along `dim`.
    Narrow {
        /// Dimension.
        dim: usize,
        /// First index.
        start: usize,
        /// Elements kept.
        len: usize,
    },
    /// Concatenation of the two inputs along a dimension.
    Cat(usize),
    /// Swap of two dimensions.
    Transpose(usize, usize),
    /// RoPE on adjacent pairs (`x`, `cos`, `sin`).
    RopePairs,
    /// Attention of `q` over the first `len` positions of a K/V cache.
    Attention {
        /// Cached positions attended to.
        len: usize,
    },
}

/// One op on fixed inputs, with the tolerance its results must meet.
#[derive(Debug, Clone)]
pub struct OpCase {
    /// Unique, readable name (`matmul 3x17x5`); filters match on it.
    pub name: String,
    /// What to run.
    pub op: Op,
    /// Host inputs: values and shape of each tensor.
    pub inputs: Vec<(Vec<f32>, Vec<usize>)>,
    /// Largest `|a − b| / (1 + |a|)` allowed between two backends.
    pub tol: f32,
}

fn t(shape: &[usize], seed: u64) -> (Vec<f32>, Vec<usize>) {
    let n = shape.iter().product();
    let v = crate::util::pseudo_random(n, seed)
        .into_iter()
        .map(|x| x * 4.0)
        .collect();
    (v, shape.to_vec())
}

fn case(name: String, op: Op, inputs: Vec<(Vec<f32>, Vec<usize>)>, tol: f32) -> OpCase {
    OpCase {
        name,
        op,
        inputs,
        tol,
    }
}

/// The conformance cases: every non-quantized op of [`Backend`] on small
/// shapes that are not multiples of 16 or 64.
pub fn cases() -> Vec<OpCase> {
    let mut v = Vec::new();
    for (m, k, n) in [(1, 1, 1), (3, 17, 5), (33, 64, 31), (70, 100, 129)] {
        v.push(case(
            format!("matmul {m}x{k}x{n}"),
            Op::Matmul,
            vec![t(&[2, m, k], 1), t(&[2, k, n], 2)],
            1e-4,
        ));
        v.push(case(
            format!("matmul broadcast B {m}x{k}x{n}"),
            Op::Matmul,
            vec![t(&[3, m, k], 3), t(&[k, n], 4)],
            1e-4,
        ));
        v.push(case(
            format!("matmul_t {m}x{k}x{n}"),
            Op::MatmulT,
            vec![t(&[2, 3, m, k], 5), t(&[2, 3, n, k], 6)],
            1e-4,
        ));
        v.push(case(
            format!("linear+bias {m}x{k}x{n}"),
            Op::LinearBias,
            vec![t(&[2, m, k], 7), t(&[n, k], 8), t(&[n], 9)],
            1e-4,
        ));
    }
    for s in [vec![1], vec![7, 13], vec![2, 5, 33], vec![2, 3, 4, 65]] {
        let last = vec![*s.last().unwrap_or(&1)];
        v.push(case(
            format!("add {s:?}"),
            Op::Add,
            vec![t(&s, 10), t(&s, 11)],
            1e-6,
        ));
        v.push(case(
            format!("mul {s:?}"),
            Op::Mul,
            vec![t(&s, 12), t(&s, 13)],
            1e-6,
        ));
        v.push(case(
            format!("add broadcast {s:?}"),
            Op::Add,
            vec![t(&s, 14), t(&last, 15)],
            1e-6,
        ));
        v.push(case(
            format!("scale {s:?}"),
            Op::Scale(-0.37),
            vec![t(&s, 16)],
            1e-6,
        ));
        v.push(case(format!("gelu {s:?}"), Op::Gelu, vec![t(&s, 17)], 1e-5));
        v.push(case(format!("silu {s:?}"), Op::Silu, vec![t(&s, 18)], 1e-5));
        v.push(case(format!("tanh {s:?}"), Op::Tanh, vec![t(&s, 20)], 1e-5));
        v.push(case(format!("relu {s:?}"), Op::Relu, vec![t(&s, 21)], 0.0));
        v.push(case(
            format!("softmax {s:?}"),
            Op::Softmax,
            vec![t(&s, 19)],
            1e-5,
        ));
        v.push(case(
            format!("layer_norm {s:?}"),
            Op::LayerNorm(1e-5),
            vec![t(&s, 20), t(&last, 21), t(&last, 22)],
            1e-4,
        ));
        v.push(case(
            format!("rms_norm {s:?}"),
            Op::RmsNorm(1e-6),
            vec![t(&s, 23), t(&last, 24)],
            1e-4,
        ));
        for d in 0..s.len() {
            v.push(case(
                format!("max_dim {s:?} dim {d}"),
                Op::MaxDim(d),
                vec![t(&s, 25)],
                0.0,
            ));
            let (start, len) = (s[d] / 2, s[d] - s[d] / 2);
            v.push(case(
                format!("narrow {s:?} dim {d}"),
                Op::Narrow { dim: d, start, len },
                vec![t(&s, 26)],
                0.0,
            ));
            v.push(case(
                format!("cat {s:?} dim {d}"),
                Op::Cat(d),
                vec![t(&s, 27), t(&s, 28)],
                0.0,
            ));
            for d1 in d + 1..s.len() {
                v.push(case(
                    format!("transpose {s:?} {d}<->{d1}"),
                    Op::Transpose(d, d1),
                    vec![t(&s, 29)],
                    0.0,
                ));
            }
        }
    }
    // Broadcasting both ways (attention's mask: [b, h, s, s] + [b, 1, 1, s]).
    v.push(case(
        "add mask broadcast".into(),
        Op::Add,
        vec![t(&[2, 3, 5, 5], 30), t(&[2, 1, 1, 5], 31)],
        1e-6,
    ));
    v.push(case(
        "mul pooling broadcast".into(),
        Op::Mul,
        vec![t(&[3, 1, 17], 32), t(&[3, 1, 1], 33)],
        1e-6,
    ));
    v.push(case(
        "rope_pairs".into(),
        Op::RopePairs,
        vec![t(&[1, 3, 7, 10], 34), t(&[7, 5], 35), t(&[7, 5], 36)],
        1e-5,
    ));
    v.push(case(
        "attention (GQA, 3 queries over 9 cached)".into(),
        Op::Attention { len: 9 },
        vec![
            t(&[1, 6, 3, 16], 37),
            t(&[1, 2, 12, 16], 38),
            t(&[1, 2, 12, 16], 39),
        ],
        1e-4,
    ));
    v
}

/// Model-sized cases for timing (SmolLM2-135M's widths: hidden 576, MLP
/// 1536, 9 heads of 64, 3 KV heads; MiniLM's 384): a decode step's and a
/// 64-token prefill's shapes.
pub fn bench_cases() -> Vec<OpCase> {
    let mut v = Vec::new();
    for rows in [1, 64] {
        v.push(case(
            format!("linear {rows}x576 · 1536x576ᵀ"),
            Op::LinearBias,
            vec![t(&[rows, 576], 1), t(&[1536, 576], 2), t(&[1536], 3)],
            1e-3,
        ));
        v.push(case(
            format!("rms_norm {rows}x576"),
            Op::RmsNorm(1e-5),
            vec![t(&[rows, 576], 4), t(&[576], 5)],
            1e-4,
        ));
        v.push(case(
            format!("silu {rows}x1536"),
            Op::Silu,
            vec![t(&[rows, 1536], 6)],
            1e-5,
        ));
        v.push(case(
            format!("mul {rows}x1536"),
            Op::Mul,
            vec![t(&[rows, 1536], 7), t(&[rows, 1536], 8)],
            1e-6,
        ));
        v.push(case(
            format!("add {rows}x576"),
            Op::Add,
            vec![t(&[rows, 576], 9), t(&[rows, 576], 10)],
            1e-6,
        ));
        v.push(case(
            format!("rope_pairs 9 heads x {rows}"),
            Op::RopePairs,
            vec![
                t(&[1, 9, rows, 64], 11),
                t(&[rows, 32], 12),
                t(&[rows, 32], 13),
            ],
            1e-5,
        ));
        v.push(case(
            format!("attention 9/3 heads, {rows} queries over 256"),
            Op::Attention { len: 256 },
            vec![
                t(&[1, 9, rows, 64], 14),
                t(&[1, 3, 256, 64], 15),
                t(&[1, 3, 256, 64], 16),
            ],
            1e-4,
        ));
    }
    v.push(case(
        "layer_norm 32x128x384".into(),
        Op::LayerNorm(1e-12),
        vec![t(&[32, 128, 384], 17), t(&[384], 18), t(&[384], 19)],
        1e-4,
    ));
    v.push(case(
        "gelu 32x128x1536".into(),
        Op::Gelu,
        vec![t(&[32, 128, 1536], 20)],
        1e-5,
    ));
    v.push(case(
        "softmax 32x12x128x128".into(),
        Op::Softmax,
        vec![t(&[32, 12, 128, 128], 21)],
        1e-5,
    ));
    v.push(case(
        "matmul_t 32x12x128x32 · 128x32ᵀ".into(),
        Op::MatmulT,
        vec![t(&[32, 12, 128, 32], 22), t(&[32, 12, 128, 32], 23)],
        1e-4,
    ));
    v
}

/// The cases whose name contains any of the comma-separated `filter`
/// words (all cases for an empty filter).
pub fn filtered(cases: Vec<OpCase>, filter: &str) -> Vec<OpCase> {
    let words: Vec<&str> = filter
        .split(',')
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .collect();
    cases
        .into_iter()
        .filter(|c| words.is_empty() || words.iter().any(|w| c.name.contains(w)))
        .collect()
}

/// The case's tensors on backend `b`.
pub fn upload<B: Backend>(b: &B, case: &OpCase) -> Result<Vec<B::Tensor>> {
    case.inputs
        .iter()
        .map(|(v, s)| b.tensor_f32(v, s))
        .collect()
}

fn input<'a, T>(x: &'a [T], i: usize, case: &OpCase) -> Result<&'a T> {
    x.get(i)
        .ok_or_else(|| Error::Input(format!("op case '{}' needs input {i}", case.name)))
}

/// Runs the case's op on already uploaded inputs (what the timing mode repeats).
pub fn apply<B: Backend>(b: &B, case: &OpCase, x: &[B::Tensor]) -> Result<B::Tensor> {
    let i = |k| input(x, k, case);
    match &case.op {
        Op::Matmul => b.matmul(i(0)?, i(1)?),
        Op::MatmulT => b.matmul_t(i(0)?, i(1)?),
        Op::LinearBias => b.linear(i(0)?, i(1)?, Some(i(2)?)),
        Op::Add => b.add(i(0)?, i(1)?),
        Op::Mul => b.mul(i(0)?, i(1)?),
        Op::Scale(s) => b.scale(i(0)?, *s),
        Op::Gelu => b.gelu(i(0)?),
        Op::Silu => b.silu(i(0)?),
        Op::Tanh => b.tanh(i(0)?),
        Op::Relu => b.relu(i(0)?),
        Op::Softmax => b.softmax_last(i(0)?),
        Op::LayerNorm(eps) => b.layer_norm(i(0)?, i(1)?, i(2)?, *eps),
        Op::RmsNorm(eps) => b.rms_norm(i(0)?, i(1)?, *eps),
        Op::MaxDim(d) => b.max_dim(i(0)?, *d),
        Op::Narrow { dim, start, len } => b.narrow(i(0)?, *dim, *start, *len),
        Op::Cat(d) => b.cat(x.get(..2).unwrap_or(x), *d),
        Op::Transpose(d0, d1) => b.transpose(i(0)?, *d0, *d1),
        Op::RopePairs => b.rope_pairs(i(0)?, i(1)?, i(2)?),
        Op::Attention { len } => b.attention(i(0)?, i(1)?, i(2)?, *len),
    }
}

/// Uploads, runs and reads back one case: its output shape and values.
pub async fn run<B: Backend>(b: &B, case: &OpCase) -> Result<(Vec<usize>, Vec<f32>)> {
    let x = upload(b, case)?;
    let y = apply(b, case, &x)?;
    Ok((b.shape(&y), b.read_f32(&y).await?))
}

/// Compares two backends' results of `case`: equal shapes and lengths, and
/// every element within the case's tolerance; the error names the case, the
/// worst element and both values.
pub fn compare(
    case: &OpCase,
    want: &(Vec<usize>, Vec<f32>),
    got: &(Vec<usize>, Vec<f32>),
) -> std::result::Result<(), String> {
    if want.0 != got.0 || want.1.len() != got.1.len() {
        return Err(format!(
            "{}: shape {:?} ({} values) vs {:?} ({} values)",
            case.name,
            want.0,
            want.1.len(),
            got.0,
            got.1.len()
        ));
    }
    let mut worst = (0f32, 0usize);
    for (k, (w, g)) in want.1.iter().zip(&got.1).enumerate() {
        let e = (w - g).abs() / (1.0 + w.abs());
        if e.is_nan() || e > worst.0 {
            worst = (if e.is_nan() { f32::INFINITY } else { e }, k);
        }
    }
    if worst.0 > case.tol {
        let k = worst.1;
        return Err(format!(
            "{}: element {k}: {} vs {} (relative error {} > {})",
            case.name, want.1[k], got.1[k], worst.0, case.tol
        ));
    }
    Ok(())
}
