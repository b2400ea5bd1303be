//! `models::sensitivity` on the tiny random model: group coverage, the held-out calibration
//! slice, ranking, the exact-zero ΔKL of a no-op quantization, and budgeted allocation
//! whose predicted size is the loaded model's exact size.

use std::sync::OnceLock;

use models::Error;
use models::gguf::GgufFile;
use models::llama::Model;
use models::policy::{Policy, Rule};
use models::sensitivity::{
    SensitivityOptions, SensitivityReport, allocate, analyze, calibration_tokens, groups_for,
};
use models::testing::{TinySpec, tiny_gguf};
use numerics::testing::rng;
use proptest::prelude::*;
use rand::RngExt;

const N_CTX: usize = 32;

fn tiny(spec: &TinySpec) -> GgufFile {
    GgufFile::from_bytes(tiny_gguf(spec).expect("tiny model")).expect("parses")
}

fn untied() -> TinySpec {
    TinySpec {
        tied: false,
        ..TinySpec::default()
    }
}

/// `4 · N_CTX` random ids of the tiny vocabulary.
fn corpus(vocab: usize) -> Vec<u32> {
    let mut r = rng::seeded(11);
    (0..4 * N_CTX)
        .map(|_| r.random_range(0..vocab as u32))
        .collect()
}

fn options(format: &str, base: &str) -> SensitivityOptions {
    let mut o = SensitivityOptions::new(
        format.parse().expect("format"),
        Policy::preset(base).expect("preset"),
    );
    o.n_ctx = N_CTX;
    o.calib_chunks = 2;
    o
}

/// `spec`'s groups quantized to `format` against preset `base` on the last 2 of 4 chunks.
fn run(spec: &TinySpec, format: &str, base: &str) -> (GgufFile, SensitivityReport) {
    let file = tiny(spec);
    let vocab = Model::load(&file, &Policy::preset("fp32").unwrap(), 1)
        .unwrap()
        .config()
        .vocab_size;
    let tokens = corpus(vocab);
    let calib = calibration_tokens(&tokens, N_CTX, 2, 2).expect("disjoint");
    let mut calls = 0;
    let report = analyze(&file, calib, &options(format, base), &mut |p| {
        calls += 1;
        assert_eq!(p.done, calls);
        assert!(!p.result.group.name.is_empty());
    })
    .expect("analyze");
    assert_eq!(calls, report.groups.len());
    (file, report)
}

/// The untied tiny model, int4-g32 against fp32 (shared by several tests).
fn int4_report() -> &'static (GgufFile, SensitivityReport) {
    static R: OnceLock<(GgufFile, SensitivityReport)> = OnceLock::new();
    R.get_or_init(|| run(&untied(), "int4-g32", "fp32"))
}

#[test]
fn groups_cover_every_matrix_exactly_once() {
    for spec in [TinySpec::default(), untied()] {
        let model = Model::load(&tiny(&spec), &Policy::preset("fp32").unwrap(), 1).unwrap();
        let groups = groups_for(model.config(), model.is_tied());
        assert_eq!(
            groups.len(),
            1 + 2 * spec.n_layers + usize::from(!spec.tied)
        );
        for t in model.tensors() {
            let owners: Vec<&str> = groups
                .iter()
                .filter(|g| g.contains(&t.name))
                .map(|g| g.name.as_str())
                .collect();
            let expected = usize::from(t.shape.len() == 2);
            assert_eq!(owners.len(), expected, "{}: {owners:?}", t.name);
        }
        // Every pattern names a tensor of the model.
        for g in &groups {
            for p in &g.patterns {
                let rule = Rule::new(p, models::policy::Target::Keep).unwrap();
                assert_eq!(
                    model
                        .tensors()
                        .iter()
                        .filter(|t| rule.matches(&t.name))
                        .count(),
                    1,
                    "{p}"
                );
            }
        }
    }
}

