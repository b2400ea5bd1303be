//! GGUF reader and writer: round trips of every value and tensor type, and malformed files
//! (each must give `Error::Gguf` at the offending offset, never a panic or a huge
//! allocation).

use std::time::{Duration, Instant};

use models::Error;
use models::gguf::{GgmlType, GgufFile, GgufWriter, Metadata, TensorInfo, Value};
use proptest::prelude::*;
use quant::{QuantFormat, QuantizedTensor};

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// Deterministic test values in about [-2, 2].
fn values(n: usize, seed: usize) -> Vec<f32> {
    (0..n)
        .map(|i| ((i * 37 + seed * 11) % 101) as f32 / 25.0 - 2.0)
        .collect()
}

fn quantized(format: &str, shape: &[usize], seed: usize) -> QuantizedTensor {
    let n = shape.iter().product();
    QuantizedTensor::quantize(format.parse().unwrap(), &values(n, seed), shape).unwrap()
}

/// Format, shape and stored bytes of a tensor of one of the six GGUF-storable formats.
fn stored(t: &QuantizedTensor) -> (QuantFormat, Vec<usize>, Vec<u8>) {
    let (shape, bytes): (&[usize], Vec<u8>) = match t {
        QuantizedTensor::F32 { shape, data } => (shape, bytemuck::cast_slice(data).to_vec()),
        QuantizedTensor::F16 { shape, data } => (shape, bytemuck::cast_slice(data).to_vec()),
        QuantizedTensor::BF16 { shape, data } => (shape, bytemuck::cast_slice(data).to_vec()),
        QuantizedTensor::Q8_0 { shape, blocks } => (shape, bytemuck::cast_slice(blocks).to_vec()),
        QuantizedTensor::Q4_0 { shape, blocks } => (shape, bytemuck::cast_slice(blocks).to_vec()),
        QuantizedTensor::Q4_1 { shape, blocks } => (shape, bytemuck::cast_slice(blocks).to_vec()),
        other => panic!("not a GGUF format: {}", other.format()),
    };
    (t.format(), shape.to_vec(), bytes)
}

/// Values equal, floats compared by bits (so -0.0, NaN and subnormals must survive).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::F32(x), Value::F32(y)) => x.to_bits() == y.to_bits(),
        (Value::F64(x), Value::F64(y)) => x.to_bits() == y.to_bits(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q))
        }
        _ => a == b,
    }
}

fn assert_same_metadata(a: &Metadata, b: &Metadata) {
    assert_eq!(a.len(), b.len());
    for ((ka, va), (kb, vb)) in a.iter().zip(b.iter()) {
        assert_eq!(ka, kb);
        assert!(same(va, vb), "{ka}: wrote {va:?}, read {vb:?}");
    }
}

fn to_bytes(w: &GgufWriter) -> Vec<u8> {
    let mut out = Vec::new();
    w.write(&mut out).unwrap();
    out
}

/// The offset and reason of the `Error::Gguf` that parsing `bytes` gives.
#[track_caller]
fn gguf_err(bytes: Vec<u8>) -> (u64, String) {
    match GgufFile::from_bytes(bytes) {
        Err(Error::Gguf { offset, reason }) => (offset, reason.into_owned()),
        Err(e) => panic!("expected a GGUF error, got {e}"),
        Ok(f) => panic!("expected a GGUF error, parsed {f:?}"),
    }
}

#[track_caller]
fn assert_gguf_err(bytes: Vec<u8>, offset: u64, reason_contains: &str) {
    let (at, reason) = gguf_err(bytes);
    assert!(
        reason.contains(reason_contains),
        "reason {reason:?} lacks {reason_contains:?}"
    );
    assert_eq!(at, offset, "offset of: {reason}");
}

/// Hand-assembled GGUF bytes, for malformed files.
#[derive(Clone, Default)]
struct Raw(Vec<u8>);

