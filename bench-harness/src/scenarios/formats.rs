//! Table `formats`: round-trip error of every element format and every OCP MX block format
//! on seeded samples from N(0, 1), U(−1, 1) and a heavy-tailed Student-t (ν = 3).
//!
//! For each (distribution, format, cast) the table reports SQNR, maximum relative error, the
//! fractions of samples that overflowed the format's range and that flushed to zero, and the
//! count of non-finite results, so saturation and NaN/inf are visible rather than hidden.
//!
//! - Element formats go through the fast slice path (`encode_slice` or
//!   `encode_slice_saturating`, then `decode_slice`). Formats whose plain cast can produce
//!   NaN or ±inf on overflow get two rows, `plain` and `satfinite`; the 4/6-bit formats have
//!   no NaN/inf, their plain cast already saturates, so they get one. The unsigned E8M0 scale
//!   format is left out: it has no sign (and no zero), so every negative sample would be NaN.
//! - MX formats go through [`numerics::mx::quantize`] (blocks of 32, one E8M0 scale each,
//!   elements saturating as the spec requires) and `MxTensor::dequantize_into`.

use anyhow::{Context, Result, bail};
use numerics::metrics::{ErrorStats, error_stats};
use numerics::mx::{self, BLOCK_SIZE};
use numerics::{
    Element, F4E2M1FN, F6E2M3FN, F6E3M2FN, F8E4M3FN, F8E4M3FNUZ, F8E5M2, F8E5M2FNUZ, F8E8M0FNU,
    Format, MxFormat, NonFinite, Par, bf16, decode_slice, encode_slice, encode_slice_saturating,
    f16,
};
use rand_distr::{Normal, StudentT, Uniform};

use super::{Ctx, Scenario, draw, seeded_samples};
use crate::report::{Column, Table, fixed, sci3};

/// The registry entry.
pub(crate) const SCENARIO: Scenario = Scenario {
    name: "formats",
    description: "Round-trip error (SQNR, max relative error, overflow, flush to zero) of every \
                  element and MX block format on N(0,1), U(-1,1) and Student-t (nu = 3) samples",
    run,
};

/// The sample distributions, in table order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dist {
    /// N(0, 1).
    Normal,
    /// U(−1, 1).
    Uniform,
    /// Student-t with ν = 3 (unscaled: variance 3, tails falling as |x|⁻⁴).
    StudentT3,
}

impl Dist {
    /// Every distribution; the index is the seed offset.
    pub(crate) const ALL: [Dist; 3] = [Dist::Normal, Dist::Uniform, Dist::StudentT3];

    /// The key used in the table.
    pub(crate) const fn key(self) -> &'static str {
        match self {
            Dist::Normal => "normal",
            Dist::Uniform => "uniform",
            Dist::StudentT3 => "student_t3",
        }
    }

    /// `n` samples drawn in `f64` from `StdRng::seed_from_u64(seed + index)` and rounded to
    /// `f32`.
    ///
    /// # Errors
    ///
    /// If the buffer cannot be allocated.
    pub(crate) fn samples(self, n: usize, seed: u64) -> Result<Vec<f32>> {
        let index = Dist::ALL.iter().position(|&d| d == self).unwrap_or(0) as u64;
        seeded_samples(n, seed.wrapping_add(index), |rng, out| {
            match self {
                Dist::Normal => draw(Normal::new(0.0, 1.0)?, rng, n, out),
                Dist::Uniform => draw(Uniform::new(-1.0, 1.0)?, rng, n, out),
                Dist::StudentT3 => draw(StudentT::new(3.0)?, rng, n, out),
            }
            Ok(())
        })
    }
}

/// How an element format is cast.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cast {
    /// `encode_slice`: the format's own overflow rule (NaN, inf, or saturation).
    Plain,
    /// `encode_slice_saturating`: finite overflow and ±inf clamp to ±max.
    Saturating,
}

/// One row's encoder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Codec {
    /// An element format with a cast.
    Cast(Format, Cast),
    /// An MX block format.
    Mx(MxFormat),
}

