#!/usr/bin/env python3
"""Our WGSL kernels next to PyTorch on the same GPU and shapes, with the ratios.

Runs `adaprec gpu-bench` (a prebuilt x86-64 release binary: no Rust toolchain needed) for
f32 matmul at n^3 and flash attention at (heads, n, d), then PyTorch on the same shapes:
`torch.matmul` in fp32 with TF32 off, and `scaled_dot_product_attention` in fp32. Prints
one line per op with both throughputs and ours / PyTorch.

Targets (issue 7): matmul >= 50 % of PyTorch fp32 (TF32 off) at 4096^3; flash attention
>= 25 % of PyTorch SDPA fp32 at n = 4096, d = 64.

Usage (on the GPU machine, after the Vulkan loader is in place; see scripts/gpu_compare.sh):
    python3 scripts/gpu_compare.py --adaprec target/release/adaprec [--n 4096] [--heads 8]

Our flash timing includes upload and readback (the library call does both), so its ratio is
a lower bound; the matmul timing is dispatch + wait on resident buffers.
"""

import argparse
import json
import subprocess
import sys


def ours(adaprec, op, n, d, heads, reps):
    cmd = [adaprec, "gpu-bench", "--op", op, "--n", str(n), "--d", str(d),
           "--heads", str(heads), "--reps", str(reps), "--json"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def torch_time(fn, reps):
    import torch
    fn()
    torch.cuda.synchronize()
    best = float("inf")
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        best = min(best, start.elapsed_time(end) / 1e3)
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--adaprec", default="target/release/adaprec")
    ap.add_argument("--n", type=int, default=4096)
    ap.add_argument("--d", type=int, default=64)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--reps", type=int, default=10)
    args = ap.parse_args()

    import torch
    if not torch.cuda.is_available():
        sys.exit("PyTorch sees no CUDA device")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    dev = torch.device("cuda")
    print(f"GPU: {torch.cuda.get_device_name(0)}; torch {torch.__version__}")

    n, d, h = args.n, args.d, args.heads
    rows = []
    m = ours(args.adaprec, "matmul", n, d, h, args.reps)
    a = torch.randn(n, n, device=dev, dtype=torch.float32)
    b = torch.randn(n, n, device=dev, dtype=torch.float32)
    t = torch_time(lambda: torch.matmul(a, b), args.reps)
    rows.append(("matmul f32 %d^3" % n, m["gflops"], 2 * n**3 / t / 1e9, m["adapter"], 0.50))

    f = ours(args.adaprec, "flash", n, d, h, args.reps)
    q = torch.randn(1, h, n, d, device=dev, dtype=torch.float32)
    k = torch.randn(1, h, n, d, device=dev, dtype=torch.float32)
    v = torch.randn(1, h, n, d, device=dev, dtype=torch.float32)
    sdpa = torch.nn.functional.scaled_dot_product_attention
    t = torch_time(lambda: sdpa(q, k, v), args.reps)
    rows.append(("flash f32 h=%d n=%d d=%d" % (h, n, d), f["gflops"], 4 * n * n * d * h / t / 1e9,
                 f["adapter"], 0.25))

    for name, g_ours, g_torch, adapter, target in rows:
        ratio = g_ours / g_torch
        verdict = "meets" if ratio >= target else "below"
        print(f"{name}: ours {g_ours:.1f} GFLOP/s ({adapter}), PyTorch {g_torch:.1f} GFLOP/s, "
              f"ratio {ratio:.3f} ({verdict} the {target:.0%} target)")
    print(json.dumps([{"op": r[0], "ours_gflops": r[1], "torch_gflops": r[2],
                       "ratio": r[1] / r[2], "target": r[4]} for r in rows]))


if __name__ == "__main__":
    main()
