//! The GPU context: device, buffers, pipelines, dispatch.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use bytemuck::Pod;
use wgpu::util::DeviceExt;

use crate::{Error, Result};

fn gpu_err(reason: impl Into<Cow<'static, str>>) -> Error {
    Error::Gpu {
        reason: reason.into(),
    }
}

/// What the harness prints about the adapter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GpuInfo {
    /// Adapter name (`llvmpipe (LLVM 15.0.6, 256 bits)` for lavapipe).
    pub name: String,
    /// Backend (`Vulkan`, `Metal`, `Dx12`, `Gl`, `BrowserWebGpu`).
    pub backend: String,
    /// Device type (`Cpu` for software adapters: their timings are correctness runs).
    pub device_type: String,
    /// Driver and its version.
    pub driver: String,
    /// Whether `SHADER_F16` is enabled on the device.
    pub shader_f16: bool,
}

impl GpuInfo {
    /// Whether this is a software (CPU) adapter.
    pub fn is_software(&self) -> bool {
        self.device_type == "Cpu"
    }
}

impl std::fmt::Display for GpuInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}, {}, {}{})",
            self.name,
            self.backend,
            self.device_type,
            self.driver,
            if self.shader_f16 { ", f16" } else { "" }
        )
    }
}

/// A cached pipeline's key: shader source identity, entry point, override constants.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct PipelineKey {
    shader: usize,
    entry: String,
    constants: Vec<(String, u64)>,
}

/// A device with its queue and a pipeline cache. `Send + Sync`: one per process serves
/// every thread ([`Gpu::shared`]).
pub struct Gpu {
    device: wgpu::Device,
    queue: wgpu::Queue,
    info: GpuInfo,
    modules: Mutex<HashMap<usize, wgpu::ShaderModule>>,
    pipelines: Mutex<HashMap<PipelineKey, Arc<wgpu::ComputePipeline>>>,
}

