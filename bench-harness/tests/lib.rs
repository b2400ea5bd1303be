//! End-to-end tests of the `adaprec` binary: they run it as a user would, into a fresh
//! directory under the system temp dir.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn adaprec(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_adaprec"))
        .args(args)
        .output()
        .expect("adaprec runs")
}

/// A fresh, empty directory unique to this test and process.
fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("adaprec-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn read(dir: &Path, file: &str) -> Vec<u8> {
    std::fs::read(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

#[test]
fn reproduce_twice_gives_identical_files() {
    let a = scratch_dir("repro-a");
    let b = scratch_dir("repro-b");
    for dir in [&a, &b] {
        let out = adaprec(&[
            "reproduce",
            "--samples",
            "4096",
            "--only",
            "formats,quantizers,calibration",
            "--quiet",
            "--out",
            dir.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for file in ["formats.md", "formats.csv", "README.md"] {
        let (x, y) = (read(&a, file), read(&b, file));
        assert!(!x.is_empty(), "{file} is empty");
        assert_eq!(x, y, "{file} differs between runs");
    }
    let md = String::from_utf8(read(&a, "formats.md")).unwrap();
    assert!(
        md.contains("4096 samples") && md.contains("seed 20261123"),
        "{md}"
    );
    assert!(md.contains("--samples 4096"), "{md}");
    let csv = String::from_utf8(read(&a, "formats.csv")).unwrap();
    let mut lines = csv.lines();
    let header = lines.next().unwrap();
    assert!(header.starts_with("distribution,format,cast,"), "{header}");
    let width = header.split(',').count();
    assert!(lines.clone().count() > 40);
    assert!(lines.all(|l| l.split(',').count() == width));
    assert!(!csv.contains("f8e8m0fnu"));
    let index = String::from_utf8(read(&a, "README.md")).unwrap();
    assert!(index.contains("[formats.csv](formats.csv)"));
    for dir in [a, b] {
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
fn only_runs_the_named_table() {
    let dir = scratch_dir("only");
    let out = adaprec(&[
        "reproduce",
        "--samples=256",
        "--only",
        "formats",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Progress and timing go to stderr, never stdout or the files.
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("done:"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn bad_arguments_fail_cleanly() {
    for args in [
        &["reproduce", "--samples", "0"][..],
        &["reproduce", "--samples", "2000000000"],
        &["reproduce", "--only", "no_such_table"],
        &["formats", "--value", "garbage"],
        &["formats", "--format", "f7e7"],
    ] {
        let out = adaprec(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("error:"), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn unwritable_output_names_the_path() {
    let dir = scratch_dir("blocked");
    std::fs::create_dir_all(dir.parent().unwrap()).unwrap();
    // A file where the output directory should be.
    std::fs::write(&dir, b"not a directory").unwrap();
    let out = adaprec(&[
        "reproduce",
        "--samples",
        "64",
        "--quiet",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(dir.to_str().unwrap()), "{err}");
    let _ = std::fs::remove_file(dir);
}

#[test]
fn formats_lists_and_encodes() {
    let out = adaprec(&["formats"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("f8e4m3fn") && text.contains("mxfp4_e2m1"),
        "{text}"
    );

    let out = adaprec(&["formats", "--value", "3.14159", "--format", "f8e4m3fn"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("0x45") && text.contains("3.25"), "{text}");
    assert!(!text.contains("bf16"));

    for v in ["nan", "inf", "-inf", "-0", "1e-45"] {
        let out = adaprec(&["formats", "--value", v]);
        assert!(
            out.status.success(),
            "{v}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The tiny random model (our GGUF writer) and a corpus of its own text, in a scratch dir.
fn tiny_model(name: &str) -> (PathBuf, PathBuf, PathBuf) {
    let dir = scratch_dir(name);
    std::fs::create_dir_all(&dir).unwrap();
    let model = dir.join("tiny.gguf");
    let bytes = models::testing::tiny_gguf(&models::testing::TinySpec::default()).unwrap();
    std::fs::write(&model, bytes).unwrap();
    let corpus = dir.join("corpus.txt");
    let text = "the cat sat on the mat and then the rain came in. ".repeat(40);
    std::fs::write(&corpus, text).unwrap();
    (dir, model, corpus)
}

fn last_json(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    let line = stdout.lines().last().expect("a JSON line");
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"))
}

#[test]
fn model_commands_run_on_a_tiny_gguf() {
    let (dir, model, corpus) = tiny_model("tiny");
    let m = model.to_str().unwrap();
    let f = corpus.to_str().unwrap();
    let j = last_json(&adaprec(&[
        "perplexity",
        "-m",
        m,
        "-f",
        f,
        "-c",
        "32",
        "--chunks",
        "3",
        "-t",
        "2",
        "--kl",
        "--json",
    ]));
    for key in [
        "ppl",
        "ppl_stderr",
        "chunks",
        "tokens_scored",
        "weight_bytes",
        "kl_mean",
        "top1_agreement",
        "fp32_ppl",
        "delta_ppl_pct_vs_fp32",
        "decode_tokens_per_second",
    ] {
        assert!(j.get(key).is_some(), "{key} missing: {j}");
    }
    assert_eq!(j["chunks"], 3);
    assert_eq!(j["tokens_scored"], 3 * 15);
    assert!(j["ppl"].as_f64().unwrap().is_finite());
    // Same numbers under another policy are different, and smaller weights.
    let q = last_json(&adaprec(&[
        "perplexity",
        "-m",
        m,
        "-f",
        f,
        "-c",
        "32",
        "--chunks",
        "3",
        "--policy",
        "fp32",
        "--json",
    ]));
    assert!(q["weight_bytes"].as_u64() > j["weight_bytes"].as_u64());
    // tokenize --json is an array of ids; the tiny vocabulary merges "Ġt he".
    let t = last_json(&adaprec(&["tokenize", "-m", m, "--json", "the the"]));
    let ids = t.as_array().unwrap();
    assert_eq!(ids.len(), 3, "{t}");
    let i = last_json(&adaprec(&["inspect", "-m", m, "--json"]));
    assert_eq!(i["tensors"].as_array().unwrap().len(), 1 + 2 * 9 + 1);
    let g = last_json(&adaprec(&[
        "generate", "-m", m, "-n", "5", "--json", "the cat",
    ]));
    assert_eq!(g["ids"].as_array().unwrap().len(), 5);
    let s = last_json(&adaprec(&[
        "sensitivity",
        "-m",
        m,
        "-f",
        f,
        "-c",
        "32",
        "--calib-chunks",
        "2",
        "--budget",
        "aggressive",
        "--json",
    ]));
    assert_eq!(s["groups"].as_array().unwrap().len(), 1 + 2 * 2);
    assert!(s.get("allocation").is_some(), "{s}");
    // Export to f16 and read it back.
    let out_gguf = dir.join("f16.gguf");
    let e = adaprec(&[
        "export",
        "-m",
        m,
        "--policy",
        "fp16",
        "-o",
        out_gguf.to_str().unwrap(),
    ]);
    assert!(e.status.success(), "{}", String::from_utf8_lossy(&e.stderr));
    let back = last_json(&adaprec(&[
        "inspect",
        "-m",
        out_gguf.to_str().unwrap(),
        "--json",
    ]));
    assert!(
        back["tensors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["type"] == "f16")
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn model_command_errors_are_clean() {
    let (dir, model, corpus) = tiny_model("errors");
    let m = model.to_str().unwrap();
    let f = corpus.to_str().unwrap();
    let bad = dir.join("bad.gguf");
    std::fs::write(&bad, b"GGUF\x03\x00\x00\x00garbage").unwrap();
    for args in [
        vec!["inspect", "-m", bad.to_str().unwrap()],
        vec!["perplexity", "-m", m, "-f", f, "-c", "4096"],
        vec!["perplexity", "-m", m, "-f", f, "--policy", "no-such-policy"],
        vec!["perplexity", "-m", m, "-f", "/no/such/file.txt"],
        vec![
            "perplexity",
            "-m",
            m,
            "-f",
            f,
            "--attention",
            "dilated:w=8;r=9",
        ],
        vec!["perplexity", "-m", m, "-f", f, "--attention", "flash@9"],
        vec!["perplexity", "-m", m, "-f", f, "--attention", "warp"],
        vec!["generate", "-m", m, "--temp=-1", "hi"],
        vec![
            "export",
            "-m",
            m,
            "--policy",
            "int8",
            "-o",
            "/tmp/never.gguf",
        ],
    ] {
        let out = adaprec(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("error:"), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The encoder commands on the real all-MiniLM-L6-v2 (fetched into the cache on first use).
#[test]
fn embed_json_is_one_array_per_text_in_order() {
    let out = adaprec(&[
        "embed",
        "--json",
        "-t",
        "1",
        "",
        "hello",
        "A cat sat on the mat.",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let last = stdout.lines().last().expect("a JSON line");
    let v: Vec<Vec<f32>> = serde_json::from_str(last).expect("an array of arrays");
    assert_eq!(v.len(), 3);
    assert!(v.iter().all(|e| e.len() == 384));
    for e in &v {
        let norm: f32 = e.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "{norm}");
    }
    // sentence-transformers' embedding of "" starts -0.11883832, 0.048298705
    // (models/tests/data/minilm_reference.json).
    assert!((v[0][0] + 0.118_838_32).abs() < 1e-5 && (v[0][1] - 0.048_298_705).abs() < 1e-5);
    // The order is the arguments' order: "hello" is not "".
    assert!((v[1][0] - v[0][0]).abs() > 1e-3);

    // Text output: a header and a line of 384 values per text.
    let out = adaprec(&["embed", "-t", "1", "hello"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("# 0: \"hello\" (3 tokens"),
        "{}",
        lines[0]
    );
    assert_eq!(lines[1].split(' ').count(), 384);
}

#[test]
fn fidelity_reports_cosine_retrieval_bytes_and_speed() {
    let out = adaprec(&[
        "fidelity", "--model", "minilm", "--policy", "int8", "-n", "12", "-t", "1", "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let v: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(v["sentences"], 12);
    let cos = v["mean_cosine"].as_f64().unwrap();
    assert!(cos > 0.99 && cos < 1.0, "{v}");
    assert!(v["min_cosine"].as_f64().unwrap() <= cos);
    for k in ["top1_agreement", "top5_agreement"] {
        let a = v[k].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&a), "{k}: {a}");
    }
    let ratio = v["compression_vs_f32"].as_f64().unwrap();
    assert!(ratio > 3.5 && ratio < 4.0, "{v}");
    assert!(v["sentences_per_second"].as_f64().unwrap() > 0.0);
}

#[test]
fn encoder_commands_refuse_bad_input_with_a_message() {
    for args in [
        &["embed", "--model", "/no/such/folder", "x"][..],
        &["embed", "--policy", "int9", "x"],
        &["embed"],
        &["fidelity", "-n", "0"],
        &["fidelity", "-n", "100000000"],
        &["fidelity", "--threads", "0"],
    ] {
        let out = adaprec(args);
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(err.contains("error"), "{args:?}: {err}");
    }
}

#[test]
fn perplexity_swaps_attention_variants_into_layers() {
    let (dir, model, corpus) = tiny_model("attention");
    let (m, f) = (model.to_str().unwrap(), corpus.to_str().unwrap());
    let run = |extra: &[&str]| {
        let mut args = vec![
            "perplexity",
            "-m",
            m,
            "-f",
            f,
            "-c",
            "32",
            "--chunks",
            "2",
            "--json",
        ];
        args.extend_from_slice(extra);
        last_json(&adaprec(&args))["ppl"].as_f64().unwrap()
    };
    let base = run(&[]);
    let flash = run(&["--attention", "flash"]);
    assert!((flash / base - 1.0).abs() < 1e-4, "{flash} vs {base}");
    let dilated = run(&[
        "--attention",
        "dilated:w=4,8;r=1,2@1",
        "--attention",
        "flash@0",
    ]);
    assert!(
        dilated.is_finite() && (dilated / base - 1.0).abs() > 1e-6,
        "{dilated}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
