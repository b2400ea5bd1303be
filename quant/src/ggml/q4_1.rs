//! Q4_1: 32 unsigned 4-bit values with an `f16` scale and an `f16` minimum.

use half::f16;

/// One Q4_1 block: element `j` is `d · nibble_j + m`; `qs[j]` holds element `j` in its low
/// nibble and element `j + 16` in its high nibble.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ4_1 {
    /// Scale.
    pub d: f16,
    /// Minimum (the value of nibble 0).
    pub m: f16,
    /// Packed nibbles.
    pub qs: [u8; 16],
}

const _: () = assert!(core::mem::size_of::<BlockQ4_1>() == 20);
