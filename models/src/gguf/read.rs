//! The reader: parsing a GGUF file (memory-mapped or in memory) with every length, count
//! and offset checked against the bytes that are there.

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::path::Path;

use bytemuck::Pod;
use half::{bf16, f16};
use memmap2::Mmap;
use quant::QuantizedTensor;
use quant::ggml::{BlockQ4_0, BlockQ4_1, BlockQ8_0};

use super::tensor_info::{MAX_DIMS, check_layout};
use super::value::ValueType;
use super::{
    DEFAULT_ALIGNMENT, GgmlType, MAGIC, MAX_ARRAY_DEPTH, MAX_STRING_LEN, Metadata, TensorInfo,
    Value,
};
use crate::{Error, Result};

/// The fewest bytes one metadata pair takes: key length, value type, a 1-byte value.
const MIN_KV_BYTES: u64 = 8 + 4 + 1;
/// The fewest bytes one tensor-info record takes: name length, `n_dims`, one dimension,
/// type, offset.
const MIN_TENSOR_INFO_BYTES: u64 = 8 + 4 + 8 + 4 + 8;

/// A parsed GGUF file: header, metadata and tensor descriptors, with the bytes behind them
/// (memory-mapped by [`open`](GgufFile::open), owned by [`from_bytes`](GgufFile::from_bytes)).
///
/// Parsing checks everything a tensor access relies on (see the [module docs](super)), so
/// [`tensor_bytes`](GgufFile::tensor_bytes) of a descriptor from [`tensors`](GgufFile::tensors)
/// never fails.
pub struct GgufFile {
    bytes: Bytes,
    version: u32,
    metadata: Metadata,
    tensors: Vec<TensorInfo>,
    index: HashMap<String, usize>,
    alignment: u64,
    data_offset: u64,
}

pub(crate) enum Bytes {
    Mapped(Mmap),
    Owned(Vec<u8>),
}

impl Bytes {
    /// The file at `path`, memory-mapped (an empty file, which some platforms refuse to
    /// map, as an empty buffer: the parser then reports it).
    pub(crate) fn open(path: &Path) -> Result<Bytes> {
        let io = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        Ok(if len == 0 {
            Bytes::Owned(Vec::new())
        } else {
            Bytes::Mapped(map(&file).map_err(io)?)
        })
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        match self {
            Bytes::Mapped(m) => m,
            Bytes::Owned(v) => v,
        }
    }
}

/// Maps `file` read-only.
#[allow(unsafe_code)]
fn map(file: &File) -> std::io::Result<Mmap> {
    // SAFETY: `Mmap::map` is unsafe because the mapped bytes change (and a shrinking file
    // faults) if the file is modified or truncated while mapped, which Rust's `&[u8]` rules
    // cannot exclude. We map read-only and require, in the openers' docs (`GgufFile::open`,
    // `SafeTensorsFile::open`), that the file is not modified while the mapping lives; all
    // our accesses are bounds-checked against the length at mapping time.
    unsafe { Mmap::map(file) }
}

impl GgufFile {
    /// Opens and parses the GGUF file at `path`, memory-mapping it.
    ///
    /// The file must not be modified or truncated while the returned `GgufFile` (or any
    /// slice borrowed from it) is alive: the mapping would change under it, and a shrunk
    /// file makes accesses fault. Writing a new file and renaming it over the old one (as
    /// [`GgufWriter::write_to_path`](super::GgufWriter::write_to_path) does) is safe.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the file cannot be opened or mapped; [`Error::Gguf`] (with the
    /// offending byte offset) if it is not a well-formed GGUF v2/v3 file.
    pub fn open(path: impl AsRef<Path>) -> Result<GgufFile> {
        GgufFile::parse(Bytes::open(path.as_ref())?)
    }

