//! Byte-for-byte agreement of `quant::ggml` with gguf-py 0.19.0 (and, where gguf-py departs
//! from it, with ggml's C reference) on a committed fixture (`data/ggml_blocks.bin`, made by
//! `data/gen_ggml_blocks.py`; its docstring describes the rows and the file layout).

use quant::ggml::{
    BlockQ4_0, BlockQ4_1, BlockQ8_0, QK, dequantize_row_q4_0, dequantize_row_q4_1,
    dequantize_row_q8_0, quantize_row_q4_0, quantize_row_q4_0_into, quantize_row_q4_1,
    quantize_row_q4_1_into, quantize_row_q8_0, quantize_row_q8_0_into,
};

/// The formats, in fixture order, with their block sizes in bytes.
const FORMATS: [(&str, usize); 3] = [("q8_0", 34), ("q4_0", 18), ("q4_1", 20)];

/// (row, format, reason) where gguf-py departs from ggml's C code; the reasons are those of
/// the generator's docstring: 1 NaN handling, 2 signed-zero extremes, 3 Q4_1 blocks of a
/// single infinity.
const DIVERGENT: &[(&str, &str, u8)] = &[
    ("neg_zeros", "q4_0", 2),
    ("zeros_pos_neg", "q4_1", 2),
    ("zeros_neg_pos", "q4_0", 2),
    ("zeros_neg_pos", "q4_1", 2),
    ("nan_first", "q8_0", 1),
    ("nan_first", "q4_0", 1),
    ("nan_first", "q4_1", 1),
    ("nan_middle", "q8_0", 1),
    ("nan_middle", "q4_0", 1),
    ("nan_middle", "q4_1", 1),
    ("nan_last", "q4_0", 1),
    ("nan_last", "q4_1", 1),
    ("nan_after_large", "q8_0", 1),
    ("nan_after_large", "q4_0", 1),
    ("nan_after_large", "q4_1", 1),
    ("nan_all", "q4_0", 1),
    ("nan_all", "q4_1", 1),
    ("nan_neg", "q8_0", 1),
    ("nan_neg", "q4_0", 1),
    ("nan_neg", "q4_1", 1),
    ("inf_all", "q4_1", 3),
    ("neg_inf_all", "q4_1", 3),
    ("nan_and_inf", "q8_0", 1),
    ("nan_and_inf", "q4_0", 1),
    ("nan_and_inf", "q4_1", 1),
];

struct Expected {
    /// gguf-py's blocks.
    gguf: Vec<u8>,
    /// Why gguf-py departs from C (0 if it does not).
    reason: u8,
    /// ggml's C result where `reason != 0`.
    c: Option<Vec<u8>>,
    /// gguf-py's dequantization of `gguf`.
    dequantized: Vec<f32>,
}

struct Row {
    name: String,
    x: Vec<f32>,
    formats: Vec<Expected>,
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> &[u8] {
        let s = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        s
    }

    fn u8(&mut self) -> u8 {
        self.take(1)[0]
    }

    fn u32(&mut self) -> usize {
        u32::from_le_bytes(self.take(4).try_into().unwrap()) as usize
    }

    fn f32s(&mut self, n: usize) -> Vec<f32> {
        self.take(4 * n)
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect()
    }
}

fn rows() -> Vec<Row> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/ggml_blocks.bin");
    let bytes = std::fs::read(path).expect("fixture present");
    let mut r = Reader {
        bytes: &bytes,
        pos: 0,
    };
    assert_eq!(r.take(8), b"GGMLBLK1");
    let count = r.u32();
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let len = usize::from(r.u8());
        let name = String::from_utf8(r.take(len).to_vec()).unwrap();
        let n = r.u32();
        assert_eq!(n % QK, 0);
        let x = r.f32s(n);
        let formats = FORMATS
            .iter()
            .map(|&(_, size)| {
                let reason = r.u8();
                let gguf = r.take(n / QK * size).to_vec();
                let c = (reason != 0).then(|| r.take(n / QK * size).to_vec());
                let dequantized = r.f32s(n);
                Expected {
                    gguf,
                    reason,
                    c,
                    dequantized,
                }
            })
            .collect();
        out.push(Row { name, x, formats });
    }
    assert_eq!(r.pos, bytes.len(), "trailing bytes in the fixture");
    out
}

/// Our blocks for `x` in format `fmt`, from the owned and the `_into` functions (checked
/// equal), as bytes.
fn quantize(fmt: &str, x: &[f32]) -> Vec<u8> {
    let nb = x.len() / QK;
    let (owned, into): (Vec<u8>, Vec<u8>) = match fmt {
        "q8_0" => {
            let mut y = vec![bytemuck::Zeroable::zeroed(); nb];
            quantize_row_q8_0_into(x, &mut y);
            (
                bytemuck::cast_slice::<BlockQ8_0, u8>(&quantize_row_q8_0(x)).to_vec(),
                bytemuck::cast_slice::<BlockQ8_0, u8>(&y).to_vec(),
            )
        }
        "q4_0" => {
            let mut y = vec![bytemuck::Zeroable::zeroed(); nb];
            quantize_row_q4_0_into(x, &mut y);
            (
                bytemuck::cast_slice::<BlockQ4_0, u8>(&quantize_row_q4_0(x)).to_vec(),
                bytemuck::cast_slice::<BlockQ4_0, u8>(&y).to_vec(),
            )
        }
        "q4_1" => {
            let mut y = vec![bytemuck::Zeroable::zeroed(); nb];
            quantize_row_q4_1_into(x, &mut y);
            (
                bytemuck::cast_slice::<BlockQ4_1, u8>(&quantize_row_q4_1(x)).to_vec(),
                bytemuck::cast_slice::<BlockQ4_1, u8>(&y).to_vec(),
            )
        }
        other => panic!("unknown format {other}"),
    };
    assert_eq!(owned, into, "{fmt}: quantize_row_{fmt} and _into disagree");
    owned
}

