//! CPU backend: candle-core tensors.

use candle_core::{Device, Tensor};

use crate::error::{Error, Result};

/// Checks that a row-major buffer holds exactly `rows × cols` values.
pub(crate) fn check_len(
    op: &'static str,
    name: &str,
    len: usize,
    rows: usize,
    cols: usize,
) -> Result<()> {
    if len != rows * cols {
        return Err(Error::Shape {
            op,
            detail: format!(
                "{name} has {len} elements, expected {rows}×{cols} = {}",
                rows * cols
            ),
        });
    }
    Ok(())
}

/// `C[m×n] = A[m×k] · B[k×n]` (or `A · Bᵀ` with `B` stored `n×k` when
/// `transpose_b`), all row-major, computed by candle-core on the CPU.
pub fn matmul_f32(
    a: &[f32],
    b: &[f32],
    m: usize,
    k: usize,
    n: usize,
    transpose_b: bool,
) -> Result<Vec<f32>> {
    check_len("matmul_f32", "A", a.len(), m, k)?;
    let (b_rows, b_cols) = if transpose_b { (n, k) } else { (k, n) };
    check_len("matmul_f32", "B", b.len(), b_rows, b_cols)?;
    let dev = Device::Cpu;
    let a = Tensor::from_slice(a, (m, k), &dev)?;
    let b = Tensor::from_slice(b, (b_rows, b_cols), &dev)?;
    let b = if transpose_b { b.t()? } else { b };
    Ok(a.matmul(&b)?.flatten_all()?.to_vec1::<f32>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matmul_matches_hand_computed() {
        // [1 2; 3 4] · [5 6; 7 8] = [19 22; 43 50]
        let c = matmul_f32(&[1., 2., 3., 4.], &[5., 6., 7., 8.], 2, 2, 2, false).unwrap();
        assert_eq!(c, vec![19., 22., 43., 50.]);
        // Same B stored transposed.
        let c = matmul_f32(&[1., 2., 3., 4.], &[5., 7., 6., 8.], 2, 2, 2, true).unwrap();
        assert_eq!(c, vec![19., 22., 43., 50.]);
    }

    #[test]
    fn matmul_rejects_wrong_lengths() {
        let err = matmul_f32(&[1., 2., 3.], &[1., 2.], 2, 2, 1, false).unwrap_err();
        assert!(
            err.to_string().contains("A has 3 elements, expected 2×2"),
            "{err}"
        );
    }
}