impl std::fmt::Debug for Gpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gpu")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl Gpu {
    /// Creates a context on the adapter wgpu's environment variables select (default: the
    /// high-performance adapter of any backend).
    ///
    /// # Errors
    ///
    /// [`Error::Gpu`] when no adapter is found or the device cannot be created.
    pub fn new() -> Result<Self> {
        let instance =
            wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapter = pollster::block_on(wgpu::util::initialize_adapter_from_env_or_default(
            &instance, None,
        ))
        .map_err(|e| gpu_err(format!("no GPU adapter: {e}")))?;
        let a = adapter.get_info();
        let shader_f16 = adapter.features().contains(wgpu::Features::SHADER_F16);
        let features = if shader_f16 {
            wgpu::Features::SHADER_F16
        } else {
            wgpu::Features::empty()
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("attention::gpu"),
            required_features: features,
            required_limits: wgpu::Limits::default(),
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .map_err(|e| gpu_err(format!("requesting a device on {}: {e}", a.name)))?;
        Ok(Self {
            device,
            queue,
            info: GpuInfo {
                name: a.name,
                backend: format!("{:?}", a.backend),
                device_type: format!("{:?}", a.device_type),
                driver: format!("{} {}", a.driver, a.driver_info).trim().to_string(),
                shader_f16,
            },
            modules: Mutex::new(HashMap::new()),
            pipelines: Mutex::new(HashMap::new()),
        })
    }

    /// The process-wide context, created on first use (tests and benches share one device,
    /// so parallel test threads never race on device creation).
    ///
    /// # Errors
    ///
    /// As [`Gpu::new`] (the failure is remembered: later calls return it again).
    pub fn shared() -> Result<&'static Gpu> {
        static GPU: OnceLock<std::result::Result<Gpu, String>> = OnceLock::new();
        GPU.get_or_init(|| Gpu::new().map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| gpu_err(e.clone()))
    }

    /// The loop iterations one invocation may run on this adapter, if limited: Mesa's
    /// llvmpipe (lavapipe, and llvmpipe's GL driver) stops every invocation after 65 535
    /// iterations in total of the loops its compiler does not unroll (loops with a constant
    /// trip count of 16 or less are unrolled; `tests/gpu.rs::llvmpipe_loop_budget` measures
    /// it) — silently, so kernels whose loops grow with the input check their estimate
    /// against this and refuse with [`Error::Gpu`] rather than return truncated results.
    pub fn loop_budget(&self) -> Option<u64> {
        self.info.name.contains("llvmpipe").then_some(65_535)
    }

    /// [`Error::Gpu`] when `iterations` (an estimate of one invocation's non-unrolled loop
    /// iterations) exceeds [`Gpu::loop_budget`].
    ///
    /// # Errors
    ///
    /// As described.
    pub fn check_loop_budget(&self, kernel: &str, iterations: u64) -> Result<()> {
        match self.loop_budget() {
            Some(b) if iterations > b => Err(gpu_err(format!(
                "{kernel}: about {iterations} loop iterations per invocation exceed {}'s budget \
                 of {b} (a software-adapter limit; use smaller sizes or a hardware GPU)",
                self.info.name
            ))),
            _ => Ok(()),
        }
    }

    /// The adapter's description.
    pub fn info(&self) -> &GpuInfo {
        &self.info
    }

    /// The device.
    pub fn device(&self) -> &wgpu::Device {
        &self.device
    }

    /// The queue.
    pub fn queue(&self) -> &wgpu::Queue {
        &self.queue
    }

    /// A storage buffer holding `data` (readable back with [`Gpu::read`]).
    pub fn upload<T: Pod>(&self, label: &str, data: &[T]) -> wgpu::Buffer {
        // wgpu refuses zero-sized bindings: pad an empty upload to 4 bytes.
        let bytes: &[u8] = bytemuck::cast_slice(data);
        let pad = [0u8; 4];
        self.device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents: if bytes.is_empty() { &pad } else { bytes },
                usage: wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_SRC
                    | wgpu::BufferUsages::COPY_DST,
            })
    }

    /// A zeroed storage buffer of `bytes` bytes (at least 4).
    pub fn zeros(&self, label: &str, bytes: usize) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes.max(4).next_multiple_of(4) as u64,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    /// A uniform buffer holding `value`.
    pub fn uniform<T: Pod>(&self, label: &str, value: &T) -> wgpu::Buffer {
        self.device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents: bytemuck::bytes_of(value),
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            })
    }

    /// Reads the first `len` elements of `buffer` back (waits for queued work).
    ///
    /// # Errors
    ///
    /// [`Error::Gpu`] if `len` elements exceed the buffer or mapping fails.
    pub fn read<T: Pod>(&self, buffer: &wgpu::Buffer, len: usize) -> Result<Vec<T>> {
        let bytes = (len * std::mem::size_of::<T>()) as u64;
        if bytes > buffer.size() {
            return Err(gpu_err(format!(
                "reading {bytes} bytes from a buffer of {}",
                buffer.size()
            )));
        }
        if len == 0 {
            return Ok(Vec::new());
        }
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: bytes.next_multiple_of(4),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut enc = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("readback"),
            });
        enc.copy_buffer_to_buffer(buffer, 0, &staging, 0, Some(bytes.next_multiple_of(4)));
        self.queue.submit([enc.finish()]);
        let (tx, rx) = std::sync::mpsc::channel();
        staging.slice(..).map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        self.wait()?;
        rx.recv()
            .map_err(|e| gpu_err(format!("mapping: {e}")))?
            .map_err(|e| gpu_err(format!("mapping: {e}")))?;
        let view = staging
            .slice(..)
            .get_mapped_range()
            .map_err(|e| gpu_err(format!("mapping: {e}")))?;
        let out = bytemuck::cast_slice::<u8, T>(&view[..bytes as usize]).to_vec();
        drop(view);
        staging.unmap();
        Ok(out)
    }

    /// Waits for all submitted work.
    ///
    /// # Errors
    ///
    /// [`Error::Gpu`] if polling the device fails.
    pub fn wait(&self) -> Result<()> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map(|_| ())
            .map_err(|e| gpu_err(format!("waiting for the device: {e}")))
    }

    /// The compute pipeline of `entry` in `source` with the given `override` constants,
    /// created once and cached (key: the source's address, the entry point, the constants).
    ///
    /// # Errors
    ///
    /// [`Error::Gpu`] if the shader or pipeline is rejected (the validation message).
    pub fn pipeline(
        &self,
        label: &str,
        source: &'static str,
        entry: &str,
        constants: &[(&str, f64)],
    ) -> Result<Arc<wgpu::ComputePipeline>> {
        let key = PipelineKey {
            shader: source.as_ptr() as usize,
            entry: entry.to_string(),
            constants: constants
                .iter()
                .map(|(k, v)| ((*k).to_string(), v.to_bits()))
                .collect(),
        };
        if let Some(p) = self.pipelines.lock().expect("pipeline cache").get(&key) {
            return Ok(Arc::clone(p));
        }
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = {
            let mut modules = self.modules.lock().expect("module cache");
            modules
                .entry(key.shader)
                .or_insert_with(|| {
                    self.device
                        .create_shader_module(wgpu::ShaderModuleDescriptor {
                            label: Some(label),
                            source: wgpu::ShaderSource::Wgsl(Cow::Borrowed(source)),
                        })
                })
                .clone()
        };
        let pipeline = self
            .device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(label),
                layout: None,
                module: &module,
                entry_point: Some(entry),
                compilation_options: wgpu::PipelineCompilationOptions {
                    constants,
                    ..Default::default()
                },
                cache: None,
            });
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(gpu_err(format!("{label}/{entry}: {e}")));
        }
        let pipeline = Arc::new(pipeline);
        self.pipelines
            .lock()
            .expect("pipeline cache")
            .insert(key, Arc::clone(&pipeline));
        Ok(pipeline)
    }

    /// Binds `buffers` to `@group(0) @binding(0..)` of `pipeline`, dispatches
    /// `workgroups`, and submits (does not wait: [`Gpu::read`] or [`Gpu::wait`] does).
    ///
    /// # Errors
    ///
    /// [`Error::Gpu`] for a dispatch larger than the device allows or a binding rejected
    /// by validation.
    pub fn dispatch(
        &self,
        label: &str,
        pipeline: &wgpu::ComputePipeline,
        buffers: &[&wgpu::Buffer],
        workgroups: [u32; 3],
    ) -> Result<()> {
        let max = self.device.limits().max_compute_workgroups_per_dimension;
        if workgroups.iter().any(|&w| w > max) {
            return Err(gpu_err(format!(
                "{label}: {workgroups:?} workgroups (at most {max} per dimension)"
            )));
        }
        if workgroups.contains(&0) {
            return Ok(());
        }
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let layout = pipeline.get_bind_group_layout(0);
        let entries: Vec<wgpu::BindGroupEntry<'_>> = buffers
            .iter()
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: b.as_entire_binding(),
            })
            .collect();
        let bind = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(label),
            layout: &layout,
            entries: &entries,
        });
        let mut enc = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(label) });
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some(label),
                timestamp_writes: None,
            });
            pass.set_pipeline(pipeline);
            pass.set_bind_group(0, &bind, &[]);
            pass.dispatch_workgroups(workgroups[0], workgroups[1], workgroups[2]);
        }
        self.queue.submit([enc.finish()]);
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(gpu_err(format!("{label}: {e}")));
        }
        Ok(())
    }
}

/// The shared context for a test, or `None` with a `SKIP` line on stderr when there is no
/// adapter — except in CI (`CI` set), where a missing adapter is a failure: `.ci/run`
/// installs lavapipe so every GPU test really runs there.
///
/// # Panics
///
/// In CI, when no adapter is found.
pub fn adapter_or_skip(test: &str) -> Option<&'static Gpu> {
    match Gpu::shared() {
        Ok(g) => Some(g),
        Err(e) if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) => {
            panic!("{test}: no GPU adapter in CI ({e}); .ci/run installs mesa-vulkan-drivers")
        }
        Err(e) => {
            eprintln!("SKIP {test}: {e} (install mesa-vulkan-drivers and libvulkan1 for lavapipe)");
            None
        }
    }
}
