//! The writer: GGUF v3 files that llama.cpp and gguf-py load.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use bytemuck::Pod;
use half::{bf16, f16};
use quant::QuantizedTensor;
use quant::ggml::{BlockQ4_0, BlockQ4_1, BlockQ8_0};

use super::tensor_info::check_layout;
use super::value::ValueType;
use super::{DEFAULT_ALIGNMENT, GgmlType, MAGIC, MAX_ARRAY_DEPTH, MAX_STRING_LEN, Metadata, Value};
use crate::{Error, Result};

/// The longest tensor name llama.cpp accepts, in bytes (`GGML_MAX_NAME - 1`).
pub const MAX_TENSOR_NAME_LEN: usize = 63;

/// The version this writer produces.
const VERSION: u32 = 3;

/// Builds a GGUF v3 file: metadata and tensors in the order they are added.
///
/// The layout is gguf-py's `GGUFWriter`'s, which llama.cpp loads: header, metadata pairs,
/// tensor-info records, zero padding to the alignment, then each tensor's data, each
/// followed by zero padding to the alignment, so every tensor offset is a multiple of it
/// and the offsets are consecutive. The alignment is `general.alignment` if set (a `u32`
/// power of two), else 32.
///
/// Everything is checked when added ([`set`](GgufWriter::set),
/// [`add_tensor`](GgufWriter::add_tensor)), so writing fails only on I/O errors. The
/// tensors' bytes are held in memory until written.
///
/// Nested arrays are written as the spec describes them, but llama.cpp itself refuses
/// metadata arrays of arrays.
#[derive(Clone, Debug, Default)]
pub struct GgufWriter {
    metadata: Metadata,
    tensors: Vec<PendingTensor>,
    names: HashMap<String, usize>,
}

#[derive(Clone)]
struct PendingTensor {
    name: String,
    dims: Vec<u64>,
    ggml_type: GgmlType,
    bytes: Vec<u8>,
}

impl std::fmt::Debug for PendingTensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingTensor")
            .field("name", &self.name)
            .field("dims", &self.dims)
            .field("ggml_type", &self.ggml_type)
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

impl GgufWriter {
    /// An empty writer.
    #[must_use]
    pub fn new() -> GgufWriter {
        GgufWriter::default()
    }

    /// A writer holding a copy of `metadata` (all keys, in order, `general.alignment`
    /// included), to save a model's tensors again with its tokenizer and hyperparameters.
    #[must_use]
    pub fn from_metadata(metadata: &Metadata) -> GgufWriter {
        GgufWriter {
            metadata: metadata.clone(),
            ..GgufWriter::default()
        }
    }

