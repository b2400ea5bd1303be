//! Table `calibration`: what each range-calibration method of [`quant::calibrate`] chooses
//! on five seeded, activation-like distributions, and what that choice costs.
//!
//! For each (distribution, quantizer, method) the table reports the range chosen, the
//! fraction of samples clipped, and the fake-quantization MSE split into its clipping part
//! (samples the clamp acted on) and its rounding part (all others), so the trade a range
//! makes is visible: too narrow pays in clipping error, too wide in rounding error.
//!
//! - `minmax`, `percentile-…`, `mse-…` and `kl-…` go through [`quant::calibrate::calibrate`]
//!   on the whole sample.
//! - `ema-…` (PyTorch's moving-average observer) only means something over a stream: the
//!   samples are fed to an [`Observer`] in batches of [`EMA_BATCH`], and the range it
//!   settles on is then evaluated exactly on every sample with [`evaluate`].

use anyhow::{Context, Result};
use quant::calibrate::{Calibration, Method, Observer, QuantSpec, calibrate, evaluate};
use rand::RngExt;
use rand_distr::{Distribution, Exp1, Normal, StudentT, Uniform};

use super::{Ctx, Scenario, draw, seeded_samples};
use crate::report::{Column, Table, fixed, sci3};

/// The registry entry.
pub(crate) const SCENARIO: Scenario = Scenario {
    name: "calibration",
    description: "Range calibration (min-max, EMA, percentile, MSE, KL) for int8/int4 on five \
                  activation-like distributions: chosen range, clipping vs rounding error",
    run,
};

/// The most samples per distribution, whatever `--samples` says (MSE calibration costs a
/// pass over the data per candidate range).
pub(crate) const MAX_SAMPLES: usize = 1 << 20;

/// Batch size the moving-average observer is fed.
pub(crate) const EMA_BATCH: usize = 4096;

/// Probability that a `normal_outliers` sample is an outlier.
pub(crate) const OUTLIER_RATE: f64 = 0.001;

/// How much an outlier is scaled.
pub(crate) const OUTLIER_SCALE: f64 = 20.0;

/// The calibration methods, in row order, as `quant::calibrate::Method` strings.
pub(crate) const METHODS: [&str; 6] = [
    "minmax",
    "ema",
    "percentile-99.9",
    "percentile-99.99",
    "mse",
    "kl",
];

/// The sample distributions, in table order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dist {
    /// N(0, 1).
    Normal,
    /// Laplace(0, 1): density e^(−|x|) / 2.
    Laplace,
    /// Student-t with ν = 3 (unscaled).
    StudentT3,
    /// U(−1, 1).
    Uniform,
    /// N(0, 1) with each sample, with probability [`OUTLIER_RATE`], scaled by
    /// [`OUTLIER_SCALE`].
    NormalOutliers,
}

impl Dist {
    /// Every distribution; the index is the seed offset (after 200).
    pub(crate) const ALL: [Dist; 5] = [
        Dist::Normal,
        Dist::Laplace,
        Dist::StudentT3,
        Dist::Uniform,
        Dist::NormalOutliers,
    ];

    /// The key used in the table.
    pub(crate) const fn key(self) -> &'static str {
        match self {
            Dist::Normal => "normal",
            Dist::Laplace => "laplace",
            Dist::StudentT3 => "student_t3",
            Dist::Uniform => "uniform",
            Dist::NormalOutliers => "normal_outliers",
        }
    }

    /// `n` samples drawn in `f64` from `StdRng::seed_from_u64(seed + 200 + index)` and
    /// rounded to `f32`.
    ///
    /// # Errors
    ///
    /// If the buffer cannot be allocated.
    pub(crate) fn samples(self, n: usize, seed: u64) -> Result<Vec<f32>> {
        let index = Dist::ALL.iter().position(|&d| d == self).unwrap_or(0) as u64;
        seeded_samples(n, seed.wrapping_add(200 + index), |rng, out| {
            match self {
                Dist::Normal => draw(Normal::new(0.0, 1.0)?, rng, n, out),
                // The difference of two independent Exp(1) variables is Laplace(0, 1).
                Dist::Laplace => out.extend((0..n).map(|_| {
                    let a: f64 = Exp1.sample(rng);
                    let b: f64 = Exp1.sample(rng);
                    (a - b) as f32
                })),
                Dist::StudentT3 => draw(StudentT::new(3.0)?, rng, n, out),
                Dist::Uniform => draw(Uniform::new(-1.0, 1.0)?, rng, n, out),
                Dist::NormalOutliers => {
                    let normal = Normal::new(0.0, 1.0)?;
                    out.extend((0..n).map(|_| {
                        let x: f64 = normal.sample(rng);
                        let outlier = rng.random_bool(OUTLIER_RATE);
                        (if outlier { x * OUTLIER_SCALE } else { x }) as f32
                    }));
                }
            }
            Ok(())
        })
    }
}

