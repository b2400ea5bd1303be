//! Embedding fidelity: how far a precision policy moves an encoder's sentence embeddings
//! from a reference run (normally the `fp32` policy) — the encoder's counterpart of
//! perplexity and KL for the LLaMA model.
//!
//! For sentences `s_1 … s_n` with reference embeddings `r_i` and candidate embeddings
//! `c_i`:
//!
//! - **cosine**: `cos(r_i, c_i)`; reported as the mean and the minimum over sentences;
//! - **top-1 retrieval agreement**: the fraction of sentences whose nearest neighbour among
//!   the *other* sentences (by cosine similarity; ties to the lower index) is the same
//!   under the candidate as under the reference;
//! - **top-5 retrieval agreement**: the mean overlap `|N₅(r, i) ∩ N₅(c, i)| / 5` of the
//!   5-nearest-neighbour sets (fewer when there are fewer than 6 sentences).
//!
//! The sentences of the tables are the first `N` non-heading lines of the WikiText-2 test
//! split ([`corpus_sentences`]); calibration for sensitivity takes the last ones
//! ([`calibration_sentences`]), so the two never overlap when `N` plus the calibration count
//! is at most the number of lines.

use std::time::Instant;

use serde::Serialize;

use crate::bert::Encoder;
use crate::{Error, Result};

/// Neighbours compared by [`FidelityReport::top5_agreement`].
pub const TOP_K: usize = 5;

/// Whether a WikiText line is a heading (`= Title =`, `= = Section = =`).
fn is_heading(line: &str) -> bool {
    line.starts_with('=') && line.ends_with('=')
}

/// The non-empty, non-heading lines of `text`, trimmed, in order.
pub fn sentence_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !is_heading(l))
}

/// The first `n` non-empty, non-heading lines of `text` (trimmed).
///
/// # Errors
///
/// [`Error::InvalidArgument`] if `n` is 0 or the text has fewer such lines.
pub fn corpus_sentences(text: &str, n: usize) -> Result<Vec<String>> {
    let out: Vec<String> = sentence_lines(text).take(n).map(str::to_owned).collect();
    check_count(out.len(), n)?;
    Ok(out)
}

/// The last `n` non-empty, non-heading lines of `text` (trimmed), in corpus order, after
/// checking that they do not overlap the first `scored` ones.
///
/// # Errors
///
/// [`Error::InvalidArgument`] if `n` is 0, or `n + scored` exceeds the lines available.
pub fn calibration_sentences(text: &str, n: usize, scored: usize) -> Result<Vec<String>> {
    let all: Vec<&str> = sentence_lines(text).collect();
    check_count(all.len(), n)?;
    if n.saturating_add(scored) > all.len() {
        return Err(Error::invalid(
            "calibration sentences",
            format!(
                "the last {n} of {} lines overlap the first {scored} scored ones",
                all.len()
            ),
        ));
    }
    Ok(all[all.len() - n..]
        .iter()
        .map(|s| (*s).to_owned())
        .collect())
}

fn check_count(have: usize, n: usize) -> Result<()> {
    if n == 0 {
        return Err(Error::invalid("sentences", "need at least 1"));
    }
    if have < n {
        return Err(Error::invalid(
            "sentences",
            format!("asked for {n}, the text has {have} non-heading lines"),
        ));
    }
    Ok(())
}

/// Cosine similarity in `f64`; 0 when either vector is zero.
///
/// # Panics
///
/// If the lengths differ.
pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len(), "cosine of vectors of different lengths");
    let (mut ab, mut aa, mut bb) = (0.0f64, 0.0f64, 0.0f64);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (f64::from(x), f64::from(y));
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    if aa == 0.0 || bb == 0.0 {
        0.0
    } else {
        ab / (aa.sqrt() * bb.sqrt())
    }
}

/// For each embedding, the indices of its `k` most similar *other* embeddings, most similar
/// first (cosine; ties to the lower index).
pub fn nearest_neighbours(e: &[Vec<f32>], k: usize) -> Vec<Vec<usize>> {
    let n = e.len();
    let mut sim = vec![0.0f64; n * n];
    for i in 0..n {
        for j in i + 1..n {
            let s = cosine(&e[i], &e[j]);
            sim[i * n + j] = s;
            sim[j * n + i] = s;
        }
    }
    (0..n)
        .map(|i| {
            let mut others: Vec<usize> = (0..n).filter(|&j| j != i).collect();
            others.sort_by(|&a, &b| sim[i * n + b].total_cmp(&sim[i * n + a]).then(a.cmp(&b)));
            others.truncate(k);
            others
        })
        .collect()
}

/// How close candidate embeddings are to reference ones (see the module docs).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FidelityReport {
    /// Sentences compared.
    pub sentences: usize,
    /// Mean cosine similarity to the reference.
    pub mean_cosine: f64,
    /// Smallest cosine similarity to the reference.
    pub min_cosine: f64,
    /// Fraction of sentences whose nearest neighbour is the reference's.
    pub top1_agreement: f64,
    /// Mean overlap of the 5-nearest-neighbour sets with the reference's.
    pub top5_agreement: f64,
}