    /// Parses a GGUF file held in memory.
    ///
    /// # Errors
    ///
    /// [`Error::Gguf`] if `bytes` are not a well-formed GGUF v2/v3 file.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<GgufFile> {
        GgufFile::parse(Bytes::Owned(bytes))
    }

    fn parse(bytes: Bytes) -> Result<GgufFile> {
        let parsed = parse(bytes.as_slice())?;
        Ok(GgufFile {
            bytes,
            version: parsed.version,
            metadata: parsed.metadata,
            index: parsed
                .tensors
                .iter()
                .enumerate()
                .map(|(i, t)| (t.name.clone(), i))
                .collect(),
            tensors: parsed.tensors,
            alignment: parsed.alignment,
            data_offset: parsed.data_offset,
        })
    }

    /// The format version (2 or 3).
    #[must_use]
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The metadata, in file order.
    #[must_use]
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// The tensor descriptors, in file order.
    #[must_use]
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// The descriptor of the tensor called `name`.
    #[must_use]
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.index.get(name).map(|&i| &self.tensors[i])
    }

    /// The alignment of the data section and of every tensor offset: `general.alignment`,
    /// or 32 when the file does not set it.
    #[must_use]
    pub fn alignment(&self) -> u64 {
        self.alignment
    }

    /// The byte offset of the data section: the end of the tensor-info records, rounded up
    /// to the alignment. Tensor offsets count from here.
    #[must_use]
    pub fn data_offset(&self) -> u64 {
        self.data_offset
    }

    /// The size of the file in bytes.
    #[must_use]
    pub fn file_size(&self) -> u64 {
        self.bytes.as_slice().len() as u64
    }

    /// The stored bytes of a tensor (unaligned in general: copy before reinterpreting).
    ///
    /// # Panics
    ///
    /// If `info` describes data beyond the end of this file: it is not one of this file's
    /// descriptors (those are always in range) or was modified.
    #[must_use]
    pub fn tensor_bytes(&self, info: &TensorInfo) -> &[u8] {
        let bytes = self.bytes.as_slice();
        let range = self
            .data_offset
            .checked_add(info.offset)
            .and_then(|start| Some((start, start.checked_add(info.n_bytes())?)))
            .filter(|&(_, end)| end <= bytes.len() as u64);
        let Some((start, end)) = range else {
            panic!(
                "GgufFile::tensor_bytes: tensor `{}` ({} bytes at data offset {}) is not inside this {}-byte file",
                info.name,
                info.n_bytes(),
                info.offset,
                bytes.len()
            );
        };
        // In range of a slice, so both fit in usize.
        &bytes[start as usize..end as usize]
    }

    /// Reads a tensor as the [`QuantizedTensor`] variant of its type (F32, F16, BF16, Q8_0,
    /// Q4_0, Q4_1), with the row-major shape [`TensorInfo::shape`]. The bytes are copied
    /// (the mapped data need not be aligned for the element or block types).
    ///
    /// # Errors
    ///
    /// [`Error::MissingTensor`] if there is no such tensor; [`Error::UnsupportedTensorType`]
    /// for any other type.
    pub fn read_tensor(&self, name: &str) -> Result<QuantizedTensor> {
        let info = self.tensor(name).ok_or_else(|| Error::MissingTensor {
            name: name.to_owned(),
        })?;
        let bytes = self.tensor_bytes(info);
        let shape = info.shape();
        Ok(match info.ggml_type {
            GgmlType::F32 => QuantizedTensor::F32 {
                shape,
                data: copy_le(bytes, |v: f32| f32::from_bits(v.to_bits().swap_bytes())),
            },
            GgmlType::F16 => QuantizedTensor::F16 {
                shape,
                data: copy_le(bytes, |v: f16| f16::from_bits(v.to_bits().swap_bytes())),
            },
            GgmlType::BF16 => QuantizedTensor::BF16 {
                shape,
                data: copy_le(bytes, |v: bf16| bf16::from_bits(v.to_bits().swap_bytes())),
            },
            GgmlType::Q8_0 => QuantizedTensor::Q8_0 {
                shape,
                blocks: copy_le(bytes, |b: BlockQ8_0| BlockQ8_0 {
                    d: swap_f16(b.d),
                    ..b
                }),
            },
            GgmlType::Q4_0 => QuantizedTensor::Q4_0 {
                shape,
                blocks: copy_le(bytes, |b: BlockQ4_0| BlockQ4_0 {
                    d: swap_f16(b.d),
                    ..b
                }),
            },
            GgmlType::Q4_1 => QuantizedTensor::Q4_1 {
                shape,
                blocks: copy_le(bytes, |b: BlockQ4_1| BlockQ4_1 {
                    d: swap_f16(b.d),
                    m: swap_f16(b.m),
                    qs: b.qs,
                }),
            },
            GgmlType::Other(_) => {
                return Err(Error::UnsupportedTensorType {
                    name: name.to_owned(),
                    ggml_type: info.ggml_type.name().to_owned(),
                });
            }
        })
    }
}

