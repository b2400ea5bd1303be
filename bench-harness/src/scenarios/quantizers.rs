//! Table `quantizers`: every weight quantizer of the `quant` crate, at every bit width and
//! granularity it offers, on a seeded `[256, 1024]` weight matrix drawn from an LLM-like
//! Gaussian and from a heavy-tailed Student-t.
//!
//! Each row is one run-time format string of [`QuantFormat`] (`int4-g32-asym`, `nf4`,
//! `q4_0`, `fp8-e4m3-pt`, `mxfp4`, …), quantized with [`QuantizedTensor::quantize`] and
//! decoded with [`QuantizedTensor::dequantize`]. The table reports the storage cost
//! ([`QuantizedTensor::bits_per_weight`]: codes, scales, zero points and minima all
//! counted) next to the error ([`numerics::metrics::error_stats`]), so formats can be
//! compared at equal bits.

use anyhow::{Context, Result};
use numerics::metrics::{ErrorStats, error_stats};
use quant::fp8::{Fp8Kind, Fp8Scaling};
use quant::nf4::Codebook4;
use quant::uniform::Granularity;
use quant::{QuantFormat, QuantizedTensor};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Normal, StudentT};

use super::{Ctx, Scenario};
use crate::report::{Column, Table, fixed, sci3};

/// The registry entry.
pub(crate) const SCENARIO: Scenario = Scenario {
    name: "quantizers",
    description: "Every weight quantizer (int2-int8 x granularity x symmetry, NF4/FP4, GGML, \
                  FP8, MX, f16/bf16) on Gaussian and Student-t weights: SQNR, max error, \
                  bits per weight",
    run,
};

/// Rows of the weight matrix (output channels).
pub(crate) const ROWS: usize = 256;
/// Columns of the weight matrix (the reduction axis groups run along).
pub(crate) const COLS: usize = 1024;
/// Standard deviation of the Gaussian weights, and scale of the Student-t ones.
pub(crate) const WEIGHT_SCALE: f64 = 0.02;

/// The weight distributions, in table order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dist {
    /// N(0, 0.02²), as in LLM initialisations.
    Gaussian,
    /// 0.02 · Student-t with ν = 3: heavy tails (`|w|⁻⁴`), some weights far out.
    StudentT3,
}

impl Dist {
    /// Every distribution; the index is the seed offset (after 100).
    pub(crate) const ALL: [Dist; 2] = [Dist::Gaussian, Dist::StudentT3];

    /// The key used in the table.
    pub(crate) const fn key(self) -> &'static str {
        match self {
            Dist::Gaussian => "gaussian",
            Dist::StudentT3 => "student_t3",
        }
    }

    /// `n` weights drawn in `f64` from `StdRng::seed_from_u64(seed + 100 + index)` and
    /// rounded to `f32`.
    ///
    /// # Errors
    ///
    /// If the buffer cannot be allocated.
    pub(crate) fn weights(self, n: usize, seed: u64) -> Result<Vec<f32>> {
        let index = Dist::ALL.iter().position(|&d| d == self).unwrap_or(0) as u64;
        let mut rng = StdRng::seed_from_u64(seed.wrapping_add(100 + index));
        let mut out = Vec::new();
        out.try_reserve_exact(n)
            .with_context(|| format!("allocating {n} weights"))?;
        match self {
            Dist::Gaussian => {
                let d = Normal::new(0.0, WEIGHT_SCALE)?;
                out.extend(d.sample_iter(&mut rng).take(n).map(|x: f64| x as f32));
            }
            Dist::StudentT3 => {
                let d = StudentT::new(3.0)?;
                out.extend(
                    d.sample_iter(&mut rng)
                        .take(n)
                        .map(|x: f64| (x * WEIGHT_SCALE) as f32),
                );
            }
        }
        Ok(out)
    }
}

