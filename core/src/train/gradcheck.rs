//! Every op of the training backend checked against finite differences:
//! for `L = Σ op(x) ⊙ r` (fixed random `r`), candle's backward gradient of
//! each input must equal `(L(x + ε) − L(x − ε)) / 2ε` element by element.

use candle_core::{Device, Tensor, Var};

use crate::backend::Backend;
use crate::backend::cpu::CpuBackend;
use crate::util::pseudo_random;

type Op = dyn Fn(&CpuBackend, &[Tensor]) -> Tensor;

fn loss(b: &CpuBackend, f: &Op, xs: &[Tensor], r: &[f32]) -> Tensor {
    let out = f(b, xs);
    let r = Tensor::from_slice(r, out.dims(), &Device::Cpu).unwrap();
    (out * r).unwrap().sum_all().unwrap()
}

fn check(name: &str, inputs: &[(Vec<f32>, Vec<usize>)], f: &Op) {
    let b = CpuBackend::for_training();
    let vars: Vec<Var> = inputs
        .iter()
        .map(|(d, s)| Var::from_slice(d, s.as_slice(), &Device::Cpu).unwrap())
        .collect();
    let xs: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
    let n_out = f(&b, &xs).elem_count();
    let r = pseudo_random(n_out, 99);
    let grads = loss(&b, f, &xs, &r).backward().unwrap();
    let eps = 1e-2f32;
    for (i, (data, shape)) in inputs.iter().enumerate() {
        let g = grads
            .get(vars[i].as_tensor())
            .unwrap_or_else(|| panic!("{name}: no gradient for input {i}"))
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let at = |d: &[f32]| -> f32 {
            let xs: Vec<Tensor> = inputs
                .iter()
                .enumerate()
                .map(|(k, (dk, sk))| {
                    let v = if k == i { d } else { dk.as_slice() };
                    Tensor::from_slice(v, sk.as_slice(), &Device::Cpu).unwrap()
                })
                .collect();
            loss(&b, f, &xs, &r).to_scalar::<f32>().unwrap()
        };
        let _ = shape;
        for j in 0..data.len() {
            let (mut up, mut down) = (data.clone(), data.clone());
            up[j] += eps;
            down[j] -= eps;
            let numeric = (at(&up) - at(&down)) / (2.0 * eps);
            let err = (numeric - g[j]).abs();
            assert!(
                err <= 2e-2 * (1.0 + numeric.abs()),
                "{name}: input {i}[{j}]: backward {} vs finite difference {numeric}",
                g[j]
            );
        }
    }
}

fn t(shape: &[usize], seed: u64) -> (Vec<f32>, Vec<usize>) {
    let n = shape.iter().product();
    (
        pseudo_random(n, seed).iter().map(|v| 2.0 * v).collect(),
        shape.to_vec(),
    )
}

/// Away from 0 (ReLU's kink) and from ties (max).
fn spread(shape: &[usize]) -> (Vec<f32>, Vec<usize>) {
    let n: usize = shape.iter().product();
    let v = (0..n)
        .map(|i| {
            let k = ((i * 7) % n) as f32 - n as f32 / 2.0;
            0.3 * k + 0.11
        })
        .collect();
    (v, shape.to_vec())
}

#[test]
fn elementwise_and_shape_ops() {
    check("add", &[t(&[2, 3], 1), t(&[3], 2)], &|b, x| {
        b.add(&x[0], &x[1]).unwrap()
    });
    check("mul", &[t(&[2, 3], 3), t(&[2, 3], 4)], &|b, x| {
        b.mul(&x[0], &x[1]).unwrap()
    });
    check("scale", &[t(&[5], 5)], &|b, x| b.scale(&x[0], 1.7).unwrap());
    check("gelu", &[t(&[6], 6)], &|b, x| b.gelu(&x[0]).unwrap());
    check("silu", &[t(&[6], 7)], &|b, x| b.silu(&x[0]).unwrap());
    check("tanh", &[t(&[6], 8)], &|b, x| b.tanh(&x[0]).unwrap());
    check("relu", &[spread(&[6])], &|b, x| b.relu(&x[0]).unwrap());
    check("reshape", &[t(&[2, 3], 9)], &|b, x| {
        b.reshape(&x[0], &[3, 2]).unwrap()
    });
    check("transpose", &[t(&[2, 3, 2], 10)], &|b, x| {
        b.transpose(&x[0], 0, 2).unwrap()
    });
    check("narrow", &[t(&[4, 3], 11)], &|b, x| {
        b.narrow(&x[0], 0, 1, 2).unwrap()
    });
    check("cat", &[t(&[2, 2], 12), t(&[2, 3], 13)], &|b, x| {
        b.cat(&[x[0].clone(), x[1].clone()], 1).unwrap()
    });
    check("max_dim", &[spread(&[3, 4])], &|b, x| {
        b.max_dim(&x[0], 1).unwrap()
    });
}