/// The quantizers ranges are calibrated for, in row order.
///
/// # Errors
///
/// Never in practice (the bit widths are valid).
pub(crate) fn specs() -> Result<[QuantSpec; 3]> {
    Ok([
        QuantSpec::symmetric(8)?,
        QuantSpec::symmetric(4)?,
        QuantSpec::asymmetric(8)?,
    ])
}

/// The parsed [`METHODS`].
///
/// # Errors
///
/// Never in practice (the strings are valid).
pub(crate) fn methods() -> Result<Vec<Method>> {
    METHODS
        .iter()
        .map(|m| m.parse::<Method>().with_context(|| format!("method {m}")))
        .collect()
}

/// One row of the table.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Measurement {
    /// The sample distribution.
    pub(crate) dist: Dist,
    /// The quantizer.
    pub(crate) spec: QuantSpec,
    /// The calibration method.
    pub(crate) method: Method,
    /// The range chosen and its errors over every sample.
    pub(crate) cal: Calibration,
    /// `total_mse` divided by min-max's for the same distribution and quantizer.
    pub(crate) vs_minmax: f64,
}

/// Largest magnitude drawn from each distribution, for the intro.
#[derive(Clone, Copy, Debug)]
pub(crate) struct DistSummary {
    /// The distribution.
    pub(crate) dist: Dist,
    /// `max |x|` over its samples.
    pub(crate) max_abs: f32,
}

/// Samples per distribution for `ctx`: `--samples`, capped at [`MAX_SAMPLES`].
pub(crate) fn sample_count(ctx: &Ctx) -> usize {
    ctx.samples.min(MAX_SAMPLES)
}

/// Every calibration of `x` (from `dist`): for each quantizer, every method.
///
/// # Errors
///
/// Errors of [`quant::calibrate`] (empty or non-finite data).
pub(crate) fn measure_dist(dist: Dist, x: &[f32]) -> Result<Vec<Measurement>> {
    let methods = methods()?;
    // One observer serves every quantizer: it records the batch extremes, and the spec
    // only enters when the range is read.
    let mut ema = None;
    for &m in &methods {
        if matches!(m, Method::MovingAverage { .. }) {
            let mut obs = Observer::new(m)?;
            for batch in x.chunks(EMA_BATCH) {
                obs.observe(batch)?;
            }
            ema = Some(obs);
        }
    }
    let mut rows = Vec::new();
    for spec in specs()? {
        let mut group = Vec::with_capacity(methods.len());
        for &method in &methods {
            let cal = match (&ema, method) {
                (Some(obs), Method::MovingAverage { .. }) => evaluate(x, obs.range(spec)?, spec)?,
                _ => calibrate(x, method, spec)?,
            };
            group.push((method, cal));
        }
        let base = group
            .iter()
            .find(|(m, _)| *m == Method::MinMax)
            .map_or(f64::NAN, |(_, c)| c.total_mse);
        rows.extend(group.into_iter().map(|(method, cal)| Measurement {
            dist,
            spec,
            method,
            cal,
            vs_minmax: cal.total_mse / base,
        }));
    }
    Ok(rows)
}

/// Every measurement of the table, distribution-major, then quantizer, then method.
///
/// # Errors
///
/// As [`measure_dist`], or if the samples cannot be allocated.
pub(crate) fn measure(ctx: &Ctx) -> Result<(Vec<Measurement>, Vec<DistSummary>)> {
    let n = sample_count(ctx);
    anyhow::ensure!(n > 0, "the sample count must be positive");
    let mut rows = Vec::new();
    let mut summaries = Vec::new();
    for dist in Dist::ALL {
        ctx.note(&format!("{}: drawing {n} samples", dist.key()));
        let x = dist.samples(n, ctx.seed)?;
        summaries.push(DistSummary {
            dist,
            max_abs: x.iter().fold(0.0f32, |m, v| m.max(v.abs())),
        });
        rows.extend(measure_dist(dist, &x).with_context(|| dist.key())?);
        ctx.note(&format!("{}: calibrated", dist.key()));
    }
    Ok((rows, summaries))
}

