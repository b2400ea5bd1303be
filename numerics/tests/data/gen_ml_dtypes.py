#!/usr/bin/env python3
"""Generates ml_dtypes_casts.bin: what ml_dtypes 0.6.0 (and numpy's float16) make of a
sweep of f32 inputs, for numerics' integration tests to compare against bit for bit.

    python3 -m venv /tmp/mlenv && /tmp/mlenv/bin/pip install numpy ml_dtypes==0.6.0
    /tmp/mlenv/bin/python numerics/tests/data/gen_ml_dtypes.py

Inputs (regenerated identically by the Rust test, so only outputs are stored): every f32
whose bit pattern is (hi << 16) | lo for hi in 0..=0xFFFF and lo in LOWS, i.e. every sign,
exponent and top-7 mantissa bits, at exact ties (for formats with at most 6 mantissa bits)
and one f32 ulp either side. The 16-bit formats use other LOWS, where their ties are.

File layout (little endian): b"MLDT", u32 record count, then per record: 16-byte
NUL-padded format name, 16-byte NUL-padded sweep name, u32 element size (1 or 2 bytes),
u32 count, then the codes; 16-bit codes with NaN outputs are canonicalised to 0x7E00
(f16) / 0x7FC0 (bf16) with the sign kept, because NaN payloads are not specified.
Also: a decode table record per 8-bit format ("decode" sweep) holding the f32 bits of all
256 codes (element size 4), NaNs canonicalised to 0x7FC00000 with their sign.
"""
import struct
import sys

import ml_dtypes
import numpy as np

assert ml_dtypes.__version__ == "0.6.0", ml_dtypes.__version__

SWEEPS = {
    "small": [0x0000, 0x0001, 0xFFFF],
    "half": [0x7FFF, 0x8000, 0x8001, 0x1000, 0x0000],
}
SMALL = [
    ("f8e4m3fn", ml_dtypes.float8_e4m3fn),
    ("f8e5m2", ml_dtypes.float8_e5m2),
    ("f8e4m3fnuz", ml_dtypes.float8_e4m3fnuz),
    ("f8e5m2fnuz", ml_dtypes.float8_e5m2fnuz),
    ("f8e8m0fnu", ml_dtypes.float8_e8m0fnu),
    ("f6e2m3fn", ml_dtypes.float6_e2m3fn),
    ("f6e3m2fn", ml_dtypes.float6_e3m2fn),
    ("f4e2m1fn", ml_dtypes.float4_e2m1fn),
]
HALF = [("f16", np.float16, 0x7E00), ("bf16", ml_dtypes.bfloat16, 0x7FC0)]


def inputs(lows):
    hi = np.arange(0x10000, dtype=np.uint32)
    bits = (hi[:, None] << 16) | np.array(lows, dtype=np.uint32)[None, :]
    return bits.reshape(-1).view(np.float32)


def name16(s):
    return s.encode().ljust(16, b"\0")


records = []
with np.errstate(all="ignore"):
    x = inputs(SWEEPS["small"])
    for name, t in SMALL:
        codes = x.astype(t).view(np.uint8)
        records.append((name, "small", 1, codes.tobytes()))
        table = np.arange(256, dtype=np.uint8).view(t).astype(np.float32)
        tb = table.view(np.uint32).copy()
        nan = np.isnan(table)
        tb[nan] = (tb[nan] & 0x80000000) | 0x7FC00000
        records.append((name, "decode", 4, tb.astype("<u4").tobytes()))
    x = inputs(SWEEPS["half"])
    for name, t, qnan in HALF:
        y = x.astype(t)
        codes = y.view(np.uint16).copy()
        nan = np.isnan(y.astype(np.float32))
        codes[nan] = (codes[nan] & 0x8000) | qnan
        records.append((name, "half", 2, codes.astype("<u2").tobytes()))

out = sys.argv[1] if len(sys.argv) > 1 else __file__.replace("gen_ml_dtypes.py", "ml_dtypes_casts.bin")
with open(out, "wb") as f:
    f.write(b"MLDT" + struct.pack("<I", len(records)))
    for name, sweep, size, data in records:
        f.write(name16(name) + name16(sweep) + struct.pack("<II", size, len(data) // size) + data)
print("wrote", out)