fn swap_f16(v: f16) -> f16 {
    f16::from_bits(v.to_bits().swap_bytes())
}

/// Copies little-endian `bytes` into `T`s; `swap` reverses the byte order of a `T`'s
/// multi-byte fields (applied on big-endian targets only). `bytes.len()` is a multiple of
/// `size_of::<T>()` (checked by the parser).
fn copy_le<T: Pod>(bytes: &[u8], swap: impl Fn(T) -> T) -> Vec<T> {
    let mut out = vec![T::zeroed(); bytes.len() / size_of::<T>()];
    bytemuck::cast_slice_mut::<T, u8>(&mut out).copy_from_slice(bytes);
    if cfg!(target_endian = "big") {
        for v in &mut out {
            *v = swap(*v);
        }
    }
    out
}

impl fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GgufFile")
            .field("version", &self.version)
            .field("file_size", &self.file_size())
            .field("alignment", &self.alignment)
            .field("data_offset", &self.data_offset)
            .field("metadata_len", &self.metadata.len())
            .field("tensors_len", &self.tensors.len())
            .finish_non_exhaustive()
    }
}

/// What parsing a file yields besides its bytes.
struct Parsed {
    version: u32,
    metadata: Metadata,
    tensors: Vec<TensorInfo>,
    alignment: u64,
    data_offset: u64,
}