/// Every format of the table, in row order, as `quant::QuantFormat` strings.
pub(crate) fn format_names() -> Vec<String> {
    let mut out = Vec::new();
    for bits in 2..=8 {
        for gran in ["-pt", "", "-g128", "-g32"] {
            for sym in ["", "-asym"] {
                out.push(format!("int{bits}{gran}{sym}"));
            }
        }
    }
    for kind in ["nf4", "fp4"] {
        for g in [32, 64, 128] {
            out.push(format!("{kind}-g{g}"));
        }
    }
    out.extend(
        [
            "q4_0",
            "q4_1",
            "q8_0",
            "fp8-e4m3",
            "fp8-e4m3-pt",
            "fp8-e5m2",
            "fp8-e5m2-pt",
            "mxfp8-e4m3",
            "mxfp8-e5m2",
            "mxfp6-e2m3",
            "mxfp6-e3m2",
            "mxfp4",
            "mxint8",
            "f16",
            "bf16",
        ]
        .map(String::from),
    );
    out
}

/// The parsed [`format_names`].
///
/// # Errors
///
/// A name `quant` does not parse (never for this list).
pub(crate) fn formats() -> Result<Vec<QuantFormat>> {
    format_names()
        .iter()
        .map(|s| s.parse().with_context(|| format!("format {s}")))
        .collect()
}

/// The descriptive columns of a format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Layout {
    /// The `KIND` token of the format string (`int4`, `nf4`, `q4_0`, `fp8-e4m3`, …).
    pub(crate) kind: String,
    /// Bits of each element's code (without scales).
    pub(crate) code_bits: u32,
    /// Which elements share a scale: `per-tensor`, `per-channel`, `gN` (blocks of `N`
    /// consecutive elements of a row), or `element` (plain floats).
    pub(crate) granularity: String,
    /// Whether the grid is symmetric about zero (no zero point or block minimum).
    pub(crate) symmetric: bool,
}

/// The [`Layout`] of `format`.
pub(crate) fn layout(format: QuantFormat) -> Layout {
    let (kind, code_bits, granularity, symmetric) = match format {
        QuantFormat::F32 => ("f32".to_string(), 32, "element".to_string(), true),
        QuantFormat::F16 => ("f16".to_string(), 16, "element".to_string(), true),
        QuantFormat::BF16 => ("bf16".to_string(), 16, "element".to_string(), true),
        QuantFormat::Fp8 { kind, scaling } => (
            match kind {
                Fp8Kind::E4M3 => "fp8-e4m3",
                Fp8Kind::E5M2 => "fp8-e5m2",
            }
            .to_string(),
            8,
            match scaling {
                Fp8Scaling::PerTensor => "per-tensor",
                Fp8Scaling::PerChannel => "per-channel",
            }
            .to_string(),
            true,
        ),
        QuantFormat::Int(spec) => (
            format!("int{}", spec.bits()),
            spec.bits(),
            match spec.granularity() {
                Granularity::PerTensor => "per-tensor".to_string(),
                Granularity::PerChannel { .. } => "per-channel".to_string(),
                Granularity::PerGroup { group } => format!("g{group}"),
            },
            spec.symmetric(),
        ),
        QuantFormat::Nf4 { codebook, block } => (
            match codebook {
                Codebook4::Nf4 => "nf4",
                Codebook4::Fp4 => "fp4",
            }
            .to_string(),
            4,
            format!("g{block}"),
            true,
        ),
        QuantFormat::Q4_0 => ("q4_0".to_string(), 4, "g32".to_string(), true),
        QuantFormat::Q4_1 => ("q4_1".to_string(), 4, "g32".to_string(), false),
        QuantFormat::Q8_0 => ("q8_0".to_string(), 8, "g32".to_string(), true),
        QuantFormat::Mx(m) => (
            format.to_string(),
            m.element_bits(),
            format!("g{}", numerics::mx::BLOCK_SIZE),
            true,
        ),
        // A format added to `quant` after this table: named by its string, described later.
        other => (other.to_string(), 0, "?".to_string(), true),
    };
    Layout {
        kind,
        code_bits,
        granularity,
        symmetric,
    }
}