impl Raw {
    fn header(version: u32, tensors: u64, kvs: u64) -> Raw {
        let mut r = Raw(b"GGUF".to_vec());
        r.u32(version).u64(tensors).u64(kvs);
        r
    }
    fn pos(&self) -> u64 {
        self.0.len() as u64
    }
    fn u8(&mut self, v: u8) -> &mut Raw {
        self.0.push(v);
        self
    }
    fn u32(&mut self, v: u32) -> &mut Raw {
        self.0.extend(v.to_le_bytes());
        self
    }
    fn u64(&mut self, v: u64) -> &mut Raw {
        self.0.extend(v.to_le_bytes());
        self
    }
    fn str(&mut self, s: &str) -> &mut Raw {
        self.u64(s.len() as u64);
        self.0.extend(s.as_bytes());
        self
    }
    /// A `u32` metadata pair.
    fn kv_u32(&mut self, key: &str, v: u32) -> &mut Raw {
        self.str(key).u32(4).u32(v)
    }
    /// A tensor info record.
    fn info(&mut self, name: &str, dims: &[u64], ty: u32, offset: u64) -> &mut Raw {
        self.str(name).u32(dims.len() as u32);
        for &d in dims {
            self.u64(d);
        }
        self.u32(ty).u64(offset)
    }
    /// Zero padding to 32, then `n` data bytes.
    fn data(&mut self, n: usize) -> &mut Raw {
        while !self.0.len().is_multiple_of(32) {
            self.0.push(0);
        }
        self.0.extend(std::iter::repeat_n(0x3c, n));
        self
    }
    fn done(&self) -> Vec<u8> {
        self.0.clone()
    }
}

/// A small valid file with a few metadata types and three tensors; its last tensor is 20
/// bytes, so the file ends in 12 bytes of padding.
fn small_file() -> Vec<u8> {
    let mut w = GgufWriter::new();
    w.set("general.architecture", "llama").unwrap();
    w.set("llama.block_count", 2u32).unwrap();
    w.set("llama.rope.freq_base", 10000.0f32).unwrap();
    w.set("tokenizer.ggml.add_bos_token", true).unwrap();
    w.set(
        "tokenizer.ggml.tokens",
        Value::Array(vec!["<s>".into(), "a".into(), "é".into()]),
    )
    .unwrap();
    w.set(
        "x.nested",
        Value::Array(vec![
            Value::Array(vec![Value::I16(-1)]),
            Value::Array(vec![]),
        ]),
    )
    .unwrap();
    w.add_tensor("norm", &quantized("f32", &[3], 1)).unwrap();
    w.add_tensor("w8", &quantized("q8_0", &[2, 32], 2)).unwrap();
    w.add_tensor("w4", &quantized("q4_1", &[1, 32], 3)).unwrap();
    to_bytes(&w)
}

// ---------------------------------------------------------------------------------------
// Round trips
// ---------------------------------------------------------------------------------------

