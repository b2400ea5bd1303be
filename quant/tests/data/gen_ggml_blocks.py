#!/usr/bin/env python3
"""Generates ggml_blocks.bin: what gguf-py (the `gguf` package, 0.19.0, with numpy 2.4)
makes of a set of f32 rows in GGML's Q8_0, Q4_0 and Q4_1 block formats, for quant's
integration test (`quant/tests/ggml.rs`) to compare against byte for byte.

    python3 -m venv /tmp/ggufenv && /tmp/ggufenv/bin/pip install gguf==0.19.0 numpy
    /tmp/ggufenv/bin/python quant/tests/data/gen_ggml_blocks.py [--libggml LIB] [OUT]

The reference is ggml's C code (`quantize_row_q8_0_ref`, `quantize_row_q4_0_ref`,
`quantize_row_q4_1_ref`, `dequantize_row_q*` in ggml/src/ggml-quants.c, with
`GGML_FP32_TO_FP16` / `GGML_FP16_TO_FP32` from ggml/src/ggml-impl.h). gguf-py's numpy
versions (gguf/quants.py) are meant to match it, and this script checks that they do: it
also runs `c_semantics_*` below, a scalar transcription of those C functions (float32
arithmetic, one rounding per C operation), and compares. They agree on every row except
in three documented ways, where gguf-py does not follow the C code:

1. NaN inputs (reason 1). C finds the block extremes with comparisons that are false for
   NaN: Q4_0's `if (amax < fabsf(v))` and Q4_1's `if (v < min)` / `if (v > max)` skip
   NaNs, and Q8_0's `amax = MAX(amax, fabsf(v))` with `MAX(a, b) = a > b ? a : b` makes
   amax NaN at a NaN and then replaces it with the next element's magnitude (so amax is
   NaN only when the block's last element is NaN). numpy's `max`, `min` and `argmax`
   propagate NaN instead.
2. Signed zeros (reason 2). C starts Q4_0's search at `max = 0.0f` (+0) and keeps the
   first strictly larger magnitude, so a block of zeros of either sign gets
   d = +0 / -8 = -0; gguf-py takes `max` from `argmax`, i.e. the block's first element,
   so a block starting with -0.0 gets d = +0. Q4_1 keeps the first of equal minima
   (`v < min` is strict); numpy's `min` over mixed +0/-0 may return either.
3. Q4_1 blocks of all +inf or all -inf (reason 3). C starts from min = FLT_MAX and
   max = -FLT_MAX, and `v < min` is false for +inf, so an all-+inf block keeps
   min = FLT_MAX (m = f16(FLT_MAX) = +inf) and gets d = (inf - FLT_MAX) / 15 = +inf;
   gguf-py's min is +inf and d = (inf - inf) / 15 = NaN. Likewise for -inf and max.

Each such (row, format) is flagged in the fixture with its reason and also carries the
C-semantics blocks, which the Rust test uses instead; the script aborts on any other
disagreement. Dequantization has no such divergence (`q * d` is exact in float32, so
gguf-py's `d * q + m` rounds like C's `x0*d + m`), and the stored dequantized values are
gguf-py's for every row.

Both gguf-py and the C semantics here round x*id before adding 8.5 (Q4_0) or 0.5 (Q4_1),
as ggml compiled without FMA contraction does (x86-64, where ggml-base is built without
-mfma). The `fma_sensitive_*` rows hold values whose code would differ under a fused
multiply-add, so an implementation that fuses fails on them.

Where C's behaviour is undefined (converting to int8_t a float that does not fit: NaN or
infinite for non-finite inputs and when 1/d overflows to infinity, or a finite value
beyond +-127 for Q8_0 elements before a NaN, which resets amax), the stored values are
what x86-64 produces: truncation to a 32-bit integer by cvttss2si (0x80000000 for NaN,
infinities and values beyond +-2^31) and its low byte, so non-finite values give code 0
and finite ones wrap modulo 256; gguf-py's numpy casts and ggml compiled with gcc agree.

With `--libggml LIB` (a shared library exporting quantize_row_q8_0_ref, ... ,
dequantize_row_q4_1, e.g. ggml-quants.c from llama.cpp compiled with
`gcc -O3 -shared -fPIC` plus stubs for ggml_abort and friends), the script also checks
every stored expectation against the compiled C: C-semantics blocks byte for byte and
gguf-py's dequantized values bit for bit (NaNs compared as NaN).

Inputs are stored in the fixture (f32 bits), so the Rust side needs no generator.

File layout (little endian): b"GGMLBLK1", u32 row count, then per row: u8 name length,
name (ASCII), u32 n (a multiple of 32), n f32 inputs, then for each format in the order
Q8_0, Q4_0, Q4_1: u8 reason (0: gguf-py agrees with C; 1, 2 or 3: see above), n/32 gguf-py
blocks, the C-semantics blocks if reason != 0, and n f32: gguf-py's dequantization of
gguf-py's blocks.
"""
import argparse
import ctypes
import math
import struct
import warnings
from importlib.metadata import version

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import quants

