//! The calibration methods and their string names.

use std::fmt;
use std::str::FromStr;

use crate::{Error, Result};

/// How a range is chosen from data.
///
/// String forms ([`FromStr`], case-insensitive; [`Display`](fmt::Display) writes the
/// parameterised form, which parses back to the same value):
///
/// | string | method |
/// |---|---|
/// | `minmax` | [`Method::MinMax`] |
/// | `ema`, `ema-0.01` | [`Method::MovingAverage`] (default constant 0.01) |
/// | `percentile`, `percentile-99.9` | [`Method::Percentile`] (default 99.99) |
/// | `mse`, `mse-100` | [`Method::Mse`] (default 100 candidates) |
/// | `kl`, `kl-2048` | [`Method::Kl`] (default 2048 bins) |
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Method {
    /// The extremes of the data (PyTorch's `MinMaxObserver`); the default.
    #[default]
    MinMax,
    /// Exponential moving averages of each batch's extremes (PyTorch's
    /// `MovingAverageMinMaxObserver`): the first batch sets `min`/`max`, each later batch
    /// moves them by `averaging_constant · (batch_min − min)` (and likewise for `max`). Over
    /// a single tensor this is [`Method::MinMax`].
    MovingAverage {
        /// Weight of the newest batch, in `(0, 1]`.
        averaging_constant: f32,
    },
    /// The `p`-th percentile, `p` in `[50, 100]`: of `|x|` for a symmetric quantizer; of `x`
    /// at `p` and `100 − p` for an asymmetric one. The percentile interpolates linearly
    /// between order statistics at rank `(n − 1) · p / 100` (Hyndman & Fan's definition 7,
    /// NumPy's default), so `100` is the maximum; a tensor's is exact (by selection), a
    /// stream's is located in the observer's histogram to within a bin.
    Percentile(f64),
    /// The clip ratio `α ∈ {1/K, 2/K, …, 1}` (`K = candidates`, at most
    /// [`Method::MAX_MSE_CANDIDATES`]) of the min-max range (as the quantizer uses it:
    /// `[−amax, amax]`, or extended to contain 0) whose fake-quantized total MSE is least,
    /// ties going to the larger range. `α = 1` is min-max, so the result is never worse.
    Mse {
        /// How many clip ratios to try.
        candidates: usize,
    },
    /// TensorRT's entropy calibration (Migacz 2017, "8-bit Inference with TensorRT").
    ///
    /// A histogram of `|x|` with `bins` bins of width `w` over `[0, amax]`; for each
    /// candidate `i` from `L = 2^(bits−1)` (128 for int8) to `bins`, the reference `P` is the
    /// first `i` bins with the count beyond them folded into bin `i − 1`, and `Q` is those `i`
    /// bins merged into `L` levels and spread back evenly over the bins that were
    /// non-empty. The `i` of least `KL(P‖Q)` (ties to the larger) gives the threshold
    /// `t = (i + 0.5) · w`, capped at `amax`. Symmetric by construction: an asymmetric
    /// quantizer gets `[max(min, −t), min(max, t)]`.
    Kl {
        /// Histogram bins over `[0, amax]`: at least the number of quantized levels
        /// `2^(bits−1)` of the spec, at most [`Method::MAX_KL_BINS`].
        bins: usize,
    },
}

impl Method {
    /// PyTorch's default `averaging_constant`.
    pub const DEFAULT_AVERAGING_CONSTANT: f32 = 0.01;
    /// The percentile `percentile` alone means.
    pub const DEFAULT_PERCENTILE: f64 = 99.99;
    /// The clip ratios `mse` alone tries.
    pub const DEFAULT_MSE_CANDIDATES: usize = 100;
    /// TensorRT's histogram size.
    pub const DEFAULT_KL_BINS: usize = 2048;
    /// The most clip ratios [`Method::Mse`] accepts (each costs a pass over the data).
    pub const MAX_MSE_CANDIDATES: usize = 10_000;
    /// The most bins [`Method::Kl`] accepts (the search is quadratic in the bin count).
    pub const MAX_KL_BINS: usize = 16_384;

