//! Reading GPU buffers back to the host, on native and in the browser.
//!
//! `map_async` reports completion through a callback. Natively the callback fires
//! inside `Device::poll`; in the browser it fires from the event loop, so the
//! result is delivered through a small one-shot future that works in both.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use crate::error::{Error, Result};

type Slot = Arc<
    Mutex<(
        Option<std::result::Result<(), wgpu::BufferAsyncError>>,
        Option<Waker>,
    )>,
>;

struct MapFuture(Slot);

impl Future for MapFuture {
    type Output = std::result::Result<(), wgpu::BufferAsyncError>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut slot = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match slot.0.take() {
            Some(r) => Poll::Ready(r),
            None => {
                slot.1 = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// Copies `size` bytes of `src` into a fresh staging buffer and returns them as f32.
pub(crate) async fn read_f32(
    device: &wgpu::Device,
    queue: &wgpu::Queue,
    src: &wgpu::Buffer,
    label: &str,
    size: u64,
) -> Result<Vec<f32>> {
    let staging = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("cairn readback"),
        size,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
        label: Some("readback"),
    });
    encoder.copy_buffer_to_buffer(src, 0, &staging, 0, size);
    queue.submit(Some(encoder.finish()));

    let slot: Slot = Arc::new(Mutex::new((None, None)));
    let cb_slot = slot.clone();
    staging.slice(..).map_async(wgpu::MapMode::Read, move |r| {
        let mut s = cb_slot.lock().unwrap_or_else(|p| p.into_inner());
        s.0 = Some(r);
        if let Some(w) = s.1.take() {
            w.wake();
        }
    });
    // Natively this blocks until the copy is done and runs the callback; on WebGPU it is a no-op.
    device
        .poll(wgpu::PollType::wait_indefinitely())
        .map_err(|e| Error::GpuReadback {
            buffer: label.to_string(),
            message: e.to_string(),
        })?;
    MapFuture(slot).await.map_err(|e| Error::GpuReadback {
        buffer: label.to_string(),
        message: e.to_string(),
    })?;
    let out = {
        let view = staging
            .get_mapped_range(..)
            .map_err(|e| Error::GpuReadback {
                buffer: label.to_string(),
                message: e.to_string(),
            })?;
        bytemuck::pod_collect_to_vec::<u8, f32>(&view)
    };
    staging.unmap();
    Ok(out)
}