/// Our dequantization of the blocks `bytes` in format `fmt`.
fn dequantize(fmt: &str, bytes: &[u8]) -> Vec<f32> {
    let mut y;
    match fmt {
        "q8_0" => {
            let b: Vec<BlockQ8_0> = bytes
                .chunks_exact(34)
                .map(bytemuck::pod_read_unaligned)
                .collect();
            y = vec![0.0; b.len() * QK];
            dequantize_row_q8_0(&b, &mut y);
        }
        "q4_0" => {
            let b: Vec<BlockQ4_0> = bytes
                .chunks_exact(18)
                .map(bytemuck::pod_read_unaligned)
                .collect();
            y = vec![0.0; b.len() * QK];
            dequantize_row_q4_0(&b, &mut y);
        }
        "q4_1" => {
            let b: Vec<BlockQ4_1> = bytes
                .chunks_exact(20)
                .map(bytemuck::pod_read_unaligned)
                .collect();
            y = vec![0.0; b.len() * QK];
            dequantize_row_q4_1(&b, &mut y);
        }
        other => panic!("unknown format {other}"),
    }
    y
}

/// Panics with the first differing block if `got != want`.
fn assert_same_blocks(what: &str, size: usize, want: &[u8], got: &[u8]) {
    assert_eq!(want.len(), got.len(), "{what}: length");
    if let Some(i) =
        (0..want.len() / size).find(|&i| want[i * size..][..size] != got[i * size..][..size])
    {
        panic!(
            "{what}: block {i} differs\n  want {:02x?}\n  got  {:02x?}",
            &want[i * size..][..size],
            &got[i * size..][..size]
        );
    }
}

#[test]
fn quantizers_match_the_fixture_byte_for_byte() {
    let rows = rows();
    assert!(rows.len() >= 80, "fixture has only {} rows", rows.len());
    let mut divergent = Vec::new();
    let mut blocks_checked = 0;
    for row in &rows {
        for (&(fmt, size), e) in FORMATS.iter().zip(&row.formats) {
            let got = quantize(fmt, &row.x);
            let what = format!("{} {fmt}", row.name);
            if e.reason == 0 {
                assert_same_blocks(&format!("{what} (gguf-py)"), size, &e.gguf, &got);
            } else {
                divergent.push((row.name.clone(), fmt, e.reason));
                let c = e.c.as_ref().expect("C blocks stored for divergent rows");
                assert_same_blocks(&format!("{what} (C reference)"), size, c, &got);
                assert_ne!(&e.gguf, c, "{what}: flagged but identical");
            }
            blocks_checked += got.len() / size;
        }
    }
    let want: Vec<(String, &str, u8)> = DIVERGENT
        .iter()
        .map(|&(r, f, reason)| (r.to_string(), f, reason))
        .collect();
    assert_eq!(
        divergent, want,
        "the rows where gguf-py departs from C changed"
    );
    assert!(
        blocks_checked >= 500,
        "only {blocks_checked} blocks checked"
    );
}

#[test]
fn dequantizers_match_the_fixture_bit_for_bit() {
    for row in rows() {
        for (&(fmt, _), e) in FORMATS.iter().zip(&row.formats) {
            // gguf-py's blocks, including rows where its quantizer departs from C: the
            // dequantizers agree everywhere.
            let got = dequantize(fmt, &e.gguf);
            assert_eq!(got.len(), e.dequantized.len());
            for (j, (&w, &g)) in e.dequantized.iter().zip(&got).enumerate() {
                // NaN payloads and signs are not specified by Rust's arithmetic; NaN-ness
                // is compared, every other value bit for bit.
                let same = if w.is_nan() {
                    g.is_nan()
                } else {
                    w.to_bits() == g.to_bits()
                };
                assert!(
                    same,
                    "{} {fmt}: element {j}: want {w:e} ({:#010x}), got {g:e} ({:#010x})",
                    row.name,
                    w.to_bits(),
                    g.to_bits()
                );
            }
        }
    }
}

#[test]
fn fixture_covers_the_edge_cases() {
    let rows = rows();
    let has = |name: &str| rows.iter().any(|r| r.name == name);
    for name in [
        "zeros",
        "neg_zeros",
        "q8_0_ties_d1",
        "q4_0_near_ties",
        "q4_1_near_ties",
        "huge_8.32104e+06",
        "tiny_1e-40",
        "negative_dominant",
        "nan_last",
        "nan_after_large",
        "inf_all",
        "fma_sensitive_q4_0",
        "fma_sensitive_q4_1",
    ] {
        assert!(has(name), "fixture lacks row {name}");
    }
    // Some fixture blocks have an f16-subnormal scale, some a zero scale from underflow,
    // some an infinite one.
    let scales: Vec<u16> = rows
        .iter()
        .flat_map(|r| {
            r.formats[0]
                .gguf
                .chunks_exact(34)
                .map(|b| u16::from_le_bytes([b[0], b[1]]))
        })
        .collect();
    assert!(scales.iter().any(|&d| d & 0x7C00 == 0 && d & 0x03FF != 0));
    assert!(scales.contains(&0x7C00));
    let nonzero_codes_zero_scale = rows.iter().any(|r| {
        r.formats[0]
            .gguf
            .chunks_exact(34)
            .any(|b| b[0] == 0 && b[1] == 0 && b[2..].iter().any(|&q| q != 0))
    });
    assert!(nonzero_codes_zero_scale);
}