    /// Checks the method's own parameters (the spec-dependent bound on `Kl::bins` is checked
    /// where a spec is known).
    pub(crate) fn validate(self, op: &'static str) -> Result<()> {
        let invalid = |name, value: String, reason| {
            Err(Error::InvalidParameter {
                op,
                name,
                value,
                reason,
            })
        };
        match self {
            Method::MinMax => Ok(()),
            Method::MovingAverage {
                averaging_constant: c,
            } => {
                if c.is_finite() && c > 0.0 && c <= 1.0 {
                    Ok(())
                } else {
                    invalid("averaging_constant", c.to_string(), "must be in (0, 1]")
                }
            }
            Method::Percentile(p) => {
                if p.is_finite() && (50.0..=100.0).contains(&p) {
                    Ok(())
                } else {
                    invalid("percentile", p.to_string(), "must be in [50, 100]")
                }
            }
            Method::Mse { candidates } => {
                if (1..=Self::MAX_MSE_CANDIDATES).contains(&candidates) {
                    Ok(())
                } else {
                    invalid("candidates", candidates.to_string(), "must be in 1..=10000")
                }
            }
            Method::Kl { bins } => {
                if (2..=Self::MAX_KL_BINS).contains(&bins) {
                    Ok(())
                } else {
                    invalid("bins", bins.to_string(), "must be in 2..=16384")
                }
            }
        }
    }

    /// Checks [`Method::Kl`]'s bin count against the `levels = 2^(bits−1)` it quantizes to.
    pub(crate) fn validate_kl_bins(bins: usize, levels: usize, op: &'static str) -> Result<()> {
        if bins >= levels {
            Ok(())
        } else {
            Err(Error::InvalidParameter {
                op,
                name: "bins",
                value: bins.to_string(),
                reason: "KL calibration needs at least 2^(bits-1) bins",
            })
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Method::MinMax => f.write_str("minmax"),
            Method::MovingAverage { averaging_constant } => write!(f, "ema-{averaging_constant}"),
            Method::Percentile(p) => write!(f, "percentile-{p}"),
            Method::Mse { candidates } => write!(f, "mse-{candidates}"),
            Method::Kl { bins } => write!(f, "kl-{bins}"),
        }
    }
}

impl FromStr for Method {
    type Err = Error;

