//! Code-point classes and the GPT-2 byte ↔ character table, as llama.cpp's `unicode.cpp` uses
//! them.
//!
//! llama.cpp classifies code points with its own generated table (`src/unicode-data.cpp`,
//! Unicode 15.1): `\p{L}`, `\p{N}`, `\p{P}` are the general categories, and "whitespace" is
//! the Unicode `White_Space` property (25 code points, the same set as
//! [`char::is_whitespace`]). We do not copy that table: we derive the same classes from the
//! Unicode tables the `regex` engine inside `tokenizers` already carries (Unicode 16.0),
//! restricted to code points assigned by Unicode 15.1 (`\p{Age=15.1}`), so characters added
//! in Unicode 16 fall into "other", as they do in llama.cpp. The derived classes were checked
//! against llama.cpp's table for every code point (0 differences).

use std::sync::OnceLock;

use tokenizers::utils::SysRegex;

/// `\p{L}`.
pub(crate) const LETTER: u8 = 1;
/// `\p{N}`.
pub(crate) const NUMBER: u8 = 2;
/// `White_Space` (llama.cpp's `\s`).
pub(crate) const WHITESPACE: u8 = 4;
/// `\p{P}`.
pub(crate) const PUNCTUATION: u8 = 8;

/// Number of code points (`0..=0x10FFFF`).
const CODE_POINTS: usize = 0x11_0000;

/// The class table, built on first use (a few tens of milliseconds).
pub(crate) fn table() -> &'static [u8] {
    static TABLE: OnceLock<Box<[u8]>> = OnceLock::new();
    TABLE.get_or_init(build_table)
}

/// Builds the table by running the engine's Unicode classes over a string holding every scalar
/// value once, in code-point order.
///
/// # Panics
///
/// Only if one of the constant patterns below does not compile, a programming error that the
/// unit tests catch.
fn build_table() -> Box<[u8]> {
    let regex = |pattern: &str| SysRegex::new(pattern).expect("constant Unicode class pattern");
    let all: String = (0..CODE_POINTS as u32).filter_map(char::from_u32).collect();
    let mut table = vec![0u8; CODE_POINTS];
    for (pattern, bit) in [
        (r"\p{L}+", LETTER),
        (r"\p{N}+", NUMBER),
        (r"\p{P}+", PUNCTUATION),
    ] {
        for (start, end) in regex(pattern).find_iter(&all) {
            // The string is in code-point order, so a match is a code-point range (a match
            // across the surrogate gap also marks surrogates, which never occur in text).
            let first = all[start..].chars().next().map_or(0, |c| c as usize);
            let last = all[..end].chars().next_back().map_or(0, |c| c as usize);
            for class in &mut table[first..=last] {
                *class |= bit;
            }
        }
    }
    // Characters that Unicode 15.1 had not assigned yet are "other" to llama.cpp.
    let classified: String = table
        .iter()
        .enumerate()
        .filter(|&(_, &class)| class != 0)
        .filter_map(|(cp, _)| char::from_u32(cp as u32))
        .collect();
    for (start, end) in regex(r"\P{Age=15.1}+").find_iter(&classified) {
        for c in classified[start..end].chars() {
            table[c as usize] = 0;
        }
    }
    for (cp, class) in table.iter_mut().enumerate() {
        if char::from_u32(cp as u32).is_some_and(char::is_whitespace) {
            *class = WHITESPACE;
        }
    }
    table.into_boxed_slice()
}

/// GPT-2's byte → character map: printable Latin-1 bytes map to themselves, the other 68 bytes
/// to `U+0100..`, in byte order (llama.cpp `unicode_byte_to_utf8_map`, OpenAI `bytes_to_unicode`).
pub(crate) const fn byte_to_char_table() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut next = 0x100u32;
    let mut b = 0usize;
    while b < 256 {
        let printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
        let cp = if printable {
            b as u32
        } else {
            let cp = next;
            next += 1;
            cp
        };
        table[b] = match char::from_u32(cp) {
            Some(c) => c,
            None => '\0',
        };
        b += 1;
    }
    table
}

/// [`byte_to_char_table`], computed once.
pub(crate) const BYTE_TO_CHAR: [char; 256] = byte_to_char_table();

/// The 68 bytes GPT-2 remaps to `U+0100..=U+0143`, in that order.
const REMAPPED: [u8; 68] = {
    let mut out = [0u8; 68];
    let mut n = 0;
    let mut b = 0usize;
    while b < 256 {
        if BYTE_TO_CHAR[b] as u32 >= 0x100 {
            out[n] = b as u8;
            n += 1;
        }
        b += 1;
    }
    out
};

/// The inverse of [`BYTE_TO_CHAR`]: the byte a GPT-2 byte character stands for.
#[inline]
pub(crate) fn char_to_byte(c: char) -> Option<u8> {
    let cp = c as u32;
    match cp {
        0x21..=0x7E | 0xA1..=0xAC | 0xAE..=0xFF => Some(cp as u8),
        0x100..=0x143 => Some(REMAPPED[(cp - 0x100) as usize]),
        _ => None,
    }
}