    /// The metadata so far.
    #[must_use]
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// Sets `key` to `value`: replaces the value in place if the key is present (keeping
    /// its position), appends it otherwise.
    ///
    /// # Errors
    ///
    /// [`Error::BadMetadata`] if the key or a string is longer than 2³⁰ bytes, an array
    /// mixes element types or nests more than 8 deep, or `general.alignment` is not a
    /// `u32` power of two.
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<Value>) -> Result<()> {
        let (key, value) = (key.into(), value.into());
        let bad = |expected: &'static str| Error::BadMetadata {
            key: key.clone(),
            expected: expected.into(),
        };
        if key.len() as u64 > MAX_STRING_LEN {
            return Err(bad("a key of at most 2^30 bytes"));
        }
        check_value(&value, 0).map_err(bad)?;
        if key == "general.alignment" && !matches!(value, Value::U32(a) if a.is_power_of_two()) {
            return Err(bad("a u32 power of two"));
        }
        self.metadata.set(key, value);
        Ok(())
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        self.metadata.remove(key)
    }

    /// The alignment the file will use: `general.alignment`, or 32.
    #[must_use]
    pub fn alignment(&self) -> u64 {
        match self.metadata.get("general.alignment") {
            Some(Value::U32(a)) => u64::from(*a),
            _ => u64::from(DEFAULT_ALIGNMENT),
        }
    }

    /// Adds a tensor stored as it is in `tensor`: F32, F16, BF16, Q8_0, Q4_0 or Q4_1, with
    /// GGUF dimensions the reverse of its row-major shape (1 to 4 axes).
    ///
    /// # Errors
    ///
    /// - [`Error::UnsupportedTensorType`] for any other format (named in the error);
    /// - [`Error::InvalidArgument`] for a duplicate or over-long name (llama.cpp takes at
    ///   most 63 bytes), a shape GGUF cannot store, or data that does not match the shape.
    pub fn add_tensor(&mut self, name: impl Into<String>, tensor: &QuantizedTensor) -> Result<()> {
        let name = name.into();
        let (ggml_type, shape, bytes) = match tensor {
            QuantizedTensor::F32 { shape, data } => (
                GgmlType::F32,
                shape,
                le_bytes(data, |v: f32| f32::from_bits(v.to_bits().swap_bytes())),
            ),
            QuantizedTensor::F16 { shape, data } => (
                GgmlType::F16,
                shape,
                le_bytes(data, |v: f16| f16::from_bits(v.to_bits().swap_bytes())),
            ),
            QuantizedTensor::BF16 { shape, data } => (
                GgmlType::BF16,
                shape,
                le_bytes(data, |v: bf16| bf16::from_bits(v.to_bits().swap_bytes())),
            ),
            QuantizedTensor::Q8_0 { shape, blocks } => (
                GgmlType::Q8_0,
                shape,
                le_bytes(blocks, |b: BlockQ8_0| BlockQ8_0 {
                    d: swap_f16(b.d),
                    ..b
                }),
            ),
            QuantizedTensor::Q4_0 { shape, blocks } => (
                GgmlType::Q4_0,
                shape,
                le_bytes(blocks, |b: BlockQ4_0| BlockQ4_0 {
                    d: swap_f16(b.d),
                    ..b
                }),
            ),
            QuantizedTensor::Q4_1 { shape, blocks } => (
                GgmlType::Q4_1,
                shape,
                le_bytes(blocks, |b: BlockQ4_1| BlockQ4_1 {
                    d: swap_f16(b.d),
                    m: swap_f16(b.m),
                    qs: b.qs,
                }),
            ),
            other => {
                return Err(Error::UnsupportedTensorType {
                    name,
                    ggml_type: other.format().to_string(),
                });
            }
        };
        let dims: Vec<u64> = shape.iter().rev().map(|&d| d as u64).collect();
        self.push(name, dims, ggml_type, bytes)
    }

    /// Adds a tensor from its stored bytes, in any type ggml defines (to copy a tensor
    /// from another file, say: `file.tensor_bytes(info)` with `info.dims`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a duplicate or over-long name, dimensions GGUF cannot
    /// store (see [`TensorInfo`](super::TensorInfo)), a type id ggml does not define, or
    /// `bytes` not exactly the size the dimensions and type call for.
    pub fn add_tensor_raw(
        &mut self,
        name: impl Into<String>,
        dims: &[u64],
        ggml_type: GgmlType,
        bytes: &[u8],
    ) -> Result<()> {
        self.push(name.into(), dims.to_vec(), ggml_type, bytes.to_vec())
    }

    fn push(
        &mut self,
        name: String,
        dims: Vec<u64>,
        ggml_type: GgmlType,
        bytes: Vec<u8>,
    ) -> Result<()> {
        if name.len() > MAX_TENSOR_NAME_LEN {
            return Err(Error::invalid(
                "tensor name",
                format!(
                    "`{name}` is {} bytes long; llama.cpp takes at most {MAX_TENSOR_NAME_LEN}",
                    name.len()
                ),
            ));
        }
        if self.names.contains_key(&name) {
            return Err(Error::invalid(
                "tensor name",
                format!("`{name}` is already in the file"),
            ));
        }
        let n_bytes = check_layout(&dims, ggml_type).map_err(|reason| {
            Error::invalid("tensor layout", format!("tensor `{name}`: {reason}"))
        })?;
        if bytes.len() as u64 != n_bytes {
            return Err(Error::invalid(
                "tensor data",
                format!(
                    "tensor `{name}`: {} bytes, but {} with dims {dims:?} takes {n_bytes}",
                    bytes.len(),
                    ggml_type.name()
                ),
            ));
        }
        self.names.insert(name.clone(), self.tensors.len());
        self.tensors.push(PendingTensor {
            name,
            dims,
            ggml_type,
            bytes,
        });
        Ok(())
    }

    /// Writes the file to `out`.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] (with the path `<GGUF output>`) if `out` fails.
    pub fn write(&self, out: &mut impl Write) -> Result<()> {
        self.write_io(out).map_err(|source| Error::Io {
            path: PathBuf::from("<GGUF output>"),
            source,
        })
    }

    /// Writes the file to `path` atomically: to a temporary file beside it, synced, then
    /// renamed over `path` (so a reader never sees a partial file, and a `GgufFile`
    /// mapping the old file keeps its bytes).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if creating, writing, syncing or renaming fails (the temporary file is
    /// removed); [`Error::InvalidArgument`] if `path` has no file name.
    pub fn write_to_path(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let Some(file_name) = path.file_name() else {
            return Err(Error::invalid(
                "output path",
                format!("`{}` has no file name", path.display()),
            ));
        };
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(file_name);
        tmp_name.push(format!(".{}.tmp", std::process::id()));
        let tmp = path.with_file_name(tmp_name);
        let result = (|| -> Result<()> {
            let io = |source| Error::Io {
                path: tmp.clone(),
                source,
            };
            let file = File::create(&tmp).map_err(io)?;
            let mut out = BufWriter::new(file);
            self.write_io(&mut out).map_err(io)?;
            let file = out.into_inner().map_err(|e| io(e.into_error()))?;
            file.sync_all().map_err(io)?;
            std::fs::rename(&tmp, path).map_err(|source| Error::Io {
                path: path.to_path_buf(),
                source,
            })
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }

    fn write_io(&self, out: &mut impl Write) -> io::Result<()> {
        let align = self.alignment();
        let mut out = Counting {
            inner: out,
            written: 0,
        };
        out.write_all(&MAGIC)?;
        out.write_all(&VERSION.to_le_bytes())?;
        out.write_all(&(self.tensors.len() as u64).to_le_bytes())?;
        out.write_all(&(self.metadata.len() as u64).to_le_bytes())?;
        for (key, value) in self.metadata.iter() {
            write_string(&mut out, key)?;
            out.write_all(&(value.value_type() as u32).to_le_bytes())?;
            write_payload(&mut out, value)?;
        }
        let mut offset = 0u64;
        for t in &self.tensors {
            write_string(&mut out, &t.name)?;
            out.write_all(&(t.dims.len() as u32).to_le_bytes())?;
            for d in &t.dims {
                out.write_all(&d.to_le_bytes())?;
            }
            out.write_all(&t.ggml_type.id().to_le_bytes())?;
            out.write_all(&offset.to_le_bytes())?;
            offset = padded(offset + t.bytes.len() as u64, align)?;
        }
        pad(&mut out, align)?;
        for t in &self.tensors {
            out.write_all(&t.bytes)?;
            pad(&mut out, align)?;
        }
        out.flush()
    }
}

/// Checks that a value can be written and read back: strings within the cap, arrays of one
/// element type, nesting within the cap.
fn check_value(value: &Value, depth: usize) -> Result<(), &'static str> {
    match value {
        Value::String(s) if s.len() as u64 > MAX_STRING_LEN => Err("strings of at most 2^30 bytes"),
        Value::Array(items) => {
            if depth >= MAX_ARRAY_DEPTH {
                return Err("arrays nested at most 8 deep");
            }
            let ty = items.first().map(Value::value_type);
            if items.iter().any(|v| Some(v.value_type()) != ty) {
                return Err("an array whose elements all have one type");
            }
            items.iter().try_for_each(|v| check_value(v, depth + 1))
        }
        _ => Ok(()),
    }
}

