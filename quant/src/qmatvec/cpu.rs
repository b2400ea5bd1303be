//! Portable scalar twins of the SIMD kernels in `x86/`.
//!
//! These functions *define* the summation order of every product (see the module docs of
//! [`super`]): 16 logical lanes, a fused multiply-add chain per lane inside each group or
//! block, one `fma(scale, dot, acc)` per group, sequential scalar chains for the elements
//! left over at the end of a group, and the fixed pairwise lane reduction [`hsum`]. The
//! SIMD kernels perform exactly these operations on the same operands, so their results
//! are bit-identical; the tests hold them to that. `f32::mul_add` is the fused operation
//! (an FMA instruction where the target has one, a correctly rounded library call
//! otherwise).

use half::f16;

use super::{BlocksCtx, Codebook4Ctx, Fp8Ctx, GroupedCtx, Prepared, QWeight};
use crate::ggml::{BlockQ4_0, BlockQ4_1, BlockQ8_0, QK};

/// Lanes of the logical vector every kernel sums over.
const LANES: usize = 16;

type Lanes = [f32; LANES];

/// The lane reduction shared by every kernel: halves, then quarters, then pairs.
#[inline]
fn hsum(a: &Lanes) -> f32 {
    let s8: [f32; 8] = core::array::from_fn(|l| a[l] + a[l + 8]);
    let s4: [f32; 4] = core::array::from_fn(|l| s8[l] + s8[l + 4]);
    (s4[0] + s4[2]) + (s4[1] + s4[3])
}

/// `acc[l] = fma(a[l], b[l], acc[l])`.
#[inline]
fn fma_lanes(acc: &mut Lanes, a: &Lanes, b: &[f32; LANES]) {
    for l in 0..LANES {
        acc[l] = a[l].mul_add(b[l], acc[l]);
    }
}

/// `acc[l] = fma(s, dot[l], acc[l])`.
#[inline]
fn scale_into(acc: &mut Lanes, s: f32, dot: &Lanes) {
    for l in 0..LANES {
        acc[l] = s.mul_add(dot[l], acc[l]);
    }
}

/// Rows `r0 .. r0 + y.len()` of a matvec.
pub(super) fn rows_fallback(k: &Prepared<'_>, r0: usize, y: &mut [f32]) {
    for (j, yr) in y.iter_mut().enumerate() {
        let r = r0 + j;
        *yr = match k {
            Prepared::U8(c) => u8_row(c, r),
            Prepared::U4(c) => u4_row(c, r),
            Prepared::Codebook4(c) => codebook4_row(c, r),
            Prepared::Q8_0(c) => q8_0_row(c, r),
            Prepared::Q4_0(c) => q4_0_row(c, r),
            Prepared::Q4_1(c) => q4_1_row(c, r),
            Prepared::Fp8(c) => fp8_row(c, r),
            Prepared::F32 { w, cols, x } => f32_row(&w[r * cols..][..*cols], x),
        };
    }
}

/// `Σ_g (s_g·z_g)·X_g`: 16 lanes over whole runs of 16 groups, then the remaining groups
/// in order, continuing from the lane sum.
fn zero_term(scales: &[f32], zeros: &[u8], xsum: &[f32]) -> f32 {
    let (sc, st) = scales.as_chunks::<LANES>();
    let (zc, zt) = zeros.as_chunks::<LANES>();
    let (xc, xt) = xsum.as_chunks::<LANES>();
    let mut q = [0.0; LANES];
    for ((s, z), x) in sc.iter().zip(zc).zip(xc) {
        for l in 0..LANES {
            q[l] = (s[l] * f32::from(z[l])).mul_add(x[l], q[l]);
        }
    }
    let mut t = hsum(&q);
    for ((&s, &z), &x) in st.iter().zip(zt).zip(xt) {
        t = (s * f32::from(z)).mul_add(x, t);
    }
    t
}