/// One row of the table.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Measurement {
    /// The weight distribution.
    pub(crate) dist: Dist,
    /// The format.
    pub(crate) format: QuantFormat,
    /// Stored bits per weight, everything included.
    pub(crate) bits_per_weight: f64,
    /// Error metrics over every weight.
    pub(crate) stats: ErrorStats,
}

/// Quantizes the row-major `[rows, cols]` weights `w` to `format` and measures the round
/// trip.
///
/// # Errors
///
/// Errors of [`QuantizedTensor::quantize`] (a shape the format cannot take).
pub(crate) fn measure_format(
    dist: Dist,
    format: QuantFormat,
    w: &[f32],
    rows: usize,
    cols: usize,
) -> Result<Measurement> {
    let q = QuantizedTensor::quantize(format, w, &[rows, cols])
        .with_context(|| format!("quantizing {} weights to {format}", dist.key()))?;
    let back = q.dequantize();
    Ok(Measurement {
        dist,
        format,
        bits_per_weight: q.bits_per_weight(),
        stats: error_stats(w, &back),
    })
}

/// Largest magnitude and standard deviation of each weight matrix, for the intro.
#[derive(Clone, Copy, Debug)]
pub(crate) struct DistSummary {
    /// The distribution.
    pub(crate) dist: Dist,
    /// `max |w|`.
    pub(crate) max_abs: f32,
    /// Root mean square of `w`.
    pub(crate) rms: f64,
}

/// Every measurement on `[rows, cols]` weights, distribution-major.
///
/// # Errors
///
/// As [`measure_format`].
pub(crate) fn measure_shape(
    ctx: &Ctx,
    rows: usize,
    cols: usize,
) -> Result<(Vec<Measurement>, Vec<DistSummary>)> {
    let formats = formats()?;
    let mut out = Vec::new();
    let mut summaries = Vec::new();
    for dist in Dist::ALL {
        let w = dist.weights(rows * cols, ctx.seed)?;
        let sq: f64 = w.iter().map(|&x| f64::from(x) * f64::from(x)).sum();
        summaries.push(DistSummary {
            dist,
            max_abs: w.iter().fold(0.0f32, |m, x| m.max(x.abs())),
            rms: (sq / w.len() as f64).sqrt(),
        });
        for &f in &formats {
            out.push(measure_format(dist, f, &w, rows, cols)?);
        }
        ctx.note(&format!("{}: {} formats done", dist.key(), formats.len()));
    }
    Ok((out, summaries))
}

fn columns() -> Vec<Column> {
    vec![
        Column::text(
            "distribution",
            "distribution",
            "`gaussian` = N(0, 0.02²), `student_t3` = 0.02 · Student-t with ν = 3.",
        ),
        Column::text(
            "format",
            "format",
            "the `quant::QuantFormat` string, canonical (its `Display`): \
             `KIND[-gN][-asym][-pt]`; integer kinds default to symmetric per output channel, \
             `nf4`/`fp4` to blocks of 64.",
        ),
        Column::text(
            "kind",
            "kind",
            "the element quantizer: `intB` uniform integer, `nf4`/`fp4` bitsandbytes \
             codebooks, `q4_0`/`q4_1`/`q8_0` GGML blocks, `fp8-*` FP8 with amax scaling, \
             `mx*` OCP MX blocks, `f16`/`bf16` plain casts.",
        ),
        Column::num(
            "code_bits",
            "code bits",
            "bits of each element's code, without scales.",
        ),
        Column::text(
            "granularity",
            "granularity",
            "which weights share a scale: `per-tensor`, `per-channel` (one per row of the \
             [256, 1024] matrix), `gN` (blocks of N consecutive weights of a row), \
             `element` (none).",
        ),
        Column::text(
            "symmetric",
            "symmetric",
            "`yes`: a scale only, no offset, so the grid is centred on an exact zero (the \
             integer grids are symmetric; q4_0's levels run −8…7 and NF4's codebook has 8 \
             positive and 7 negative values, one extra level on one side); `no`: an affine \
             grid with a stored zero point (`-asym`) or block minimum (`q4_1`).",
        ),
        Column::num(
            "bits_per_weight",
            "bits/weight",
            "`QuantizedTensor::bits_per_weight`: 8 × stored bytes / 262144, counting codes, \
             scales, zero points, block minima and NF4's double-quantized absmax.",
        ),
        Column::num(
            "sqnr_db",
            "SQNR (dB)",
            "10·log10(Σw² / Σ(ŵ − w)²) over all weights.",
        ),
        Column::num(
            "max_abs_error",
            "max abs error",
            "max |ŵ − w| over all weights.",
        ),
        Column::num(
            "rel_l2_error",
            "rel. L2 error",
            "‖ŵ − w‖₂ / ‖w‖₂ over all weights.",
        ),
    ]
}

