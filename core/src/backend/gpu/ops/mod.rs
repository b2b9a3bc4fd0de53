//! The op families of [`super::GpuBackend`], one file each, next to the
//! kernels they dispatch (`Backend` trait methods delegate to the `op_*`
//! methods defined here).

mod attention;
mod elementwise;
mod layout;
mod linear;
mod norm;
mod readback;

use super::backend::GpuBackend;
use super::kernels::Kernel;
use super::matmul::{Params as MatmulParams, TILE};
use super::params::*;
use super::readback::read_f32;
use super::tensor::*;
use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::quant::GgmlType;