impl Codec {
    /// Every codec of the table, in row order: element formats (both casts where they
    /// differ), then MX formats.
    pub(crate) fn all() -> Vec<Codec> {
        let mut out = Vec::new();
        // The unsigned scale format (E8M0) cannot hold a negative sample.
        for f in Format::ALL.into_iter().filter(|f| f.spec().is_signed()) {
            out.push(Codec::Cast(f, Cast::Plain));
            let spec = f.spec();
            if spec.has_nan() || spec.has_inf() {
                out.push(Codec::Cast(f, Cast::Saturating));
            }
        }
        out.extend(MxFormat::ALL.into_iter().map(Codec::Mx));
        out
    }

    /// Format name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Codec::Cast(f, _) => f.name(),
            Codec::Mx(m) => m.name(),
        }
    }

    /// The `cast` column.
    pub(crate) fn cast_label(self) -> &'static str {
        match self {
            Codec::Cast(_, Cast::Plain) => "plain",
            Codec::Cast(_, Cast::Saturating) => "satfinite",
            Codec::Mx(_) => "mx",
        }
    }

    /// Storage bits per element (MX includes its share of the 8-bit block scale).
    pub(crate) fn bits_per_element(self) -> f64 {
        match self {
            Codec::Cast(f, _) => f64::from(f.bits()),
            Codec::Mx(m) => m.bits_per_element(),
        }
    }

    /// `log2(max / min_positive)` of the (element) format.
    pub(crate) fn range_binades(self) -> f64 {
        match self {
            Codec::Cast(f, _) => f.spec().dynamic_range_binades(),
            Codec::Mx(m) => match m.element_format() {
                Some(f) => f.spec().dynamic_range_binades(),
                // MXINT8 elements are k · 2⁻⁶ for |k| ≤ 127: the smallest step is 2⁻⁶.
                None => (f64::from(m.element_max()) * 64.0).log2(),
            },
        }
    }

    /// Encodes and decodes `src` into `out`; returns how many samples overflowed the
    /// format's range (MX: elements the quantizer clamped).
    ///
    /// # Errors
    ///
    /// Errors of the numerics kernels (a NaN into FP6/FP4, a non-finite value into MX).
    pub(crate) fn roundtrip(self, src: &[f32], out: &mut [f32], par: Par) -> Result<usize> {
        match self {
            Codec::Cast(f, cast) => {
                match f {
                    Format::F16 => cast_typed::<f16>(src, out, cast, par)?,
                    Format::BF16 => cast_typed::<bf16>(src, out, cast, par)?,
                    Format::F8E4M3FN => cast_typed::<F8E4M3FN>(src, out, cast, par)?,
                    Format::F8E5M2 => cast_typed::<F8E5M2>(src, out, cast, par)?,
                    Format::F8E4M3FNUZ => cast_typed::<F8E4M3FNUZ>(src, out, cast, par)?,
                    Format::F8E5M2FNUZ => cast_typed::<F8E5M2FNUZ>(src, out, cast, par)?,
                    Format::F8E8M0FNU => cast_typed::<F8E8M0FNU>(src, out, cast, par)?,
                    Format::F6E2M3FN => cast_typed::<F6E2M3FN>(src, out, cast, par)?,
                    Format::F6E3M2FN => cast_typed::<F6E3M2FN>(src, out, cast, par)?,
                    Format::F4E2M1FN => cast_typed::<F4E2M1FN>(src, out, cast, par)?,
                    other => bail!("format {other} has no slice element type in adaprec yet"),
                }
                let max = f.spec().max_finite();
                Ok(src.iter().filter(|x| x.abs() > max).count())
            }
            Codec::Mx(m) => {
                let q = mx::quantize(m, src, NonFinite::Error, par)?;
                q.dequantize_into(out, par)?;
                Ok(q.saturated())
            }
        }
    }
}

fn cast_typed<T: Element + Default>(
    src: &[f32],
    out: &mut [f32],
    cast: Cast,
    par: Par,
) -> Result<()> {
    let mut codes = Vec::new();
    codes
        .try_reserve_exact(src.len())
        .with_context(|| format!("allocating {} codes", src.len()))?;
    codes.resize(src.len(), T::default());
    match cast {
        Cast::Plain => encode_slice(src, &mut codes, par)?,
        Cast::Saturating => encode_slice_saturating(src, &mut codes, par)?,
    }
    decode_slice(&codes, out, par)?;
    Ok(())
}