fn write_string(out: &mut impl Write, s: &str) -> io::Result<()> {
    out.write_all(&(s.len() as u64).to_le_bytes())?;
    out.write_all(s.as_bytes())
}

/// A value without its type id.
fn write_payload(out: &mut impl Write, value: &Value) -> io::Result<()> {
    match value {
        Value::U8(v) => out.write_all(&v.to_le_bytes()),
        Value::I8(v) => out.write_all(&v.to_le_bytes()),
        Value::U16(v) => out.write_all(&v.to_le_bytes()),
        Value::I16(v) => out.write_all(&v.to_le_bytes()),
        Value::U32(v) => out.write_all(&v.to_le_bytes()),
        Value::I32(v) => out.write_all(&v.to_le_bytes()),
        Value::F32(v) => out.write_all(&v.to_le_bytes()),
        Value::Bool(v) => out.write_all(&[u8::from(*v)]),
        Value::String(s) => write_string(out, s),
        Value::U64(v) => out.write_all(&v.to_le_bytes()),
        Value::I64(v) => out.write_all(&v.to_le_bytes()),
        Value::F64(v) => out.write_all(&v.to_le_bytes()),
        Value::Array(items) => {
            let ty = items.first().map_or(ValueType::U8, Value::value_type);
            out.write_all(&(ty as u32).to_le_bytes())?;
            out.write_all(&(items.len() as u64).to_le_bytes())?;
            items.iter().try_for_each(|v| write_payload(out, v))
        }
    }
}

fn padded(n: u64, align: u64) -> io::Result<u64> {
    n.checked_next_multiple_of(align)
        .ok_or_else(|| io::Error::other("GGUF offsets overflow u64"))
}

fn pad<W: Write>(out: &mut Counting<'_, W>, align: u64) -> io::Result<()> {
    let n = padded(out.written, align)? - out.written;
    io::copy(&mut io::repeat(0).take(n), out)?;
    Ok(())
}

/// A writer that counts the bytes written through it.
struct Counting<'a, W> {
    inner: &'a mut W,
    written: u64,
}

