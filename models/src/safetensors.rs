//! Reading Hugging Face safetensors files (memory-mapped), with hostile-input checks.
//!
//! The format (huggingface/safetensors, `docs/`): an 8-byte little-endian header length
//! `n`, `n` bytes of UTF-8 JSON mapping each tensor name to `{dtype, shape, data_offsets}`
//! (plus an optional `__metadata__` string map), then the tensor data, row-major and
//! little-endian, each tensor at `[begin, end)` relative to the end of the header.
//!
//! Parsing is the `safetensors` crate's ([`safetensors::SafeTensors::read_metadata`]): the
//! header length is capped at 100 MB and must lie inside the file, the JSON must parse,
//! the offsets must tile the data section exactly (contiguous, in order, ending at the end
//! of the file), and each tensor's byte length must equal its element count times its
//! dtype's size (with overflow checks). On top of that this module checks what a model
//! loader relies on: at most [`MAX_DIMS`] dimensions, no tensor of more than
//! [`MAX_ELEMENTS`] elements, and a dtype it can decode ([`SafeTensorsFile::read_tensor`]
//! reads `F32`, `F16` and `BF16` into a [`QuantizedTensor`] of the same format). Every
//! failure is an [`Error::SafeTensors`] saying what is wrong.
//!
//! ```
//! use models::safetensors::SafeTensorsFile;
//! # fn main() -> models::Result<()> {
//! // One f32 tensor "w" of shape [2] = [1.0, -2.0].
//! let header = br#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#;
//! let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
//! bytes.extend_from_slice(header);
//! for v in [1.0f32, -2.0] {
//!     bytes.extend_from_slice(&v.to_le_bytes());
//! }
//! let file = SafeTensorsFile::from_bytes(bytes)?;
//! assert_eq!(file.shape("w"), Some(&[2usize][..]));
//! assert_eq!(file.read_tensor("w")?.dequantize(), vec![1.0, -2.0]);
//! # Ok(())
//! # }
//! ```

use std::path::Path;

use half::{bf16, f16};
use quant::QuantizedTensor;
use safetensors::tensor::{Metadata, TensorInfo};
use safetensors::{Dtype, SafeTensors};

use crate::gguf::Bytes;
use crate::{Error, Result};

/// Most dimensions a tensor may have.
pub const MAX_DIMS: usize = 8;

/// Most elements one tensor may have (2³⁴, 64 GiB of `f32`): a larger claim is refused
/// before anything is allocated.
pub const MAX_ELEMENTS: u64 = 1 << 34;

/// A parsed safetensors file (memory-mapped by [`open`](SafeTensorsFile::open), owned by
/// [`from_bytes`](SafeTensorsFile::from_bytes)).
pub struct SafeTensorsFile {
    bytes: Bytes,
    metadata: Metadata,
    /// Tensor names, sorted.
    names: Vec<String>,
    /// Start of the data section (8 + header length).
    data_offset: usize,
}

impl std::fmt::Debug for SafeTensorsFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SafeTensorsFile")
            .field("tensors", &self.names.len())
            .field("bytes", &self.bytes.as_slice().len())
            .finish_non_exhaustive()
    }
}

fn err(reason: impl Into<std::borrow::Cow<'static, str>>) -> Error {
    Error::SafeTensors {
        reason: reason.into(),
    }
}