fn row(m: &Measurement) -> Vec<String> {
    let l = layout(m.format);
    vec![
        m.dist.key().to_string(),
        m.format.to_string(),
        l.kind,
        l.code_bits.to_string(),
        l.granularity,
        if l.symmetric { "yes" } else { "no" }.to_string(),
        fixed(m.bits_per_weight, 4),
        fixed(m.stats.sqnr_db, 2),
        sci3(m.stats.max_abs),
        sci3(m.stats.rel_l2),
    ]
}

/// The measurement of `format` (a format string) on `dist`.
fn lookup<'a>(ms: &'a [Measurement], dist: Dist, format: &str) -> Option<&'a Measurement> {
    let f: QuantFormat = format.parse().ok()?;
    ms.iter().find(|m| m.dist == dist && m.format == f)
}

/// `SQNR(a) − SQNR(b)` in dB on `dist`, formatted with one decimal (`?` if a row is
/// missing).
fn gain(ms: &[Measurement], dist: Dist, a: &str, b: &str) -> String {
    match (lookup(ms, dist, a), lookup(ms, dist, b)) {
        (Some(a), Some(b)) => fixed(a.stats.sqnr_db - b.stats.sqnr_db, 1),
        _ => "?".to_string(),
    }
}

/// Max abs error of `format` on `dist`, in `sci3` (`?` if the row is missing).
fn max_abs(ms: &[Measurement], dist: Dist, format: &str) -> String {
    lookup(ms, dist, format).map_or_else(|| "?".to_string(), |m| sci3(m.stats.max_abs))
}

/// The mean SQNR step per bit of symmetric per-channel integers from 4 to 8 bits.
fn db_per_bit(ms: &[Measurement], dist: Dist) -> String {
    match (lookup(ms, dist, "int4"), lookup(ms, dist, "int8")) {
        (Some(a), Some(b)) => fixed((b.stats.sqnr_db - a.stats.sqnr_db) / 4.0, 2),
        _ => "?".to_string(),
    }
}