fn every_value() -> Vec<(&'static str, Value)> {
    let mut deep = Value::Array(vec![Value::U8(7)]);
    for _ in 1..models::gguf::MAX_ARRAY_DEPTH {
        deep = Value::Array(vec![deep]);
    }
    vec![
        ("v.u8", Value::U8(200)),
        ("v.i8", Value::I8(-100)),
        ("v.u16", Value::U16(60_000)),
        ("v.i16", Value::I16(-30_000)),
        ("v.u32", Value::U32(4_000_000_000)),
        ("v.i32", Value::I32(i32::MIN)),
        ("v.f32", Value::F32(-0.0)),
        ("v.f32_inf", Value::F32(f32::INFINITY)),
        ("v.f32_nan", Value::F32(f32::from_bits(0x7FC0_1234))),
        ("v.f32_subnormal", Value::F32(f32::from_bits(1))),
        ("v.true", Value::Bool(true)),
        ("v.false", Value::Bool(false)),
        ("v.string", Value::String("héllo ✓ \u{0}\n".into())),
        ("v.empty_string", Value::String(String::new())),
        ("v.u64", Value::U64(u64::MAX)),
        ("v.i64", Value::I64(i64::MIN)),
        ("v.f64", Value::F64(std::f64::consts::PI)),
        ("", Value::String("an empty key".into())),
        ("v.arr_u8", Value::Array(vec![Value::U8(0), Value::U8(255)])),
        ("v.arr_i8", Value::Array(vec![Value::I8(-128)])),
        (
            "v.arr_u16",
            Value::Array(vec![Value::U16(1), Value::U16(2)]),
        ),
        ("v.arr_i16", Value::Array(vec![Value::I16(-2)])),
        ("v.arr_u32", Value::Array(vec![Value::U32(9); 5])),
        ("v.arr_i32", Value::Array((-3..3).map(Value::I32).collect())),
        (
            "v.arr_f32",
            Value::Array(vec![Value::F32(0.5), Value::F32(-1e30)]),
        ),
        (
            "v.arr_bool",
            Value::Array(vec![Value::Bool(true), Value::Bool(false)]),
        ),
        (
            "v.arr_str",
            Value::Array(vec!["a".into(), "".into(), "ü".into()]),
        ),
        ("v.arr_u64", Value::Array(vec![Value::U64(1 << 40)])),
        ("v.arr_i64", Value::Array(vec![Value::I64(-1 << 40)])),
        ("v.arr_f64", Value::Array(vec![Value::F64(-2.5)])),
        ("v.arr_empty", Value::Array(vec![])),
        (
            "v.arr_nested",
            Value::Array(vec![
                Value::Array(vec![Value::I32(1), Value::I32(2)]),
                Value::Array(vec![]),
                Value::Array(vec!["inner types may differ".into()]),
            ]),
        ),
        ("v.arr_deepest", deep),
    ]
}

#[test]
fn every_value_type_round_trips() {
    let mut w = GgufWriter::new();
    for (k, v) in every_value() {
        w.set(k, v).unwrap();
    }
    let file = GgufFile::from_bytes(to_bytes(&w)).unwrap();
    assert_eq!(file.version(), 3);
    assert_eq!(file.alignment(), 32);
    assert!(file.tensors().is_empty());
    assert_same_metadata(w.metadata(), file.metadata());
    // Copying the metadata into a new writer writes the same bytes.
    let copy = GgufWriter::from_metadata(file.metadata());
    assert_eq!(to_bytes(&copy), to_bytes(&w));
}