impl SafeTensorsFile {
    /// Opens and parses the safetensors file at `path`, memory-mapping it.
    ///
    /// The file must not be modified or truncated while the returned value lives (the
    /// mapping would change under it).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the file cannot be opened or mapped; [`Error::SafeTensors`] if it
    /// is malformed (see the [module docs](self)).
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::parse(Bytes::open(path.as_ref())?)
    }

    /// Parses a safetensors file held in memory.
    ///
    /// # Errors
    ///
    /// [`Error::SafeTensors`] if `bytes` are malformed.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self> {
        Self::parse(Bytes::Owned(bytes))
    }

    fn parse(bytes: Bytes) -> Result<Self> {
        let (n, metadata) = SafeTensors::read_metadata(bytes.as_slice())
            .map_err(|e| err(format!("invalid file: {e}")))?;
        let mut names: Vec<String> = metadata.tensors().into_keys().collect();
        names.sort();
        for name in &names {
            let info = metadata.info(name).expect("listed by the metadata");
            if info.shape.len() > MAX_DIMS {
                return Err(err(format!(
                    "tensor `{name}` has {} dimensions (at most {MAX_DIMS})",
                    info.shape.len()
                )));
            }
            let elements = info
                .shape
                .iter()
                .try_fold(1u64, |a, &d| a.checked_mul(d as u64))
                .filter(|&e| e <= MAX_ELEMENTS);
            if elements.is_none() {
                return Err(err(format!(
                    "tensor `{name}` of shape {:?} has more than {MAX_ELEMENTS} elements",
                    info.shape
                )));
            }
        }
        Ok(Self {
            bytes,
            metadata,
            names,
            data_offset: 8 + n,
        })
    }

    /// The tensor names, sorted.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The `__metadata__` string map, if the file has one.
    pub fn user_metadata(&self) -> Option<&std::collections::HashMap<String, String>> {
        self.metadata.metadata().as_ref()
    }

    fn info(&self, name: &str) -> Option<&TensorInfo> {
        self.metadata.info(name)
    }

    /// A tensor's shape (row-major, as written), or `None` if there is no such tensor.
    pub fn shape(&self, name: &str) -> Option<&[usize]> {
        self.info(name).map(|i| i.shape.as_slice())
    }

    /// A tensor's dtype as the file spells it (`F32`, `I64`, …).
    pub fn dtype(&self, name: &str) -> Option<String> {
        self.info(name).map(|i| format!("{:?}", i.dtype))
    }

    /// A tensor's raw little-endian bytes.
    ///
    /// # Errors
    ///
    /// [`Error::MissingTensor`] if there is no such tensor.
    pub fn tensor_bytes(&self, name: &str) -> Result<&[u8]> {
        let info = self.info(name).ok_or_else(|| Error::MissingTensor {
            name: name.to_owned(),
        })?;
        let (begin, end) = info.data_offsets;
        // `read_metadata` checked that the offsets tile the data section exactly.
        Ok(&self.bytes.as_slice()[self.data_offset + begin..self.data_offset + end])
    }

    /// Reads a floating-point tensor into a [`QuantizedTensor`] of its own format: `F32` →
    /// [`QuantizedTensor::F32`], `F16` → `f16`, `BF16` → `bf16` (values exact, no
    /// conversion). The shape is the file's (a 0-D scalar becomes `[1]`).
    ///
    /// # Errors
    ///
    /// [`Error::MissingTensor`] if there is no such tensor; [`Error::UnsupportedTensorType`]
    /// for any other dtype; [`Error::Quant`] if `quant` refuses the shape.
    pub fn read_tensor(&self, name: &str) -> Result<QuantizedTensor> {
        let bytes = self.tensor_bytes(name)?;
        let info = self.info(name).expect("tensor_bytes found it");
        let shape: Vec<usize> = if info.shape.is_empty() {
            vec![1]
        } else {
            info.shape.clone()
        };
        let t = match info.dtype {
            Dtype::F32 => QuantizedTensor::F32 {
                data: bytes
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect(),
                shape,
            },
            Dtype::F16 => {
                let v: Vec<f32> = bytes
                    .chunks_exact(2)
                    .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32())
                    .collect();
                // f16 → f32 → f16 is exact, so this re-encoding restores the stored bits.
                QuantizedTensor::quantize(quant::QuantFormat::F16, &v, &shape)?
            }
            Dtype::BF16 => {
                let v: Vec<f32> = bytes
                    .chunks_exact(2)
                    .map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32())
                    .collect();
                QuantizedTensor::quantize(quant::QuantFormat::BF16, &v, &shape)?
            }
            other => {
                return Err(Error::UnsupportedTensorType {
                    name: name.to_owned(),
                    ggml_type: format!("safetensors {other:?}"),
                });
            }
        };
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file with the given header JSON and `data` bytes.
    fn file(header: &str, data: &[u8]) -> Vec<u8> {
        let mut b = (header.len() as u64).to_le_bytes().to_vec();
        b.extend_from_slice(header.as_bytes());
        b.extend_from_slice(data);
        b
    }

    fn reason(r: Result<SafeTensorsFile>) -> String {
        match r {
            Err(Error::SafeTensors { reason }) => reason.into_owned(),
            other => panic!("expected a safetensors error, got {other:?}"),
        }
    }

    #[test]
    fn reads_f32_f16_bf16_exactly() {
        let mut data = Vec::new();
        for v in [1.5f32, -0.0, f32::MIN_POSITIVE] {
            data.extend_from_slice(&v.to_le_bytes());
        }
        data.extend_from_slice(&f16::from_f32(0.333).to_le_bytes());
        data.extend_from_slice(&bf16::from_f32(-7.25).to_le_bytes());
        let h = r#"{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},"b":{"dtype":"F16","shape":[1,1],"data_offsets":[12,14]},"c":{"dtype":"BF16","shape":[],"data_offsets":[14,16]}}"#;
        let f = SafeTensorsFile::from_bytes(file(h, &data)).unwrap();
        assert_eq!(f.names(), ["a", "b", "c"]);
        assert_eq!(f.user_metadata().unwrap()["format"], "pt");
        let a = f.read_tensor("a").unwrap().dequantize();
        assert_eq!(a[0].to_bits(), 1.5f32.to_bits());
        assert!(a[1] == 0.0 && a[1].is_sign_negative());
        assert_eq!(a[2].to_bits(), f32::MIN_POSITIVE.to_bits());
        let b = f.read_tensor("b").unwrap();
        assert_eq!(b.format(), quant::QuantFormat::F16);
        assert_eq!(b.shape(), [1, 1]);
        assert_eq!(b.dequantize(), vec![f16::from_f32(0.333).to_f32()]);
        let c = f.read_tensor("c").unwrap();
        assert_eq!((c.shape(), c.dequantize()), (&[1usize][..], vec![-7.25]));
    }

    #[test]
    fn other_dtypes_are_unsupported_not_misread() {
        let h = r#"{"ids":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}"#;
        let f = SafeTensorsFile::from_bytes(file(h, &[0; 8])).unwrap();
        assert_eq!(f.dtype("ids").as_deref(), Some("I64"));
        assert!(matches!(
            f.read_tensor("ids"),
            Err(Error::UnsupportedTensorType { .. })
        ));
        assert!(matches!(
            f.read_tensor("nope"),
            Err(Error::MissingTensor { .. })
        ));
    }

    #[test]
    fn malformed_files_are_errors() {
        let ok = r#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#;
        // Empty, short, and a header length past the end.
        reason(SafeTensorsFile::from_bytes(Vec::new()));
        reason(SafeTensorsFile::from_bytes(vec![1, 2, 3]));
        let mut huge = u64::MAX.to_le_bytes().to_vec();
        huge.extend_from_slice(b"{}");
        reason(SafeTensorsFile::from_bytes(huge));
        let mut past = 1000u64.to_le_bytes().to_vec();
        past.extend_from_slice(b"{}");
        reason(SafeTensorsFile::from_bytes(past));
        // Not JSON, not UTF-8.
        reason(SafeTensorsFile::from_bytes(file("{nope", &[])));
        reason(SafeTensorsFile::from_bytes(file("\u{0}\u{ff}", &[])));
        // Data shorter or longer than the offsets say.
        reason(SafeTensorsFile::from_bytes(file(ok, &[0; 7])));
        reason(SafeTensorsFile::from_bytes(file(ok, &[0; 9])));
        // Byte length that disagrees with the shape.
        let bad = r#"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#;
        reason(SafeTensorsFile::from_bytes(file(bad, &[0; 8])));
        // Overlapping and out-of-order offsets.
        let overlap = r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}}"#;
        reason(SafeTensorsFile::from_bytes(file(overlap, &[0; 6])));
        // Overflowing shape, too many dimensions, too many elements.
        let ovf = format!(
            r#"{{"w":{{"dtype":"F32","shape":[{},{}],"data_offsets":[0,0]}}}}"#,
            u64::MAX,
            u64::MAX
        );
        reason(SafeTensorsFile::from_bytes(file(&ovf, &[])));
        let dims = r#"{"w":{"dtype":"F32","shape":[1,1,1,1,1,1,1,1,1],"data_offsets":[0,4]}}"#;
        let r = reason(SafeTensorsFile::from_bytes(file(dims, &[0; 4])));
        assert!(r.contains("dimensions"), "{r}");
        // Unknown dtype.
        let dt = r#"{"w":{"dtype":"F128","shape":[1],"data_offsets":[0,16]}}"#;
        reason(SafeTensorsFile::from_bytes(file(dt, &[0; 16])));
    }

    #[test]
    fn zero_sized_tensors_are_fine() {
        let h = r#"{"e":{"dtype":"F32","shape":[0,4],"data_offsets":[0,0]}}"#;
        let f = SafeTensorsFile::from_bytes(file(h, &[])).unwrap();
        assert_eq!(f.shape("e"), Some(&[0usize, 4][..]));
        assert!(f.tensor_bytes("e").unwrap().is_empty());
    }
}
