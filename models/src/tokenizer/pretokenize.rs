//! Pre-tokenization: cutting text into the words that BPE then merges, exactly as llama.cpp's
//! `unicode_regex_split` does for the supported pre-tokenizer types.
//!
//! llama.cpp applies a list of regexes in turn; each one re-splits every piece the previous ones
//! produced, and both its matches and the text between matches become pieces. The GPT-2 and
//! LLaMA-3 patterns run through hand-written matchers (`unicode_regex_split_custom_gpt2` /
//! `_llama3`) that treat the end of the current piece as the end of the text; the others run
//! through `std::regex` on a text where every non-ASCII code point is collapsed to one byte
//! naming its class. Each step below is the equivalent matcher written out, so no regex
//! engine's Unicode semantics can creep in: only the class table of [`super::unicode`] matters.
//!
//! Pieces are half-open ranges of code-point indices.

use super::unicode::{LETTER, NUMBER, PUNCTUATION, WHITESPACE};

/// A half-open range of code-point indices.
pub(crate) type Piece = (usize, usize);

/// One regex of a llama.cpp pre-tokenizer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// `\p{N}`: every number character on its own.
    EachNumber,
    /// `\p{N}+`: runs of number characters.
    NumberRuns,
    /// `[0-9][0-9][0-9]`: ASCII digit triples, left to right.
    AsciiDigitTriples,
    /// `[\p{P}\$\+<=>\^~\|]+`: runs of punctuation (and the ASCII symbols listed).
    PunctuationRuns,
    /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)` (GPT-2), with
    /// llama.cpp's custom matcher (case-sensitive contractions).
    Gpt2,
    /// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
    /// ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+` (LLaMA 3), with llama.cpp's custom
    /// matcher.
    Llama3,
}

/// Applies `steps` in order to the whole text (`chars`, with `classes[i]` the class bits of
/// `chars[i]`), returning the final pieces.
pub(crate) fn split(steps: &[Step], chars: &[char], classes: &[u8]) -> Vec<Piece> {
    debug_assert_eq!(chars.len(), classes.len());
    let mut pieces = if chars.is_empty() {
        Vec::new()
    } else {
        vec![(0, chars.len())]
    };
    let mut next = Vec::with_capacity(chars.len() / 4 + 1);
    for &step in steps {
        next.clear();
        let text = Text { chars, classes };
        for &(start, end) in &pieces {
            match step {
                Step::EachNumber => runs(&text, start, end, &mut next, 1, |c, f| {
                    is_collapsed_number(c, f)
                }),
                Step::NumberRuns => runs(&text, start, end, &mut next, usize::MAX, |c, f| {
                    is_collapsed_number(c, f)
                }),
                Step::AsciiDigitTriples => digit_triples(&text, start, end, &mut next),
                Step::PunctuationRuns => runs(
                    &text,
                    start,
                    end,
                    &mut next,
                    usize::MAX,
                    is_collapsed_punctuation,
                ),
                Step::Gpt2 => gpt2(&text, start, end, &mut next),
                Step::Llama3 => llama3(&text, start, end, &mut next),
            }
        }
        std::mem::swap(&mut pieces, &mut next);
    }
    pieces
}

/// The text being split.
struct Text<'a> {
    chars: &'a [char],
    classes: &'a [u8],
}

/// `\p{N}` after llama.cpp's collapsing: ASCII digits, and non-ASCII, non-whitespace numbers.
#[inline]
fn is_collapsed_number(c: char, class: u8) -> bool {
    if c.is_ascii() {
        c.is_ascii_digit()
    } else {
        class & WHITESPACE == 0 && class & NUMBER != 0
    }
}

/// `[\p{P}\$\+<=>\^~\|]` after llama.cpp's collapsing: every ASCII punctuation or symbol
/// character but the backtick, and non-ASCII, non-whitespace punctuation.
#[inline]
fn is_collapsed_punctuation(c: char, class: u8) -> bool {
    if c.is_ascii() {
        c.is_ascii_punctuation() && c != '`'
    } else {
        class & WHITESPACE == 0 && class & PUNCTUATION != 0
    }
}

