//! Q8_0: 32 signed 8-bit values and one `f16` scale.

use half::f16;

/// One Q8_0 block: `d · qs[j]` for `j` in `0..32`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ8_0 {
    /// Scale.
    pub d: f16,
    /// Quantized values.
    pub qs: [i8; 32],
}

const _: () = assert!(core::mem::size_of::<BlockQ8_0>() == 34);
