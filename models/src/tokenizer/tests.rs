//! Unit tests: the class table, the pre-tokenizer matchers and the byte table.

use super::pretokenize::{Step, split};
use super::unicode::{self, BYTE_TO_CHAR, LETTER, NUMBER, PUNCTUATION, WHITESPACE, char_to_byte};

/// The words `steps` cut `text` into.
fn words(steps: &[Step], text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let table = unicode::table();
    let classes: Vec<u8> = chars.iter().map(|&c| table[c as usize]).collect();
    split(steps, &chars, &classes)
        .into_iter()
        .map(|(a, b)| chars[a..b].iter().collect())
        .collect()
}

const SMOLLM: &[Step] = &[Step::EachNumber, Step::Gpt2];
const GPT2: &[Step] = &[Step::Gpt2];
const LLAMA3: &[Step] = &[Step::Llama3];
const DEFAULT: &[Step] = &[
    Step::PunctuationRuns,
    Step::Gpt2,
    Step::NumberRuns,
    Step::AsciiDigitTriples,
];

#[test]
fn class_table_matches_llama_cpp_on_samples() {
    let t = unicode::table();
    let class = |c: char| t[c as usize];
    for c in ['a', 'Z', 'é', 'ß', 'Ω', 'ж', '中', 'ㄱ', 'ª'] {
        assert_eq!(class(c), LETTER, "{c:?}");
    }
    // Nd, Nl and No are all `\p{N}`.
    for c in ['0', '9', '٣', '²', '½', 'Ⅻ', '①'] {
        assert_eq!(class(c), NUMBER, "{c:?}");
    }
    for c in ['!', '.', '_', '«', '¿', '、', '—'] {
        assert_eq!(class(c), PUNCTUATION, "{c:?}");
    }
    // `White_Space`: 0x09..=0x0D, space, NEL, NBSP, ... but not the 0x1C..=0x1F separators,
    // nor the zero-width space.
    for c in [
        '\t', '\n', '\x0B', '\x0C', '\r', ' ', '\u{85}', '\u{A0}', '\u{2009}', '\u{3000}',
    ] {
        assert_eq!(class(c), WHITESPACE, "{c:?}");
    }
    // Symbols, marks, controls and unassigned code points are all "other".
    for c in [
        '$',
        '+',
        '`',
        '€',
        '\u{301}',
        '\u{1F600}',
        '\x1C',
        '\u{200B}',
        '\u{378}',
    ] {
        assert_eq!(class(c), 0, "{c:?}");
    }
    // Added in Unicode 16.0 (Cyrillic TJE, Garay): not in llama.cpp's 15.1 table.
    assert_eq!(class('\u{1C89}'), 0);
    assert_eq!(class('\u{10D50}'), 0);
    // Added in Unicode 15.1 (CJK Extension I): a letter.
    assert_eq!(class('\u{2EBF0}'), LETTER);
}

#[test]
fn byte_table_is_gpt2s_and_inverts() {
    assert_eq!(BYTE_TO_CHAR[b' ' as usize], 'Ġ');
    assert_eq!(BYTE_TO_CHAR[b'\n' as usize], 'Ċ');
    assert_eq!(BYTE_TO_CHAR[b'a' as usize], 'a');
    assert_eq!(BYTE_TO_CHAR[0xAD], 'Ń');
    assert_eq!(BYTE_TO_CHAR[0], 'Ā');
    for b in 0..=255u8 {
        assert_eq!(char_to_byte(BYTE_TO_CHAR[b as usize]), Some(b));
    }
    let distinct: std::collections::HashSet<char> = BYTE_TO_CHAR.iter().copied().collect();
    assert_eq!(distinct.len(), 256);
    assert_eq!(char_to_byte('中'), None);
    assert_eq!(char_to_byte(' '), None);
}