    /// Parses the forms tabulated on [`Method`].
    ///
    /// # Errors
    ///
    /// [`Error::Parse`] naming the offending token: an unknown method name, a parameter on
    /// `minmax`, a missing, malformed or out-of-range parameter.
    fn from_str(s: &str) -> Result<Self> {
        let parse_err = |token: &str, reason| Error::Parse {
            input: s.to_owned(),
            token: token.to_owned(),
            reason,
        };
        let (name, arg) = match s.split_once('-') {
            Some((name, arg)) => (name, Some(arg)),
            None => (s, None),
        };
        if arg == Some("") {
            return Err(parse_err(s, "missing parameter after '-'"));
        }
        let is = |n: &str| name.eq_ignore_ascii_case(n);
        let method = if is("minmax") {
            if let Some(arg) = arg {
                return Err(parse_err(arg, "minmax takes no parameter"));
            }
            Method::MinMax
        } else if is("ema") {
            let c = match arg {
                None => Self::DEFAULT_AVERAGING_CONSTANT,
                Some(a) => a
                    .parse::<f32>()
                    .map_err(|_| parse_err(a, "averaging constant is not a number"))?,
            };
            Method::MovingAverage {
                averaging_constant: c,
            }
        } else if is("percentile") {
            let p = match arg {
                None => Self::DEFAULT_PERCENTILE,
                Some(a) => a
                    .parse::<f64>()
                    .map_err(|_| parse_err(a, "percentile is not a number"))?,
            };
            Method::Percentile(p)
        } else if is("mse") {
            let candidates = match arg {
                None => Self::DEFAULT_MSE_CANDIDATES,
                Some(a) => a
                    .parse::<usize>()
                    .map_err(|_| parse_err(a, "candidate count is not a non-negative integer"))?,
            };
            Method::Mse { candidates }
        } else if is("kl") {
            let bins = match arg {
                None => Self::DEFAULT_KL_BINS,
                Some(a) => a
                    .parse::<usize>()
                    .map_err(|_| parse_err(a, "bin count is not a non-negative integer"))?,
            };
            Method::Kl { bins }
        } else {
            return Err(parse_err(
                name,
                "unknown calibration method (expected minmax, ema, percentile, mse or kl)",
            ));
        };
        // Range errors name the parameter token (the name when the default was used, which
        // is always valid).
        method.validate("Method::from_str").map_err(|e| match e {
            Error::InvalidParameter { reason, .. } => parse_err(arg.unwrap_or(name), reason),
            other => other,
        })?;
        Ok(method)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(s: &str) -> Method {
        s.parse().unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    fn parse_err(s: &str) -> (String, &'static str) {
        match s.parse::<Method>() {
            Err(Error::Parse {
                input,
                token,
                reason,
            }) => {
                assert_eq!(input, s);
                (token, reason)
            }
            other => panic!("{s:?}: expected a parse error, got {other:?}"),
        }
    }

    #[test]
    fn parses_every_form() {
        assert_eq!(parse("minmax"), Method::MinMax);
        assert_eq!(parse("MinMax"), Method::MinMax);
        assert_eq!(
            parse("ema"),
            Method::MovingAverage {
                averaging_constant: 0.01
            }
        );
        assert_eq!(
            parse("ema-0.25"),
            Method::MovingAverage {
                averaging_constant: 0.25
            }
        );
        assert_eq!(parse("percentile-99.9"), Method::Percentile(99.9));
        assert_eq!(parse("percentile"), Method::Percentile(99.99));
        assert_eq!(parse("percentile-100"), Method::Percentile(100.0));
        assert_eq!(parse("mse"), Method::Mse { candidates: 100 });
        assert_eq!(parse("mse-7"), Method::Mse { candidates: 7 });
        assert_eq!(parse("kl"), Method::Kl { bins: 2048 });
        assert_eq!(parse("KL-4096"), Method::Kl { bins: 4096 });
        assert_eq!(Method::default(), Method::MinMax);
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "minmax",
            "ema-0.01",
            "percentile-99.9",
            "percentile-99.99",
            "mse-100",
            "kl-2048",
        ] {
            assert_eq!(parse(s).to_string(), s);
        }
    }

    #[test]
    fn parse_errors_name_the_token() {
        assert_eq!(parse_err("minimax").0, "minimax");
        assert_eq!(parse_err("").0, "");
        assert_eq!(parse_err("minmax-2").0, "2");
        assert_eq!(parse_err("ema-").0, "ema-");
        assert_eq!(parse_err("ema-abc").0, "abc");
        assert_eq!(parse_err("ema-0").0, "0");
        assert_eq!(parse_err("ema-1.5").0, "1.5");
        assert_eq!(parse_err("ema-nan").0, "nan");
        assert_eq!(parse_err("percentile-101").0, "101");
        assert_eq!(parse_err("percentile-49").0, "49");
        assert_eq!(parse_err("percentile-inf").0, "inf");
        // A negative number: the token after the first '-'.
        assert_eq!(parse_err("percentile--5").0, "-5");
        assert_eq!(parse_err("mse-0").0, "0");
        assert_eq!(parse_err("mse-1.5").0, "1.5");
        assert_eq!(parse_err("mse-100000").0, "100000");
        assert_eq!(parse_err("kl-1").0, "1");
        assert_eq!(parse_err("kl-99999999999").0, "99999999999");
        assert_eq!(parse_err("foo-3").0, "foo");
        let (_, reason) = parse_err("kl-1");
        assert!(reason.contains("2..=16384"), "{reason}");
    }

    #[test]
    fn validate_names_the_parameter() {
        let e = Method::Percentile(f64::NAN).validate("t").unwrap_err();
        assert!(matches!(
            e,
            Error::InvalidParameter {
                op: "t",
                name: "percentile",
                ..
            }
        ));
        let e = Method::MovingAverage {
            averaging_constant: -0.1,
        }
        .validate("t")
        .unwrap_err();
        assert!(matches!(
            e,
            Error::InvalidParameter {
                name: "averaging_constant",
                ..
            }
        ));
        assert!(Method::Kl { bins: 2048 }.validate("t").is_ok());
        assert!(Method::validate_kl_bins(64, 128, "t").is_err());
        assert!(Method::validate_kl_bins(128, 128, "t").is_ok());
    }

    proptest! {
        #[test]
        fn prop_display_parses_back(
            c in 1e-6f32..=1.0,
            p in 50.0f64..=100.0,
            k in 1usize..=Method::MAX_MSE_CANDIDATES,
            b in 2usize..=Method::MAX_KL_BINS,
        ) {
            for m in [
                Method::MinMax,
                Method::MovingAverage { averaging_constant: c },
                Method::Percentile(p),
                Method::Mse { candidates: k },
                Method::Kl { bins: b },
            ] {
                let back: Method = m.to_string().parse().unwrap();
                prop_assert_eq!(back, m);
            }
        }
    }
}