/// Emits, within `start..end`, the maximal runs of characters matching `pred` cut into chunks
/// of at most `max_len`, and the stretches between them (a `std::regex_iterator` split).
fn runs(
    text: &Text<'_>,
    start: usize,
    end: usize,
    out: &mut Vec<Piece>,
    max_len: usize,
    pred: impl Fn(char, u8) -> bool,
) {
    let mut gap_start = start;
    let mut pos = start;
    while pos < end {
        if pred(text.chars[pos], text.classes[pos]) {
            if gap_start < pos {
                out.push((gap_start, pos));
            }
            let run_start = pos;
            while pos < end && pos - run_start < max_len && pred(text.chars[pos], text.classes[pos])
            {
                pos += 1;
            }
            out.push((run_start, pos));
            gap_start = pos;
        } else {
            pos += 1;
        }
    }
    if gap_start < end {
        out.push((gap_start, end));
    }
}

/// `[0-9][0-9][0-9]` with `std::regex_iterator`: leftmost triples, non-overlapping.
fn digit_triples(text: &Text<'_>, start: usize, end: usize, out: &mut Vec<Piece>) {
    let digit = |i: usize| i < end && text.chars[i].is_ascii_digit();
    let mut gap_start = start;
    let mut pos = start;
    while pos < end {
        if digit(pos) && digit(pos + 1) && digit(pos + 2) {
            if gap_start < pos {
                out.push((gap_start, pos));
            }
            out.push((pos, pos + 3));
            pos += 3;
            gap_start = pos;
        } else {
            pos += 1;
        }
    }
    if gap_start < end {
        out.push((gap_start, end));
    }
}

/// Character access limited to one piece, as llama.cpp's `_get_cpt` / `_get_flags`: outside the
/// piece there is no character and no class at all (not even "other").
struct Window<'a> {
    text: &'a Text<'a>,
    end: usize,
}

impl Window<'_> {
    /// The character at `pos`, if inside the piece.
    #[inline]
    fn char(&self, pos: usize) -> Option<char> {
        (pos < self.end).then(|| self.text.chars[pos])
    }

    /// The class bits at `pos`, if inside the piece (`Some(0)` is "other").
    #[inline]
    fn class(&self, pos: usize) -> Option<u8> {
        (pos < self.end).then(|| self.text.classes[pos])
    }

    #[inline]
    fn is(&self, pos: usize, bit: u8) -> bool {
        self.class(pos).is_some_and(|c| c & bit != 0)
    }

    /// `[^\s\p{L}\p{N}]`: inside the piece and neither whitespace, letter nor number.
    #[inline]
    fn is_other(&self, pos: usize) -> bool {
        self.class(pos)
            .is_some_and(|c| c & (WHITESPACE | LETTER | NUMBER) == 0)
    }

    /// Length of the whitespace run starting at `pos`.
    #[inline]
    fn whitespace_run(&self, pos: usize) -> usize {
        let mut n = 0;
        while self.is(pos + n, WHITESPACE) {
            n += 1;
        }
        n
    }
}

/// The contraction at `pos` (`'s`, `'t`, `'m`, `'d`, `'re`, `'ve`, `'ll`), its length if any;
/// `fold` lower-cases ASCII letters first (LLaMA 3's `(?i:...)`).
#[inline]
fn contraction(w: &Window<'_>, pos: usize, fold: bool) -> Option<usize> {
    if w.char(pos) != Some('\'') || pos + 1 >= w.end {
        return None;
    }
    let at = |i: usize| {
        let c = w.char(i)?;
        Some(if fold { c.to_ascii_lowercase() } else { c })
    };
    let next = at(pos + 1)?;
    if matches!(next, 's' | 't' | 'm' | 'd') {
        return Some(2);
    }
    if pos + 2 < w.end {
        let after = at(pos + 2)?;
        if matches!((next, after), ('r', 'e') | ('v', 'e') | ('l', 'l')) {
            return Some(3);
        }
    }
    None
}