/// One row of the table.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Measurement {
    /// The sample distribution.
    pub(crate) dist: Dist,
    /// The encoder.
    pub(crate) codec: Codec,
    /// Error metrics over every sample.
    pub(crate) stats: ErrorStats,
    /// Samples beyond the format's largest finite value (MX: clamped elements).
    pub(crate) overflow: usize,
    /// Non-zero samples that decoded to zero.
    pub(crate) flushed: usize,
}

/// Encodes `src` with `codec` and measures the round trip.
///
/// # Errors
///
/// As [`Codec::roundtrip`], or if the output buffer cannot be allocated.
pub(crate) fn measure_codec(
    dist: Dist,
    codec: Codec,
    src: &[f32],
    par: Par,
) -> Result<Measurement> {
    let mut out = Vec::new();
    out.try_reserve_exact(src.len())
        .with_context(|| format!("allocating {} outputs", src.len()))?;
    out.resize(src.len(), 0.0f32);
    let overflow = codec.roundtrip(src, &mut out, par).with_context(|| {
        format!(
            "{} ({}) on {}",
            codec.name(),
            codec.cast_label(),
            dist.key()
        )
    })?;
    let stats = error_stats(src, &out);
    let flushed = src
        .iter()
        .zip(&out)
        .filter(|&(&x, &y)| x != 0.0 && y == 0.0)
        .count();
    Ok(Measurement {
        dist,
        codec,
        stats,
        overflow,
        flushed,
    })
}

/// Largest magnitude drawn from each distribution, for the intro.
#[derive(Clone, Copy, Debug)]
pub(crate) struct DistSummary {
    /// The distribution.
    pub(crate) dist: Dist,
    /// `max |x|` over its samples.
    pub(crate) max_abs: f32,
}

/// Every measurement of the table, distribution-major.
///
/// # Errors
///
/// As [`measure_codec`].
pub(crate) fn measure(ctx: &Ctx) -> Result<(Vec<Measurement>, Vec<DistSummary>)> {
    anyhow::ensure!(ctx.samples > 0, "the sample count must be positive");
    let mut rows = Vec::new();
    let mut summaries = Vec::new();
    for dist in Dist::ALL {
        ctx.note(&format!("{}: drawing {} samples", dist.key(), ctx.samples));
        let src = dist.samples(ctx.samples, ctx.seed)?;
        summaries.push(DistSummary {
            dist,
            max_abs: src.iter().fold(0.0f32, |m, x| m.max(x.abs())),
        });
        for codec in Codec::all() {
            rows.push(measure_codec(dist, codec, &src, ctx.par)?);
        }
        ctx.note(&format!(
            "{}: {} encoders done",
            dist.key(),
            Codec::all().len()
        ));
    }
    Ok((rows, summaries))
}

fn columns() -> Vec<Column> {
    vec![
        Column::text(
            "distribution",
            "distribution",
            "`normal` = N(0, 1), `uniform` = U(−1, 1), `student_t3` = Student-t with ν = 3 \
             (unscaled).",
        ),
        Column::text(
            "format",
            "format",
            "element format, or MX block format (`mx…`).",
        ),
        Column::text(
            "cast",
            "cast",
            "`plain` = `encode_slice` (the format's own overflow rule), `satfinite` = \
             `encode_slice_saturating` (overflow clamps to ±max), `mx` = `mx::quantize`.",
        ),
        Column::num(
            "bits_per_element",
            "bits/elem",
            "storage bits per element; MX includes the 8-bit scale shared by 32 elements.",
        ),
        Column::num(
            "range_binades",
            "range (binades)",
            "log2(max finite / min positive) of the (element) format.",
        ),
        Column::num(
            "sqnr_db",
            "SQNR (dB)",
            "10·log10(Σx² / Σ(x̂ − x)²) over all samples; NaN if any result is NaN.",
        ),
        Column::num(
            "max_rel_error",
            "max rel. error",
            "max |x̂ − x| / |x| over all non-zero samples; NaN if any result is NaN.",
        ),
        Column::num(
            "overflow_frac",
            "overflow",
            "fraction of samples with |x| > the format's max finite value (MX: elements whose \
             scaled value exceeded the element max and were clamped).",
        ),
        Column::num(
            "flush_to_zero_frac",
            "flushed to 0",
            "fraction of non-zero samples that decoded to zero.",
        ),
        Column::num(
            "non_finite",
            "non-finite",
            "number of results that are NaN or ±inf.",
        ),
    ]
}