assert version("gguf") == "0.19.0", version("gguf")

F32 = np.float32
QK = 32
FORMATS = [("q8_0", T.Q8_0, 34), ("q4_0", T.Q4_0, 18), ("q4_1", T.Q4_1, 20)]
FLT_MAX = F32(np.finfo(np.float32).max)


# ---------------------------------------------------------------- C semantics, scalar


def fp16_bits(v):
    """GGML_FP32_TO_FP16: round to nearest even, overflow to inf, NaN -> sign | 0x7E00."""
    v = F32(v)
    sign = 0x8000 if np.signbit(v) else 0
    if np.isnan(v):
        return sign | 0x7E00
    return int(np.array(v, dtype=F32).astype(np.float16).view(np.uint16))


def to_int8_x86(v):
    """(int8_t)v as x86-64 does it: cvttss2si (truncate toward zero; NaN, inf and values
    beyond +-2^31 give 0x80000000), then the low byte, as a signed value."""
    if not np.isfinite(v) or not -(2.0**31) <= float(v) < 2.0**31:
        return 0
    return (math.trunc(float(v)) + 128) % 256 - 128


def roundf(v):
    """C roundf: halfway cases away from zero (exact: float64 holds |v| + 0.5)."""
    if not np.isfinite(v):
        return v
    return math.copysign(math.floor(abs(float(v)) + 0.5), float(v))


def c_semantics_q8_0(x):
    out = bytearray()
    for b in x.reshape(-1, QK):
        amax = F32(0.0)
        for v in b:
            a = F32(abs(v))
            amax = amax if amax > a else a  # MAX(amax, fabsf(v))
        d = F32(amax / F32(127))
        idv = F32(F32(1.0) / d) if d != 0 else F32(0.0)
        out += struct.pack("<H", fp16_bits(d))
        for v in b:
            x0 = F32(v * idv)
            r = roundf(x0)
            out += struct.pack("<b", to_int8_x86(r))
    return bytes(out)