#[test]
fn calibration_slice_is_the_tail_and_refuses_overlap() {
    let tokens: Vec<u32> = (0..128).collect();
    let c = calibration_tokens(&tokens, 32, 2, 2).unwrap();
    assert_eq!(c, &tokens[64..]);
    // 3 calibration chunks would overlap the 2 scored ones.
    let e = calibration_tokens(&tokens, 32, 3, 2).unwrap_err();
    assert!(matches!(e, Error::InvalidArgument { .. }), "{e}");
    assert!(e.to_string().contains("overlap"), "{e}");
    // More chunks than the corpus holds, and zero sizes.
    assert!(calibration_tokens(&tokens, 32, 5, 0).is_err());
    assert!(calibration_tokens(&tokens, 0, 1, 0).is_err());
    assert!(calibration_tokens(&tokens, 32, 0, 0).is_err());
}

proptest! {
    #[test]
    fn calibration_never_overlaps_scored_chunks(
        len in 0usize..400,
        n_ctx in 1usize..40,
        k in 1usize..6,
        scored in 0usize..8,
    ) {
        let tokens: Vec<u32> = (0..len as u32).collect();
        match calibration_tokens(&tokens, n_ctx, k, scored) {
            Ok(c) => {
                prop_assert_eq!(c.len(), k * n_ctx);
                let start = c.first().map_or(len, |&t| t as usize);
                prop_assert_eq!(start + c.len(), len);
                prop_assert!(start >= scored * n_ctx);
            }
            Err(_) => prop_assert!(k * n_ctx > len || len - k * n_ctx < scored * n_ctx),
        }
    }
}

#[test]
fn analyze_ranks_every_group() {
    let (_, report) = int4_report();
    let spec = untied();
    let names: Vec<String> = {
        let mut n: Vec<String> = report.groups.iter().map(|g| g.group.name.clone()).collect();
        n.sort();
        n
    };
    let mut expected = vec!["output".to_owned(), "token_embd".to_owned()];
    for l in 0..spec.n_layers {
        expected.push(format!("blk.{l}.attn"));
        expected.push(format!("blk.{l}.ffn"));
    }
    expected.sort();
    assert_eq!(names, expected);
    for w in report.groups.windows(2) {
        assert!(w[0].delta_kl >= w[1].delta_kl, "not ranked by ΔKL");
    }
    for g in &report.groups {
        assert!(g.delta_kl.is_finite() && g.delta_kl >= 0.0, "{g:?}");
        assert!(g.delta_kl > 0.0, "int4 changes {}", g.group.name);
        assert!((0.0..=1.0).contains(&g.top1_agreement));
        assert!(g.bytes_saved > 0 && g.quant_bytes < g.base_bytes, "{g:?}");
        assert_eq!(g.bytes_saved, g.base_bytes as i64 - g.quant_bytes as i64);
        let per_byte = g.kl_per_byte.expect("saves bytes");
        assert_eq!(
            per_byte.to_bits(),
            (g.delta_kl / g.bytes_saved as f64).to_bits()
        );
        assert!(g.delta_ppl_pct.is_finite());
    }
    assert!(report.base_ppl.is_finite() && report.base_ppl > 1.0);
    assert!(
        report.kl_floor >= 0.0 && report.kl_floor < 1e-6,
        "{}",
        report.kl_floor
    );
    assert_eq!(report.tokens_scored, 2 * (N_CTX - 1 - N_CTX / 2));
    let json = serde_json::to_string(report).unwrap();
    assert!(json.contains("\"format\":\"int4-g32\""), "{json}");
    assert!(json.contains("\"name\":\"blk.1.ffn\""), "{json}");
}

#[test]
fn baseline_format_gives_zero_delta_kl_exactly() {
    for (format, base) in [("f32", "fp32"), ("f16", "fp16")] {
        let (_, report) = run(&TinySpec::default(), format, base);
        for g in &report.groups {
            assert_eq!(g.delta_kl.to_bits(), 0f64.to_bits(), "{base}: {g:?}");
            assert_eq!(g.kl.to_bits(), report.kl_floor.to_bits(), "{g:?}");
            assert_eq!(g.ppl.to_bits(), report.base_ppl.to_bits(), "{g:?}");
            assert_eq!(g.delta_ppl_pct.to_bits(), 0f64.to_bits(), "{g:?}");
            assert_eq!(g.bytes_saved, 0);
            assert!(g.kl_per_byte.is_none());
            assert_eq!(g.top1_agreement.to_bits(), 1f64.to_bits());
        }
    }
}