/// Compares `candidate` with `reference` embeddings of the same sentences.
///
/// # Errors
///
/// [`Error::InvalidArgument`] if the counts differ, are zero, or two paired embeddings
/// differ in length.
pub fn compare(reference: &[Vec<f32>], candidate: &[Vec<f32>]) -> Result<FidelityReport> {
    let n = reference.len();
    if n == 0 || candidate.len() != n {
        return Err(Error::invalid(
            "embeddings",
            format!("{n} reference and {} candidate embeddings", candidate.len()),
        ));
    }
    if let Some(i) = (0..n).find(|&i| reference[i].len() != candidate[i].len()) {
        return Err(Error::invalid(
            "embeddings",
            format!(
                "sentence {i}: {} vs {} dimensions",
                reference[i].len(),
                candidate[i].len()
            ),
        ));
    }
    let cos: Vec<f64> = reference
        .iter()
        .zip(candidate)
        .map(|(r, c)| cosine(r, c))
        .collect();
    let k = TOP_K.min(n.saturating_sub(1));
    let (nr, nc) = (
        nearest_neighbours(reference, k),
        nearest_neighbours(candidate, k),
    );
    let (mut top1, mut topk) = (0usize, 0usize);
    for (a, b) in nr.iter().zip(&nc) {
        top1 += usize::from(a.first() == b.first());
        topk += a.iter().filter(|x| b.contains(x)).count();
    }
    Ok(FidelityReport {
        sentences: n,
        mean_cosine: cos.iter().sum::<f64>() / n as f64,
        min_cosine: cos.iter().copied().fold(f64::INFINITY, f64::min),
        top1_agreement: top1 as f64 / n as f64,
        top5_agreement: if k == 0 {
            1.0
        } else {
            topk as f64 / (n * k) as f64
        },
    })
}

/// Embeddings of `sentences` by `enc`, with the throughput measured.
#[derive(Clone, Debug)]
pub struct Timed {
    /// One embedding per sentence.
    pub embeddings: Vec<Vec<f32>>,
    /// Tokens encoded (special tokens included, after truncation).
    pub tokens: usize,
    /// Wall time of tokenizing and encoding, seconds.
    pub seconds: f64,
}

impl Timed {
    /// Sentences per second.
    pub fn sentences_per_second(&self) -> f64 {
        self.embeddings.len() as f64 / self.seconds.max(1e-12)
    }
}

/// Embeds `sentences` with `enc`, timing it.
///
/// # Errors
///
/// [`Encoder::embed`]'s errors.
pub fn embed_timed<S: AsRef<str>>(enc: &Encoder, sentences: &[S]) -> Result<Timed> {
    let start = Instant::now();
    let ids = sentences
        .iter()
        .map(|s| enc.tokenizer().encode(s.as_ref()))
        .collect::<Result<Vec<_>>>()?;
    let embeddings = enc.embed_ids(&ids)?;
    Ok(Timed {
        embeddings,
        tokens: ids.iter().map(Vec::len).sum(),
        seconds: start.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headings_and_blank_lines_are_skipped() {
        let text = " = Title = \n\n A first line . \n = = Section = = \n Second \n\n Third\n";
        assert_eq!(
            corpus_sentences(text, 2).unwrap(),
            ["A first line .", "Second"]
        );
        assert_eq!(calibration_sentences(text, 1, 2).unwrap(), ["Third"]);
        assert!(calibration_sentences(text, 2, 2).is_err());
        assert!(corpus_sentences(text, 4).is_err());
        assert!(corpus_sentences(text, 0).is_err());
    }

    #[test]
    fn identical_embeddings_agree_fully() {
        let e: Vec<Vec<f32>> = (0..8)
            .map(|i| (0..4).map(|j| ((i * 7 + j * 3) % 5) as f32 - 2.0).collect())
            .collect();
        let r = compare(&e, &e).unwrap();
        assert_eq!(
            (r.top1_agreement.to_bits(), r.top5_agreement.to_bits()),
            (1f64.to_bits(), 1f64.to_bits())
        );
        assert!((r.mean_cosine - 1.0).abs() < 1e-12 && (r.min_cosine - 1.0).abs() < 1e-12);
    }

    #[test]
    fn a_swapped_neighbour_is_counted() {
        // 0's nearest is 1 in the reference, 2 in the candidate.
        let r = vec![
            vec![1.0, 0.0],
            vec![0.9, 0.1],
            vec![0.7, 0.3],
            vec![-1.0, 0.2],
        ];
        let mut c = r.clone();
        c[1] = vec![0.5, 0.5];
        let n = nearest_neighbours(&r, 1);
        assert_eq!(n[0], [1]);
        assert_eq!(nearest_neighbours(&c, 1)[0], [2]);
        let rep = compare(&r, &c).unwrap();
        assert!(rep.top1_agreement < 1.0);
        assert!(rep.min_cosine < 0.95);
        assert_eq!(rep.sentences, 4);
        // k = min(5, n − 1) = 3: every set is all the others, so overlap is full.
        assert_eq!(rep.top5_agreement.to_bits(), 1f64.to_bits());
    }

    #[test]
    fn mismatched_inputs_are_errors() {
        assert!(compare(&[], &[]).is_err());
        assert!(compare(&[vec![1.0]], &[]).is_err());
        assert!(compare(&[vec![1.0]], &[vec![1.0, 2.0]]).is_err());
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 0.0]).to_bits(), 0f64.to_bits());
    }
}
