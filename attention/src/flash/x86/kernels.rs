//! The kernel bodies shared by the AVX-512 and AVX2 levels (see the parent module).

/// The kernel bodies, instantiated once per level with that level's target features. The
/// primitives (`V`, `zero`, `splat`, `load`, `store`, `loadp`, `storep`, `fma`, `mul`,
/// `add`, `sub`, `vmax`, `hmax`, `hsum`, `pow2_of_rounded`) and the register-tile sizes
/// (`QK_MR` rows × `QK_NR` vectors for scores, `PV_MR` rows × `PV_NV` vectors for outputs)
/// are the enclosing module's.
///
/// The tile sizes only group independent computations (each score and output element is
/// its own FMA chain), so they change speed, never results.
macro_rules! kernels {
    ($feat:literal) => {
        use crate::flash::fallback::{EXP2_MIN, EXP2_POLY, ROUND_MAGIC};
        use crate::flash::{LANES, PANEL};

        /// `fallback::exp2`, lane by lane.
        #[inline]
        #[target_feature(enable = $feat)]
        fn exp2(x: V) -> V {
            let x = vmax(x, splat(EXP2_MIN));
            let t = add(x, splat(ROUND_MAGIC));
            let f = sub(x, sub(t, splat(ROUND_MAGIC)));
            let mut p = splat(EXP2_POLY[5]);
            p = fma(p, f, splat(EXP2_POLY[4]));
            p = fma(p, f, splat(EXP2_POLY[3]));
            p = fma(p, f, splat(EXP2_POLY[2]));
            p = fma(p, f, splat(EXP2_POLY[1]));
            p = fma(p, f, splat(EXP2_POLY[0]));
            p = fma(p, f, splat(1.0));
            mul(p, pow2_of_rounded(t))
        }

        /// `fallback::row_max`.
        ///
        /// # Panics
        ///
        /// If the length is not a multiple of 16.
        #[target_feature(enable = $feat)]
        pub(super) fn row_max(row: &[f32]) -> f32 {
            assert!(row.len().is_multiple_of(LANES), "flash: row length");
            let mut acc = splat(f32::NEG_INFINITY);
            for chunk in row.as_chunks::<LANES>().0 {
                acc = vmax(load(chunk), acc);
            }
            hmax(acc)
        }

        /// `fallback::exp_row`.
        ///
        /// # Panics
        ///
        /// If the length is not a multiple of 16.
        #[target_feature(enable = $feat)]
        pub(super) fn exp_row(row: &mut [f32], m: f32) -> f32 {
            assert!(row.len().is_multiple_of(LANES), "flash: row length");
            let mv = splat(m);
            let mut acc = zero();
            for chunk in row.as_chunks_mut::<LANES>().0 {
                let p = exp2(sub(load(chunk), mv));
                store(chunk, p);
                acc = add(acc, p);
            }
            hsum(acc)
        }

        /// `fallback::qk`.
        ///
        /// # Safety
        ///
        /// The operands must pass `fallback::check_qk`.
        #[target_feature(enable = $feat)]
        pub(super) unsafe fn qk(
            qs: &[f32],
            rows: usize,
            d: usize,
            kt: &[f32],
            width: usize,
            s: &mut [f32],
        ) {
            let mut p0 = 0;
            while p0 < width {
                let w = PANEL.min(width - p0);
                let panel = kt[p0 * d..][..w * d].as_ptr();
                let mut c0 = 0;
                while c0 < w {
                    let nv = ((w - c0) / LANES).min(QK_NR);
                    // SAFETY: (all arms) the caller's `check_qk` bounds every access of
                    // `qk_cols` (rows < `rows`, c < d, columns inside the panel and tile).
                    unsafe {
                        match nv {
                            1 => qk_cols::<1>(qs, rows, d, panel, w, c0, s, width, p0 + c0),
                            2 => qk_cols::<2>(qs, rows, d, panel, w, c0, s, width, p0 + c0),
                            3 => qk_cols::<3>(qs, rows, d, panel, w, c0, s, width, p0 + c0),
                            _ => qk_cols::<4>(qs, rows, d, panel, w, c0, s, width, p0 + c0),
                        }
                    }
                    c0 += nv * LANES;
                }
                p0 += w;
            }
        }

        /// Scores of columns `col ..+ 16·NR` of the tile (columns `c0 ..` of the panel at
        /// `panel`, width `w`), for every row.
        ///
        /// # Safety
        ///
        /// `qs` holds `rows × d`, `panel` points at `w × d` readable floats with
        /// `c0 + 16·NR ≤ w`, and `s` holds `rows × width` with `col + 16·NR ≤ width`.
        #[allow(clippy::too_many_arguments)]
        #[inline]
        #[target_feature(enable = $feat)]
        unsafe fn qk_cols<const NR: usize>(
            qs: &[f32],
            rows: usize,
            d: usize,
            panel: *const f32,
            w: usize,
            c0: usize,
            s: &mut [f32],
            width: usize,
            col: usize,
        ) {
            let q = qs.as_ptr();
            let out = s.as_mut_ptr();
            let mut r = 0;
            while r + QK_MR <= rows {
                // SAFETY: rows r .. r + QK_MR exist; see this function's contract.
                unsafe {
                    qk_micro::<QK_MR, NR>(
                        q.add(r * d),
                        d,
                        panel.add(c0),
                        w,
                        out.add(r * width + col),
                        width,
                    )
                };
                r += QK_MR;
            }
            // SAFETY: (all arms) rows r .. rows exist; see this function's contract.
            unsafe {
                let (q, o) = (q.add(r * d), out.add(r * width + col));
                match rows - r {
                    0 => {}
                    1 => qk_micro::<1, NR>(q, d, panel.add(c0), w, o, width),
                    2 => qk_micro::<2, NR>(q, d, panel.add(c0), w, o, width),
                    3 => qk_micro::<3, NR>(q, d, panel.add(c0), w, o, width),
                    4 => qk_micro::<4, NR>(q, d, panel.add(c0), w, o, width),
                    5 => qk_micro::<5, NR>(q, d, panel.add(c0), w, o, width),
                    _ => unreachable!("QK_MR ≤ 6"),
                }
            }
        }

        /// An `R × 16·NR` register tile of scores: `out[r·width + j] = Σ_c q[r·d + c]·b[c·w + j]`.
        ///
        /// # Safety
        ///
        /// `q` points at `R` rows of `d` readable floats, `b` at `d` rows (stride `w`) of
        /// `16·NR` readable floats, `out` at `R` rows (stride `width`) of `16·NR` writable
        /// floats.
        #[allow(clippy::needless_range_loop)]
        #[inline]
        #[target_feature(enable = $feat)]
        unsafe fn qk_micro<const R: usize, const NR: usize>(
            q: *const f32,
            d: usize,
            b: *const f32,
            w: usize,
            out: *mut f32,
            width: usize,
        ) {
            let mut acc = [[zero(); NR]; R];
            for c in 0..d {
                let mut bv = [zero(); NR];
                for n in 0..NR {
                    // SAFETY: row c < d of `b`, vector n < NR (the contract).
                    bv[n] = unsafe { loadp(b.add(c * w + n * LANES)) };
                }
                for r in 0..R {
                    // SAFETY: row r < R, element c < d of `q` (the contract).
                    let a = splat(unsafe { *q.add(r * d + c) });
                    for n in 0..NR {
                        acc[r][n] = fma(a, bv[n], acc[r][n]);
                    }
                }
            }
            for r in 0..R {
                for n in 0..NR {
                    // SAFETY: row r < R, vector n < NR of `out` (the contract).
                    unsafe { storep(out.add(r * width + n * LANES), acc[r][n]) };
                }
            }
        }

        /// `fallback::pv`.
        ///
        /// # Safety
        ///
        /// The operands must pass `fallback::check_pv`.
        #[allow(clippy::too_many_arguments)]
        #[target_feature(enable = $feat)]
        pub(super) unsafe fn pv(
            p: &[f32],
            rows: usize,
            width: usize,
            keys: usize,
            v: &[f32],
            v_stride: usize,
            d_pad: usize,
            alpha: &[f32],
            o: &mut [f32],
        ) {
            let mut x0 = 0;
            while x0 < d_pad {
                let nv = ((d_pad - x0) / LANES).min(PV_NV);
                // SAFETY: (all arms) the caller's `check_pv` bounds every access of
                // `pv_cols` (rows < `rows`, keys < `keys`, columns x0 + 16·nv ≤ d_pad).
                unsafe {
                    match nv {
                        1 => pv_cols::<1>(p, rows, width, keys, v, v_stride, d_pad, alpha, o, x0),
                        2 => pv_cols::<2>(p, rows, width, keys, v, v_stride, d_pad, alpha, o, x0),
                        3 => pv_cols::<3>(p, rows, width, keys, v, v_stride, d_pad, alpha, o, x0),
                        _ => pv_cols::<4>(p, rows, width, keys, v, v_stride, d_pad, alpha, o, x0),
                    }
                }
                x0 += nv * LANES;
            }
        }

        /// Output columns `x0 ..+ 16·NV` of every row.
        ///
        /// # Safety
        ///
        /// The operands pass `fallback::check_pv` and `x0 + 16·NV ≤ d_pad`.
        #[allow(clippy::too_many_arguments)]
        #[inline]
        #[target_feature(enable = $feat)]
        unsafe fn pv_cols<const NV: usize>(
            p: &[f32],
            rows: usize,
            width: usize,
            keys: usize,
            v: &[f32],
            v_stride: usize,
            d_pad: usize,
            alpha: &[f32],
            o: &mut [f32],
            x0: usize,
        ) {
            let (p, v, a, o) = (
                p.as_ptr(),
                v.as_ptr().wrapping_add(x0),
                alpha.as_ptr(),
                o.as_mut_ptr(),
            );
            let mut r = 0;
            while r + PV_MR <= rows {
                // SAFETY: rows r .. r + PV_MR exist; see this function's contract.
                unsafe {
                    pv_micro::<PV_MR, NV>(
                        p.add(r * width),
                        width,
                        keys,
                        v,
                        v_stride,
                        a.add(r),
                        o.add(r * d_pad + x0),
                        d_pad,
                    )
                };
                r += PV_MR;
            }
            // SAFETY: (all arms) rows r .. rows exist; see this function's contract.
            unsafe {
                let (p, a, o) = (p.add(r * width), a.add(r), o.add(r * d_pad + x0));
                match rows - r {
                    0 => {}
                    1 => pv_micro::<1, NV>(p, width, keys, v, v_stride, a, o, d_pad),
                    2 => pv_micro::<2, NV>(p, width, keys, v, v_stride, a, o, d_pad),
                    3 => pv_micro::<3, NV>(p, width, keys, v, v_stride, a, o, d_pad),
                    4 => pv_micro::<4, NV>(p, width, keys, v, v_stride, a, o, d_pad),
                    5 => pv_micro::<5, NV>(p, width, keys, v, v_stride, a, o, d_pad),
                    _ => unreachable!("PV_MR ≤ 6"),
                }
            }
        }

        /// An `R × 16·NV` register tile of outputs: `o[r] ← α_r·o[r] + Σ_{j<keys} p[r·width + j]·v[j·v_stride]`.
        ///
        /// # Safety
        ///
        /// `p` points at `R` rows (stride `width`) of `keys` readable floats, `v` at `keys`
        /// rows (stride `v_stride`) of `16·NV` readable floats, `a` at `R` readable floats,
        /// `o` at `R` rows (stride `d_pad`) of `16·NV` readable and writable floats.
        #[allow(clippy::needless_range_loop, clippy::too_many_arguments)]
        #[inline]
        #[target_feature(enable = $feat)]
        unsafe fn pv_micro<const R: usize, const NV: usize>(
            p: *const f32,
            width: usize,
            keys: usize,
            v: *const f32,
            v_stride: usize,
            a: *const f32,
            o: *mut f32,
            d_pad: usize,
        ) {
            let mut acc = [[zero(); NV]; R];
            for r in 0..R {
                // SAFETY: element r < R of `a` (the contract).
                let alpha = splat(unsafe { *a.add(r) });
                for n in 0..NV {
                    // SAFETY: row r < R, vector n < NV of `o` (the contract).
                    acc[r][n] = mul(unsafe { loadp(o.add(r * d_pad + n * LANES)) }, alpha);
                }
            }
            for j in 0..keys {
                let mut vv = [zero(); NV];
                for n in 0..NV {
                    // SAFETY: row j < keys, vector n < NV of `v` (the contract).
                    vv[n] = unsafe { loadp(v.add(j * v_stride + n * LANES)) };
                }
                for r in 0..R {
                    // SAFETY: row r < R, element j < keys of `p` (the contract).
                    let pj = splat(unsafe { *p.add(r * width + j) });
                    for n in 0..NV {
                        acc[r][n] = fma(pj, vv[n], acc[r][n]);
                    }
                }
            }
            for r in 0..R {
                for n in 0..NV {
                    // SAFETY: row r < R, vector n < NV of `o` (the contract).
                    unsafe { storep(o.add(r * d_pad + n * LANES), acc[r][n]) };
                }
            }
        }
    };
}
