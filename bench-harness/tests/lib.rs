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