def c_semantics_q4_0(x):
    out = bytearray()
    for b in x.reshape(-1, QK):
        amax = F32(0.0)
        mx = F32(0.0)
        for v in b:
            if amax < F32(abs(v)):
                amax = F32(abs(v))
                mx = v
        d = F32(mx / F32(-8))
        idv = F32(F32(1.0) / d) if d != 0 else F32(0.0)
        out += struct.pack("<H", fp16_bits(d))
        codes = []
        for v in b:
            x0 = F32(v * idv)
            s = F32(x0 + F32(8.5))
            codes.append(min(15, to_int8_x86(s)) & 0xFF)
        for j in range(QK // 2):
            out.append(codes[j] | (codes[j + QK // 2] << 4) & 0xFF)
    return bytes(out)


def c_semantics_q4_1(x):
    out = bytearray()
    for b in x.reshape(-1, QK):
        mn = FLT_MAX
        mx = F32(-FLT_MAX)
        for v in b:
            if v < mn:
                mn = v
            if v > mx:
                mx = v
        d = F32(F32(mx - mn) / F32(15))
        idv = F32(F32(1.0) / d) if d != 0 else F32(0.0)
        out += struct.pack("<HH", fp16_bits(d), fp16_bits(mn))
        codes = []
        for v in b:
            x0 = F32(F32(v - mn) * idv)
            s = F32(x0 + F32(0.5))
            codes.append(min(15, to_int8_x86(s)) & 0xFF)
        for j in range(QK // 2):
            out.append(codes[j] | (codes[j + QK // 2] << 4) & 0xFF)
    return bytes(out)


C_SEMANTICS = {"q8_0": c_semantics_q8_0, "q4_0": c_semantics_q4_0, "q4_1": c_semantics_q4_1}


def divergence_reason(fmt, x):
    """Why gguf-py may differ from C on this row (see the module docstring), or 0."""
    if np.isnan(x).any():
        return 1
    if fmt != "q8_0":
        blocks = x.reshape(-1, QK)
        for b in blocks:
            if fmt == "q4_1" and np.isinf(b).all() and (b == b[0]).all():
                return 3
            zeros = b[b == 0]
            if len(zeros) and np.signbit(zeros).any() and (
                fmt == "q4_0" and np.all(b == 0) or fmt == "q4_1" and b.min() == 0
            ):
                return 2
    return 0


# ---------------------------------------------------------------- rows

rows = []


def row(name, values):
    x = np.asarray(values, dtype=F32).reshape(-1)
    assert len(x) % QK == 0 and len(x) > 0, (name, len(x))
    assert len(name) < 256
    rows.append((name, x))


def nxt(v, toward):
    return np.nextafter(F32(v), F32(toward))


rng = np.random.default_rng(20240611)

# zeros and signed zeros
row("zeros", np.zeros(32))
row("neg_zeros", np.full(32, -0.0))
row("zeros_pos_neg", [0.0, -0.0] * 16)
row("zeros_neg_pos", [-0.0, 0.0] * 16)
row("zero_then_nonzero_block", np.concatenate([np.zeros(32), rng.standard_normal(32)]))
row("neg_zero_min_q4_1", [-0.0] + list(rng.uniform(0.5, 2.0, 31)))

# constant rows
for c in [1.0, -1.0, 0.1, -3.7, 7.0, 1000.3, -65504.0, 1e-3, 3e-7]:
    row(f"const_{c:g}", np.full(32, c))

# exact ties after scaling (d = 1 exactly)
row("q8_0_ties_d1", [127.0, -127.0] + [(k + 0.5) * (1 if k % 2 else -1) for k in range(30)])
row("q4_0_ties_max_neg", [-8.0] + [k + 0.5 for k in range(-8, 8)] + [8.0] + [0.0] * 14)
row("q4_0_ties_max_pos", [8.0] + [k + 0.5 for k in range(-8, 8)] + [-8.0] + [0.0] * 14)
row("q4_1_ties", [0.0, 15.0] + [k + 0.5 for k in range(15)] + [float(k) for k in range(15)])
# one float32 ulp either side of each tie; with d = 1 the f32 sum x*id + 8.5 (or + 0.5)
# rounds some of these onto the next integer
row(
    "q8_0_near_ties",
    [127.0, -127.0] + [float(nxt(k + 0.5, s * 1e9)) for k in range(15) for s in (1, -1)],
)
row(
    "q4_0_near_ties",
    [-8.0]
    + [float(nxt(k + 0.5, s * 1e9)) for k in range(-8, 7) for s in (1, -1)]
    + [0.0],
)
row(
    "q4_1_near_ties",
    [0.0, 15.0] + [float(nxt(k + 0.5, s * 1e9)) for k in range(15) for s in (1, -1)],
)
# elements whose code depends on rounding x*id before adding 8.5 (or 0.5): a fused
# multiply-add (an FMA-contracting C build) truncates them to another code
def fma_sensitive(idv, offset):
    """Values x near code boundaries for which trunc(fl(fl(x*idv) + offset)) differs from
    trunc(fl(x*idv + offset)) (exact product and sum, one rounding)."""
    from fractions import Fraction

    out = []
    for n in range(1, 16):
        x = F32((n - offset) / float(idv))  # t = n - offset: where trunc(t + offset) steps
        for _ in range(16):
            x = np.nextafter(x, F32(-np.inf))
        for _ in range(32):
            unfused = math.trunc(float(F32(F32(x * idv) + F32(offset))))
            exact = Fraction(float(x)) * Fraction(float(idv)) + Fraction(offset)
            near = F32(float(exact))
            cands = [np.nextafter(near, F32(-np.inf)), near, np.nextafter(near, F32(np.inf))]
            fused = min(cands, key=lambda v: (abs(Fraction(float(v)) - exact), int(np.array(v).view(np.uint32)) & 1))
            if math.trunc(float(fused)) != unfused:
                out.append(x)
            x = np.nextafter(x, F32(np.inf))
    return out


def fma_row(name, lead, offset, ident, want):
    """Blocks [lead..., sensitive values..., zeros] for successive scales until `want`
    sensitive values are in; `ident(m)` is the block's id when its extreme is m."""
    blocks, total, m = [], 0, F32(1.0)
    for _ in range(40):
        if total >= want:
            break
        m = np.nextafter(F32(m * F32(1.37)), F32(np.inf))
        xs = fma_sensitive(ident(m), offset)[: QK - len(lead(m))]
        if xs:
            b = lead(m) + xs
            blocks.append(b + [F32(0.0)] * (QK - len(b)))
            total += len(xs)
    assert total >= want and len(blocks) <= 8, (name, total, len(blocks))
    row(name, np.concatenate(blocks))


fma_row("fma_sensitive_q4_0", lambda m: [-m], 8.5, lambda m: F32(F32(1.0) / F32(-m / F32(-8))), 40)
fma_row("fma_sensitive_q4_0_pos", lambda m: [m], 8.5, lambda m: F32(F32(1.0) / F32(m / F32(-8))), 40)
fma_row("fma_sensitive_q4_1", lambda m: [F32(0.0), m], 0.5, lambda m: F32(F32(1.0) / F32(m / F32(15))), 6)

# ties where d is not a power of two (scaled values are near, not at, ties)
row("ties_d3", [381.0, -381.0] + [3.0 * (k + 0.5) for k in range(-15, 15)])

# largest-magnitude ties of opposite sign: the first one sets Q4_0's sign
row("amax_tie_pos_first", [3.0, -3.0] + list(rng.uniform(-2.0, 2.0, 30)))
row("amax_tie_neg_first", [-3.0, 3.0] + list(rng.uniform(-2.0, 2.0, 30)))

# negative-dominant and mixed-sign rows
v = rng.standard_normal(64)
v[5] = -9.0
v[40] = -4.0
row("negative_dominant", v)
row("all_negative", -rng.uniform(0.1, 5.0, 64))
row("all_positive_offset", rng.uniform(100.0, 101.0, 64))
row("mixed_normal", rng.standard_normal(64))
row("mixed_uniform", rng.uniform(-1.0, 1.0, 64))
row("outlier", np.concatenate([rng.standard_normal(31) * 0.01, [50.0]]))

# huge magnitudes: f16 overflow of d (Q8_0: amax/127 > 65504 from amax ~ 8.32e6;
# Q4_0: amax/8 from ~5.24e5; Q4_1: spread/15 from ~9.8e5) and of Q4_1's m
for amax in [8318008.0, 8321040.0, 8.5e6, 1e7, 524032.0, 524200.0, 982560.0, 1e6, 3e38]:
    base = rng.uniform(-1.0, 1.0, 32) * F32(amax)
    base[7] = amax
    row(f"huge_{amax:g}", base)
    base2 = -base
    row(f"huge_neg_{amax:g}", base2)
row("huge_min_70000", np.concatenate([[-70000.0], rng.uniform(-1.0, 1.0, 31)]))
row("spread_overflows_f32", [-3e38, 3e38] + list(rng.uniform(-1e38, 1e38, 30)))
row("float_max", [3.4028235e38] + list(rng.uniform(-1.0, 1.0, 31)))

# tiny magnitudes: d in the f16 subnormal range, d rounding to f16 zero, f32-subnormal d,
# and 1/d overflowing to infinity (id = inf)
for amax in [
    127 * 2.0**-14, 8 * 2.0**-14, 127 * 2.0**-20, 8 * 2.0**-20, 15 * 2.0**-20,
    127 * 3e-8, 127 * 2.0**-26, 8 * 2.0**-26, 1e-9, 1e-30, 1.5e-36, 9e-38,
    127 * 2.0**-128, 4e-37, 1e-38, 1e-40, 1e-44,
]:
    base = rng.uniform(-1.0, 1.0, 32) * amax
    base[3] = amax
    row(f"tiny_{amax:.6g}", base)
row("tiny_sparse", [3e-39 * (k % 3 - 1) for k in range(32)])
row("subnormal_min", [1e-45, -1e-45] + [0.0] * 30)

# magnitude sweeps over blocks
scales = np.logspace(-6, 4, 8)
row("block_scales", np.concatenate([rng.standard_normal(32) * s for s in scales]))
row("long_normal", rng.standard_normal(256))
row("long_laplace", rng.laplace(0.0, 0.3, 256))
row("long_block_scales", np.concatenate([rng.standard_normal(32) * 10 ** rng.uniform(-9, 5) for _ in range(16)]))
row("long_offsets", np.concatenate([rng.uniform(0, 1, 32) * 10 ** rng.uniform(-5, 1) + rng.uniform(-2000, 2000) for _ in range(8)]))
row("long_heavy_tail", rng.standard_t(2.0, 256))
row("long_grid", np.round(rng.standard_normal(256) * 16) / 16)
row("long_mixed_scales", rng.standard_normal(512) * np.repeat(10 ** rng.uniform(-3, 3, 16), 32))

# non-finite inputs
r = list(rng.standard_normal(32))
row("nan_first", [math.nan] + r[1:])
row("nan_middle", r[:10] + [math.nan] + r[11:])
row("nan_last", r[:31] + [math.nan])
row("nan_after_large", [100.0, -100.0, 2.5, -2.1, 3e7, 1e30, math.nan] + [0.1 * k - 1.2 for k in range(24)] + [-2.0])
row("nan_all", [math.nan] * 32)
row("nan_neg", r[:4] + [-math.nan] + r[5:])
row("inf_pos", r[:3] + [math.inf] + r[4:])
row("inf_neg", r[:3] + [-math.inf] + r[4:])
row("inf_both", [math.inf, -math.inf] + r[2:])
row("inf_all", [math.inf] * 32)
row("neg_inf_all", [-math.inf] * 32)
row("nan_and_inf", [math.nan, math.inf] + r[2:])


# ---------------------------------------------------------------- checks and output


def same_f32(a, b):
    a = np.asarray(a, dtype=F32)
    b = np.asarray(b, dtype=F32)
    nan = np.isnan(a)
    return bool(np.array_equal(nan, np.isnan(b))) and bool(
        np.array_equal(a.view(np.uint32)[~nan], b.view(np.uint32)[~nan])
    )


def load_c(path):
    lib = ctypes.CDLL(path)

    def q(fmt, x, size):
        x = np.ascontiguousarray(x, dtype=F32)
        out = np.zeros(len(x) // QK * size, dtype=np.uint8)
        getattr(lib, f"quantize_row_{fmt}_ref")(
            x.ctypes.data_as(ctypes.c_void_p), out.ctypes.data_as(ctypes.c_void_p), ctypes.c_int64(len(x))
        )
        return out.tobytes()

    def dq(fmt, blocks, n):
        blocks = np.frombuffer(blocks, dtype=np.uint8).copy()
        y = np.zeros(n, dtype=F32)
        getattr(lib, f"dequantize_row_{fmt}")(
            blocks.ctypes.data_as(ctypes.c_void_p), y.ctypes.data_as(ctypes.c_void_p), ctypes.c_int64(n)
        )
        return y

    return q, dq


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--libggml", help="shared library with ggml's C reference, to check against")
    ap.add_argument("out", nargs="?", default=__file__.replace("gen_ggml_blocks.py", "ggml_blocks.bin"))
    args = ap.parse_args()
    cq = cdq = None
    if args.libggml:
        cq, cdq = load_c(args.libggml)

    warnings.simplefilter("ignore")  # numpy warns on the NaN/inf casts it is asked to do
    blob = bytearray(b"GGMLBLK1" + struct.pack("<I", len(rows)))
    diverged = []
    for name, x in rows:
        n = len(x)
        blob += struct.pack("<B", len(name)) + name.encode("ascii") + struct.pack("<I", n)
        blob += x.astype("<f4").tobytes()
        for fmt, qtype, size in FORMATS:
            with np.errstate(all="ignore"):
                g = quants.quantize(x.reshape(1, -1), qtype).tobytes()
                deq = quants.dequantize(np.frombuffer(g, dtype=np.uint8).reshape(1, -1), qtype).reshape(-1)
            assert len(g) == n // QK * size
            c = C_SEMANTICS[fmt](x)
            reason = 0
            if g != c:
                reason = divergence_reason(fmt, x)
                assert reason != 0, f"unexplained gguf-py / C disagreement: {name} {fmt}"
                diverged.append((name, fmt, reason))
            if cq is not None:
                assert cq(fmt, x, size) == c, f"C-semantics transcription != compiled C: {name} {fmt}"
                assert same_f32(cdq(fmt, g, n), deq), f"gguf-py dequantize != compiled C: {name} {fmt}"
            blob += struct.pack("<B", reason) + g
            if reason:
                blob += c
            blob += deq.astype("<f4").tobytes()
    with open(args.out, "wb") as f:
        f.write(blob)
    print(f"wrote {args.out}: {len(rows)} rows, {len(blob)} bytes")
    for name, fmt, reason in diverged:
        print(f"  gguf-py diverges from C (reason {reason}): {name} {fmt}")
    if cq is not None:
        print("checked against compiled C:", args.libggml)


if __name__ == "__main__":
    main()