#[test]
fn every_tensor_type_round_trips() {
    let tensors = [
        ("f32.1d", quantized("f32", &[3], 1)),
        ("f32.3d", quantized("f32", &[2, 3, 4], 2)),
        ("f16", quantized("f16", &[5, 7], 3)),
        ("bf16.4d", quantized("bf16", &[2, 1, 3, 5], 4)),
        ("q8_0", quantized("q8_0", &[4, 64], 5)),
        ("q4_0", quantized("q4_0", &[3, 32], 6)),
        ("q4_1", quantized("q4_1", &[2, 96], 7)),
    ];
    let q4k: Vec<u8> = (0..288).map(|i| (i * 7) as u8).collect();
    for alignment in [None, Some(1u32), Some(64)] {
        let mut w = GgufWriter::new();
        w.set("general.name", "tensors").unwrap();
        if let Some(a) = alignment {
            w.set("general.alignment", a).unwrap();
        }
        for (name, t) in &tensors {
            w.add_tensor(*name, t).unwrap();
        }
        w.add_tensor_raw("q4_k", &[256, 2], GgmlType::from_id(12).unwrap(), &q4k)
            .unwrap();
        let bytes = to_bytes(&w);
        let file = GgufFile::from_bytes(bytes.clone()).unwrap();
        let align = u64::from(alignment.unwrap_or(32));
        assert_eq!(file.alignment(), align);
        assert_eq!(file.data_offset() % align, 0);
        assert_eq!(file.file_size(), bytes.len() as u64);
        assert_same_metadata(w.metadata(), file.metadata());
        assert_eq!(file.tensors().len(), tensors.len() + 1);
        // Offsets are consecutive, each padded to the alignment (llama.cpp's rule).
        let mut next = 0;
        for info in file.tensors() {
            assert_eq!(info.offset, next, "{}", info.name);
            next = (info.offset + info.n_bytes()).next_multiple_of(align);
        }
        assert_eq!(file.data_offset() + next, file.file_size());
        for (name, t) in &tensors {
            let info = file.tensor(name).unwrap();
            let (format, shape, raw) = stored(t);
            assert_eq!(info.shape(), shape, "{name}");
            let dims: Vec<u64> = shape.iter().rev().map(|&d| d as u64).collect();
            assert_eq!(info.dims, dims, "{name}");
            assert_eq!(info.ggml_type.name(), format.to_string(), "{name}");
            assert_eq!(file.tensor_bytes(info), raw, "{name}");
            let back = file.read_tensor(name).unwrap();
            assert_eq!(stored(&back), (format, shape, raw), "{name}");
            let (x, y) = (t.dequantize(), back.dequantize());
            assert!(x.iter().zip(&y).all(|(a, b)| a.to_bits() == b.to_bits()));
        }
        let info = file.tensor("q4_k").unwrap();
        assert_eq!(info.ggml_type.name(), "q4_K");
        assert_eq!(file.tensor_bytes(info), q4k);
        assert!(matches!(
            file.read_tensor("q4_k"),
            Err(Error::UnsupportedTensorType { name, ggml_type }) if name == "q4_k" && ggml_type == "q4_K"
        ));
        assert!(matches!(
            file.read_tensor("absent"),
            Err(Error::MissingTensor { name }) if name == "absent"
        ));
        // Copying a file's tensors raw reproduces it byte for byte.
        let mut copy = GgufWriter::from_metadata(file.metadata());
        for info in file.tensors() {
            copy.add_tensor_raw(
                &info.name,
                &info.dims,
                info.ggml_type,
                file.tensor_bytes(info),
            )
            .unwrap();
        }
        assert_eq!(to_bytes(&copy), bytes);
    }
}

