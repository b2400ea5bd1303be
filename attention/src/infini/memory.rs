//! The compressive memory of one key/value head: `M` (`d×d`) and the normalizer `z` (`d`),
//! always `f32`, with the Linear and Delta update rules and the retrieval
//! `σ(q)·M / (σ(q)·z)`.

use ndarray::linalg::general_mat_mul;
use ndarray::{ArrayView1, ArrayView2, ArrayViewMut2};

use super::MemoryUpdate;

/// `eˣ` for `x ≤ 0` (any `x` is clamped to `[−87, 0]`; below `−87` the result is
/// `e⁻⁸⁷ ≈ 1.6e-38`, not 0): Cody–Waite range reduction `x = n·ln 2 + r`, `|r| ≤ ln 2 / 2`,
/// and a degree-7 Taylor polynomial for `eʳ` (truncation below `2e-9` relative), so the
/// result is within about 2 `f32` ulps of `eˣ` (worst measured `9.7e-8` relative).
/// Branch-free arithmetic only, so loops over slices vectorize; `libm`'s `expf` was a fifth
/// of the streaming time.
#[inline]
pub(crate) fn exp_nonpositive(x: f32) -> f32 {
    // 1.5·2²³: adding and subtracting it rounds to the nearest integer.
    const ROUND: f32 = 12_582_912.0;
    // ln 2 split so that n·LN2_HI is exact for |n| < 2⁸.
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let x = x.clamp(-87.0, 0.0);
    let n = (x * std::f32::consts::LOG2_E + ROUND) - ROUND;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let mut p = 1.0 / 5040.0;
    for c in [
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
        1.0,
        1.0,
    ] {
        p = p * r + c;
    }
    // 2ⁿ with n in −126..=0: a normal number built from its exponent bits.
    p * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

/// `σ(x) = ELU(x) + 1`: `x + 1` for `x > 0`, `eˣ` otherwise (strictly positive).
#[inline]
pub(crate) fn sigma(x: f32) -> f32 {
    let e = exp_nonpositive(x);
    if x > 0.0 { x + 1.0 } else { e }
}

/// `σ` applied to every element of `x`, into `out`.
pub(crate) fn sigma_into(x: &[f32], out: &mut Vec<f32>) {
    out.clear();
    out.extend_from_slice(x);
    sigma_in_place(out);
}

/// `σ` applied to every element of `x`, in place.
fn sigma_in_place(x: &mut [f32]) {
    for v in x {
        *v = sigma(*v);
    }
}

/// The state after some number of complete segments.
#[derive(Clone, Debug)]
pub(crate) struct Memory {
    d: usize,
    /// `d×d`, row-major: `M[a][b]` maps key feature `a` to value feature `b`.
    m: Vec<f32>,
    /// `Σ_t σ(k_t)`.
    z: Vec<f32>,
    /// Scratch for `σ(K)` and the (delta-corrected) values of the valid rows.
    phi: Vec<f32>,
    vals: Vec<f32>,
}

impl Memory {
    /// The empty memory (`M = 0`, `z = 0`).
    pub(crate) fn new(d: usize) -> Self {
        Self {
            d,
            m: vec![0.0; d * d],
            z: vec![0.0; d],
            phi: Vec::new(),
            vals: Vec::new(),
        }
    }

    /// Back to the empty memory.
    pub(crate) fn clear(&mut self) {
        self.m.fill(0.0);
        self.z.fill(0.0);
    }

    /// Bytes of the persistent state (`M` and `z`; the scratch is not state).
    pub(crate) fn state_bytes(d: usize) -> usize {
        (d * d + d) * size_of::<f32>()
    }

    /// `out[t] = σ(q_t)·M / (σ(q_t)·z)` for each of the `rows` rows of `phi_q` (already
    /// `σ(q)`), or zeros where the denominator is not positive (before any complete segment:
    /// `z = 0`).
    pub(crate) fn retrieve(&self, phi_q: &[f32], rows: usize, out: &mut [f32]) {
        let d = self.d;
        let a = ArrayView2::from_shape((rows, d), phi_q).expect("rows·d elements");
        let m = ArrayView2::from_shape((d, d), &self.m).expect("d·d elements");
        let mut o = ArrayViewMut2::from_shape((rows, d), out).expect("rows·d elements");
        general_mat_mul(1.0, &a, &m, 0.0, &mut o);
        let den = a.dot(&ArrayView1::from(&self.z[..]));
        for (mut row, &den) in o.rows_mut().into_iter().zip(den.iter()) {
            if den > 0.0 {
                let inv = 1.0 / den;
                row.mapv_inplace(|x| x * inv);
            } else {
                row.fill(0.0);
            }
        }
    }

    /// Writes one complete segment: `rows` keys and values (`[rows, d]`), of which only the
    /// valid ones (all when `valid` is `None`) take part.
    ///
    /// Linear: `M += σ(K)ᵀV`. Delta: `M += σ(K)ᵀ(V − σ(K)M / (σ(K)z))`, the retrieved term
    /// being zero where `σ(k)·z` is not positive. Both then `z += Σ_t σ(k_t)`.
    pub(crate) fn update(
        &mut self,
        k: &[f32],
        v: &[f32],
        rows: usize,
        valid: Option<&[bool]>,
        rule: MemoryUpdate,
    ) {
        let d = self.d;
        self.phi.clear();
        self.vals.clear();
        for t in 0..rows {
            if valid.is_none_or(|m| m[t]) {
                self.phi.extend_from_slice(&k[t * d..][..d]);
                self.vals.extend_from_slice(&v[t * d..][..d]);
            }
        }
        sigma_in_place(&mut self.phi);
        let n = self.phi.len() / d;
        if n == 0 {
            return;
        }
        let phi = ArrayView2::from_shape((n, d), &self.phi).expect("n·d elements");
        if rule == MemoryUpdate::Delta {
            // vals −= σ(K)M / (σ(K)z), row by row where the denominator is positive.
            let m = ArrayView2::from_shape((d, d), &self.m).expect("d·d elements");
            let den = phi.dot(&ArrayView1::from(&self.z[..]));
            let retrieved = phi.dot(&m);
            for ((t, &den), r) in den.iter().enumerate().zip(retrieved.rows()) {
                if den > 0.0 {
                    let inv = 1.0 / den;
                    for (x, &y) in self.vals[t * d..][..d].iter_mut().zip(r.iter()) {
                        *x -= y * inv;
                    }
                }
            }
        }
        let vals = ArrayView2::from_shape((n, d), &self.vals).expect("n·d elements");
        let mut m = ArrayViewMut2::from_shape((d, d), &mut self.m).expect("d·d elements");
        general_mat_mul(1.0, &phi.t(), &vals, 1.0, &mut m);
        for row in phi.rows() {
            for (z, &p) in self.z.iter_mut().zip(row.iter()) {
                *z += p;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Relative error of [`exp_nonpositive`] against `f64` `exp`: about 2 `f32` ulps (the
    /// worst of the 870 001 points below is `9.7e-8`).
    const EXP_REL_TOL: f64 = 2e-7;

    #[test]
    fn exp_nonpositive_matches_f64_exp() {
        let mut worst = (0.0f64, 0.0f32);
        for i in 0..=870_000 {
            let x = -(i as f32) * 1e-4;
            let want = f64::from(x).exp();
            let e = (f64::from(exp_nonpositive(x)) - want).abs() / want;
            if e > worst.0 {
                worst = (e, x);
            }
        }
        assert!(
            worst.0 <= EXP_REL_TOL,
            "error {:e} at x = {}",
            worst.0,
            worst.1
        );
        // Clamped below −87 and above 0.
        assert!((f64::from(exp_nonpositive(-1e6)) / (-87f64).exp() - 1.0).abs() < EXP_REL_TOL);
        assert!(
            (exp_nonpositive(f32::NEG_INFINITY) - exp_nonpositive(-87.0)).abs()
                <= f32::MIN_POSITIVE
        );
        assert!((exp_nonpositive(3.0) - 1.0).abs() <= f32::EPSILON);
    }

    #[test]
    fn sigma_is_elu_plus_one() {
        for x in [-30.0f32, -2.5, -1e-3, 0.0, 1e-3, 0.7, 12.0] {
            let want = if x > 0.0 {
                f64::from(x) + 1.0
            } else {
                f64::from(x).exp()
            };
            assert!(
                (f64::from(sigma(x)) - want).abs() <= EXP_REL_TOL * want,
                "x = {x}"
            );
        }
    }
}
