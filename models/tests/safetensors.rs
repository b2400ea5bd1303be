//! `models::safetensors` and `models::fidelity` invariants, stated as property tests.

use models::fidelity;
use models::safetensors::SafeTensorsFile;
use proptest::prelude::*;

/// A valid file holding two f32 tensors.
fn valid() -> Vec<u8> {
    let header = br#"{"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"b":{"dtype":"F16","shape":[4],"data_offsets":[24,32]}}"#;
    let mut b = (header.len() as u64).to_le_bytes().to_vec();
    b.extend_from_slice(header);
    b.extend((0..32u8).map(|i| i.wrapping_mul(37)));
    b
}

proptest! {
    /// Any byte mutation or truncation of a valid file is either still readable or a typed
    /// error; it never panics, and what it reads is within the file.
    #[test]
    fn mutated_files_never_panic(
        edits in proptest::collection::vec((0usize..200, any::<u8>()), 0..8),
        cut in 0usize..200,
    ) {
        let mut bytes = valid();
        for (at, v) in edits {
            let n = bytes.len();
            bytes[at % n] = v;
        }
        bytes.truncate(cut.max(1).min(bytes.len()));
        let len = bytes.len();
        if let Ok(f) = SafeTensorsFile::from_bytes(bytes) {
            for name in f.names().to_vec() {
                let raw = f.tensor_bytes(&name).unwrap();
                prop_assert!(raw.len() <= len);
                let _ = f.read_tensor(&name);
            }
        }
    }

    /// Fidelity of a set against itself is perfect; cosine ignores positive scale.
    #[test]
    fn fidelity_of_identical_sets_is_perfect(
        rows in proptest::collection::vec(proptest::collection::vec(-10.0f32..10.0, 6), 2..12),
        scale in 0.01f32..100.0,
    ) {
        let r = fidelity::compare(&rows, &rows).unwrap();
        prop_assert!(r.top1_agreement.to_bits() == 1f64.to_bits());
        prop_assert!(r.top5_agreement.to_bits() == 1f64.to_bits());
        let scaled: Vec<Vec<f32>> = rows.iter().map(|v| v.iter().map(|x| x * scale).collect()).collect();
        for (a, b) in rows.iter().zip(&scaled) {
            let c = fidelity::cosine(a, b);
            let nonzero = a.iter().any(|&x| x != 0.0);
            prop_assert!(!nonzero || (c - 1.0).abs() < 1e-6, "{c}");
        }
        let r = fidelity::compare(&rows, &scaled).unwrap();
        prop_assert!(r.min_cosine <= r.mean_cosine + 1e-12);
        prop_assert!((0.0..=1.0).contains(&r.top1_agreement));
    }
}