fn parse(data: &[u8]) -> Result<Parsed> {
    let mut r = Reader { data, pos: 0 };
    let magic = r.take(4, "the magic")?;
    if magic != MAGIC {
        return Err(Error::gguf(
            0,
            format!("bad magic {magic:02x?} (expected \"GGUF\", 47 47 55 46)"),
        ));
    }
    let version = r.u32("the version")?;
    match version {
        2 | 3 => {}
        1 => {
            return Err(Error::gguf(
                4,
                "GGUF version 1 is not supported (only 2 and 3)",
            ));
        }
        v if v & 0xFFFF == 0 => {
            return Err(Error::gguf(
                4,
                format!(
                    "unsupported version {v:#x}: a big-endian file? (only little-endian v2 and v3 are read)"
                ),
            ));
        }
        v => {
            return Err(Error::gguf(
                4,
                format!("unsupported GGUF version {v} (only 2 and 3)"),
            ));
        }
    }
    let tensor_count = r.u64("tensor_count")?;
    let kv_count = r.u64("metadata_kv_count")?;
    // Each record takes some bytes: the counts cannot exceed what the file can hold. This
    // also bounds every allocation below by the file size.
    let left = r.remaining();
    if kv_count > left / MIN_KV_BYTES {
        return Err(Error::gguf(
            16,
            format!(
                "metadata_kv_count {kv_count} is impossible: {left} bytes follow the header and each pair takes at least {MIN_KV_BYTES}"
            ),
        ));
    }
    if tensor_count > (left - kv_count * MIN_KV_BYTES) / MIN_TENSOR_INFO_BYTES {
        return Err(Error::gguf(
            8,
            format!(
                "tensor_count {tensor_count} is impossible: {left} bytes follow the header and each tensor info takes at least {MIN_TENSOR_INFO_BYTES} (besides {kv_count} metadata pairs)"
            ),
        ));
    }

    let mut metadata = Metadata::default();
    let mut alignment_at = None;
    for _ in 0..kv_count {
        let start = r.offset();
        let key = r.string("a metadata key")?;
        let ctx = |e| context(e, || format!("metadata `{key}`"));
        let ty_at = r.offset();
        let ty = r.u32("the value type").map_err(ctx)?;
        let ty = ValueType::from_id(ty).ok_or_else(|| {
            Error::gguf(ty_at, format!("metadata `{key}`: unknown value type {ty}"))
        })?;
        let value = r.value(ty, 0).map_err(ctx)?;
        if key == "general.alignment" {
            alignment_at = Some(start);
        }
        if metadata.insert_new(key.clone(), value).is_err() {
            return Err(Error::gguf(
                start,
                format!("duplicate metadata key `{key}`"),
            ));
        }
    }
    let alignment = match (alignment_at, metadata.get("general.alignment")) {
        (Some(at), Some(v)) => match v {
            Value::U32(a) if a.is_power_of_two() => u64::from(*a),
            _ => {
                return Err(Error::gguf(
                    at,
                    format!(
                        "general.alignment must be a u32 power of two, found {} {v}",
                        v.type_name()
                    ),
                ));
            }
        },
        _ => u64::from(DEFAULT_ALIGNMENT),
    };

    let mut tensors: Vec<TensorInfo> = Vec::new();
    let mut names: HashMap<String, u64> = HashMap::new();
    let mut offset_fields = Vec::new();
    for _ in 0..tensor_count {
        let start = r.offset();
        let name = r.string("a tensor name")?;
        if let Some(first) = names.get(&name) {
            return Err(Error::gguf(
                start,
                format!("duplicate tensor name `{name}` (first at byte {first})"),
            ));
        }
        let ctx = |e| context(e, || format!("tensor `{name}`"));
        let n_dims_at = r.offset();
        let n_dims = r.u32("n_dims").map_err(ctx)?;
        if n_dims == 0 || n_dims as usize > MAX_DIMS {
            return Err(Error::gguf(
                n_dims_at,
                format!("tensor `{name}`: {n_dims} dimensions (expected 1 to {MAX_DIMS})"),
            ));
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        for _ in 0..n_dims {
            dims.push(r.u64("a dimension").map_err(ctx)?);
        }
        let ty_at = r.offset();
        let ty = r.u32("the tensor type").map_err(ctx)?;
        let ggml_type = GgmlType::from_id(ty).ok_or_else(|| {
            Error::gguf(ty_at, format!("tensor `{name}`: unknown GGML type id {ty}"))
        })?;
        check_layout(&dims, ggml_type)
            .map_err(|reason| Error::gguf(n_dims_at, format!("tensor `{name}`: {reason}")))?;
        let offset_at = r.offset();
        let offset = r.u64("the data offset").map_err(ctx)?;
        if !offset.is_multiple_of(alignment) {
            return Err(Error::gguf(
                offset_at,
                format!(
                    "tensor `{name}`: data offset {offset} is not a multiple of the alignment {alignment}"
                ),
            ));
        }
        names.insert(name.clone(), start);
        offset_fields.push(offset_at);
        tensors.push(TensorInfo {
            name,
            dims,
            ggml_type,
            offset,
        });
    }

    let end_of_infos = r.offset();
    let data_offset = end_of_infos
        .checked_next_multiple_of(alignment)
        .ok_or_else(|| Error::gguf(end_of_infos, "the data section's offset overflows u64"))?;
    let file_size = data.len() as u64;
    for (t, &at) in tensors.iter().zip(&offset_fields) {
        let n_bytes = t.n_bytes();
        let end = data_offset
            .checked_add(t.offset)
            .and_then(|s| s.checked_add(n_bytes));
        if end.is_none_or(|end| end > file_size) {
            return Err(Error::gguf(
                at,
                format!(
                    "tensor `{}`: {n_bytes} bytes at data offset {} (file offset {}) run past the end of the {file_size}-byte file",
                    t.name,
                    t.offset,
                    data_offset.saturating_add(t.offset)
                ),
            ));
        }
    }
    Ok(Parsed {
        version,
        metadata,
        tensors,
        alignment,
        data_offset,
    })
}

/// Prefixes a [`Error::Gguf`]'s reason with what was being read.
fn context(e: Error, what: impl FnOnce() -> String) -> Error {
    match e {
        Error::Gguf { offset, reason } => Error::gguf(offset, format!("{}: {reason}", what())),
        e => e,
    }
}

/// A cursor over the file's bytes; every read checks the bytes left first.
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn offset(&self) -> u64 {
        self.pos as u64
    }

    fn remaining(&self) -> u64 {
        (self.data.len() - self.pos) as u64
    }

    /// The next `n` bytes.
    fn take(&mut self, n: u64, what: &'static str) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(Error::gguf(
                self.offset(),
                format!(
                    "unexpected end of file reading {what}: {n} bytes needed, {} left",
                    self.remaining()
                ),
            ));
        }
        // n <= remaining, so it fits in usize.
        let bytes = &self.data[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N]> {
        let bytes = self.take(N as u64, what)?;
        let mut out = [0; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    fn u32(&mut self, what: &'static str) -> Result<u32> {
        self.array(what).map(u32::from_le_bytes)
    }

    fn u64(&mut self, what: &'static str) -> Result<u64> {
        self.array(what).map(u64::from_le_bytes)
    }

    /// A GGUF string: `u64` length and UTF-8 bytes.
    fn string(&mut self, what: &'static str) -> Result<String> {
        let at = self.offset();
        let len = self.u64(what)?;
        if len > MAX_STRING_LEN || len > self.remaining() {
            return Err(Error::gguf(
                at,
                format!(
                    "{what}: string length {len} exceeds the {} bytes left (or the cap of {MAX_STRING_LEN})",
                    self.remaining()
                ),
            ));
        }
        let start = self.offset();
        let bytes = self.take(len, what)?;
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(s.to_owned()),
            Err(e) => Err(Error::gguf(
                start + e.valid_up_to() as u64,
                format!("{what}: invalid UTF-8"),
            )),
        }
    }

    /// A value of type `ty`, inside `depth` enclosing arrays.
    fn value(&mut self, ty: ValueType, depth: usize) -> Result<Value> {
        Ok(match ty {
            ValueType::U8 => Value::U8(self.array::<1>("a u8")?[0]),
            ValueType::I8 => Value::I8(i8::from_le_bytes(self.array("an i8")?)),
            ValueType::U16 => Value::U16(u16::from_le_bytes(self.array("a u16")?)),
            ValueType::I16 => Value::I16(i16::from_le_bytes(self.array("an i16")?)),
            ValueType::U32 => Value::U32(self.u32("a u32")?),
            ValueType::I32 => Value::I32(i32::from_le_bytes(self.array("an i32")?)),
            ValueType::F32 => Value::F32(f32::from_le_bytes(self.array("an f32")?)),
            ValueType::U64 => Value::U64(self.u64("a u64")?),
            ValueType::I64 => Value::I64(i64::from_le_bytes(self.array("an i64")?)),
            ValueType::F64 => Value::F64(f64::from_le_bytes(self.array("an f64")?)),
            ValueType::Bool => {
                let at = self.offset();
                match self.array::<1>("a bool")?[0] {
                    0 => Value::Bool(false),
                    1 => Value::Bool(true),
                    b => return Err(Error::gguf(at, format!("invalid bool byte {b:#04x}"))),
                }
            }
            ValueType::String => Value::String(self.string("a string value")?),
            ValueType::Array => self.array_value(depth)?,
        })
    }

    /// An array (element type, count, elements) inside `depth` enclosing arrays.
    fn array_value(&mut self, depth: usize) -> Result<Value> {
        if depth >= MAX_ARRAY_DEPTH {
            return Err(Error::gguf(
                self.offset(),
                format!("arrays nested more than {MAX_ARRAY_DEPTH} deep"),
            ));
        }
        let ty_at = self.offset();
        let elem = self.u32("an array's element type")?;
        let elem = ValueType::from_id(elem)
            .ok_or_else(|| Error::gguf(ty_at, format!("unknown array element type {elem}")))?;
        let count_at = self.offset();
        let count = self.u64("an array's length")?;
        let left = self.remaining();
        if count > left / elem.min_size() {
            return Err(Error::gguf(
                count_at,
                format!(
                    "array of {count} {} elements cannot fit in the {left} bytes left",
                    elem.name()
                ),
            ));
        }
        // count is bounded by the bytes left; cap the up-front reservation anyway.
        let mut items = Vec::with_capacity(count.min(1 << 16) as usize);
        for i in 0..count {
            let item = self
                .value(elem, depth + 1)
                .map_err(|e| context(e, || format!("array element {i}")))?;
            items.push(item);
        }
        Ok(Value::Array(items))
    }
}