fn row(m: &Measurement, n: usize) -> Vec<String> {
    let frac = |k: usize| sci3(k as f64 / n as f64);
    vec![
        m.dist.key().to_string(),
        m.codec.name().to_string(),
        m.codec.cast_label().to_string(),
        fixed(m.codec.bits_per_element(), 2),
        fixed(m.codec.range_binades(), 2),
        fixed(m.stats.sqnr_db, 2),
        sci3(m.stats.max_rel),
        frac(m.overflow),
        frac(m.flushed),
        m.stats.non_finite.to_string(),
    ]
}

/// `name: max < 2^(emax+1)` for every MX format, from the format definitions.
fn mx_headroom() -> String {
    MxFormat::ALL
        .iter()
        .map(|m| {
            format!(
                "{}: {} < {}",
                m.name(),
                m.element_max(),
                2f64.powi(m.emax_elem() + 1)
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Builds the table.
///
/// # Errors
///
/// As [`measure`].
pub(crate) fn run(ctx: &Ctx) -> Result<Table> {
    let (measurements, summaries) = measure(ctx)?;
    let maxima: Vec<String> = summaries
        .iter()
        .map(|s| format!("{} {:.2}", s.dist.key(), s.max_abs))
        .collect();
    let excluded: Vec<&str> = Format::ALL
        .into_iter()
        .filter(|f| !f.spec().is_signed())
        .map(|f| f.name())
        .collect();
    Ok(Table {
        name: SCENARIO.name,
        title: "Number formats: round-trip error on three distributions".to_string(),
        intro: vec![
            format!(
                "Each format encodes and decodes {n} samples from each of three distributions: \
                 N(0, 1), U(−1, 1) and the heavy-tailed Student-t with ν = 3. The samples are \
                 drawn in f64 with rand 0.10's `StdRng` (ChaCha12) seeded by `seed_from_u64(seed + i)` for the \
                 i-th distribution in that order (seed {seed}), then rounded to f32; those f32 \
                 values are the reference. The metrics are `numerics::metrics::error_stats` \
                 over every sample, NaN and inf results included.",
                n = ctx.samples,
                seed = ctx.seed,
            ),
            format!("Largest |x| drawn: {}.", maxima.join(", ")),
            format!("Regenerate with `{}`.", ctx.command(SCENARIO.name)),
        ],
        columns: columns(),
        rows: measurements.iter().map(|m| row(m, ctx.samples)).collect(),
        notes: vec![
            format!(
                "Left out: {} (the unsigned E8M0 scale format has no sign and no zero, so it \
                 cannot hold the negative samples: every one would encode to NaN).",
                excluded.join(", ")
            ),
            "Element formats use the fast slice path: `encode_slice` (`plain`, the format's \
             own cast: overflow gives NaN in E4M3FN and the FNUZ formats, ±inf in E5M2, FP16 \
             and BF16) or `encode_slice_saturating` (`satfinite`), then `decode_slice`. The \
             4/6-bit formats have no NaN or inf, so their plain cast already saturates to ±max \
             and they get one row; `encode_slice` rejects NaN inputs for them, and the samples \
             hold none."
                .to_string(),
            "A plain cast that overflows to NaN or inf is not hidden: it shows in `non_finite`, \
             and SQNR and max relative error then read NaN or inf. The `overflow` column counts \
             samples beyond the max finite value under every cast: those clamped (`satfinite`, \
             4/6-bit formats, MX), those that became NaN/inf (`plain`), and those close enough \
             to round down to max."
                .to_string(),
            format!(
                "MX formats: `numerics::mx::quantize` with blocks of {BLOCK_SIZE}, one E8M0 \
                 scale 2^(floor(log2 max|x|) − emax_elem) per block, elements rounded to nearest \
                 even and saturating to ±max as OCP MX v1.0 §6.3 specifies (`overflow` = \
                 `MxTensor::saturated`). The range column gives the element format's own range; \
                 the shared scale shifts each block by 2^−127 … 2^127 on top of it. MXINT8 \
                 elements are k·2^−6 with |k| ≤ 127 (range log2 127)."
            ),
            format!(
                "That scale puts each block's largest magnitude in [2^emax_elem, \
                 2^(emax_elem+1)) after scaling, which is past the element max in every MX \
                 format ({}), so the largest elements of some blocks are clamped (`overflow`). \
                 This is why MXFP8 can score below the plain FP8 cast on data that already fit \
                 FP8's range (no per-block gain in relative precision, plus clamping), and why \
                 U(−1, 1), whose blocks all have a maximum near 1, clamps the most. MX pays off \
                 where the element format's range is the bottleneck (FP4/FP6 on heavy tails, \
                 or data outside the element range).",
                mx_headroom()
            ),
            "Relative error is undefined for zero samples (none are drawn in practice); a \
             sample flushed to zero has relative error 1, so `max rel. error` is 1 whenever \
             `flushed to 0` is non-zero."
                .to_string(),
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(samples: usize) -> Ctx {
        Ctx {
            samples,
            seed: 20_261_123,
            par: Par::Seq,
            progress: false,
            gpu: false,
        }
    }

    fn find(ms: &[Measurement], dist: Dist, codec: Codec) -> Measurement {
        *ms.iter()
            .find(|m| m.dist == dist && m.codec == codec)
            .unwrap_or_else(|| panic!("no row for {dist:?} {codec:?}"))
    }

    #[test]
    fn table_is_deterministic() {
        let a = run(&ctx(4096)).unwrap();
        let b = run(&ctx(4096)).unwrap();
        assert_eq!(a.to_markdown(), b.to_markdown());
        assert_eq!(a.to_csv(), b.to_csv());
        a.validate().unwrap();
    }

    #[test]
    fn parallelism_does_not_change_the_table() {
        let seq = run(&ctx(40_000)).unwrap();
        let par = run(&Ctx {
            par: Par::rayon(3),
            ..ctx(40_000)
        })
        .unwrap();
        assert_eq!(seq.to_csv(), par.to_csv());
    }

    #[test]
    fn seed_changes_the_samples() {
        let a = Dist::Normal.samples(16, 1).unwrap();
        let b = Dist::Normal.samples(16, 2).unwrap();
        assert_ne!(
            a.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            b.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        );
        assert!(
            Dist::Uniform
                .samples(1000, 1)
                .unwrap()
                .iter()
                .all(|x| x.abs() <= 1.0)
        );
    }

    #[test]
    fn wider_formats_have_higher_sqnr_on_normal() {
        let (ms, _) = measure(&ctx(4096)).unwrap();
        let sqnr = |f| {
            find(&ms, Dist::Normal, Codec::Cast(f, Cast::Plain))
                .stats
                .sqnr_db
        };
        let (f16, bf16, e4m3) = (
            sqnr(Format::F16),
            sqnr(Format::BF16),
            sqnr(Format::F8E4M3FN),
        );
        assert!(f16 > bf16 && bf16 > e4m3, "{f16} {bf16} {e4m3}");
        // About 6 dB per mantissa bit: f16 (10 bits) vs bf16 (7 bits).
        assert!((f16 - bf16 - 18.0).abs() < 3.0, "{f16} {bf16}");
    }

    #[test]
    fn mx_beats_the_narrow_plain_casts_on_heavy_tails() {
        // Only the formats whose max (6, 7.5) Student-t samples pass often; for E3M2 (max 28)
        // the comparison depends on how many extreme samples a run happens to draw.
        let (ms, _) = measure(&ctx(1 << 15)).unwrap();
        for (mx, plain) in [
            (MxFormat::Fp4E2M1, Format::F4E2M1FN),
            (MxFormat::Fp6E2M3, Format::F6E2M3FN),
        ] {
            let m = find(&ms, Dist::StudentT3, Codec::Mx(mx));
            let p = find(&ms, Dist::StudentT3, Codec::Cast(plain, Cast::Plain));
            assert!(m.stats.sqnr_db > p.stats.sqnr_db + 3.0, "{m:?} vs {p:?}");
        }
    }

    /// MX is scale-invariant (powers of two move only the shared scale); a plain cast is
    /// not. On Student-t samples scaled by 2^12, out of E4M3's range, MXFP8 keeps its SQNR
    /// while the plain casts overflow (to NaN) or clamp (satfinite).
    #[test]
    fn mxfp8_beats_plain_fp8_once_data_leave_its_range() {
        let src = Dist::StudentT3.samples(4096, 7).unwrap();
        let scaled: Vec<f32> = src.iter().map(|x| x * 4096.0).collect();
        let run = |codec, data: &[f32]| {
            measure_codec(Dist::StudentT3, codec, data, Par::Seq)
                .unwrap()
                .stats
        };
        let mx = Codec::Mx(MxFormat::Fp8E4M3);
        let (mx_1, mx_4096) = (run(mx, &src), run(mx, &scaled));
        assert_eq!(mx_1.sqnr_db.to_bits(), mx_4096.sqnr_db.to_bits());
        let sat = run(Codec::Cast(Format::F8E4M3FN, Cast::Saturating), &scaled);
        assert!(
            mx_4096.sqnr_db > sat.sqnr_db + 10.0,
            "{mx_4096:?} vs {sat:?}"
        );
        let plain = run(Codec::Cast(Format::F8E4M3FN, Cast::Plain), &scaled);
        assert!(plain.non_finite > 0 && plain.sqnr_db.is_nan(), "{plain:?}");
    }

    /// The spec's scale puts a block's largest element in [2^emax, 2^(emax+1)), past the
    /// element max for every MX format, so some elements are always clamped: the `overflow`
    /// column must show it.
    #[test]
    fn mx_saturation_is_visible() {
        let (ms, _) = measure(&ctx(4096)).unwrap();
        for m in MxFormat::ALL {
            let r = find(&ms, Dist::Uniform, Codec::Mx(m));
            assert!(r.overflow > 0, "{r:?}");
        }
    }

    #[test]
    fn plain_overflow_is_reported_not_hidden() {
        let src = [1.0f32, -500.0, 0.25, 1e-30];
        let plain = measure_codec(
            Dist::Normal,
            Codec::Cast(Format::F8E4M3FN, Cast::Plain),
            &src,
            Par::Seq,
        )
        .unwrap();
        assert_eq!(plain.stats.non_finite, 1);
        assert!(plain.stats.sqnr_db.is_nan());
        assert_eq!(plain.overflow, 1);
        assert_eq!(plain.flushed, 1);
        let sat = measure_codec(
            Dist::Normal,
            Codec::Cast(Format::F8E4M3FN, Cast::Saturating),
            &src,
            Par::Seq,
        )
        .unwrap();
        assert_eq!(sat.stats.non_finite, 0);
        assert_eq!(sat.overflow, 1);
        assert!(sat.stats.sqnr_db.is_finite());
        let cells = row(&plain, src.len());
        assert_eq!(cells[5], "NaN");
        assert_eq!(cells[7], "2.50e-1");
        assert_eq!(cells[9], "1");
    }

    #[test]
    fn codecs_cover_every_signed_format_and_every_mx_format() {
        let all = Codec::all();
        assert!(
            !all.iter()
                .any(|c| matches!(c, Codec::Cast(Format::F8E8M0FNU, _)))
        );
        for f in Format::ALL.into_iter().filter(|f| *f != Format::F8E8M0FNU) {
            assert!(all.contains(&Codec::Cast(f, Cast::Plain)), "{f}");
        }
        // Saturating rows only where the plain cast can produce NaN/inf.
        assert!(all.contains(&Codec::Cast(Format::F8E4M3FN, Cast::Saturating)));
        assert!(!all.contains(&Codec::Cast(Format::F4E2M1FN, Cast::Saturating)));
        for m in MxFormat::ALL {
            assert!(all.contains(&Codec::Mx(m)));
        }
        assert!((Codec::Mx(MxFormat::Fp4E2M1).bits_per_element() - 4.25).abs() < 1e-12);
    }

    #[test]
    fn narrow_formats_flush_small_normal_samples() {
        let (ms, _) = measure(&ctx(4096)).unwrap();
        let fp4 = find(
            &ms,
            Dist::Normal,
            Codec::Cast(Format::F4E2M1FN, Cast::Plain),
        );
        assert!(fp4.flushed > 0);
        assert!((fp4.stats.max_rel - 1.0).abs() < 1e-12);
        let f16 = find(&ms, Dist::Normal, Codec::Cast(Format::F16, Cast::Plain));
        assert_eq!(f16.flushed, 0);
        assert_eq!(f16.overflow, 0);
    }
}