#[test]
fn matrix_ops() {
    check(
        "matmul",
        &[t(&[2, 2, 3], 20), t(&[2, 3, 4], 21)],
        &|b, x| b.matmul(&x[0], &x[1]).unwrap(),
    );
    check("matmul_t", &[t(&[2, 3], 22), t(&[4, 3], 23)], &|b, x| {
        b.matmul_t(&x[0], &x[1]).unwrap()
    });
    check(
        "linear",
        &[t(&[2, 3, 4], 24), t(&[5, 4], 25), t(&[5], 26)],
        &|b, x| b.linear(&x[0], &x[1], Some(&x[2])).unwrap(),
    );
    // QLoRA's frozen base: the weight stays quantized, gradients reach the input.
    check("qlinear (Q8_0, Q4_1)", &[t(&[3, 32], 28)], &|b, x| {
        let w = pseudo_random(4 * 32, 29);
        let mut outs = Vec::new();
        for ty in [
            crate::formats::gguf::GgmlType::Q8_0,
            crate::formats::gguf::GgmlType::Q4_1,
        ] {
            let bytes = crate::quant::quantize(ty, &w, "w").unwrap();
            let q = b.qmatrix(ty, &bytes, 4, 32, "w").unwrap();
            outs.push(b.qlinear(&x[0], &q).unwrap());
        }
        b.cat(&outs, 1).unwrap()
    });
    check("embedding", &[t(&[5, 3], 27)], &|b, x| {
        let ids = b.tensor_u32(&[4, 0, 4, 2], &[2, 2]).unwrap();
        b.embedding(&ids, &x[0]).unwrap()
    });
}

#[test]
fn normalisation_and_softmax() {
    check("softmax", &[t(&[2, 5], 30)], &|b, x| {
        b.softmax_last(&x[0]).unwrap()
    });
    check(
        "layer_norm",
        &[t(&[2, 6], 31), t(&[6], 32), t(&[6], 33)],
        &|b, x| b.layer_norm(&x[0], &x[1], &x[2], 1e-5).unwrap(),
    );
    check("rms_norm", &[t(&[2, 6], 34), t(&[6], 35)], &|b, x| {
        b.rms_norm(&x[0], &x[1], 1e-5).unwrap()
    });
    check("rope_pairs", &[t(&[1, 2, 3, 4], 36)], &|b, x| {
        let cos: Vec<f32> = (0..6).map(|i| (i as f32 * 0.3).cos()).collect();
        let sin: Vec<f32> = (0..6).map(|i| (i as f32 * 0.3).sin()).collect();
        let (c, s) = (
            b.tensor_f32(&cos, &[3, 2]).unwrap(),
            b.tensor_f32(&sin, &[3, 2]).unwrap(),
        );
        b.rope_pairs(&x[0], &c, &s).unwrap()
    });
}

#[test]
fn attention_ops() {
    check("encoder_attention", &[t(&[2, 3, 12], 40)], &|b, x| {
        b.encoder_attention(&x[0], &[1, 1, 0, 1, 1, 1], 2).unwrap()
    });
    check(
        "attention",
        &[
            t(&[1, 4, 2, 3], 41),
            t(&[1, 2, 5, 3], 42),
            t(&[1, 2, 5, 3], 43),
        ],
        &|b, x| b.attention(&x[0], &x[1], &x[2], 4).unwrap(),
    );
}