#[test]
fn allocation_meets_the_budget_exactly() {
    let (file, report) = int4_report();
    let total_saving: usize = report.groups.iter().map(|g| g.bytes_saved as usize).sum();
    let floor = report.base_weight_bytes - total_saving;
    for budget in [
        report.base_weight_bytes - 1,
        report.base_weight_bytes - total_saving / 3,
        report.base_weight_bytes - total_saving / 2,
        floor + 1,
        floor,
    ] {
        let a = allocate(report, budget).unwrap();
        assert!(a.weight_bytes <= budget, "{budget}: {}", a.weight_bytes);
        assert!(!a.quantized.is_empty());
        assert_eq!(a.policy.name, format!("auto-{budget}"));
        assert!(a.policy.rules.ends_with(&report.base.rules));
        let model = Model::load(file, &a.policy, 1).unwrap();
        assert_eq!(model.weight_bytes(), a.weight_bytes, "{budget}");
        // Exactly the chosen groups changed format.
        for t in model.tensors() {
            let chosen = report
                .groups
                .iter()
                .any(|g| a.quantized.contains(&g.group.name) && g.group.contains(&t.name));
            let expected = if chosen { "int4-g32" } else { "f32" };
            assert_eq!(t.format, expected, "{}", t.name);
        }
        // Greedy by ΔKL per byte, then refined: the chosen groups come from the greedy
        // prefix of the allocation order, and none of them could be given back (restored to
        // the baseline) without exceeding the budget.
        let order = report.allocation_order();
        let names: Vec<&str> = order.iter().map(|g| g.group.name.as_str()).collect();
        let last = a
            .quantized
            .iter()
            .map(|q| names.iter().position(|n| n == q).unwrap())
            .max()
            .unwrap();
        let mut prefix_bytes = report.base_weight_bytes;
        for g in &order[..last] {
            prefix_bytes = prefix_bytes - g.base_bytes + g.quant_bytes;
        }
        assert!(
            prefix_bytes > budget,
            "the greedy prefix before the last group was over"
        );
        for q in &a.quantized {
            let g = order.iter().find(|g| &g.group.name == q).unwrap();
            assert!(
                a.weight_bytes - g.quant_bytes + g.base_bytes > budget,
                "{q} fits back"
            );
        }
    }
    // The smallest reachable size quantizes everything.
    assert_eq!(
        allocate(report, floor).unwrap().quantized.len(),
        report.groups.len()
    );
}

#[test]
fn impossible_budget_is_an_error() {
    let (_, report) = int4_report();
    let total_saving: usize = report.groups.iter().map(|g| g.bytes_saved as usize).sum();
    let floor = report.base_weight_bytes - total_saving;
    for budget in [0, floor - 1] {
        let e = allocate(report, budget).unwrap_err();
        assert!(
            matches!(e, Error::InvalidArgument { what: "budget", .. }),
            "{e}"
        );
        assert!(e.to_string().contains(&floor.to_string()), "{e}");
    }
}

#[test]
fn unlimited_budget_returns_the_baseline() {
    let (file, report) = int4_report();
    for budget in [usize::MAX, report.base_weight_bytes] {
        let a = allocate(report, budget).unwrap();
        assert_eq!(a.policy.rules, report.base.rules);
        assert!(a.quantized.is_empty());
        assert_eq!(a.weight_bytes, report.base_weight_bytes);
        assert_eq!(a.predicted_damage.to_bits(), 0f64.to_bits());
        let model = Model::load(file, &a.policy, 1).unwrap();
        assert_eq!(model.weight_bytes(), report.base_weight_bytes);
    }
}

#[test]
fn analyze_rejects_short_calibration() {
    let file = tiny(&TinySpec::default());
    let tokens: Vec<u32> = (0..N_CTX as u32).collect();
    let mut o = options("int8", "fp32");
    assert!(matches!(
        analyze(&file, &tokens, &o, &mut |_| {}),
        Err(Error::InvalidArgument { .. })
    ));
    o.calib_chunks = 1;
    let tokens: Vec<u32> = (0..4 * N_CTX as u32).collect();
    assert!(matches!(
        analyze(&file, &tokens, &o, &mut |_| {}),
        Err(Error::InvalidArgument { .. })
    ));
}