fn u8_row(c: &GroupedCtx<'_>, r: usize) -> f32 {
    let (cols, g) = (c.cols, c.group);
    let ng = cols / g;
    let codes = &c.codes[r * cols..][..cols];
    let scales = &c.scales[r * ng..][..ng];
    let zeros = &c.zeros[r * ng..][..ng];
    let mut acc = [0.0; LANES];
    let mut tail = 0.0f32;
    for (gi, (cg, xg)) in codes.chunks_exact(g).zip(c.x.chunks_exact(g)).enumerate() {
        let (cc, ct) = cg.as_chunks::<LANES>();
        let (xc, xt) = xg.as_chunks::<LANES>();
        if !cc.is_empty() {
            let mut dot = [0.0; LANES];
            for (a, b) in cc.iter().zip(xc) {
                fma_lanes(&mut dot, &a.map(f32::from), b);
            }
            scale_into(&mut acc, scales[gi], &dot);
        }
        if !ct.is_empty() {
            let mut t = 0.0f32;
            for (&a, &b) in ct.iter().zip(xt) {
                t = f32::from(a).mul_add(b, t);
            }
            tail = scales[gi].mul_add(t, tail);
        }
    }
    (hsum(&acc) + tail) - zero_term(scales, zeros, c.xsum)
}

/// The low and high nibbles of 16 bytes.
#[inline]
fn nibbles(b: &[u8; 16]) -> ([u8; 16], [u8; 16]) {
    (b.map(|v| v & 15), b.map(|v| v >> 4))
}

fn u4_row(c: &GroupedCtx<'_>, r: usize) -> f32 {
    let (cols, g) = (c.cols, c.group);
    let ng = cols / g;
    let packed = &c.codes[r * cols / 2..][..cols / 2];
    let scales = &c.scales[r * ng..][..ng];
    let zeros = &c.zeros[r * ng..][..ng];
    let mut acc = [0.0; LANES];
    let mut tail = 0.0f32;
    for (gi, (pg, xg)) in packed
        .chunks_exact(g / 2)
        .zip(c.x.chunks_exact(g))
        .enumerate()
    {
        let (pc, pt) = pg.as_chunks::<16>();
        let x16 = xg.as_chunks::<LANES>().0;
        if !pc.is_empty() {
            let mut dot = [0.0; LANES];
            for (k, b) in pc.iter().enumerate() {
                let (lo, hi) = nibbles(b);
                fma_lanes(&mut dot, &lo.map(f32::from), &x16[2 * k]);
                fma_lanes(&mut dot, &hi.map(f32::from), &x16[2 * k + 1]);
            }
            scale_into(&mut acc, scales[gi], &dot);
        }
        if !pt.is_empty() {
            let xt = &xg[32 * pc.len()..];
            let mut t = 0.0f32;
            for (&b, x) in pt.iter().zip(xt.chunks_exact(2)) {
                t = f32::from(b & 15).mul_add(x[0], t);
                t = f32::from(b >> 4).mul_add(x[1], t);
            }
            tail = scales[gi].mul_add(t, tail);
        }
    }
    (hsum(&acc) + tail) - zero_term(scales, zeros, c.xsum)
}

fn codebook4_row(c: &Codebook4Ctx<'_>, r: usize) -> f32 {
    let (cols, g) = (c.cols, c.block);
    let nb = cols / g;
    let packed = &c.packed[r * cols / 2..][..cols / 2];
    let absmax = &c.absmax[r * nb..][..nb];
    let cb = c.codebook;
    let mut acc = [0.0; LANES];
    let mut tail = 0.0f32;
    // A block may hold an odd number of elements: walk the elements, not the bytes.
    let nib = |e: usize| {
        let b = packed[e / 2];
        if e.is_multiple_of(2) { b >> 4 } else { b & 15 }
    };
    for (bi, xg) in c.x.chunks_exact(g).enumerate() {
        let base = bi * g;
        let nch = codebook4_chunks(g);
        let x16 = xg.as_chunks::<LANES>().0;
        if nch > 0 {
            let mut dot = [0.0; LANES];
            for k in 0..nch {
                let e0 = base + 32 * k;
                let first: Lanes = core::array::from_fn(|l| cb[usize::from(nib(e0 + 2 * l))]);
                let second: Lanes = core::array::from_fn(|l| cb[usize::from(nib(e0 + 2 * l + 1))]);
                fma_lanes(&mut dot, &first, &x16[2 * k]);
                fma_lanes(&mut dot, &second, &x16[2 * k + 1]);
            }
            scale_into(&mut acc, absmax[bi], &dot);
        }
        if 32 * nch < g {
            let mut t = 0.0f32;
            for (i, &xv) in xg.iter().enumerate().skip(32 * nch) {
                t = cb[usize::from(nib(base + i))].mul_add(xv, t);
            }
            tail = absmax[bi].mul_add(t, tail);
        }
    }
    hsum(&acc) + tail
}