/// `x` with four significant digits, in fixed notation for `1e-3 ≤ |x| < 1e5` and
/// scientific otherwise; exact zero reads `0`.
pub(crate) fn sig4(x: f64) -> String {
    if x == 0.0 {
        return "0".to_string();
    }
    let mag = x.abs();
    if !(1e-3..1e5).contains(&mag) {
        return format!("{x:.3e}");
    }
    let decimals = (3 - mag.log10().floor() as i32).clamp(0, 6) as usize;
    fixed(x, decimals)
}

fn columns() -> Vec<Column> {
    vec![
        Column::text(
            "distribution",
            "distribution",
            "`normal` = N(0, 1), `laplace` = Laplace(0, 1), `student_t3` = Student-t with \
             ν = 3 (unscaled), `uniform` = U(−1, 1), `normal_outliers` = N(0, 1) with 0.1% of \
             the samples scaled by 20.",
        ),
        Column::text(
            "quantizer",
            "quantizer",
            "`intB-sym`: levels −(2^(B−1) − 1) … 2^(B−1) − 1 over [−t, t]; `intB-asym`: 2^B \
             levels over [lo, hi] extended to contain 0, integer zero point \
             (`quant::calibrate::QuantSpec`).",
        ),
        Column::text(
            "method",
            "method",
            "`quant::calibrate::Method` in its canonical form: `minmax`; `ema-c` (moving \
             averages of the batch extremes, constant c, over batches of 4096); \
             `percentile-p` (of |x| when symmetric, of x at p and 100 − p when asymmetric); \
             `mse-K` (least-MSE clip ratio among K); `kl-B` (TensorRT entropy calibration \
             over B bins).",
        ),
        Column::num(
            "range_lo",
            "range lo",
            "lower end of the range the quantizer uses (4 significant digits).",
        ),
        Column::num(
            "range_hi",
            "range hi",
            "upper end of that range (4 significant digits).",
        ),
        Column::num(
            "clipped_frac",
            "clipped",
            "fraction of samples clamped to the first or last level.",
        ),
        Column::num(
            "clip_mse",
            "clip MSE",
            "Σ over clamped samples of (x − q(x))², divided by all n.",
        ),
        Column::num(
            "round_mse",
            "round MSE",
            "Σ over the other samples of (x − q(x))², divided by all n.",
        ),
        Column::num(
            "total_mse",
            "total MSE",
            "mean of (x − q(x))² over all samples = clip MSE + round MSE.",
        ),
        Column::num(
            "total_vs_minmax",
            "vs minmax",
            "total MSE divided by `minmax`'s for the same distribution and quantizer (below \
             1 = better than min-max).",
        ),
    ]
}

fn row(m: &Measurement) -> Vec<String> {
    let c = &m.cal;
    vec![
        m.dist.key().to_string(),
        m.spec.to_string(),
        m.method.to_string(),
        sig4(f64::from(c.range.lo)),
        sig4(f64::from(c.range.hi)),
        sci3(c.clipped_fraction),
        sci3(c.clip_mse),
        sci3(c.round_mse),
        sci3(c.total_mse),
        fixed(m.vs_minmax, 2),
    ]
}

