//! Bit-for-bit agreement with ml_dtypes 0.6.0 (and numpy's float16) on a committed sweep
//! (`data/ml_dtypes_casts.bin`, made by `data/gen_ml_dtypes.py`).

use numerics::Format;

struct Record {
    format: String,
    sweep: String,
    size: usize,
    data: Vec<u8>,
}

fn name(b: &[u8]) -> String {
    String::from_utf8_lossy(b)
        .trim_end_matches('\0')
        .to_string()
}

fn records() -> Vec<Record> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/ml_dtypes_casts.bin"
    );
    let bytes = std::fs::read(path).expect("fixture present");
    assert_eq!(&bytes[..4], b"MLDT");
    let n = u32::from_le_bytes(bytes[4..8].try_into().unwrap()) as usize;
    let mut pos = 8;
    let mut out = Vec::new();
    for _ in 0..n {
        let format = name(&bytes[pos..pos + 16]);
        let sweep = name(&bytes[pos + 16..pos + 32]);
        let size = u32::from_le_bytes(bytes[pos + 32..pos + 36].try_into().unwrap()) as usize;
        let count = u32::from_le_bytes(bytes[pos + 36..pos + 40].try_into().unwrap()) as usize;
        pos += 40;
        out.push(Record {
            format,
            sweep,
            size,
            data: bytes[pos..pos + size * count].to_vec(),
        });
        pos += size * count;
    }
    assert_eq!(pos, bytes.len());
    out
}

fn inputs(sweep: &str) -> Vec<f32> {
    let lows: &[u32] = match sweep {
        "small" => &[0x0000, 0x0001, 0xFFFF],
        "half" => &[0x7FFF, 0x8000, 0x8001, 0x1000, 0x0000],
        other => panic!("unknown sweep {other}"),
    };
    (0..=0xFFFFu32)
        .flat_map(|hi| lows.iter().map(move |&lo| f32::from_bits(hi << 16 | lo)))
        .collect()
}

#[test]
fn every_format_casts_like_ml_dtypes() {
    let recs = records();
    assert_eq!(recs.len(), 8 * 2 + 2);
    for r in &recs {
        let format: Format = r.format.parse().unwrap();
        let spec = format.spec();
        match r.sweep.as_str() {
            "decode" => {
                // Codes above a 4/6-bit format's width are outside it (our `from_bits` masks
                // them; ml_dtypes reads them differently): compare the format's own codes.
                for code in 0..=spec.code_mask() {
                    let want = u32::from_le_bytes(
                        r.data[code as usize * 4..code as usize * 4 + 4]
                            .try_into()
                            .unwrap(),
                    );
                    let got = format.decode(code);
                    let got = if got.is_nan() {
                        (got.to_bits() & 0x8000_0000) | 0x7FC0_0000
                    } else {
                        got.to_bits()
                    };
                    // FNUZ's NaN has no sign in our decode; ml_dtypes gives it the sign bit.
                    let want =
                        if spec.is_nan_code(code) && spec.special() == numerics::Special::Fnuz {
                            0x7FC0_0000
                        } else {
                            want
                        };
                    assert_eq!(got, want, "{} decode {code:#04x}", r.format);
                }
            }
            sweep => {
                let x = inputs(sweep);
                assert_eq!(x.len() * r.size, r.data.len());
                let mut mismatches = 0;
                for (i, &v) in x.iter().enumerate() {
                    let want = if r.size == 1 {
                        r.data[i] as u16
                    } else {
                        u16::from_le_bytes([r.data[2 * i], r.data[2 * i + 1]])
                    };
                    let got = spec.encode(v);
                    let typed = format.encode(v);
                    let canon = |c: u16| match format {
                        Format::F16 if spec.is_nan_code(c) => (c & 0x8000) | 0x7E00,
                        Format::BF16 if spec.is_nan_code(c) => (c & 0x8000) | 0x7FC0,
                        _ => c,
                    };
                    if canon(got) != want || canon(typed) != want {
                        mismatches += 1;
                        if mismatches < 10 {
                            eprintln!(
                                "{}: {v:e} ({:#010x}): engine {got:#x} typed {typed:#x} ml_dtypes {want:#x}",
                                r.format,
                                v.to_bits()
                            );
                        }
                    }
                }
                assert_eq!(mismatches, 0, "{}: {mismatches} mismatches", r.format);
            }
        }
    }
}

#[test]
fn fast_slice_paths_cast_like_ml_dtypes() {
    use numerics::*;
    fn check<T: Element>(data: &[u8], x: &[f32]) {
        let mut out = vec![T::zeroed(); x.len()];
        // The 4/6-bit formats refuse NaN in slices; the fixture's NaN rows are skipped.
        let keep: Vec<usize> = (0..x.len())
            .filter(|&i| T::FORMAT.spec().has_nan() || !x[i].is_nan())
            .collect();
        let xs: Vec<f32> = keep.iter().map(|&i| x[i]).collect();
        out.truncate(xs.len());
        encode_slice(&xs, &mut out, Par::Seq).unwrap();
        let bytes: &[u8] = bytemuck::cast_slice(&out);
        for (j, &i) in keep.iter().enumerate() {
            assert_eq!(bytes[j], data[i], "{} {:e}", T::FORMAT, x[i]);
        }
    }
    let x = inputs("small");
    for r in records().iter().filter(|r| r.sweep == "small") {
        match r.format.as_str() {
            "f8e4m3fn" => check::<F8E4M3FN>(&r.data, &x),
            "f8e5m2" => check::<F8E5M2>(&r.data, &x),
            "f8e4m3fnuz" => check::<F8E4M3FNUZ>(&r.data, &x),
            "f8e5m2fnuz" => check::<F8E5M2FNUZ>(&r.data, &x),
            "f8e8m0fnu" => check::<F8E8M0FNU>(&r.data, &x),
            "f6e2m3fn" => check::<F6E2M3FN>(&r.data, &x),
            "f6e3m2fn" => check::<F6E3M2FN>(&r.data, &x),
            "f4e2m1fn" => check::<F4E2M1FN>(&r.data, &x),
            other => panic!("unexpected {other}"),
        }
    }
}