/// Full 32-element chunks per Codebook4 block: `block / 32`, or none for an odd block
/// (whose chunks would not start on a byte boundary; all its elements take the scalar path).
#[inline]
pub(super) fn codebook4_chunks(block: usize) -> usize {
    if block.is_multiple_of(2) {
        block / 32
    } else {
        0
    }
}

/// The two halves (elements `0..16`, `16..32`) of a GGML block's `x`.
#[inline]
fn block_x(x: &[f32], b: usize) -> (&Lanes, &Lanes) {
    let x16 = x.as_chunks::<LANES>().0;
    (&x16[2 * b], &x16[2 * b + 1])
}

/// One GGML block's contribution: `dot = fma(first, xa, 0); dot = fma(second, xb, dot);
/// acc = fma(d, dot, acc)`.
#[inline]
fn block_step(acc: &mut Lanes, d: f32, first: &Lanes, second: &Lanes, xa: &Lanes, xb: &Lanes) {
    let mut dot = [0.0; LANES];
    fma_lanes(&mut dot, first, xa);
    fma_lanes(&mut dot, second, xb);
    scale_into(acc, d, &dot);
}

fn q8_0_row(c: &BlocksCtx<'_, BlockQ8_0>, r: usize) -> f32 {
    let nb = c.cols / QK;
    let mut acc = [0.0; LANES];
    for (b, blk) in c.blocks[r * nb..][..nb].iter().enumerate() {
        let q: [f32; 32] = blk.qs.map(f32::from);
        let (xa, xb) = block_x(c.x, b);
        let (qa, qb) = q.split_at(LANES);
        block_step(
            &mut acc,
            blk.d.to_f32(),
            qa.try_into().expect("16"),
            qb.try_into().expect("16"),
            xa,
            xb,
        );
    }
    hsum(&acc)
}

fn q4_0_row(c: &BlocksCtx<'_, BlockQ4_0>, r: usize) -> f32 {
    let nb = c.cols / QK;
    let mut acc = [0.0; LANES];
    for (b, blk) in c.blocks[r * nb..][..nb].iter().enumerate() {
        let (lo, hi) = nibbles(&blk.qs);
        let (xa, xb) = block_x(c.x, b);
        let v = |n: u8| f32::from(n) - 8.0;
        block_step(&mut acc, blk.d.to_f32(), &lo.map(v), &hi.map(v), xa, xb);
    }
    hsum(&acc)
}

fn q4_1_row(c: &BlocksCtx<'_, BlockQ4_1>, r: usize) -> f32 {
    let nb = c.cols / QK;
    let mut acc = [0.0; LANES];
    let xv = c.xv.as_chunks::<LANES>().0;
    for (b, blk) in c.blocks[r * nb..][..nb].iter().enumerate() {
        let (lo, hi) = nibbles(&blk.qs);
        let (xa, xb) = block_x(c.x, b);
        block_step(
            &mut acc,
            blk.d.to_f32(),
            &lo.map(f32::from),
            &hi.map(f32::from),
            xa,
            xb,
        );
        scale_into(&mut acc, blk.m.to_f32(), &xv[b]);
    }
    hsum(&acc)
}

/// `Σ w·x` over 16 lanes and a tail that continues from the lane sum.
#[inline]
fn dot_row(w: impl Fn(usize) -> f32, x: &[f32]) -> f32 {
    let (xc, xt) = x.as_chunks::<LANES>();
    let mut acc = [0.0; LANES];
    for (k, xk) in xc.iter().enumerate() {
        let wk: Lanes = core::array::from_fn(|l| w(LANES * k + l));
        fma_lanes(&mut acc, &wk, xk);
    }
    let mut t = hsum(&acc);
    let base = LANES * xc.len();
    for (i, &xv) in xt.iter().enumerate() {
        t = w(base + i).mul_add(xv, t);
    }
    t
}

