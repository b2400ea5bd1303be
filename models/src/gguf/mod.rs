//! GGUF v2/v3 model files: reading (memory-mapped, hostile-input safe) and writing.
//!
//! Format: the GGUF specification, <https://github.com/ggml-org/ggml/blob/master/docs/gguf.md>,
//! as llama.cpp's `ggml/src/gguf.cpp` and gguf-py's `GGUFReader`/`GGUFWriter` implement it.
//! Everything is little-endian:
//!
//! 1. header: magic `"GGUF"`, `u32` version (2 and 3 are read; 1 used 32-bit counts and is
//!    refused), `u64` tensor count, `u64` metadata pair count;
//! 2. metadata pairs: key (a string: `u64` length + UTF-8 bytes), `u32` value type, value
//!    ([`Value`]: the integer and float types, bool, string, or an array with its own `u32`
//!    element type and `u64` count; arrays may nest);
//! 3. tensor infos: name, `u32` `n_dims`, `n_dims` × `u64` dimensions (fastest-varying
//!    first), `u32` [`GgmlType`] id, `u64` offset into the data section;
//! 4. zero padding to the alignment (`general.alignment`, a `u32`, default 32);
//! 5. the data section; every tensor offset is a multiple of the alignment.
//!
//! [`GgufFile`] parses a file and hands out its [`Metadata`] and [`TensorInfo`]s, the raw
//! bytes of each tensor, and tensors as [`quant::QuantizedTensor`]s (F32, F16, BF16, Q8_0,
//! Q4_0, Q4_1). [`GgufWriter`] writes version 3 files in gguf-py's layout.
//!
//! # Hostile input
//!
//! A GGUF file is untrusted input: parsing returns [`Error::Gguf`](crate::Error::Gguf) with
//! the byte offset of the offending field, and never panics. Every length, count and offset
//! is checked against the bytes left before use, with overflow-checked arithmetic, as
//! candle's `gguf_file.rs` and llama.cpp's `gguf.cpp` do, so what parsing allocates is
//! bounded by the file's size (at most one 32-byte [`Value`] per byte of array data, for
//! arrays of `u8`, `i8` or `bool`). In particular:
//!
//! - the tensor and metadata counts must fit in the bytes after the header (each record
//!   takes at least 32 and 13 bytes), and an array's count must fit in the bytes left at
//!   its smallest element size;
//! - strings are at most [`MAX_STRING_LEN`] bytes and valid UTF-8; bools are 0 or 1;
//!   arrays nest at most [`MAX_ARRAY_DEPTH`] deep; value types must be known;
//! - keys and tensor names are unique; `general.alignment` is a `u32` power of two;
//! - tensors have 1 to [`MAX_DIMS`] dimensions, each at least 1 (llama.cpp allows 0 but
//!   then divides by it), at most `i64::MAX` elements, a type ggml defines, a first
//!   dimension that is a whole number of blocks, an aligned offset, and data inside the file.
//!
//! Tensors may overlap or leave gaps; llama.cpp additionally requires consecutive offsets,
//! which [`GgufWriter`] always produces.
//!
//! # Example
//!
//! ```
//! use models::gguf::{GgufFile, GgufWriter, Value};
//! use quant::QuantizedTensor;
//! # fn main() -> models::Result<()> {
//! let w: Vec<f32> = (0..64).map(|i| i as f32 / 8.0 - 4.0).collect();
//! let q = QuantizedTensor::quantize("q8_0".parse()?, &w, &[2, 32])?;
//!
//! let mut writer = GgufWriter::new();
//! writer.set("general.architecture", "llama")?;
//! writer.set("llama.block_count", 2u32)?;
//! writer.add_tensor("blk.0.ffn_up.weight", &q)?;
//! let mut bytes = Vec::new();
//! writer.write(&mut bytes)?;
//!
//! let file = GgufFile::from_bytes(bytes)?;
//! assert_eq!(file.metadata().get_str("general.architecture")?, "llama");
//! assert_eq!(file.metadata().get("llama.block_count"), Some(&Value::U32(2)));
//! let info = file.tensor("blk.0.ffn_up.weight").unwrap();
//! assert_eq!((info.dims.as_slice(), info.shape()), (&[32, 2][..], vec![2, 32]));
//! assert_eq!(file.read_tensor("blk.0.ffn_up.weight")?.dequantize(), q.dequantize());
//! # Ok(())
//! # }
//! ```

mod ggml_type;
mod metadata;
mod read;
mod tensor_info;
mod value;
mod write;

pub use ggml_type::GgmlType;
pub use metadata::Metadata;
pub(crate) use read::Bytes;
pub use read::GgufFile;
pub use tensor_info::{MAX_DIMS, TensorInfo};
pub use value::Value;
pub use write::{GgufWriter, MAX_TENSOR_NAME_LEN};

/// The magic bytes every GGUF file starts with.
const MAGIC: [u8; 4] = *b"GGUF";

/// The alignment of a file without `general.alignment`.
pub const DEFAULT_ALIGNMENT: u32 = 32;

/// The longest string (key, value or tensor name) read or written, in bytes: 2³⁰.
pub const MAX_STRING_LEN: u64 = 1 << 30;

/// The deepest nesting of metadata arrays read or written: an array may sit inside at most
/// `MAX_ARRAY_DEPTH - 1` others.
pub const MAX_ARRAY_DEPTH: usize = 8;
