//! The kernels as WGSL compute shaders, dispatched through `wgpu` on any GPU (Vulkan, Metal,
//! DX12, the browser's WebGPU) — and, for tests, on Mesa's software Vulkan driver (lavapipe).
//!
//! [`Gpu`] is the small context the workspace shares: instance, adapter, device and queue;
//! buffer upload and readback through `bytemuck`; a pipeline cache keyed by shader, entry
//! point and override constants; labels on everything. Adapter choice honours wgpu's own
//! environment variables (`WGPU_BACKEND`, `WGPU_ADAPTER_NAME`, `WGPU_POWER_PREF`).
//!
//! The device is requested with the **WebGPU default limits** (16 KiB of workgroup memory,
//! 8 storage buffers per stage, 256 invocations per workgroup), so every shader here also
//! runs in a browser; `SHADER_F16` is requested when the adapter has it.
//!
//! Each kernel is a `.wgsl` file in `shaders/` beside the Rust that dispatches it, tile
//! sizes as WGSL `override` constants.

pub mod context;
pub mod dilated;
pub mod flash;
pub mod infini;
pub mod matmul;
pub mod qmatvec;
pub mod softmax;

pub use context::{Gpu, GpuInfo, adapter_or_skip};