impl<W: Write> Write for Counting<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn swap_f16(v: f16) -> f16 {
    f16::from_bits(v.to_bits().swap_bytes())
}

/// The little-endian bytes of `items`; `swap` reverses the byte order of a `T`'s multi-byte
/// fields (applied on big-endian targets only).
fn le_bytes<T: Pod>(items: &[T], swap: impl Fn(T) -> T) -> Vec<u8> {
    if cfg!(target_endian = "big") {
        let swapped: Vec<T> = items.iter().map(|&v| swap(v)).collect();
        bytemuck::cast_slice(&swapped).to_vec()
    } else {
        bytemuck::cast_slice(items).to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_checks_values() {
        let mut w = GgufWriter::new();
        w.set("a", 1u32).unwrap();
        w.set("b", "x").unwrap();
        w.set("a", 2u8).unwrap();
        let keys: Vec<_> = w.metadata().iter().collect();
        assert_eq!(
            keys,
            [("a", &Value::U8(2)), ("b", &Value::String("x".into()))]
        );
        let mixed = Value::Array(vec![Value::U8(1), Value::I8(1)]);
        assert!(matches!(w.set("m", mixed), Err(Error::BadMetadata { .. })));
        let mut deep = Value::Array(vec![]);
        for _ in 0..MAX_ARRAY_DEPTH {
            deep = Value::Array(vec![deep]);
        }
        assert!(w.set("deep", deep.clone()).is_err());
        assert!(w.set("ok", deep.as_array().unwrap()[0].clone()).is_ok());
        assert!(w.set("general.alignment", 48u32).is_err());
        assert!(w.set("general.alignment", 64u64).is_err());
        assert_eq!(w.alignment(), 32);
        w.set("general.alignment", 64u32).unwrap();
        assert_eq!(w.alignment(), 64);
        assert_eq!(w.remove("general.alignment"), Some(Value::U32(64)));
        assert_eq!(w.alignment(), 32);
    }

    #[test]
    fn tensors_are_checked() {
        let mut w = GgufWriter::new();
        w.add_tensor_raw("a", &[2, 3], GgmlType::F16, &[0; 12])
            .unwrap();
        let err = |r: Result<()>| match r {
            Err(Error::InvalidArgument { what, .. }) => what,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            err(w.add_tensor_raw("a", &[1], GgmlType::F32, &[0; 4])),
            "tensor name"
        );
        assert_eq!(
            err(w.add_tensor_raw("n".repeat(64), &[1], GgmlType::F32, &[0; 4])),
            "tensor name"
        );
        assert_eq!(
            err(w.add_tensor_raw("b", &[1], GgmlType::F32, &[0; 5])),
            "tensor data"
        );
        assert_eq!(
            err(w.add_tensor_raw("b", &[16], GgmlType::Q8_0, &[])),
            "tensor layout"
        );
        assert_eq!(
            err(w.add_tensor_raw("b", &[1], GgmlType::Other(4), &[])),
            "tensor layout"
        );
        let bad_shape = QuantizedTensor::F32 {
            shape: vec![2, 2],
            data: vec![0.0; 3],
        };
        assert_eq!(err(w.add_tensor("b", &bad_shape)), "tensor data");
        let q = QuantizedTensor::quantize("int8".parse().unwrap(), &[1.0; 4], &[4]).unwrap();
        assert!(matches!(
            w.add_tensor("b", &q),
            Err(Error::UnsupportedTensorType { ggml_type, .. }) if ggml_type == "int8"
        ));
        w.add_tensor_raw("n".repeat(63), &[1], GgmlType::F32, &[0; 4])
            .unwrap();
    }

    #[test]
    fn layout_is_aligned_and_zero_padded() {
        let mut w = GgufWriter::new();
        w.add_tensor_raw("a", &[3], GgmlType::F32, &[1; 12])
            .unwrap();
        w.add_tensor_raw("b", &[1], GgmlType::F16, &[2; 2]).unwrap();
        let mut out = Vec::new();
        w.write(&mut out).unwrap();
        // header 24 + "a" info (8+1+4+8+4+8 = 33) + "b" info 33 = 90 → data at 96.
        assert_eq!(out.len(), 96 + 32 + 32);
        assert!(out[90..96].iter().all(|&b| b == 0));
        assert_eq!(&out[96..108], &[1; 12]);
        assert!(out[108..128].iter().all(|&b| b == 0));
        assert_eq!(&out[128..130], &[2; 2]);
        assert!(out[130..].iter().all(|&b| b == 0));
        // "b"'s offset field is the last 8 bytes of the infos.
        assert_eq!(u64::from_le_bytes(out[82..90].try_into().unwrap()), 32);
    }
}