/// llama.cpp `unicode_regex_split_custom_gpt2` over one piece.
fn gpt2(text: &Text<'_>, start: usize, end: usize, out: &mut Vec<Piece>) {
    let w = Window { text, end };
    let mut pos = start;
    while pos < end {
        let token_start = pos;
        let c = text.chars[pos];
        if let Some(len) = contraction(&w, pos, false) {
            pos += len;
        } else {
            // ` ?X+` looks at the character after a leading space.
            let lead = usize::from(c == ' ');
            let first = pos + lead;
            if w.is(first, LETTER) {
                pos = first;
                while w.is(pos, LETTER) {
                    pos += 1;
                }
            } else if w.is(first, NUMBER) {
                pos = first;
                while w.is(pos, NUMBER) {
                    pos += 1;
                }
            } else if w.is_other(first) {
                pos = first;
                while w.is_other(pos) {
                    pos += 1;
                }
            } else {
                let n = w.whitespace_run(pos);
                if n > 1 && pos + n < end {
                    // `\s+(?!\S)`: leave the last whitespace to the next word.
                    pos += n - 1;
                } else if n > 0 {
                    pos += n;
                } else {
                    pos += 1;
                }
            }
        }
        out.push((token_start, pos));
    }
}

/// llama.cpp `unicode_regex_split_custom_llama3` over one piece.
fn llama3(text: &Text<'_>, start: usize, end: usize, out: &mut Vec<Piece>) {
    let w = Window { text, end };
    let mut pos = start;
    while pos < end {
        let token_start = pos;
        let c = text.chars[pos];
        let class = text.classes[pos];
        if let Some(len) = contraction(&w, pos, true) {
            pos += len;
            out.push((token_start, pos));
            continue;
        }
        // `[^\r\n\p{L}\p{N}]?\p{L}+`
        if !(c == '\r' || c == '\n' || class & NUMBER != 0)
            && (class & LETTER != 0 || w.is(pos + 1, LETTER))
        {
            pos += 1;
            while w.is(pos, LETTER) {
                pos += 1;
            }
            out.push((token_start, pos));
            continue;
        }
        // `\p{N}{1,3}`
        if class & NUMBER != 0 {
            let mut run_start = pos;
            while w.is(pos, NUMBER) {
                pos += 1;
                if pos - run_start >= 3 {
                    out.push((run_start, pos));
                    run_start = pos;
                }
            }
            if run_start < pos {
                out.push((run_start, pos));
            }
            continue;
        }
        // ` ?[^\s\p{L}\p{N}]+[\r\n]*` (llama.cpp tests the leading character's own class for
        // "inside the piece", which always holds, so a lone trailing space also lands here).
        let first = pos + usize::from(c == ' ');
        let first_ok = match w.class(first) {
            Some(f) => f & (WHITESPACE | LETTER | NUMBER) == 0,
            None => true,
        };
        if first_ok {
            pos = first;
            while w.is_other(pos) {
                pos += 1;
            }
            while matches!(w.char(pos), Some('\r' | '\n')) {
                pos += 1;
            }
            out.push((token_start, pos));
            continue;
        }
        let mut n = 0;
        let mut last_newline_end = None;
        while w.is(pos + n, WHITESPACE) {
            if matches!(text.chars[pos + n], '\r' | '\n') {
                last_newline_end = Some(pos + n + 1);
            }
            n += 1;
        }
        if let Some(newline_end) = last_newline_end {
            // `\s*[\r\n]+`
            pos = newline_end;
        } else if n > 1 && pos + n < end {
            // `\s+(?!\S)`
            pos += n - 1;
        } else if n > 0 {
            pos += n;
        } else {
            pos += 1;
        }
        out.push((token_start, pos));
    }
}
