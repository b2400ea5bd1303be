//! GGML tensor element types: ids, names and storage layout.

use core::fmt;

/// The storage type of a tensor (ggml's `enum ggml_type`).
///
/// The six types this crate computes with have their own variants; every other id ggml
/// defines is kept as [`GgmlType::Other`], so a file using it can still be listed
/// (names, shapes, sizes) even though its tensors cannot be read as values.
///
/// Layouts (elements per block, bytes per block) follow ggml's `type_traits` table
/// (`ggml/src/ggml.c`) and gguf-py's `GGML_QUANT_SIZES`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GgmlType {
    /// `f32` (id 0).
    F32,
    /// IEEE half (id 1).
    F16,
    /// 32-element blocks of 4-bit codes with an `f16` scale (id 2).
    Q4_0,
    /// 32-element blocks of 4-bit codes with an `f16` scale and minimum (id 3).
    Q4_1,
    /// 32-element blocks of 8-bit codes with an `f16` scale (id 8).
    Q8_0,
    /// bfloat16 (id 30).
    BF16,
    /// Another id: one ggml defines, if it came from [`GgmlType::from_id`]. Its layout is
    /// known (so sizes can be checked) but this crate does not convert its values.
    Other(u32),
}

/// `(id, name, block size, type size)` of every type ggml defines. Ids 4, 5 (`q4_2`,
/// `q4_3`), 31–33 and 36–38 (the removed interleaved `*_4_4`/`*_4_8`/`*_8_8` layouts) are
/// no longer defined and are rejected, as llama.cpp rejects them (block size 0).
///
/// `q8_1` is 36 bytes as in ggml's `block_q8_1` (two `f16` and 32 `i8`); gguf-py's table
/// still says 40, from an older layout. It only ever appears as an intermediate.
const TABLE: [(u32, &str, u64, u64); 34] = [
    (0, "f32", 1, 4),
    (1, "f16", 1, 2),
    (2, "q4_0", 32, 18),
    (3, "q4_1", 32, 20),
    (6, "q5_0", 32, 22),
    (7, "q5_1", 32, 24),
    (8, "q8_0", 32, 34),
    (9, "q8_1", 32, 36),
    (10, "q2_K", 256, 84),
    (11, "q3_K", 256, 110),
    (12, "q4_K", 256, 144),
    (13, "q5_K", 256, 176),
    (14, "q6_K", 256, 210),
    (15, "q8_K", 256, 292),
    (16, "iq2_xxs", 256, 66),
    (17, "iq2_xs", 256, 74),
    (18, "iq3_xxs", 256, 98),
    (19, "iq1_s", 256, 50),
    (20, "iq4_nl", 32, 18),
    (21, "iq3_s", 256, 110),
    (22, "iq2_s", 256, 82),
    (23, "iq4_xs", 256, 136),
    (24, "i8", 1, 1),
    (25, "i16", 1, 2),
    (26, "i32", 1, 4),
    (27, "i64", 1, 8),
    (28, "f64", 1, 8),
    (29, "iq1_m", 256, 56),
    (30, "bf16", 1, 2),
    (34, "tq1_0", 256, 54),
    (35, "tq2_0", 256, 66),
    (39, "mxfp4", 32, 17),
    (40, "nvfp4", 64, 36),
    (41, "q1_0", 128, 18),
];

impl GgmlType {
    /// The type with ggml id `id`, or `None` if ggml does not define it (or no longer does).
    ///
    /// ```
    /// use models::gguf::GgmlType;
    /// assert_eq!(GgmlType::from_id(3), Some(GgmlType::Q4_1));
    /// assert_eq!(GgmlType::from_id(12).map(GgmlType::name), Some("q4_K"));
    /// assert_eq!(GgmlType::from_id(4), None); // q4_2, removed from ggml
    /// ```
    #[must_use]
    pub fn from_id(id: u32) -> Option<GgmlType> {
        Some(match id {
            0 => GgmlType::F32,
            1 => GgmlType::F16,
            2 => GgmlType::Q4_0,
            3 => GgmlType::Q4_1,
            8 => GgmlType::Q8_0,
            30 => GgmlType::BF16,
            _ if entry(id).is_some() => GgmlType::Other(id),
            _ => return None,
        })
    }