/// The error a parse of `bytes` gives, for tests.
#[cfg(test)]
pub(crate) fn parse_err(bytes: &[u8]) -> (u64, std::borrow::Cow<'static, str>) {
    match parse(bytes) {
        Err(Error::Gguf { offset, reason }) => (offset, reason),
        Err(e) => panic!("not a GGUF error: {e}"),
        Ok(_) => panic!("parsed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(version: u32, tensors: u64, kvs: u64) -> Vec<u8> {
        let mut b = MAGIC.to_vec();
        b.extend(version.to_le_bytes());
        b.extend(tensors.to_le_bytes());
        b.extend(kvs.to_le_bytes());
        b
    }

    #[test]
    fn empty_file_parses() {
        let p = parse(&header(3, 0, 0)).unwrap();
        assert_eq!((p.version, p.alignment, p.data_offset), (3, 32, 32));
        assert!(p.metadata.is_empty() && p.tensors.is_empty());
        assert_eq!(parse(&header(2, 0, 0)).unwrap().version, 2);
    }

    #[test]
    fn header_errors_point_at_their_field() {
        assert_eq!(parse_err(b"GGU").0, 0);
        assert_eq!(parse_err(b"GGUG\x03\0\0\0").0, 0);
        assert_eq!(parse_err(&header(1, 0, 0)).0, 4);
        assert!(
            parse_err(&header(0x0300_0000, 0, 0))
                .1
                .contains("big-endian")
        );
        assert_eq!(parse_err(&header(3, 0, u64::MAX)).0, 16);
        assert_eq!(parse_err(&header(3, u64::MAX, 0)).0, 8);
        // The counts are checked together: 13 bytes hold one pair, not a pair and a tensor.
        let mut b = header(3, 1, 1);
        b.extend([0; 40]);
        assert_eq!(parse_err(&b).0, 8);
    }

    #[test]
    fn reader_caps_lengths() {
        let mut r = Reader {
            data: &[0xff; 16],
            pos: 0,
        };
        assert!(r.string("s").is_err());
        let mut bytes = 2u64.to_le_bytes().to_vec();
        bytes.extend([0xC3, 0x28]);
        let mut r = Reader {
            data: &bytes,
            pos: 0,
        };
        let e = r.string("s").unwrap_err();
        assert!(matches!(e, Error::Gguf { offset: 8, .. }), "{e}");
    }
}