#[test]
fn write_to_path_then_open_maps_the_same_file() {
    let dir = std::env::temp_dir().join(format!("models-gguf-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("small.gguf");
    let mut w = GgufWriter::new();
    w.set("general.architecture", "llama").unwrap();
    w.add_tensor("w", &quantized("q4_0", &[2, 32], 9)).unwrap();
    w.write_to_path(&path).unwrap();
    // Overwrite while the old file is mapped: the rename leaves the mapping intact.
    let first = GgufFile::open(&path).unwrap();
    w.set("general.name", "second").unwrap();
    w.write_to_path(&path).unwrap();
    assert!(first.metadata().get("general.name").is_none());
    let second = GgufFile::open(&path).unwrap();
    assert_eq!(second.metadata().get_str("general.name").unwrap(), "second");
    assert_eq!(
        stored(&second.read_tensor("w").unwrap()),
        stored(&quantized("q4_0", &[2, 32], 9))
    );
    // Only the file itself is left: the temporary files were renamed away.
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["small.gguf"]);
    // An empty file and a missing one.
    std::fs::write(dir.join("empty.gguf"), b"").unwrap();
    assert!(matches!(
        GgufFile::open(dir.join("empty.gguf")),
        Err(Error::Gguf { offset: 0, .. })
    ));
    assert!(matches!(
        GgufFile::open(dir.join("absent.gguf")),
        Err(Error::Io { .. })
    ));
    assert!(matches!(
        w.write_to_path(dir.join("no-such-dir").join("x.gguf")),
        Err(Error::Io { .. })
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---------------------------------------------------------------------------------------
// Malformed files
// ---------------------------------------------------------------------------------------

#[test]
fn bad_magic_and_versions() {
    let mut b = small_file();
    b[..4].copy_from_slice(b"GGML");
    assert_gguf_err(b, 0, "bad magic");
    assert_gguf_err(Raw::header(1, 0, 0).done(), 4, "version 1");
    assert_gguf_err(Raw::header(4, 0, 0).done(), 4, "version 4");
    assert_gguf_err(Raw::header(0, 0, 0).done(), 4, "version");
    assert_gguf_err(Raw::header(3u32.swap_bytes(), 0, 0).done(), 4, "big-endian");
    assert_eq!(
        GgufFile::from_bytes(Raw::header(2, 0, 0).done())
            .unwrap()
            .version(),
        2
    );
}

#[test]
fn every_truncation_is_an_error() {
    let full = small_file();
    let file = GgufFile::from_bytes(full.clone()).unwrap();
    let last = file.tensors().last().unwrap();
    let end_of_data = (file.data_offset() + last.offset + last.n_bytes()) as usize;
    assert!(end_of_data < full.len(), "the file should end in padding");
    for len in 0..end_of_data {
        let (at, reason) = gguf_err(full[..len].to_vec());
        assert!(at <= len as u64, "prefix {len}: offset {at} ({reason})");
    }
    // Without the final padding (or part of it) the file is still complete.
    for len in end_of_data..=full.len() {
        GgufFile::from_bytes(full[..len].to_vec()).unwrap();
    }
}

#[test]
fn absurd_counts_fail_fast_without_allocating() {
    let start = Instant::now();
    // Counts of u64::MAX would ask for exabytes if trusted; these fit in no file.
    assert_gguf_err(Raw::header(3, u64::MAX, 0).done(), 8, "tensor_count");
    assert_gguf_err(Raw::header(3, 0, u64::MAX).done(), 16, "metadata_kv_count");
    assert_gguf_err(
        Raw::header(3, 1 << 40, 1).data(64).done(),
        8,
        "tensor_count",
    );
    // A string length of u64::MAX (the key, then a value).
    let mut r = Raw::header(3, 0, 1);
    r.u64(u64::MAX).u64(0);
    assert_gguf_err(r.done(), 24, "string length");
    let mut r = Raw::header(3, 0, 1);
    r.str("k").u32(8).u64(u64::MAX).u64(0);
    assert_gguf_err(r.done(), 37, "string length");
    // Array counts: u64::MAX, and one element more than the bytes left hold.
    for (elem, count, at) in [(4u32, u64::MAX, 41), (0, 9, 41), (8, 2, 41), (9, 1, 41)] {
        let mut r = Raw::header(3, 0, 1);
        r.str("k").u32(9).u32(elem).u64(count).u64(0);
        assert_gguf_err(r.done(), at, "cannot fit");
    }
    // The largest count that fits is fine: 8 u8 elements in the 8 bytes left.
    let mut r = Raw::header(3, 0, 1);
    r.str("k").u32(9).u32(0).u64(8).u64(0);
    assert_eq!(
        GgufFile::from_bytes(r.done())
            .unwrap()
            .metadata()
            .get_array("k")
            .unwrap()
            .len(),
        8
    );
    assert!(start.elapsed() < Duration::from_secs(1));
}

#[test]
fn bad_metadata_values() {
    // Unknown value type.
    let mut r = Raw::header(3, 0, 1);
    r.str("k").u32(13).u32(0);
    assert_gguf_err(r.done(), 33, "unknown value type 13");
    // Unknown array element type.
    let mut r = Raw::header(3, 0, 1);
    r.str("k").u32(9).u32(99).u64(0);
    assert_gguf_err(r.done(), 37, "unknown array element type 99");
    // Invalid bool byte (in an array: the element's own offset).
    let mut r = Raw::header(3, 0, 1);
    r.str("k").u32(9).u32(7).u64(3).u8(1).u8(0).u8(2);
    assert_gguf_err(r.done(), 51, "invalid bool byte 0x02");
    // Non-UTF-8 key, at the first bad byte.
    let mut r = Raw::header(3, 0, 1);
    r.u64(3).u8(b'a').u8(0xff).u8(b'b').u32(0).u8(0);
    assert_gguf_err(r.done(), 33, "invalid UTF-8");
    // Duplicate key.
    let mut r = Raw::header(3, 0, 2);
    r.kv_u32("k", 1);
    let second = r.pos();
    r.kv_u32("k", 2);
    assert_gguf_err(r.done(), second, "duplicate metadata key `k`");
    // Arrays nested 9 deep.
    let mut r = Raw::header(3, 0, 1);
    r.str("k").u32(9);
    for _ in 0..8 {
        r.u32(9).u64(1);
    }
    let innermost = r.pos();
    r.u32(0).u64(0);
    let (at, reason) = gguf_err(r.done());
    assert!(reason.contains("nested more than 8"), "{reason}");
    assert_eq!(at, innermost);
}

#[test]
fn bad_alignment() {
    for (ty, value, what) in [
        (4u32, 0u32, "found u32 0"),
        (4, 48, "found u32 48"),
        (5, 32, "found i32 32"),
    ] {
        let mut r = Raw::header(3, 0, 2);
        r.kv_u32("general.name.len", 1);
        let at = r.pos();
        r.str("general.alignment").u32(ty).u32(value);
        assert_gguf_err(r.done(), at, what);
    }
    // A valid non-default alignment governs the tensor offsets.
    let mut r = Raw::header(3, 1, 1);
    r.kv_u32("general.alignment", 64);
    let field = r.pos() + 8 + 1 + 4 + 8 + 4;
    r.info("t", &[1], 0, 32);
    assert_gguf_err(
        r.data(128).done(),
        field,
        "not a multiple of the alignment 64",
    );
}

/// A file with one tensor info (`name`, `dims`, `ty`, `offset`) and `data` data bytes;
/// returns the bytes and the offsets of the info's start and of its `n_dims`.
fn one_tensor(dims: &[u64], ty: u32, offset: u64, data: usize) -> (Vec<u8>, u64, u64) {
    let mut r = Raw::header(3, 1, 0);
    let start = r.pos();
    r.info("t", dims, ty, offset).data(data);
    (r.done(), start, start + 8 + 1)
}

#[test]
fn bad_tensor_infos() {
    let (ok, ..) = one_tensor(&[2, 3], 0, 0, 24);
    assert_eq!(
        GgufFile::from_bytes(ok).unwrap().tensors()[0].shape(),
        [3, 2]
    );
    // Dimension counts.
    let (b, _, n_dims) = one_tensor(&[], 0, 0, 4);
    assert_gguf_err(b, n_dims, "0 dimensions");
    let (b, _, n_dims) = one_tensor(&[1; 5], 0, 0, 4);
    assert_gguf_err(b, n_dims, "5 dimensions");
    // A zero dimension.
    let (b, _, n_dims) = one_tensor(&[4, 0], 0, 0, 16);
    assert_gguf_err(b, n_dims, "dimension 1 is 0");
    // Element counts overflowing u64, or beyond i64::MAX.
    let (b, _, n_dims) = one_tensor(&[u64::MAX, 2], 0, 0, 0);
    assert_gguf_err(b, n_dims, "i64::MAX elements");
    let (b, _, n_dims) = one_tensor(&[1 << 32, 1 << 31], 0, 0, 0);
    assert_gguf_err(b, n_dims, "i64::MAX elements");
    // Byte counts overflowing u64.
    let (b, _, n_dims) = one_tensor(&[1 << 62], 0, 0, 0);
    assert_gguf_err(b, n_dims, "u64::MAX bytes");
    // Unknown or removed types, and rows that are not whole blocks.
    let (b, _, n_dims) = one_tensor(&[32], 4, 0, 18);
    assert_gguf_err(b, n_dims + 4 + 8, "unknown GGML type id 4");
    let (b, _, n_dims) = one_tensor(&[16, 2], 8, 0, 34);
    assert_gguf_err(b, n_dims, "not a multiple of the q8_0 block size 32");
    // Misaligned offset.
    let (b, _, n_dims) = one_tensor(&[1], 0, 16, 64);
    assert_gguf_err(b, n_dims + 4 + 8 + 4, "not a multiple of the alignment 32");
    // Data past the end of the file: one byte short, and an offset near u64::MAX.
    let (b, _, n_dims) = one_tensor(&[8], 0, 0, 31);
    assert_gguf_err(b, n_dims + 4 + 8 + 4, "run past the end");
    let (b, _, n_dims) = one_tensor(&[8], 0, u64::MAX - 31, 32);
    assert_gguf_err(b, n_dims + 4 + 8 + 4, "run past the end");
    // Duplicate tensor names.
    let mut r = Raw::header(3, 2, 0);
    r.info("t", &[1], 0, 0);
    let second = r.pos();
    r.info("t", &[1], 0, 32);
    assert_gguf_err(r.data(64).done(), second, "duplicate tensor name `t`");
}

// ---------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------

/// Parses and, if that succeeds, touches everything a caller might.
fn exercise(bytes: Vec<u8>) {
    if let Ok(file) = GgufFile::from_bytes(bytes) {
        for (_, v) in file.metadata().iter() {
            let _ = v.to_string();
        }
        for info in file.tensors() {
            let _ = file.tensor_bytes(info);
            let _ = file.read_tensor(&info.name);
        }
    }
}

fn value_strategy() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        any::<u8>().prop_map(Value::U8),
        any::<i8>().prop_map(Value::I8),
        any::<u16>().prop_map(Value::U16),
        any::<i16>().prop_map(Value::I16),
        any::<u32>().prop_map(Value::U32),
        any::<i32>().prop_map(Value::I32),
        any::<u32>().prop_map(|b| Value::F32(f32::from_bits(b))),
        any::<bool>().prop_map(Value::Bool),
        ".{0,12}".prop_map(Value::String),
        any::<u64>().prop_map(Value::U64),
        any::<i64>().prop_map(Value::I64),
        any::<u64>().prop_map(|b| Value::F64(f64::from_bits(b))),
    ];
    // Arrays of one element type: repeat one generated value's kind.
    leaf.prop_recursive(3, 24, 6, |inner| {
        (inner, 0..6usize).prop_map(|(v, n)| Value::Array(vec![v; n]))
    })
}

proptest! {
    #[test]
    fn random_mutations_never_panic(
        mutations in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        header_only in any::<bool>(),
    ) {
        let mut bytes = small_file();
        // Mutations inside the metadata and tensor infos find more paths than the data.
        let span = if header_only { bytes.len().min(400) } else { bytes.len() };
        for (i, v) in mutations {
            let i = i.index(span);
            bytes[i] = v;
        }
        exercise(bytes);
    }

    #[test]
    fn random_truncated_mutations_never_panic(
        cut in any::<prop::sample::Index>(),
        at in any::<prop::sample::Index>(),
        v in prop_oneof![Just(0u8), Just(0xff), Just(0x80), any::<u8>()],
    ) {
        let mut bytes = small_file();
        let i = at.index(bytes.len());
        bytes[i] = v;
        bytes.truncate(cut.index(bytes.len()));
        exercise(bytes);
    }

    #[test]
    fn metadata_round_trips(entries in prop::collection::vec(("[a-z.]{0,8}", value_strategy()), 0..8)) {
        let mut w = GgufWriter::new();
        for (k, v) in entries {
            w.set(k, v).unwrap();
        }
        let file = GgufFile::from_bytes(to_bytes(&w)).unwrap();
        assert_same_metadata(w.metadata(), file.metadata());
    }
}

#[test]
fn tensor_info_accessors() {
    let info = TensorInfo {
        name: "w".into(),
        dims: vec![64, 3],
        ggml_type: GgmlType::Q4_1,
        offset: 0,
    };
    assert_eq!(info.n_elements(), 192);
    assert_eq!(info.n_bytes(), 6 * 20);
    assert_eq!(info.shape(), [3, 64]);
}