fn fp8_row(c: &Fp8Ctx<'_>, r: usize) -> f32 {
    let codes = &c.codes[r * c.cols..][..c.cols];
    c.scales[r] * dot_row(|i| c.table[usize::from(codes[i])], c.x)
}

/// The `f32` row kernel (also the inner product of `matmul`).
pub(super) fn f32_row(w: &[f32], x: &[f32]) -> f32 {
    dot_row(|i| w[i], x)
}

/// `out[j·n + i] = f32_row(w row j, x input i)` for every row of `w` and input of `x`.
pub(super) fn dots_fallback(w: &[f32], cols: usize, x: &[f32], n: usize, out: &mut [f32]) {
    for (j, oj) in out.chunks_exact_mut(n).enumerate() {
        let wj = &w[j * cols..][..cols];
        for (o, xi) in oj.iter_mut().zip(x.chunks_exact(cols)) {
            *o = f32_row(wj, xi);
        }
    }
}

/// Decodes rows `r0 ..` of `w` into `out` (whole rows), one exact product per element.
pub(super) fn decode_rows_fallback(w: &QWeight<'_>, cols: usize, r0: usize, out: &mut [f32]) {
    for (j, o) in out.chunks_exact_mut(cols).enumerate() {
        let r = r0 + j;
        match *w {
            QWeight::U8 {
                codes,
                scales,
                zeros,
                group,
            } => {
                let k0 = r * (cols / group);
                for (i, v) in o.iter_mut().enumerate() {
                    let k = k0 + i / group;
                    let code = codes[r * cols + i];
                    *v = scales[k] * (f32::from(code) - f32::from(zeros[k]));
                }
            }
            QWeight::U4 {
                packed,
                scales,
                zeros,
                group,
            } => {
                let k0 = r * (cols / group);
                for (i, v) in o.iter_mut().enumerate() {
                    let k = k0 + i / group;
                    let b = packed[(r * cols + i) / 2];
                    let nib = if i.is_multiple_of(2) { b & 15 } else { b >> 4 };
                    *v = scales[k] * (f32::from(nib) - f32::from(zeros[k]));
                }
            }
            QWeight::Codebook4 {
                packed,
                absmax,
                block,
                codebook,
            } => {
                for (i, v) in o.iter_mut().enumerate() {
                    let e = r * cols + i;
                    let b = packed[e / 2];
                    let nib = if e.is_multiple_of(2) { b >> 4 } else { b & 15 };
                    *v = codebook[usize::from(nib)] * absmax[e / block];
                }
            }
            QWeight::Q8_0(blocks) => {
                for (blk, ob) in blocks[r * cols / QK..].iter().zip(o.chunks_exact_mut(QK)) {
                    let d = blk.d.to_f32();
                    for (v, &q) in ob.iter_mut().zip(&blk.qs) {
                        *v = d * f32::from(q);
                    }
                }
            }
            QWeight::Q4_0(blocks) => {
                for (blk, ob) in blocks[r * cols / QK..].iter().zip(o.chunks_exact_mut(QK)) {
                    q4_decode(blk.d, &blk.qs, ob, |d, n| d * (f32::from(n) - 8.0));
                }
            }
            QWeight::Q4_1(blocks) => {
                for (blk, ob) in blocks[r * cols / QK..].iter().zip(o.chunks_exact_mut(QK)) {
                    let m = blk.m.to_f32();
                    q4_decode(blk.d, &blk.qs, ob, |d, n| d.mul_add(f32::from(n), m));
                }
            }
            QWeight::Fp8 {
                codes,
                scales,
                kind,
            } => {
                for (v, &code) in o.iter_mut().zip(&codes[r * cols..]) {
                    *v = scales[r] * kind.decode(code);
                }
            }
            QWeight::F32(v) => o.copy_from_slice(&v[r * cols..][..cols]),
        }
    }
}

/// Decodes one Q4 block (element `j` low nibble of `qs[j]`, `j + 16` high nibble).
#[inline]
fn q4_decode(d: f16, qs: &[u8; 16], out: &mut [f32], f: impl Fn(f32, u8) -> f32) {
    let d = d.to_f32();
    let (lo, hi) = out.split_at_mut(16);
    for ((&b, l), h) in qs.iter().zip(lo).zip(hi) {
        *l = f(d, b & 15);
        *h = f(d, b >> 4);
    }
}