/// The summary notes computed from the measurements: how often the MSE search wins, the
/// best of the other methods per (distribution, quantizer), what percentile and KL cost
/// at 8 bits.
fn summary_notes(ms: &[Measurement]) -> Vec<String> {
    let groups: Vec<&[Measurement]> = ms
        .chunk_by(|a, b| a.dist == b.dist && a.spec == b.spec)
        .collect();
    let is_mse = |m: &Measurement| matches!(m.method, Method::Mse { .. });
    let least = |g: &[Measurement], keep: &dyn Fn(&Measurement) -> bool| {
        g.iter()
            .filter(|m| keep(m))
            .fold(None::<Measurement>, |best, m| match best {
                Some(b) if b.cal.total_mse <= m.cal.total_mse => Some(b),
                _ => Some(*m),
            })
    };
    let mse_wins = groups
        .iter()
        .filter(|g| {
            let best = least(g, &|_| true).map_or(f64::NAN, |b| b.cal.total_mse);
            g.iter()
                .any(|m| is_mse(m) && m.cal.total_mse <= best * 1.01)
        })
        .count();
    let others: Vec<String> = groups
        .iter()
        .filter_map(|g| least(g, &|m| !is_mse(m)))
        .map(|b| {
            format!(
                "{} {}: {} ({})",
                b.dist.key(),
                b.spec,
                b.method,
                fixed(b.vs_minmax, 2)
            )
        })
        .collect();
    let spread = groups
        .iter()
        .map(|g| {
            let (lo, hi) = g.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), m| {
                (lo.min(m.cal.total_mse), hi.max(m.cal.total_mse))
            });
            hi / lo
        })
        .fold(0.0f64, f64::max);
    // Percentile-99.9 and KL on the unbounded distributions, at 8 and at 4 bits.
    let ratios = |bits: u32, pick: &dyn Fn(Method) -> bool| {
        ms.iter()
            .filter(|m| m.spec.bits() == bits && m.dist != Dist::Uniform && pick(m.method))
            .fold((f64::INFINITY, 0.0f64), |(lo, hi), m| {
                (lo.min(m.vs_minmax), hi.max(m.vs_minmax))
            })
    };
    let p999 = |m: Method| m == Method::Percentile(99.9);
    let kl = |m: Method| matches!(m, Method::Kl { .. });
    let (p8_lo, p8_hi) = ratios(8, &p999);
    let (_, p4_hi) = ratios(4, &p999);
    let (_, kl4_hi) = ratios(4, &kl);
    let kl_outliers = ms
        .iter()
        .find(|m| {
            m.dist == Dist::NormalOutliers
                && m.spec.bits() == 8
                && m.spec.is_symmetric()
                && kl(m.method)
        })
        .map_or(f64::NAN, |m| m.vs_minmax);
    vec![
        format!(
            "`mse-100` has the least total MSE (to within 1%) in {mse_wins} of the {} \
             (distribution, quantizer) pairs: it scores its candidates on the very samples \
             it is judged on, so it is the oracle the others are measured against. Best of \
             the other methods (total MSE vs min-max): {}.",
            groups.len(),
            others.join("; ")
        ),
        format!(
            "Clipping more is not always better. At 8 bits min-max's rounding error is \
             already small, and `percentile-99.9`, which clips the top 0.1% (0.2% \
             asymmetric), costs {}–{}× the MSE of min-max on the four unbounded \
             distributions; on `normal_outliers` at int8-sym, `kl-2048` clips the outliers \
             too and costs {}× min-max's MSE (it matches the shape of the histogram, and \
             the distance of what it clips does not enter the divergence). At 4 bits, where \
             rounding dominates, the same methods cost at most {}× (percentile-99.9) and \
             {}× (kl) of min-max's MSE. Best and worst method differ by up to {}× in total \
             MSE within one (distribution, quantizer) pair.",
            fixed(p8_lo, 1),
            fixed(p8_hi, 1),
            fixed(kl_outliers, 1),
            fixed(p4_hi, 2),
            fixed(kl4_hi, 2),
            fixed(spread, 0),
        ),
    ]
}

