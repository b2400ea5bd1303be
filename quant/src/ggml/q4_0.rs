//! Q4_0: 32 unsigned 4-bit values offset by 8, and one `f16` scale.

use half::f16;

/// One Q4_0 block: element `j` is `d · (nibble_j − 8)`; `qs[j]` holds element `j` in its low
/// nibble and element `j + 16` in its high nibble.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ4_0 {
    /// Scale.
    pub d: f16,
    /// Packed nibbles.
    pub qs: [u8; 16],
}

const _: () = assert!(core::mem::size_of::<BlockQ4_0>() == 18);