/// Builds the table from measurements on `[rows, cols]` weights.
fn table(ctx: &Ctx, ms: &[Measurement], summaries: &[DistSummary]) -> Table {
    let g = Dist::Gaussian;
    let t = Dist::StudentT3;
    let weights: Vec<String> = summaries
        .iter()
        .map(|s| {
            format!(
                "{} RMS {:.4}, max |w| {:.4}",
                s.dist.key(),
                s.rms,
                s.max_abs
            )
        })
        .collect();
    Table {
        name: SCENARIO.name,
        title: "Weight quantizers: error against storage".to_string(),
        intro: vec![
            format!(
                "Every weight quantizer of the `quant` crate quantizes and dequantizes one \
                 [{ROWS}, {COLS}] row-major weight matrix (rows = output channels, groups run \
                 along a row) from each of two distributions: an LLM-like Gaussian \
                 N(0, 0.02²), and 0.02 · Student-t with ν = 3, whose heavy tails put a few \
                 weights far beyond the rest. The weights are drawn in f64 with rand 0.10's \
                 `StdRng` seeded by `seed_from_u64(seed + 100 + i)` for the i-th distribution \
                 in that order (seed {seed}), then rounded to f32; those f32 values are the \
                 reference. The shape is fixed: `--samples` does not change this table, \
                 which stays cheap.",
                seed = ctx.seed,
            ),
            format!("Weights drawn: {}.", weights.join("; ")),
            "Each row is one format string parsed into `quant::QuantFormat`, quantized with \
             `QuantizedTensor::quantize(format, &w, &[256, 1024])` and decoded with \
             `dequantize`; errors are `numerics::metrics::error_stats` over all 262144 \
             weights. Integers run over 2 to 8 bits × {per tensor, per channel, groups of \
             128, groups of 32} × {symmetric, asymmetric}; then NF4 and FP4 in blocks of 32, \
             64 and 128; GGML's Q4_0, Q4_1 and Q8_0; FP8 E4M3 and E5M2 with a per-channel or \
             per-tensor amax scale; the six OCP MX formats; and f16/bf16 casts as \
             references."
                .to_string(),
            format!("Regenerate with `{}`.", ctx.command(SCENARIO.name)),
        ],
        columns: columns(),
        rows: ms.iter().map(row).collect(),
        notes: vec![
            format!(
                "Each extra bit of a symmetric per-channel integer buys about 6 dB: from int4 \
                 to int8 the SQNR rises by {} dB per bit on `gaussian` and {} on \
                 `student_t3`.",
                db_per_bit(ms, g),
                db_per_bit(ms, t),
            ),
            format!(
                "Granularity matters most on heavy tails, where one large weight sets the \
                 scale of everything that shares it. int4, per channel → per group of 32: \
                 +{} dB on `gaussian`, +{} dB on `student_t3`; per tensor → per channel: \
                 +{} dB and +{} dB. The finer scales cost bits: an f32 scale per group of 32 \
                 adds 1 bit per weight (int4-g32 stores 5 bits/weight), a zero point another \
                 0.25. Per-tensor rows on `student_t3` hang on the single largest weight \
                 drawn ({} here, {}× the RMS), so of all rows they vary most with the seed.",
                gain(ms, g, "int4-g32", "int4"),
                gain(ms, t, "int4-g32", "int4"),
                gain(ms, g, "int4", "int4-pt"),
                gain(ms, t, "int4", "int4-pt"),
                summaries
                    .iter()
                    .find(|s| s.dist == t)
                    .map_or_else(|| "?".to_string(), |s| format!("{:.4}", s.max_abs)),
                summaries.iter().find(|s| s.dist == t).map_or_else(
                    || "?".to_string(),
                    |s| { format!("{:.0}", f64::from(s.max_abs) / s.rms) }
                ),
            ),
            format!(
                "Symmetric grids are restricted (2^(b−1) − 1 levels each side, as PyTorch's \
                 `qint8` with quant_min = −127), so asymmetric ones have one level more and \
                 also fit a lopsided group: int2-asym has 4 levels against int2's 3 (−1, 0, 1), \
                 and gains {} dB on `gaussian` per channel. At 8 bits the difference is \
                 {} dB.",
                gain(ms, g, "int2-asym", "int2"),
                gain(ms, g, "int8-asym", "int8"),
            ),
            format!(
                "At about 4.1–4.5 bits per weight, NF4 (built for normal weights) against \
                 int4 and GGML blocks of 32 on `gaussian`: nf4-g32 − int4-g32 = {} dB, \
                 nf4-g32 − q4_0 = {} dB, nf4 (g64) − int4-g128 = {} dB. FP4 (bitsandbytes' \
                 E2M1 codebook) trails NF4 by {} dB at g64 on `gaussian`. NF4/FP4 store one \
                 byte per block for the absmax (double quantization), hence 4.25 bits at g32 \
                 against int4-g32's 5.",
                gain(ms, g, "nf4-g32", "int4-g32"),
                gain(ms, g, "nf4-g32", "q4_0"),
                gain(ms, g, "nf4", "int4-g128"),
                gain(ms, g, "nf4", "fp4"),
            ),
            format!(
                "Floating-point formats are nearly scale-free: FP8 per tensor and per channel \
                 differ by {} dB (E4M3) on `student_t3`, and their SQNR is the same on both \
                 distributions up to the few weights the Student-t tails push into other \
                 binades. E4M3 beats E5M2 by {} dB (one mantissa bit). An MX format's shared \
                 power-of-two scale puts each block's largest element near the top of the \
                 element range, where some are clamped (see the `formats` table), so \
                 mxfp8-e4m3 − fp8-e4m3 = {} dB on `gaussian`.",
                gain(ms, t, "fp8-e4m3", "fp8-e4m3-pt"),
                gain(ms, g, "fp8-e4m3", "fp8-e5m2"),
                gain(ms, g, "mxfp8-e4m3", "fp8-e4m3"),
            ),
            format!(
                "GGML's Q4_0 uses all 16 levels (−8…7, the block's largest-magnitude weight \
                 mapped to −8 by the scale's sign) and stores an f16 scale, so it beats \
                 symmetric int4-g32 (15 levels, f32 scale) by {} dB on `gaussian` at half a \
                 bit less; Q8_0 and int8-g32 differ only in the scale's precision ({} dB).",
                gain(ms, g, "q4_0", "int4-g32"),
                gain(ms, g, "q8_0", "int8-g32"),
            ),
            format!(
                "Within a block of 32 the weights span few binades, so the wider exponent of the \
                 8-bit MX elements goes unused and only the mantissa and the headroom of the \
                 top binade count: mxfp6-e3m2 − mxfp8-e5m2 = {} dB (2 mantissa bits each, \
                 both max 1.75 · 2^emax) and mxfp6-e2m3 − mxfp8-e4m3 = {} dB (3 mantissa bits \
                 each; E2M3's max 1.875 · 2^emax clamps less of the top binade than E4M3's \
                 1.75 · 2^emax), on `gaussian`, the 6-bit formats at 2 bits less per weight. \
                 mxint8 (8-bit integer elements) is {} dB above mxfp8-e4m3.",
                gain(ms, g, "mxfp6-e3m2", "mxfp8-e5m2"),
                gain(ms, g, "mxfp6-e2m3", "mxfp8-e4m3"),
                gain(ms, g, "mxint8", "mxfp8-e4m3"),
            ),
            format!(
                "Max abs error hardly moves with granularity on symmetric grids: it is half \
                 the step of the coarsest group, and the group holding the matrix's largest \
                 weight has the per-tensor scale whatever the granularity (int4 on \
                 `student_t3`: {} per tensor, {} per group of 32). SQNR and relative L2 error, \
                 which average over all weights, are what granularity improves.",
                max_abs(ms, t, "int4-pt"),
                max_abs(ms, t, "int4-g32"),
            ),
        ],
    }
}