#[test]
fn gpt2_contractions_are_case_sensitive() {
    assert_eq!(words(GPT2, "it's"), ["it", "'s"]);
    assert_eq!(words(GPT2, "IT'S"), ["IT", "'", "S"]);
    assert_eq!(
        words(GPT2, "we're they'll I'd"),
        ["we", "'re", " they", "'ll", " I", "'d"]
    );
    assert_eq!(words(GPT2, "'"), ["'"]);
    assert_eq!(words(GPT2, "''s"), ["''", "s"]);
}

#[test]
fn gpt2_whitespace_leaves_the_last_space_to_the_next_word() {
    assert_eq!(words(GPT2, "a   b"), ["a", "  ", " b"]);
    assert_eq!(words(GPT2, "a\n\nb"), ["a", "\n", "\n", "b"]);
    assert_eq!(words(GPT2, "a\n\n\nb"), ["a", "\n\n", "\n", "b"]);
    assert_eq!(words(GPT2, "a \nb"), ["a", " ", "\n", "b"]);
    // At the end of the text the whole run is one word.
    assert_eq!(words(GPT2, "a  "), ["a", "  "]);
    assert_eq!(words(GPT2, " \r\n"), [" \r\n"]);
    // A leading space joins letters, numbers and punctuation, but not other whitespace.
    assert_eq!(
        words(GPT2, " a 1 ! \tb"),
        [" a", " 1", " !", " ", "\t", "b"]
    );
    // NBSP is whitespace but not the space of ` ?`.
    assert_eq!(words(GPT2, "a\u{A0}b"), ["a", "\u{A0}", "b"]);
}

#[test]
fn gpt2_classes_follow_unicode_categories() {
    assert_eq!(words(GPT2, "naïve café"), ["naïve", " café"]);
    assert_eq!(words(GPT2, "x²+½"), ["x", "²", "+", "½"]);
    assert_eq!(words(GPT2, "$10.5€"), ["$", "10", ".", "5", "€"]);
    assert_eq!(words(GPT2, "hi😀😀!"), ["hi", "😀😀!"]);
    // A combining mark is not a letter: it splits the word.
    assert_eq!(words(GPT2, "e\u{301}te"), ["e", "\u{301}", "te"]);
}

#[test]
fn smollm_splits_every_number_character() {
    assert_eq!(
        words(SMOLLM, "in 2024, ½"),
        ["in", " ", "2", "0", "2", "4", ",", " ", "½"]
    );
    // Pieces end at digits, so `\s+(?!\S)` sees the end of a piece.
    assert_eq!(words(SMOLLM, "a  1"), ["a", "  ", "1"]);
    assert_eq!(words(SMOLLM, "x1y"), ["x", "1", "y"]);
}

#[test]
fn llama3_matcher() {
    assert_eq!(words(LLAMA3, "IT'S 12345"), ["IT", "'S", " ", "123", "45"]);
    assert_eq!(words(LLAMA3, "(hello) world"), ["(hello", ")", " world"]);
    assert_eq!(words(LLAMA3, "a.\n\nb"), ["a", ".\n\n", "b"]);
    assert_eq!(words(LLAMA3, "a  \n b"), ["a", "  \n", " b"]);
    assert_eq!(words(LLAMA3, "a "), ["a", " "]);
}

#[test]
fn default_pre_tokenizer() {
    assert_eq!(
        words(DEFAULT, "a+b=12345!"),
        ["a", "+", "b", "=", "123", "45", "!"]
    );
    assert_eq!(words(DEFAULT, "x `y`"), ["x", " `", "y", "`"]);
}

#[test]
fn splits_cover_the_text() {
    let text = "Hello, wörld!  It's 2024\t\n\n  ok?? ½ 😀 \u{A0}end ";
    for steps in [SMOLLM, GPT2, LLAMA3, DEFAULT] {
        let ws = words(steps, text);
        assert!(ws.iter().all(|w| !w.is_empty()));
        assert_eq!(ws.concat(), text, "{steps:?}");
    }
}

#[test]
fn tokenizer_is_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<super::Tokenizer>();
}
