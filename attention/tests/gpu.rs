//! The GPU context on whatever adapter is present (lavapipe in CI), and naga validation of
//! every `.wgsl` file.

use attention::gpu::{Gpu, adapter_or_skip};

/// Every shader of `src/gpu/shaders/`, parsed and validated by naga (the version wgpu
/// uses), with the capabilities the WebGPU default device has plus f16.
#[test]
fn every_wgsl_file_validates_with_naga() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/gpu/shaders");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "wgsl") {
            continue;
        }
        let src = std::fs::read_to_string(&path).unwrap();
        let module = naga::front::wgsl::parse_str(&src)
            .unwrap_or_else(|e| panic!("{}: {}", path.display(), e.emit_to_string(&src)));
        let caps = naga::valid::Capabilities::SHADER_FLOAT16
            | naga::valid::Capabilities::SHADER_FLOAT16_IN_FLOAT32;
        naga::valid::Validator::new(naga::valid::ValidationFlags::all(), caps)
            .validate(&module)
            .unwrap_or_else(|e| panic!("{}: {}", path.display(), e.emit_to_string(&src)));
        n += 1;
    }
    assert!(n >= 1, "no shaders found in {}", dir.display());
}

#[test]
fn context_uploads_dispatches_and_reads_back() {
    let Some(gpu) = adapter_or_skip("context_uploads_dispatches_and_reads_back") else {
        return;
    };
    eprintln!("adapter: {}", gpu.info());
    let x: Vec<f32> = (0..1000).map(|i| i as f32).collect();
    let xb = gpu.upload("x", &x);
    let yb = gpu.zeros("y", 4 * x.len());
    let params: [u32; 2] = [x.len() as u32, 2.5f32.to_bits()];
    let pb = gpu.uniform("p", &params);
    let src: &'static str = include_str!("../src/gpu/shaders/scale.wgsl");
    let pipe = gpu.pipeline("scale", src, "main", &[("WG", 64.0)]).unwrap();
    gpu.dispatch("scale", &pipe, &[&xb, &yb, &pb], [16, 1, 1])
        .unwrap();
    let y: Vec<f32> = gpu.read(&yb, x.len()).unwrap();
    assert!(
        y.iter()
            .zip(&x)
            .all(|(a, b)| a.to_bits() == (2.5 * b).to_bits())
    );
    // The cache returns the same pipeline for the same key.
    let again = gpu.pipeline("scale", src, "main", &[("WG", 64.0)]).unwrap();
    assert!(std::sync::Arc::ptr_eq(&pipe, &again));
    // Errors are typed, not panics.
    assert!(gpu.read::<f32>(&yb, 10_000).is_err());
    assert!(
        gpu.dispatch("big", &pipe, &[&xb, &yb, &pb], [70_000, 1, 1])
            .is_err()
    );
    let _ = Gpu::shared().unwrap();
}

/// Demonstrates llvmpipe's per-invocation loop budget: prints `[65535, 1]` on lavapipe
/// (100 000 expected for both), where a real GPU prints `[100000, 100000]`.
#[test]
fn tmp_loop_probe() {
    let Some(gpu) = adapter_or_skip("probe") else {
        return;
    };
    let yb = gpu.zeros("y", 8);
    let src: &'static str = include_str!("loop_probe.wgsl");
    let pipe = gpu.pipeline("loop", src, "main", &[]).unwrap();
    gpu.dispatch("loop", &pipe, &[&yb], [1, 1, 1]).unwrap();
    let y: Vec<u32> = gpu.read(&yb, 2).unwrap();
    eprintln!("loop counts: {y:?}");
}