/// Builds the table.
///
/// # Errors
///
/// As [`measure_shape`].
pub(crate) fn run(ctx: &Ctx) -> Result<Table> {
    let (ms, summaries) = measure_shape(ctx, ROWS, COLS)?;
    Ok(table(ctx, &ms, &summaries))
}

#[cfg(test)]
mod tests {
    use super::*;
    use numerics::Par;

    fn ctx() -> Ctx {
        Ctx {
            samples: 1000,
            seed: 20_261_123,
            par: Par::Seq,
            progress: false,
            gpu: false,
        }
    }

    fn sqnr(ms: &[Measurement], dist: Dist, format: &str) -> f64 {
        lookup(ms, dist, format)
            .unwrap_or_else(|| panic!("no row for {dist:?} {format}"))
            .stats
            .sqnr_db
    }

    #[test]
    fn table_is_deterministic() {
        let (a, sa) = measure_shape(&ctx(), 8, 256).unwrap();
        let (b, sb) = measure_shape(&ctx(), 8, 256).unwrap();
        let (a, b) = (table(&ctx(), &a, &sa), table(&ctx(), &b, &sb));
        assert_eq!(a.to_markdown(), b.to_markdown());
        assert_eq!(a.to_csv(), b.to_csv());
        a.validate().unwrap();
        assert_eq!(a.rows.len(), 2 * format_names().len());
    }

