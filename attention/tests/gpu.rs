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

/// llvmpipe's loop budget, which `Gpu::loop_budget` reports and the kernels respect: on
/// llvmpipe an invocation stops after 65 535 iterations of loops the compiler does not
/// unroll (a 100 000-trip loop ends at 65 535 and a loop nest after it runs once), while
/// constant 16-trip loops are unrolled and cost nothing; elsewhere every loop runs in full.
#[test]
fn llvmpipe_loop_budget() {
    let Some(gpu) = adapter_or_skip("llvmpipe_loop_budget") else {
        return;
    };
    let yb = gpu.zeros("y", 16);
    let src: &'static str = include_str!("data/loop_budget.wgsl");
    let pipe = gpu.pipeline("loop budget", src, "main", &[]).unwrap();
    gpu.dispatch("loop budget", &pipe, &[&yb], [3, 1, 1])
        .unwrap();
    let y: Vec<u32> = gpu.read(&yb, 4).unwrap();
    eprintln!("loop counts on {}: {y:?}", gpu.info().name);
    assert_eq!(
        y[2], 480_000,
        "a constant 16-trip inner loop must run in full"
    );
    match gpu.loop_budget() {
        Some(b) => {
            assert_eq!(u64::from(y[0]), b);
            assert!(y[1] < 100_000 && y[3] < 1_920_000, "{y:?}");
        }
        None => assert_eq!(y, [100_000, 100_000, 480_000, 1_920_000]),
    }
}
