//! Bit packing of 1- to 8-bit codes into bytes.
//!
//! Layout: a little-endian bit stream. Code `i` occupies bits `[i·b, (i+1)·b)` of the stream,
//! where bit `k` of the stream is bit `k % 8` of byte `k / 8`. So for 4-bit codes element
//! `2i` is the low nibble of byte `i` and element `2i+1` the high nibble; for 2-bit codes
//! byte `i` holds elements `4i..4i+4` from the low bits up; 3-bit codes straddle bytes.
//! The unused high bits of the last byte are zero. 8-bit codes are stored as they are.
//!
//! (NF4/FP4 follow bitsandbytes' own order, first element in the *high* nibble, and GGML
//! blocks their own; those layouts live with their formats.)

/// Bytes needed for `len` codes of `bits` bits.
///
/// # Panics
///
/// If `bits` is not in `1..=8`.
pub const fn packed_len(len: usize, bits: u32) -> usize {
    assert!(bits >= 1 && bits <= 8, "pack: bits must be in 1..=8");
    (len * bits as usize).div_ceil(8)
}

/// Packs `codes` (each `< 2^bits`) into `out`.
///
/// # Panics
///
/// If `bits` is not in `1..=8`, if `out.len() != packed_len(codes.len(), bits)`, or if a code
/// does not fit in `bits` bits.
pub fn pack_into(codes: &[u8], bits: u32, out: &mut [u8]) {
    assert_eq!(
        out.len(),
        packed_len(codes.len(), bits),
        "pack_into: output length"
    );
    let limit = 1u16 << bits;
    match bits {
        8 => out.copy_from_slice(codes),
        4 => {
            for (o, pair) in out.iter_mut().zip(codes.chunks(2)) {
                let lo = pair[0];
                let hi = pair.get(1).copied().unwrap_or(0);
                assert!(
                    (lo as u16) < limit && (hi as u16) < limit,
                    "pack_into: code does not fit in 4 bits"
                );
                *o = lo | (hi << 4);
            }
        }
        _ => {
            out.fill(0);
            let mut acc: u32 = 0;
            let mut nbits = 0u32;
            let mut pos = 0;
            for &c in codes {
                assert!(
                    (c as u16) < limit,
                    "pack_into: code {c} does not fit in {bits} bits"
                );
                acc |= (c as u32) << nbits;
                nbits += bits;
                while nbits >= 8 {
                    out[pos] = acc as u8;
                    pos += 1;
                    acc >>= 8;
                    nbits -= 8;
                }
            }
            if nbits > 0 {
                out[pos] = acc as u8;
            }
        }
    }
}

/// Packs `codes` into a new vector (see [`pack_into`]).
///
/// ```
/// use quant::pack::{pack, unpack};
/// let codes = [1u8, 2, 3, 4, 5, 6, 7];
/// let packed = pack(&codes, 3);
/// assert_eq!(packed.len(), 3); // 21 bits
/// assert_eq!(unpack(&packed, 3, codes.len()), codes);
/// ```
///
/// # Panics
///
/// As [`pack_into`].
pub fn pack(codes: &[u8], bits: u32) -> Vec<u8> {
    let mut out = vec![0u8; packed_len(codes.len(), bits)];
    pack_into(codes, bits, &mut out);
    out
}

/// Unpacks `out.len()` codes of `bits` bits from `packed`.
///
/// # Panics
///
/// If `bits` is not in `1..=8` or `packed.len() != packed_len(out.len(), bits)`.
pub fn unpack_into(packed: &[u8], bits: u32, out: &mut [u8]) {
    assert_eq!(
        packed.len(),
        packed_len(out.len(), bits),
        "unpack_into: input length"
    );
    match bits {
        8 => out.copy_from_slice(packed),
        4 => {
            for (i, o) in out.iter_mut().enumerate() {
                let b = packed[i / 2];
                *o = if i % 2 == 0 { b & 0x0F } else { b >> 4 };
            }
        }
        _ => {
            let mask = (1u32 << bits) - 1;
            for (i, o) in out.iter_mut().enumerate() {
                let bit = i * bits as usize;
                let byte = bit / 8;
                let shift = bit % 8;
                let lo = packed[byte] as u32;
                let hi = packed.get(byte + 1).copied().unwrap_or(0) as u32;
                *o = (((lo | (hi << 8)) >> shift) & mask) as u8;
            }
        }
    }
}

/// Unpacks `len` codes into a new vector (see [`unpack_into`]).
///
/// # Panics
///
/// As [`unpack_into`].
pub fn unpack(packed: &[u8], bits: u32, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    unpack_into(packed, bits, &mut out);
    out
}

/// Reads code `i` from a packed stream without unpacking the rest.
///
/// # Panics
///
/// If the code lies outside `packed`.
#[inline]
pub fn get(packed: &[u8], bits: u32, i: usize) -> u8 {
    let bit = i * bits as usize;
    let byte = bit / 8;
    let shift = bit % 8;
    let lo = packed[byte] as u32;
    let hi = if shift + bits as usize > 8 {
        packed[byte + 1] as u32
    } else {
        0
    };
    (((lo | (hi << 8)) >> shift) & ((1u32 << bits) - 1)) as u8
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn nibble_order_is_low_first() {
        assert_eq!(pack(&[0x1, 0x2, 0x3], 4), [0x21, 0x03]);
        assert_eq!(pack(&[1, 2, 3, 0, 1], 2), [0b00_11_10_01, 0b01]);
    }

    #[test]
    #[should_panic(expected = "does not fit")]
    fn oversized_code_panics() {
        pack(&[8], 3);
    }

    proptest! {
        #[test]
        fn pack_unpack_round_trips(bits in 1u32..=8, raw in prop::collection::vec(any::<u8>(), 0..67)) {
            let codes: Vec<u8> = raw.iter().map(|c| (*c as u32 & ((1 << bits) - 1)) as u8).collect();
            let packed = pack(&codes, bits);
            prop_assert_eq!(packed.len(), (codes.len() * bits as usize).div_ceil(8));
            prop_assert_eq!(&unpack(&packed, bits, codes.len()), &codes);
            for (i, &c) in codes.iter().enumerate() {
                prop_assert_eq!(get(&packed, bits, i), c);
            }
            // Unused high bits of the last byte are zero.
            let used = codes.len() * bits as usize;
            if !used.is_multiple_of(8) {
                prop_assert_eq!(packed[packed.len() - 1] >> (used % 8), 0);
            }
        }
    }
}