    #[test]
    fn format_names_are_canonical() {
        let names = format_names();
        let formats = formats().unwrap();
        for (name, f) in names.iter().zip(&formats) {
            // Display drops only the defaults (`-g64` of nf4/fp4).
            let shown = f.to_string();
            assert!(
                shown == *name || (name.ends_with("-g64") && shown == name[..3]),
                "{name} → {shown}"
            );
            assert_eq!(shown.parse::<QuantFormat>().unwrap(), *f);
        }
        let unique: std::collections::HashSet<_> = formats.iter().collect();
        assert_eq!(unique.len(), formats.len());
        assert!(
            formats
                .iter()
                .all(|&f| layout(f).code_bits > 0 && layout(f).granularity != "?")
        );
    }

    #[test]
    fn layouts_describe_the_formats() {
        let l = |s: &str| layout(s.parse().unwrap());
        assert_eq!(
            l("int4-g32-asym"),
            Layout {
                kind: "int4".into(),
                code_bits: 4,
                granularity: "g32".into(),
                symmetric: false
            }
        );
        assert_eq!(l("int8-pt").granularity, "per-tensor");
        assert_eq!(l("int3").granularity, "per-channel");
        assert_eq!(l("nf4").granularity, "g64");
        assert_eq!(l("mxfp6-e3m2").code_bits, 6);
        assert_eq!(l("fp8-e5m2-pt").kind, "fp8-e5m2");
        assert!(!l("q4_1").symmetric);
    }

    /// Relations that hold on these seeds with a wide margin.
    #[test]
    fn sqnr_orders_as_expected() {
        let (ms, _) = measure_shape(&ctx(), 64, COLS).unwrap();
        let g = Dist::Gaussian;
        let t = Dist::StudentT3;
        // Bits: about 6 dB each on Gaussian weights; on heavy tails the low widths gain
        // less (int2 → int3 per channel is under 3 dB), but every bit still helps.
        for (dist, step) in [(g, 4.0), (t, 1.0)] {
            for b in 2..8 {
                let lo = sqnr(&ms, dist, &format!("int{b}"));
                let hi = sqnr(&ms, dist, &format!("int{}", b + 1));
                assert!(hi > lo + step, "{dist:?} int{b} {lo} vs int{} {hi}", b + 1);
            }
        }
        // Granularity at 4 bits on heavy tails: g32 > per channel > per tensor.
        let (g32, pc, pt) = (
            sqnr(&ms, t, "int4-g32"),
            sqnr(&ms, t, "int4"),
            sqnr(&ms, t, "int4-pt"),
        );
        assert!(g32 > pc + 1.0 && pc > pt + 1.0, "{g32} {pc} {pt}");
        // References: f16 is far above everything 8-bit.
        assert!(sqnr(&ms, g, "f16") > sqnr(&ms, g, "int8-g32") + 20.0);
        // NF4 is designed for normal weights: it beats int4 at the same block size.
        assert!(sqnr(&ms, g, "nf4-g32") > sqnr(&ms, g, "int4-g32"));
    }

    #[test]
    fn bits_per_weight_count_the_scales() {
        let (ms, _) = measure_shape(&ctx(), 8, COLS).unwrap();
        let bpw = |f: &str| lookup(&ms, Dist::Gaussian, f).unwrap().bits_per_weight;
        let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
        assert!(close(bpw("int4-g32"), 4.0 + 32.0 / 32.0));
        assert!(close(bpw("int4-g32-asym"), 4.0 + 40.0 / 32.0));
        assert!(close(bpw("int8"), 8.0 + 32.0 / COLS as f64));
        assert!(close(bpw("q4_0"), 4.5));
        assert!(close(bpw("q4_1"), 5.0));
        assert!(close(bpw("q8_0"), 8.5));
        assert!(close(bpw("mxfp4"), 4.25));
        assert!(close(bpw("bf16"), 16.0));
    }
}