/// Builds the table.
///
/// # Errors
///
/// As [`measure`].
pub(crate) fn run(ctx: &Ctx) -> Result<Table> {
    let (ms, summaries) = measure(ctx)?;
    let n = sample_count(ctx);
    let maxima: Vec<String> = summaries
        .iter()
        .map(|s| format!("{} {:.2}", s.dist.key(), s.max_abs))
        .collect();
    let cap = if ctx.samples > MAX_SAMPLES {
        format!(" (`--samples` {} capped at 2^20)", ctx.samples)
    } else {
        String::new()
    };
    let mut notes = summary_notes(&ms);
    notes.extend([
        format!(
            "`ema` tracks the *typical* batch extremes, not the largest ever seen: with i.i.d. \
             samples its range settles near the expected maximum of {EMA_BATCH} samples (the \
             first batch sets it; each later one moves it by 1%), so it is narrower than \
             min-max on every unbounded distribution and clips the far tail. With a single \
             batch (at most {EMA_BATCH} samples) it equals min-max."
        ),
        "Ranges are as the quantizer uses them: a symmetric range covers [−t, t], an \
         asymmetric one is widened to contain 0. `percentile-p` takes the p-th percentile of \
         |x| for a symmetric quantizer, leaving (100 − p)% of the samples beyond t, and the \
         (100 − p)-th and p-th percentiles of x for an asymmetric one, leaving twice as many \
         outside; only samples beyond the range by more than half a step are clamped, which \
         is why `clipped` sits somewhat below those fractions."
            .to_string(),
        "`mse-K` tries the clip ratios 1/K, 2/K, …, 1 of the min-max range and keeps the one \
         of least total MSE, so it is never worse than min-max. `kl-B` minimises the KL \
         divergence between the |x| histogram and its quantized version, not the MSE, and \
         is symmetric by construction (an asymmetric quantizer gets [max(min, −t), \
         min(max, t)])."
            .to_string(),
        "On U(−1, 1) there is no tail to give up: every method lands within a step of \
         min-max, and only `mse` at 4 bits finds a slightly narrower range worth its \
         clipping."
            .to_string(),
    ]);
    Ok(Table {
        name: SCENARIO.name,
        title: "Calibration: chosen range, clipping error and rounding error".to_string(),
        intro: vec![
            format!(
                "Each calibration method of `quant::calibrate` chooses the range of a uniform \
                 integer quantizer (int8 symmetric, int4 symmetric, int8 asymmetric) for {n} \
                 samples{cap} from each of five activation-like distributions: N(0, 1), \
                 Laplace(0, 1) (drawn as the difference of two Exp(1) variables), Student-t \
                 with ν = 3, U(−1, 1), and N(0, 1) in which each sample is, with probability \
                 {rate}, scaled by {scale} (`normal_outliers`). The samples are drawn in f64 \
                 with rand 0.10's `StdRng` seeded by `seed_from_u64(seed + 200 + i)` for the \
                 i-th distribution in that order (seed {seed}), then rounded to f32.",
                rate = OUTLIER_RATE,
                scale = OUTLIER_SCALE,
                seed = ctx.seed,
            ),
            "The range is then judged on the same samples by fake-quantizing them: the squared \
             error of each sample is charged either to clipping (the clamp acted on it) or to \
             rounding (it stayed inside the grid, error at most half a step), and total MSE \
             is their sum. This is the trade every method makes: a range too narrow for the \
             data pays in clipping error, one too wide spreads the levels thin and pays in \
             rounding error. Min-max never clips (symmetric) and so pays the most rounding \
             error; the other methods give up the tails to buy finer steps."
                .to_string(),
            format!(
                "`ema` feeds the samples to `quant::calibrate::Observer` in batches of \
                 {EMA_BATCH} (PyTorch's `MovingAverageMinMaxObserver`); the range it settles \
                 on is then evaluated exactly on all samples with `quant::calibrate::evaluate`. \
                 Every other method is `quant::calibrate::calibrate` on the whole sample."
            ),
            format!("Largest |x| drawn: {}.", maxima.join(", ")),
            format!("Regenerate with `{}`.", ctx.command(SCENARIO.name)),
        ],
        columns: columns(),
        rows: ms.iter().map(row).collect(),
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use numerics::Par;

    fn ctx(samples: usize) -> Ctx {
        Ctx {
            samples,
            seed: 20_261_123,
            par: Par::Seq,
            progress: false,
            gpu: false,
        }
    }

    fn find<'a>(ms: &'a [Measurement], dist: Dist, spec: &str, method: &str) -> &'a Measurement {
        ms.iter()
            .find(|m| {
                m.dist == dist && m.spec.to_string() == spec && m.method.to_string() == method
            })
            .unwrap_or_else(|| panic!("no row for {dist:?} {spec} {method}"))
    }

    #[test]
    fn table_is_deterministic() {
        let a = run(&ctx(5000)).unwrap();
        let b = run(&ctx(5000)).unwrap();
        assert_eq!(a.to_markdown(), b.to_markdown());
        assert_eq!(a.to_csv(), b.to_csv());
        a.validate().unwrap();
        assert_eq!(a.rows.len(), Dist::ALL.len() * 3 * METHODS.len());
    }

    #[test]
    fn clip_and_round_sum_to_total() {
        let (ms, _) = measure(&ctx(1 << 14)).unwrap();
        for m in &ms {
            let c = &m.cal;
            assert!(c.total_mse > 0.0, "{m:?}");
            let err = (c.clip_mse + c.round_mse - c.total_mse).abs();
            assert!(err <= 1e-9 * c.total_mse, "{m:?}");
            assert!((0.0..=1.0).contains(&c.clipped_fraction), "{m:?}");
        }
    }

    #[test]
    fn minmax_never_clips_a_symmetric_range() {
        let (ms, _) = measure(&ctx(1 << 14)).unwrap();
        for m in ms.iter().filter(|m| m.method == Method::MinMax) {
            if m.spec.is_symmetric() {
                assert_eq!(m.cal.clipped_fraction.to_bits(), 0f64.to_bits(), "{m:?}");
            }
            assert_eq!(m.vs_minmax.to_bits(), 1f64.to_bits(), "{m:?}");
        }
    }

    #[test]
    fn mse_beats_minmax_at_4_bits_with_outliers() {
        let (ms, _) = measure(&ctx(1 << 14)).unwrap();
        for dist in Dist::ALL {
            let mse = find(&ms, dist, "int4-sym", "mse-100");
            assert!(mse.vs_minmax <= 1.0, "{mse:?}");
        }
        // With outliers 20× the bulk, min-max's 15 levels are far too coarse for the bulk.
        let mse = find(&ms, Dist::NormalOutliers, "int4-sym", "mse-100");
        assert!(mse.vs_minmax < 0.5, "{mse:?}");
        assert!(mse.cal.clip_mse > 0.0, "{mse:?}");
    }

    #[test]
    fn percentile_clips_at_most_its_tail() {
        let (ms, _) = measure(&ctx(1 << 14)).unwrap();
        for m in ms.iter().filter(|m| m.spec.is_symmetric()) {
            if let Method::Percentile(p) = m.method {
                let tail = 1.0 - p / 100.0;
                assert!(
                    m.cal.clipped_fraction <= tail + 1.0 / (1 << 14) as f64,
                    "{m:?}"
                );
            }
        }
    }

    #[test]
    fn ema_range_lies_inside_minmax() {
        let (ms, _) = measure(&ctx(1 << 15)).unwrap();
        for dist in Dist::ALL {
            for spec in ["int8-sym", "int4-sym", "int8-asym"] {
                let mm = find(&ms, dist, spec, "minmax").cal.range;
                let ema = find(&ms, dist, spec, "ema-0.01").cal.range;
                assert!(mm.lo <= ema.lo && ema.hi <= mm.hi, "{dist:?} {spec}");
            }
        }
    }

    #[test]
    fn distributions_have_the_expected_spread() {
        let n = 1 << 16;
        let mean_abs = |d: Dist| {
            let x = d.samples(n, 5).unwrap();
            x.iter().map(|v| f64::from(v.abs())).sum::<f64>() / n as f64
        };
        // E|x|: N(0,1) √(2/π), Laplace 1, U(−1,1) 1/2, Student-t(3) 2√3/π.
        let pi = std::f64::consts::PI;
        for (d, expected) in [
            (Dist::Normal, (2.0 / pi).sqrt()),
            (Dist::Laplace, 1.0),
            (Dist::Uniform, 0.5),
            (Dist::StudentT3, 2.0 * 3f64.sqrt() / pi),
        ] {
            let got = mean_abs(d);
            assert!((got - expected).abs() < 0.03 * expected, "{d:?}: {got}");
        }
        let x = Dist::NormalOutliers.samples(n, 5).unwrap();
        let far = x.iter().filter(|v| v.abs() > 6.0).count() as f64 / n as f64;
        // Outliers beyond 6 are those scaled by 20 with |x| > 0.3: about 76% of them.
        assert!(
            (far - 0.76 * OUTLIER_RATE).abs() < 0.4 * OUTLIER_RATE,
            "{far}"
        );
    }

    #[test]
    fn sig4_formats() {
        assert_eq!(sig4(0.0), "0");
        assert_eq!(sig4(-4.891_23), "-4.891");
        assert_eq!(sig4(98.765_4), "98.77");
        assert_eq!(sig4(0.012_345_6), "0.01235");
        assert_eq!(sig4(123_456.0), "1.235e5");
        assert_eq!(sig4(2e-5), "2.000e-5");
    }
}