    /// The ggml id.
    #[must_use]
    pub fn id(self) -> u32 {
        match self {
            GgmlType::F32 => 0,
            GgmlType::F16 => 1,
            GgmlType::Q4_0 => 2,
            GgmlType::Q4_1 => 3,
            GgmlType::Q8_0 => 8,
            GgmlType::BF16 => 30,
            GgmlType::Other(id) => id,
        }
    }

    /// llama.cpp's name (`"f32"`, `"q4_1"`, `"q4_K"`, …), or `"unknown"` for an
    /// [`Other`](GgmlType::Other) id ggml does not define.
    #[must_use]
    pub fn name(self) -> &'static str {
        entry(self.id()).map_or("unknown", |e| e.1)
    }

    /// Elements per block (1 for scalar types), or `None` for an id ggml does not define.
    #[must_use]
    pub fn block_size(self) -> Option<u64> {
        entry(self.id()).map(|e| e.2)
    }

    /// Bytes per block, or `None` for an id ggml does not define.
    #[must_use]
    pub fn type_size(self) -> Option<u64> {
        entry(self.id()).map(|e| e.3)
    }

    /// Bytes taken by `n_elements` consecutive elements: `None` if `n_elements` is not a
    /// whole number of blocks, the byte count overflows `u64`, or the id is unknown.
    ///
    /// ```
    /// use models::gguf::GgmlType;
    /// assert_eq!(GgmlType::Q4_1.row_bytes(64), Some(40));
    /// assert_eq!(GgmlType::Q4_1.row_bytes(48), None);
    /// assert_eq!(GgmlType::F32.row_bytes(u64::MAX), None);
    /// ```
    #[must_use]
    pub fn row_bytes(self, n_elements: u64) -> Option<u64> {
        let (block, size) = (self.block_size()?, self.type_size()?);
        if !n_elements.is_multiple_of(block) {
            return None;
        }
        (n_elements / block).checked_mul(size)
    }
}

impl fmt::Display for GgmlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match entry(self.id()) {
            Some(e) => f.write_str(e.1),
            None => write!(f, "unknown ggml type {}", self.id()),
        }
    }
}

fn entry(id: u32) -> Option<&'static (u32, &'static str, u64, u64)> {
    TABLE.iter().find(|e| e.0 == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_named_variants_are_canonical() {
        for &(id, name, block, size) in &TABLE {
            let t = GgmlType::from_id(id).unwrap();
            assert_eq!(t.id(), id);
            assert_eq!(t.name(), name);
            assert_eq!(t.to_string(), name);
            assert_eq!((t.block_size(), t.type_size()), (Some(block), Some(size)));
            // The computable types never come back as Other.
            if [0, 1, 2, 3, 8, 30].contains(&id) {
                assert!(!matches!(t, GgmlType::Other(_)), "{name}");
            }
        }
        for id in [4, 5, 31, 32, 33, 36, 37, 38, 41_000, u32::MAX] {
            assert_eq!(GgmlType::from_id(id), None, "{id}");
        }
    }

    #[test]
    fn sizes_match_the_quant_blocks() {
        use quant::ggml::{BlockQ4_0, BlockQ4_1, BlockQ8_0, QK};
        let qk = QK as u64;
        let size = |n: usize| Some(n as u64);
        assert_eq!(GgmlType::Q8_0.block_size(), Some(qk));
        assert_eq!(GgmlType::Q8_0.type_size(), size(size_of::<BlockQ8_0>()));
        assert_eq!(GgmlType::Q4_0.type_size(), size(size_of::<BlockQ4_0>()));
        assert_eq!(GgmlType::Q4_1.type_size(), size(size_of::<BlockQ4_1>()));
    }

    #[test]
    fn row_bytes_is_checked() {
        assert_eq!(GgmlType::F16.row_bytes(3), Some(6));
        assert_eq!(GgmlType::Q8_0.row_bytes(0), Some(0));
        assert_eq!(GgmlType::Q8_0.row_bytes(33), None);
        assert_eq!(GgmlType::Other(4).row_bytes(32), None);
        assert_eq!(GgmlType::Other(4).name(), "unknown");
        assert_eq!(GgmlType::Q8_0.row_bytes(u64::MAX / 32 * 32), None);
        assert_eq!(GgmlType::Other(12).row_bytes(512), Some(288));
    }
}
