//! Tensor descriptors: name, dimensions, element type and data offset.

use std::borrow::Cow;

use super::GgmlType;

/// The most dimensions a GGUF tensor may have (ggml's `GGML_MAX_DIMS`).
pub const MAX_DIMS: usize = 4;

/// One tensor of a GGUF file, as its tensor-info record describes it.
///
/// Every `TensorInfo` that a [`GgufFile`](super::GgufFile) hands out has been checked: 1 to
/// [`MAX_DIMS`] dimensions, each at least 1, at most `i64::MAX` elements, a first dimension
/// that is a whole number of blocks, and data lying inside the file at an aligned offset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    /// The tensor's name (`blk.0.attn_q.weight`, …).
    pub name: String,
    /// Dimensions in GGUF order: `dims[0]` (ggml's `ne0`) varies fastest. A weight matrix
    /// of `rows` rows of `cols` elements has `dims == [cols, rows]`.
    pub dims: Vec<u64>,
    /// The element type.
    pub ggml_type: GgmlType,
    /// Byte offset of the data from the start of the data section
    /// ([`GgufFile::data_offset`](super::GgufFile::data_offset)).
    pub offset: u64,
}

impl TensorInfo {
    /// The number of elements: the product of the dimensions (saturating at `u64::MAX` for
    /// a hand-made descriptor whose product overflows).
    #[must_use]
    pub fn n_elements(&self) -> u64 {
        self.dims
            .iter()
            .try_fold(1u64, |n, &d| n.checked_mul(d))
            .unwrap_or(u64::MAX)
    }

    /// The size of the data in bytes (`u64::MAX` for a hand-made descriptor whose size
    /// cannot be computed: an unknown type, a partial block, an overflow).
    #[must_use]
    pub fn n_bytes(&self) -> u64 {
        self.ggml_type
            .row_bytes(self.n_elements())
            .unwrap_or(u64::MAX)
    }

    /// The row-major shape: the dimensions reversed, so a weight of GGUF dims
    /// `[cols, rows]` has shape `[rows, cols]`. (Dimensions beyond `usize` saturate.)
    ///
    /// ```
    /// use models::gguf::{GgmlType, TensorInfo};
    /// let t = TensorInfo {
    ///     name: "w".into(),
    ///     dims: vec![576, 1536],
    ///     ggml_type: GgmlType::Q8_0,
    ///     offset: 0,
    /// };
    /// assert_eq!(t.shape(), [1536, 576]);
    /// assert_eq!(t.n_bytes(), 1536 * 576 / 32 * 34);
    /// ```
    #[must_use]
    pub fn shape(&self) -> Vec<usize> {
        self.dims
            .iter()
            .rev()
            .map(|&d| usize::try_from(d).unwrap_or(usize::MAX))
            .collect()
    }
}

/// Checks a tensor's dimensions against its type; returns the data size in bytes, or what
/// is wrong. Shared by the reader and the writer so that both accept the same tensors.
pub(crate) fn check_layout(dims: &[u64], ty: GgmlType) -> Result<u64, Cow<'static, str>> {
    if dims.is_empty() || dims.len() > MAX_DIMS {
        return Err(format!("{} dimensions (expected 1 to {MAX_DIMS})", dims.len()).into());
    }
    if let Some(i) = dims.iter().position(|&d| d == 0) {
        return Err(format!("dimension {i} is 0").into());
    }
    let n = dims
        .iter()
        .try_fold(1u64, |n, &d| n.checked_mul(d))
        .filter(|&n| n <= i64::MAX as u64)
        .ok_or_else(|| format!("dimensions {dims:?} hold more than i64::MAX elements"))?;
    let (Some(block), Some(_)) = (ty.block_size(), ty.type_size()) else {
        return Err(format!("unknown GGML type id {}", ty.id()).into());
    };
    if !dims[0].is_multiple_of(block) {
        return Err(format!(
            "first dimension {} is not a multiple of the {} block size {block}",
            dims[0],
            ty.name()
        )
        .into());
    }
    ty.row_bytes(n)
        .ok_or_else(|| format!("{n} {} elements take more than u64::MAX bytes", ty.name()).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_checks() {
        assert_eq!(check_layout(&[64, 3], GgmlType::Q4_0), Ok(2 * 3 * 18));
        assert_eq!(check_layout(&[5], GgmlType::F32), Ok(20));
        assert!(check_layout(&[], GgmlType::F32).is_err());
        assert!(check_layout(&[1, 1, 1, 1, 1], GgmlType::F32).is_err());
        assert!(
            check_layout(&[4, 0], GgmlType::F32)
                .unwrap_err()
                .contains("dimension 1")
        );
        assert!(
            check_layout(&[16, 2], GgmlType::Q8_0)
                .unwrap_err()
                .contains("multiple")
        );
        assert!(check_layout(&[1 << 32, 1 << 32], GgmlType::F32).is_err());
        assert!(
            check_layout(&[1 << 62], GgmlType::F32)
                .unwrap_err()
                .contains("u64::MAX bytes")
        );
        assert!(
            check_layout(&[32], GgmlType::Other(5))
                .unwrap_err()
                .contains("unknown")
        );
    }

    #[test]
    fn hand_made_descriptors_saturate() {
        let t = TensorInfo {
            name: String::new(),
            dims: vec![u64::MAX, 2],
            ggml_type: GgmlType::F32,
            offset: 0,
        };
        assert_eq!(t.n_elements(), u64::MAX);
        assert_eq!(t.n_bytes(), u64::MAX);
        assert_eq!(t.shape(), [2, usize::MAX]);
    }
}
