//! The kernel bodies shared by the AVX-512 and AVX2 levels (see the parent module).

/// The kernel bodies, instantiated once per level with that level's target features. The
/// primitives they call are the enclosing module's.
macro_rules! kernels {
    ($feat:literal) => {
        /// Rows `r0 .. r0 + y.len()` of a matvec (the vector form of
        /// `cpu::rows_fallback`).
        #[target_feature(enable = $feat)]
        pub(crate) fn rows(k: &Prepared<'_>, r0: usize, y: &mut [f32]) {
            let mut j = 0;
            while j + 4 <= y.len() {
                let out = rows_block::<4>(k, r0 + j);
                y[j..j + 4].copy_from_slice(&out);
                j += 4;
            }
            while j < y.len() {
                y[j] = rows_block::<1>(k, r0 + j)[0];
                j += 1;
            }
        }

        #[target_feature(enable = $feat)]
        fn rows_block<const R: usize>(k: &Prepared<'_>, r: usize) -> [f32; R] {
            match k {
                Prepared::U8(c) if c.group.is_multiple_of(16) => u8_block_chunked::<R>(c, r),
                Prepared::U8(c) => u8_block::<R>(c, r),
                Prepared::U4(c) if c.group == 32 => u4_block_chunked::<R, 1>(c, r),
                Prepared::U4(c) if c.group == 64 => u4_block_chunked::<R, 2>(c, r),
                Prepared::U4(c) if c.group.is_multiple_of(32) => u4_block_chunked::<R, 0>(c, r),
                Prepared::U4(c) => u4_block::<R>(c, r),
                Prepared::Codebook4(c) if c.block == 64 => codebook4_block_chunked::<R, 2>(c, r),
                Prepared::Codebook4(c) if c.block.is_multiple_of(32) => {
                    codebook4_block_chunked::<R, 0>(c, r)
                }
                Prepared::Codebook4(c) => codebook4_block::<R>(c, r),
                Prepared::Q8_0(c) => q8_0_block::<R>(c, r),
                Prepared::Q4_0(c) => q4_0_block::<R>(c, r),
                Prepared::Q4_1(c) => q4_1_block::<R>(c, r),
                Prepared::Fp8(c) => match c.kind {
                    Fp8Kind::E4M3 => fp8_block::<R, true>(c, r),
                    Fp8Kind::E5M2 => fp8_block::<R, false>(c, r),
                },
                Prepared::F32 { w, cols, x } => {
                    f32_block::<R>(&w[r * cols..(r + R) * cols], *cols, x)
                }
            }
        }

        /// Loads a 32-element chunk as two vectors (elements 0–15, 16–31).
        #[inline]
        #[target_feature(enable = $feat)]
        fn load2(a: &[f32; 32]) -> (V, V) {
            let (x, y) = halves(a);
            (load(x), load(y))
        }

        /// The end of a U8/U4 row: `(hsum(acc) + tail) − Σ_g (s_g·z_g)·X_g`, the zero-point
        /// term summed as in `cpu::zero_term`, for the `R` rows at once (independent chains).
        #[target_feature(enable = $feat)]
        fn grouped_finish<const R: usize>(
            c: &GroupedCtx<'_>,
            r: usize,
            acc: [V; R],
            tail: [f32; R],
        ) -> [f32; R] {
            let ng = c.cols / c.group;
            let scales: [&[f32]; R] = core::array::from_fn(|j| &c.scales[(r + j) * ng..][..ng]);
            let zeros: [&[u8]; R] = core::array::from_fn(|j| &c.zeros[(r + j) * ng..][..ng]);
            let (xc, xt) = c.xsum[..ng].as_chunks::<16>();
            let mut q = [zero(); R];
            for (k, xk) in xc.iter().enumerate() {
                let xv = load(xk);
                for j in 0..R {
                    let s = &scales[j].as_chunks::<16>().0[k];
                    let z = &zeros[j].as_chunks::<16>().0[k];
                    q[j] = fma(mul(load(s), u8x16(z)), xv, q[j]);
                }
            }
            let mut out = [0.0f32; R];
            for j in 0..R {
                let mut t = hsum(q[j]);
                let rest = 16 * xc.len();
                for ((&s, &z), &xv) in scales[j][rest..].iter().zip(&zeros[j][rest..]).zip(xt) {
                    t = (s * f32::from(z)).mul_add(xv, t);
                }
                out[j] = (hsum(acc[j]) + tail[j]) - t;
            }
            out
        }

        /// U8 whose groups are whole 16-element chunks (per-channel int8 with `cols % 16 == 0`
        /// included): the operations of `u8_block` without its tail bookkeeping.
        #[target_feature(enable = $feat)]
        fn u8_block_chunked<const R: usize>(c: &GroupedCtx<'_>, r: usize) -> [f32; R] {
            let (cols, g) = (c.cols, c.group);
            let (ng, nch) = (cols / g, g / 16);
            let x = c.x.as_chunks::<16>().0;
            let codes: [&[[u8; 16]]; R] =
                core::array::from_fn(|j| c.codes[(r + j) * cols..][..cols].as_chunks::<16>().0);
            let scales: [&[f32]; R] = core::array::from_fn(|j| &c.scales[(r + j) * ng..][..ng]);
            // The unchecked reads below stay inside these lengths.
            assert!(x.len() == ng * nch && codes.iter().all(|p| p.len() == ng * nch));
            let mut acc = [zero(); R];
            for gi in 0..ng {
                let mut dot = [zero(); R];
                for t in gi * nch..(gi + 1) * nch {
                    // SAFETY: t < ng·nch = x.len() (asserted above).
                    let xv = load(unsafe { x.get_unchecked(t) });
                    for j in 0..R {
                        prefetch_ahead(codes[j], t);
                        // SAFETY: t < ng·nch = codes[j].len() (asserted above).
                        let b = unsafe { codes[j].get_unchecked(t) };
                        dot[j] = fma(u8x16(b), xv, dot[j]);
                    }
                }
                for j in 0..R {
                    acc[j] = fma(splat(scales[j][gi]), dot[j], acc[j]);
                }
            }
            grouped_finish(c, r, acc, [0.0; R])
        }

        /// U8, any group (`cpu::u8_row`).
        #[target_feature(enable = $feat)]
        fn u8_block<const R: usize>(c: &GroupedCtx<'_>, r: usize) -> [f32; R] {
            let (cols, g) = (c.cols, c.group);
            let ng = cols / g;
            let codes = &c.codes[r * cols..(r + R) * cols];
            let scales = &c.scales[r * ng..(r + R) * ng];
            let mut acc = [zero(); R];
            let mut tail = [0.0f32; R];
            for gi in 0..ng {
                let (xc, xt) = c.x[gi * g..][..g].as_chunks::<16>();
                let mut cc: [&[[u8; 16]]; R] = [&[]; R];
                let mut ct: [&[u8]; R] = [&[]; R];
                for j in 0..R {
                    (cc[j], ct[j]) = codes[j * cols + gi * g..][..g].as_chunks::<16>();
                }
                if !xc.is_empty() {
                    let mut dot = [zero(); R];
                    for (kk, xk) in xc.iter().enumerate() {
                        let xv = load(xk);
                        for j in 0..R {
                            dot[j] = fma(u8x16(&cc[j][kk]), xv, dot[j]);
                        }
                    }
                    for j in 0..R {
                        acc[j] = fma(splat(scales[j * ng + gi]), dot[j], acc[j]);
                    }
                }
                if !xt.is_empty() {
                    for j in 0..R {
                        let mut t = 0.0f32;
                        for (&a, &b) in ct[j].iter().zip(xt) {
                            t = f32::from(a).mul_add(b, t);
                        }
                        tail[j] = scales[j * ng + gi].mul_add(t, tail[j]);
                    }
                }
            }
            grouped_finish(c, r, acc, tail)
        }

        /// U4 whose groups are whole 32-element chunks (`group % 32 == 0`). `NCH` is the
        /// number of chunks a group when known at compile time (1 for int4-g32, 2 for g64,
        /// so the chunk loop unrolls away), 0 otherwise.
        #[target_feature(enable = $feat)]
        fn u4_block_chunked<const R: usize, const NCH: usize>(
            c: &GroupedCtx<'_>,
            r: usize,
        ) -> [f32; R] {
            let (cols, g) = (c.cols, c.group);
            let (ng, half) = (cols / g, cols / 2);
            let nch = if NCH == 0 { g / 32 } else { NCH };
            let x = c.x.as_chunks::<32>().0;
            let packed: [&[[u8; 16]]; R] =
                core::array::from_fn(|j| c.codes[(r + j) * half..][..half].as_chunks::<16>().0);
            let scales: [&[f32]; R] = core::array::from_fn(|j| &c.scales[(r + j) * ng..][..ng]);
            // The unchecked reads below stay inside these lengths.
            assert!(nch * 32 == g);
            assert!(x.len() == ng * nch && packed.iter().all(|p| p.len() == ng * nch));
            assert!(scales.iter().all(|s| s.len() == ng));
            let mut acc = [zero(); R];
            for gi in 0..ng {
                let mut dot = [zero(); R];
                for k in 0..nch {
                    let t = gi * nch + k;
                    // SAFETY: t < ng·nch = x.len() (asserted above).
                    let (xa, xb) = load2(unsafe { x.get_unchecked(t) });
                    for j in 0..R {
                        prefetch_ahead(packed[j], t);
                        // SAFETY: t < ng·nch = packed[j].len() (asserted above).
                        let (lo, hi) = nib_u(bytes16(unsafe { packed[j].get_unchecked(t) }));
                        dot[j] = fma(lo, xa, dot[j]);
                        dot[j] = fma(hi, xb, dot[j]);
                    }
                }
                for j in 0..R {
                    // SAFETY: gi < ng = scales[j].len() (asserted above).
                    let s = unsafe { *scales[j].get_unchecked(gi) };
                    acc[j] = fma(splat(s), dot[j], acc[j]);
                }
            }
            grouped_finish(c, r, acc, [0.0; R])
        }

        /// U4, any even group (`cpu::u4_row`).
        #[target_feature(enable = $feat)]
        fn u4_block<const R: usize>(c: &GroupedCtx<'_>, r: usize) -> [f32; R] {
            let (cols, g) = (c.cols, c.group);
            let (ng, half) = (cols / g, cols / 2);
            let packed = &c.codes[r * half..(r + R) * half];
            let scales = &c.scales[r * ng..(r + R) * ng];
            let nch = g / 32;
            let mut acc = [zero(); R];
            let mut tail = [0.0f32; R];
            for gi in 0..ng {
                let xg = &c.x[gi * g..][..g];
                let x16 = xg.as_chunks::<16>().0;
                let mut pc: [&[[u8; 16]]; R] = [&[]; R];
                let mut pt: [&[u8]; R] = [&[]; R];
                for j in 0..R {
                    (pc[j], pt[j]) = packed[j * half + gi * g / 2..][..g / 2].as_chunks::<16>();
                }
                if nch > 0 {
                    let mut dot = [zero(); R];
                    for kk in 0..nch {
                        let xa = load(&x16[2 * kk]);
                        let xb = load(&x16[2 * kk + 1]);
                        for j in 0..R {
                            let (lo, hi) = nib_u(bytes16(&pc[j][kk]));
                            dot[j] = fma(lo, xa, dot[j]);
                            dot[j] = fma(hi, xb, dot[j]);
                        }
                    }
                    for j in 0..R {
                        acc[j] = fma(splat(scales[j * ng + gi]), dot[j], acc[j]);
                    }
                }
                if 32 * nch < g {
                    let xt = &xg[32 * nch..];
                    for j in 0..R {
                        let mut t = 0.0f32;
                        for (&b, x) in pt[j].iter().zip(xt.chunks_exact(2)) {
                            t = f32::from(b & 15).mul_add(x[0], t);
                            t = f32::from(b >> 4).mul_add(x[1], t);
                        }
                        tail[j] = scales[j * ng + gi].mul_add(t, tail[j]);
                    }
                }
            }
            grouped_finish(c, r, acc, tail)
        }

        /// Codebook4 whose blocks are whole 32-element chunks (`block % 32 == 0`); `NCH` as
        /// for `u4_block_chunked`.
        #[target_feature(enable = $feat)]
        fn codebook4_block_chunked<const R: usize, const NCH: usize>(
            c: &Codebook4Ctx<'_>,
            r: usize,
        ) -> [f32; R] {
            let (cols, g) = (c.cols, c.block);
            let (nb, half) = (cols / g, cols / 2);
            let nch = if NCH == 0 { g / 32 } else { NCH };
            let table = lut(c.codebook);
            let x = c.x.as_chunks::<32>().0;
            let packed: [&[[u8; 16]]; R] =
                core::array::from_fn(|j| c.packed[(r + j) * half..][..half].as_chunks::<16>().0);
            let absmax: [&[f32]; R] = core::array::from_fn(|j| &c.absmax[(r + j) * nb..][..nb]);
            // The unchecked reads below stay inside these lengths.
            assert!(nch * 32 == g);
            assert!(x.len() == nb * nch && packed.iter().all(|p| p.len() == nb * nch));
            assert!(absmax.iter().all(|a| a.len() == nb));
            let mut acc = [zero(); R];
            for bi in 0..nb {
                let mut dot = [zero(); R];
                for k in 0..nch {
                    let t = bi * nch + k;
                    // SAFETY: t < nb·nch = x.len() (asserted above).
                    let (xa, xb) = load2(unsafe { x.get_unchecked(t) });
                    for j in 0..R {
                        prefetch_ahead(packed[j], t);
                        // SAFETY: t < nb·nch = packed[j].len() (asserted above).
                        let b = unsafe { packed[j].get_unchecked(t) };
                        // Element 2l is the high nibble of byte l.
                        let (lo, hi) = nib_lut(bytes16(b), table);
                        dot[j] = fma(hi, xa, dot[j]);
                        dot[j] = fma(lo, xb, dot[j]);
                    }
                }
                for j in 0..R {
                    // SAFETY: bi < nb = absmax[j].len() (asserted above).
                    let a = unsafe { *absmax[j].get_unchecked(bi) };
                    acc[j] = fma(splat(a), dot[j], acc[j]);
                }
            }
            let mut out = [0.0f32; R];
            for j in 0..R {
                out[j] = hsum(acc[j]);
            }
            out
        }

        /// Codebook4, any block (`cpu::codebook4_row`).
        #[target_feature(enable = $feat)]
        fn codebook4_block<const R: usize>(c: &Codebook4Ctx<'_>, r: usize) -> [f32; R] {
            let (cols, g) = (c.cols, c.block);
            let (nb, half) = (cols / g, cols / 2);
            let packed = &c.packed[r * half..(r + R) * half];
            let absmax = &c.absmax[r * nb..(r + R) * nb];
            let cb = c.codebook;
            let table = lut(cb);
            let nch = codebook4_chunks(g);
            let mut acc = [zero(); R];
            let mut tail = [0.0f32; R];
            for bi in 0..nb {
                let base = bi * g;
                let xg = &c.x[base..][..g];
                let x16 = xg.as_chunks::<16>().0;
                if nch > 0 {
                    let mut pc: [&[[u8; 16]]; R] = [&[]; R];
                    for j in 0..R {
                        pc[j] = packed[j * half + base / 2..][..16 * nch]
                            .as_chunks::<16>()
                            .0;
                    }
                    let mut dot = [zero(); R];
                    for kk in 0..nch {
                        let xa = load(&x16[2 * kk]);
                        let xb = load(&x16[2 * kk + 1]);
                        for j in 0..R {
                            let (lo, hi) = nib_lut(bytes16(&pc[j][kk]), table);
                            dot[j] = fma(hi, xa, dot[j]);
                            dot[j] = fma(lo, xb, dot[j]);
                        }
                    }
                    for j in 0..R {
                        acc[j] = fma(splat(absmax[j * nb + bi]), dot[j], acc[j]);
                    }
                }
                if 32 * nch < g {
                    for j in 0..R {
                        let row = &packed[j * half..][..half];
                        let mut t = 0.0f32;
                        for (i, &xv) in xg.iter().enumerate().skip(32 * nch) {
                            let e = base + i;
                            let b = row[e / 2];
                            let n = if e.is_multiple_of(2) { b >> 4 } else { b & 15 };
                            t = cb[usize::from(n)].mul_add(xv, t);
                        }
                        tail[j] = absmax[j * nb + bi].mul_add(t, tail[j]);
                    }
                }
            }
            let mut out = [0.0f32; R];
            for j in 0..R {
                out[j] = hsum(acc[j]) + tail[j];
            }
            out
        }

        /// The rows `r .. r + R` of a GGML weight: `x` as 32-element chunks (one a block) and
        /// whether the rows are interior (a row before and a row after them exist), which lets
        /// `bytes16_spanning` read a little before and after each block's codes.
        #[inline]
        fn ggml_rows<'a, B>(
            c: &BlocksCtx<'a, B>,
            r: usize,
            rows: usize,
        ) -> (&'a [[f32; 32]], bool) {
            let nb = c.cols / QK;
            let x = c.x.as_chunks::<32>().0;
            assert!(x.len() == nb && (r + rows) * nb <= c.blocks.len());
            (x, r > 0 && (r + rows) * nb < c.blocks.len())
        }

        /// The codes of block `i` of `c.blocks` (16 bytes at byte `off` of the block).
        ///
        /// # Safety
        ///
        /// `i < c.blocks.len()` and `off + 16 ≤ size_of::<B>()`; if `SPANNING`, also blocks
        /// `i − 1` and `i + 1` exist and `off + 32 ≤ 2·size_of::<B>()`: then the 32 bytes from
        /// the codes' address rounded down to 16 lie within blocks `i − 1 ..= i + 1`.
        #[inline]
        #[target_feature(enable = $feat)]
        unsafe fn ggml_codes<B, const SPANNING: bool>(
            c: &BlocksCtx<'_, B>,
            i: usize,
            off: usize,
        ) -> __m128i {
            let p = c
                .blocks
                .as_ptr()
                .cast::<u8>()
                .wrapping_add(i * core::mem::size_of::<B>() + off);
            if SPANNING {
                // SAFETY: the caller guarantees the 32 aligned bytes around `p` lie in `c.blocks`.
                unsafe { bytes16_spanning(p) }
            } else {
                // SAFETY: the 16 bytes at `p` are inside block `i`.
                unsafe { _mm_loadu_si128(p.cast()) }
            }
        }

        /// Q8_0 (codes loaded directly: see `bytes16_spanning` for why).
        #[target_feature(enable = $feat)]
        fn q8_0_block<const R: usize>(c: &BlocksCtx<'_, BlockQ8_0>, r: usize) -> [f32; R] {
            let (x, _) = ggml_rows(c, r, R);
            let nb = x.len();
            let off = core::mem::offset_of!(BlockQ8_0, qs);
            let mut acc = [zero(); R];
            for (b, xc) in x.iter().enumerate() {
                let (xa, xb) = load2(xc);
                for j in 0..R {
                    let i = (r + j) * nb + b;
                    prefetch_ahead(c.blocks, i);
                    // SAFETY: i < (r + R)·nb ≤ blocks.len() (`ggml_rows`); the codes are 32
                    // bytes at 2 of a 34-byte block, so both halves satisfy `ggml_codes`.
                    let (qa, qb) = unsafe {
                        (
                            ggml_codes::<_, false>(c, i, off),
                            ggml_codes::<_, false>(c, i, off + 16),
                        )
                    };
                    // SAFETY: as above.
                    let d = unsafe { c.blocks.get_unchecked(i) }.d.to_bits();
                    let dot = fma(i8x16(qa), xa, zero());
                    let dot = fma(i8x16(qb), xb, dot);
                    acc[j] = fma(f16_splat(d), dot, acc[j]);
                }
            }
            let mut out = [0.0f32; R];
            for j in 0..R {
                out[j] = hsum(acc[j]);
            }
            out
        }

        /// Q4_0; interior rows read their codes with `bytes16_spanning`.
        #[target_feature(enable = $feat)]
        fn q4_0_block<const R: usize>(c: &BlocksCtx<'_, BlockQ4_0>, r: usize) -> [f32; R] {
            match ggml_rows(c, r, R) {
                (x, true) => q4_0_rows::<R, true>(c, r, x),
                (x, false) => q4_0_rows::<R, false>(c, r, x),
            }
        }

        #[target_feature(enable = $feat)]
        fn q4_0_rows<const R: usize, const SPANNING: bool>(
            c: &BlocksCtx<'_, BlockQ4_0>,
            r: usize,
            x: &[[f32; 32]],
        ) -> [f32; R] {
            let nb = x.len();
            let off = core::mem::offset_of!(BlockQ4_0, qs);
            let table = lut(&Q4_0_VALUES);
            let mut acc = [zero(); R];
            for (b, xc) in x.iter().enumerate() {
                let (xa, xb) = load2(xc);
                for j in 0..R {
                    let i = (r + j) * nb + b;
                    prefetch_ahead(c.blocks, i);
                    // SAFETY: i < (r + R)·nb ≤ blocks.len() (`ggml_rows`); 16 code bytes at
                    // 2 of an 18-byte block satisfy `ggml_codes`.
                    let q = unsafe { ggml_codes::<_, SPANNING>(c, i, off) };
                    // SAFETY: as above.
                    let d = unsafe { c.blocks.get_unchecked(i) }.d.to_bits();
                    let (lo, hi) = nib_lut(q, table);
                    let dot = fma(lo, xa, zero());
                    let dot = fma(hi, xb, dot);
                    acc[j] = fma(f16_splat(d), dot, acc[j]);
                }
            }
            let mut out = [0.0f32; R];
            for j in 0..R {
                out[j] = hsum(acc[j]);
            }
            out
        }

        /// Q4_1 (codes loaded directly: see `bytes16_spanning` for why).
        #[target_feature(enable = $feat)]
        fn q4_1_block<const R: usize>(c: &BlocksCtx<'_, BlockQ4_1>, r: usize) -> [f32; R] {
            let (x, _) = ggml_rows(c, r, R);
            let nb = x.len();
            let off = core::mem::offset_of!(BlockQ4_1, qs);
            let xv = c.xv.as_chunks::<16>().0;
            let mut acc = [zero(); R];
            for (b, (xc, xs)) in x.iter().zip(xv).enumerate() {
                let (xa, xb) = load2(xc);
                let xs = load(xs);
                for j in 0..R {
                    let i = (r + j) * nb + b;
                    prefetch_ahead(c.blocks, i);
                    // SAFETY: i < (r + R)·nb ≤ blocks.len() (`ggml_rows`); 16 code bytes at
                    // 4 of a 20-byte block satisfy `ggml_codes`.
                    let q = unsafe { ggml_codes::<_, false>(c, i, off) };
                    // SAFETY: as above.
                    let blk = unsafe { c.blocks.get_unchecked(i) };
                    let (d, m) = f16_pair_splat(blk.d.to_bits(), blk.m.to_bits());
                    let (lo, hi) = nib_u(q);
                    let dot = fma(lo, xa, zero());
                    let dot = fma(hi, xb, dot);
                    let a = fma(d, dot, acc[j]);
                    acc[j] = fma(m, xs, a);
                }
            }
            let mut out = [0.0f32; R];
            for j in 0..R {
                out[j] = hsum(acc[j]);
            }
            out
        }

        #[target_feature(enable = $feat)]
        fn fp8_block<const R: usize, const E4M3: bool>(c: &Fp8Ctx<'_>, r: usize) -> [f32; R] {
            let cols = c.cols;
            let (x, xt) = c.x.as_chunks::<16>();
            let rows: [&[u8]; R] = core::array::from_fn(|j| &c.codes[(r + j) * cols..][..cols]);
            let codes: [&[[u8; 16]]; R] = core::array::from_fn(|j| rows[j].as_chunks::<16>().0);
            // The unchecked reads below stay inside these lengths.
            assert!(codes.iter().all(|p| p.len() == x.len()));
            let mut acc = [zero(); R];
            for (t, xk) in x.iter().enumerate() {
                let xv = load(xk);
                for j in 0..R {
                    prefetch_ahead(codes[j], t);
                    // SAFETY: t < x.len() = codes[j].len() (asserted above).
                    let b = unsafe { codes[j].get_unchecked(t) };
                    acc[j] = fma(fp8x16::<E4M3>(b), xv, acc[j]);
                }
            }
            let mut out = [0.0f32; R];
            for j in 0..R {
                let mut t = hsum(acc[j]);
                for (&code, &xv) in rows[j][cols - xt.len()..].iter().zip(xt) {
                    t = c.table[usize::from(code)].mul_add(xv, t);
                }
                out[j] = c.scales[r + j] * t;
            }
            out
        }

        #[target_feature(enable = $feat)]
        fn f32_block<const R: usize>(w: &[f32], cols: usize, x: &[f32]) -> [f32; R] {
            let (xc, xt) = x[..cols].as_chunks::<16>();
            let rows: [&[f32]; R] = core::array::from_fn(|j| &w[j * cols..][..cols]);
            let wc: [&[[f32; 16]]; R] = core::array::from_fn(|j| rows[j].as_chunks::<16>().0);
            // The unchecked reads below stay inside these lengths.
            assert!(wc.iter().all(|p| p.len() == xc.len()));
            let mut acc = [zero(); R];
            for (t, xk) in xc.iter().enumerate() {
                let xv = load(xk);
                for j in 0..R {
                    // SAFETY: t < xc.len() = wc[j].len() (asserted above).
                    let wk = unsafe { wc[j].get_unchecked(t) };
                    acc[j] = fma(load(wk), xv, acc[j]);
                }
            }
            let mut out = [0.0f32; R];
            for j in 0..R {
                let mut t = hsum(acc[j]);
                for (&a, &b) in rows[j][cols - xt.len()..].iter().zip(xt) {
                    t = a.mul_add(b, t);
                }
                out[j] = t;
            }
            out
        }

        /// `out[j·n + i] = Σ_c w[j·cols + c]·x[i·cols + c]` for every row `j` of `w` and
        /// input `i` of `x` (`cpu::dots_fallback`): each output is `f32_block`'s sum, computed
        /// in tiles of 4 rows × `MATMUL_INPUTS` inputs so that each loaded chunk of `w` serves
        /// several inputs.
        #[target_feature(enable = $feat)]
        pub(crate) fn dots(w: &[f32], cols: usize, x: &[f32], n: usize, out: &mut [f32]) {
            let rows = out.len() / n;
            let mut j = 0;
            while j < rows {
                let rb = if j + 4 <= rows { 4 } else { 1 };
                let wj = &w[j * cols..(j + rb) * cols];
                let mut i = 0;
                while i < n {
                    let ni = if i + MATMUL_INPUTS <= n {
                        MATMUL_INPUTS
                    } else {
                        1
                    };
                    let xi = &x[i * cols..(i + ni) * cols];
                    let mut put = |jj: usize, ii: usize, v: f32| out[(j + jj) * n + i + ii] = v;
                    match (rb, ni) {
                        (4, 1) => {
                            for (jj, v) in f32_tile::<4, 1>(wj, cols, xi).iter().enumerate() {
                                put(jj, 0, v[0]);
                            }
                        }
                        (4, _) => {
                            let t = f32_tile::<4, MATMUL_INPUTS>(wj, cols, xi);
                            for (jj, v) in t.iter().enumerate() {
                                for (ii, &v) in v.iter().enumerate() {
                                    put(jj, ii, v);
                                }
                            }
                        }
                        _ => {
                            for ii in 0..ni {
                                let xs = &xi[ii * cols..][..cols];
                                put(0, ii, f32_tile::<1, 1>(wj, cols, xs)[0][0]);
                            }
                        }
                    }
                    i += ni;
                }
                j += rb;
            }
        }

        /// `R` rows of `w` against `NI` inputs of `x`, each output summed as in `f32_block`.
        #[target_feature(enable = $feat)]
        fn f32_tile<const R: usize, const NI: usize>(
            w: &[f32],
            cols: usize,
            x: &[f32],
        ) -> [[f32; NI]; R] {
            let wr: [&[f32]; R] = core::array::from_fn(|j| &w[j * cols..][..cols]);
            let xr: [&[f32]; NI] = core::array::from_fn(|i| &x[i * cols..][..cols]);
            let wc: [&[[f32; 16]]; R] = core::array::from_fn(|j| wr[j].as_chunks::<16>().0);
            let xc: [&[[f32; 16]]; NI] = core::array::from_fn(|i| xr[i].as_chunks::<16>().0);
            let nch = cols / 16;
            // The unchecked reads below stay inside these lengths.
            assert!(wc.iter().all(|p| p.len() == nch) && xc.iter().all(|p| p.len() == nch));
            let mut acc = [[zero(); NI]; R];
            for t in 0..nch {
                let mut xv = [zero(); NI];
                for i in 0..NI {
                    // SAFETY: t < nch = xc[i].len() (asserted above).
                    xv[i] = load(unsafe { xc[i].get_unchecked(t) });
                }
                for j in 0..R {
                    // SAFETY: t < nch = wc[j].len() (asserted above).
                    let wv = load(unsafe { wc[j].get_unchecked(t) });
                    for i in 0..NI {
                        acc[j][i] = fma(wv, xv[i], acc[j][i]);
                    }
                }
            }
            let mut out = [[0.0f32; NI]; R];
            for j in 0..R {
                for i in 0..NI {
                    let mut t = hsum(acc[j][i]);
                    for (&a, &b) in wr[j][16 * nch..].iter().zip(&xr[i][16 * nch..]) {
                        t = a.mul_add(b, t);
                    }
                    out[j][i] = t;
                }
            }
            out
        }

        /// Decodes rows `r0 ..` of `w` into `out` (whole rows; `cpu::decode_rows_fallback`).
        #[target_feature(enable = $feat)]
        pub(crate) fn decode_rows(w: &QWeight<'_>, cols: usize, r0: usize, out: &mut [f32]) {
            for (j, o) in out.chunks_exact_mut(cols).enumerate() {
                let r = r0 + j;
                match *w {
                    QWeight::U8 {
                        codes,
                        scales,
                        zeros,
                        group,
                    } => {
                        let ng = cols / group;
                        let codes = &codes[r * cols..][..cols];
                        for (gi, (og, cg)) in o
                            .chunks_exact_mut(group)
                            .zip(codes.chunks_exact(group))
                            .enumerate()
                        {
                            let s = scales[r * ng + gi];
                            let z = f32::from(zeros[r * ng + gi]);
                            let (sv, zv) = (splat(s), splat(z));
                            let (oc, ot) = og.as_chunks_mut::<16>();
                            let (cc, ct) = cg.as_chunks::<16>();
                            for (ov, cv) in oc.iter_mut().zip(cc) {
                                store(ov, mul(sv, sub(u8x16(cv), zv)));
                            }
                            for (ov, &cv) in ot.iter_mut().zip(ct) {
                                *ov = s * (f32::from(cv) - z);
                            }
                        }
                    }
                    QWeight::U4 {
                        packed,
                        scales,
                        zeros,
                        group,
                    } => {
                        let ng = cols / group;
                        let packed = &packed[r * cols / 2..][..cols / 2];
                        for (gi, (og, pg)) in o
                            .chunks_exact_mut(group)
                            .zip(packed.chunks_exact(group / 2))
                            .enumerate()
                        {
                            let s = scales[r * ng + gi];
                            let z = f32::from(zeros[r * ng + gi]);
                            let (sv, zv) = (splat(s), splat(z));
                            let (oc, ot) = og.as_chunks_mut::<32>();
                            let (pc, pt) = pg.as_chunks::<16>();
                            for (ov, pv) in oc.iter_mut().zip(pc) {
                                let (lo, hi) = nib_u(bytes16(pv));
                                store_interleaved(ov, mul(sv, sub(lo, zv)), mul(sv, sub(hi, zv)));
                            }
                            for (ov, &b) in ot.chunks_exact_mut(2).zip(pt) {
                                ov[0] = s * (f32::from(b & 15) - z);
                                ov[1] = s * (f32::from(b >> 4) - z);
                            }
                        }
                    }
                    QWeight::Codebook4 {
                        packed,
                        absmax,
                        block,
                        codebook,
                    } if block.is_multiple_of(2) => {
                        let nb = cols / block;
                        let table = lut(codebook);
                        let packed = &packed[r * cols / 2..][..cols / 2];
                        for (bi, (og, pg)) in o
                            .chunks_exact_mut(block)
                            .zip(packed.chunks_exact(block / 2))
                            .enumerate()
                        {
                            let a = absmax[r * nb + bi];
                            let av = splat(a);
                            let (oc, ot) = og.as_chunks_mut::<32>();
                            let (pc, pt) = pg.as_chunks::<16>();
                            for (ov, pv) in oc.iter_mut().zip(pc) {
                                let (lo, hi) = nib_lut(bytes16(pv), table);
                                store_interleaved(ov, mul(hi, av), mul(lo, av));
                            }
                            for (ov, &b) in ot.chunks_exact_mut(2).zip(pt) {
                                ov[0] = codebook[usize::from(b >> 4)] * a;
                                ov[1] = codebook[usize::from(b & 15)] * a;
                            }
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
                        let o16 = o.as_chunks_mut::<16>().0;
                        for (b, blk) in blocks[r * cols / QK..][..cols / QK].iter().enumerate() {
                            let d = f16_splat(blk.d.to_bits());
                            let (qa, qb) = halves(&blk.qs);
                            store(
                                &mut o16[2 * b],
                                mul(d, i8x16(bytes16(bytemuck::cast_ref(qa)))),
                            );
                            store(
                                &mut o16[2 * b + 1],
                                mul(d, i8x16(bytes16(bytemuck::cast_ref(qb)))),
                            );
                        }
                    }
                    QWeight::Q4_0(blocks) => {
                        let table = lut(&Q4_0_VALUES);
                        let o16 = o.as_chunks_mut::<16>().0;
                        for (b, blk) in blocks[r * cols / QK..][..cols / QK].iter().enumerate() {
                            let d = f16_splat(blk.d.to_bits());
                            let (lo, hi) = nib_lut(bytes16(&blk.qs), table);
                            store(&mut o16[2 * b], mul(d, lo));
                            store(&mut o16[2 * b + 1], mul(d, hi));
                        }
                    }
                    QWeight::Q4_1(blocks) => {
                        let o16 = o.as_chunks_mut::<16>().0;
                        for (b, blk) in blocks[r * cols / QK..][..cols / QK].iter().enumerate() {
                            let d = f16_splat(blk.d.to_bits());
                            let m = f16_splat(blk.m.to_bits());
                            let (lo, hi) = nib_u(bytes16(&blk.qs));
                            store(&mut o16[2 * b], fma(d, lo, m));
                            store(&mut o16[2 * b + 1], fma(d, hi, m));
                        }
                    }
                    QWeight::Fp8 {
                        codes,
                        scales,
                        kind,
                    } => {
                        let s = scales[r];
                        let sv = splat(s);
                        let (oc, ot) = o.as_chunks_mut::<16>();
                        let (cc, ct) = codes[r * cols..][..cols].as_chunks::<16>();
                        for (ov, cv) in oc.iter_mut().zip(cc) {
                            let v = match kind {
                                Fp8Kind::E4M3 => fp8x16::<true>(cv),
                                Fp8Kind::E5M2 => fp8x16::<false>(cv),
                            };
                            store(ov, mul(sv, v));
                        }
                        for (ov, &cv) in ot.iter_mut().zip(ct) {
                            *ov = s * kind.decode(cv);
                        }
                    }
                    QWeight::F32(v) => o.copy_from_slice(&v[r * cols..][..cols]),
                }
            }
        }
    };
}
