//! The explicit parallelism argument shared by every crate of the workspace.

use std::num::NonZeroUsize;

/// How much parallelism a kernel may use.
///
/// Every crate of the workspace takes this as an explicit argument instead of consulting a
/// hidden global setting (the convention of faer's `Par`). `Rayon(n)` splits the work into at
/// most `n` tasks and runs them on the *current* rayon pool: install your own
/// `rayon::ThreadPool` around the call to pin the threads.
///
/// ```
/// use numerics::Par;
/// assert_eq!(Par::Seq.degree(), 1);
/// assert_eq!(Par::rayon(4).degree(), 4);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Par {
    /// Run on the calling thread.
    #[default]
    Seq,
    /// Split into at most this many tasks on the current rayon pool.
    Rayon(NonZeroUsize),
}

impl Par {
    /// `Rayon(n)`, where `n == 0` means "as many tasks as the current rayon pool has threads".
    pub fn rayon(n: usize) -> Self {
        let n = if n == 0 {
            rayon::current_num_threads()
        } else {
            n
        };
        match NonZeroUsize::new(n) {
            Some(n) if n.get() > 1 => Par::Rayon(n),
            _ => Par::Seq,
        }
    }

    /// The number of tasks this setting splits work into (1 for [`Par::Seq`]).
    pub fn degree(self) -> usize {
        match self {
            Par::Seq => 1,
            Par::Rayon(n) => n.get(),
        }
    }

    /// The chunk length that splits `len` items into at most [`Par::degree`] chunks, each a
    /// multiple of `align` items long (except the last), and no shorter than `min_chunk`.
    ///
    /// Returns `len.max(1)` (one chunk) for [`Par::Seq`].
    pub fn chunk_len(self, len: usize, align: usize, min_chunk: usize) -> usize {
        let align = align.max(1);
        match self {
            Par::Seq => len.max(1),
            Par::Rayon(n) => {
                let per = len.div_ceil(n.get()).max(min_chunk).max(1);
                per.div_ceil(align) * align
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rayon_zero_and_one_mean_what_they_say() {
        assert_eq!(Par::rayon(1), Par::Seq);
        assert_eq!(Par::rayon(0).degree(), rayon::current_num_threads().max(1));
    }

    #[test]
    fn chunk_len_covers_input_in_at_most_degree_chunks() {
        for len in [0usize, 1, 7, 64, 1000, 1_000_003] {
            for n in 1..9 {
                let par = Par::rayon(n);
                let c = par.chunk_len(len, 64, 1);
                assert!(c >= 1);
                assert!(c.is_multiple_of(64) || par == Par::Seq);
                assert!(len.div_ceil(c) <= n.max(1), "len {len} n {n} chunk {c}");
            }
        }
    }
}
