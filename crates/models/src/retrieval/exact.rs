//! Exact top-k by scoring every item: the reference, and the right choice for
//! catalogues small enough that a full scan is cheap.

use super::best::Best;
use super::kernel::{dots, pad_rows, write_row, Lane};
use super::Retriever;

/// Rows scored per kernel call: the scores stay in L1 while they are filtered.
const CHUNK: usize = 256;

/// Scores the padded rows `rows` against `query` and offers each to `best`,
/// row `r` under the item id `id_of(r)`; `allow` is asked only for items that
/// would be kept.
pub(crate) fn scan(
    rows: &[Lane],
    lanes: usize,
    id_of: impl Fn(usize) -> u32,
    query: &[Lane],
    best: &mut Best,
    allow: &dyn Fn(u32) -> bool,
) {
    if lanes == 0 {
        return;
    }
    let n = rows.len() / lanes;
    let mut scores = [0f32; CHUNK];
    for start in (0..n).step_by(CHUNK) {
        let m = CHUNK.min(n - start);
        let scores = &mut scores[..m];
        dots(
            &rows[start * lanes..(start + m) * lanes],
            lanes,
            query,
            scores,
        );
        for (r, &score) in scores.iter().enumerate() {
            let id = id_of(start + r);
            if best.admits(id, score) && allow(id) {
                best.push(id, score);
            }
        }
    }
}

/// Pads a query to whole lanes, checking its length.
pub(crate) fn pad_query(query: &[f32], dim: usize) -> Vec<Lane> {
    assert_eq!(
        query.len(),
        dim,
        "query has {} values but the index holds {dim}-dimensional vectors",
        query.len()
    );
    let mut padded = vec![Lane::default(); dim.div_ceil(8)];
    write_row(&mut padded, query);
    padded
}

/// Brute-force maximum inner product search: every item scored with the SIMD
/// kernel, a few rows at a time.
///
/// Exists because below a few hundred thousand items a scan costs well under
/// a millisecond and is always right, with no build time; it is also the
/// yardstick the approximate index is measured against. Holds its own padded
/// copy of the vectors, so the caller's buffer can be dropped.
#[derive(Debug, Clone)]
pub struct ExactIndex {
    dim: usize,
    lanes: usize,
    len: usize,
    rows: Vec<Lane>,
}

impl ExactIndex {
    /// Indexes `vectors`, row-major `n × dim` (item `i` is row `i`).
    ///
    /// Values are assumed finite (no NaN). Panics if `vectors.len()` is not a
    /// multiple of `dim`; with `dim == 0` the index is empty.
    pub fn new(vectors: &[f32], dim: usize) -> Self {
        let len = check_shape(vectors, dim);
        Self {
            dim,
            lanes: dim.div_ceil(8),
            len,
            rows: pad_rows(vectors, dim),
        }
    }
}

/// The number of rows of a row-major `? × dim` array; panics on a ragged one.
pub(crate) fn check_shape(vectors: &[f32], dim: usize) -> usize {
    if dim == 0 {
        return 0;
    }
    assert!(
        vectors.len().is_multiple_of(dim),
        "{} values do not form rows of {dim}",
        vectors.len()
    );
    vectors.len() / dim
}

impl Retriever for ExactIndex {
    fn search(&self, query: &[f32], k: usize, allow: &dyn Fn(u32) -> bool) -> Vec<(u32, f32)> {
        let query = pad_query(query, self.dim);
        if k == 0 || self.len == 0 {
            return Vec::new();
        }
        let mut best = Best::new(k.min(self.len));
        scan(
            &self.rows,
            self.lanes,
            |r| r as u32,
            &query,
            &mut best,
            allow,
        );
        best.into_sorted()
    }

    fn len(&self) -> usize {
        self.len
    }

    fn dim(&self) -> usize {
        self.dim
    }

    fn kind(&self) -> &'static str {
        "exact"
    }

    fn memory_bytes(&self) -> usize {
        self.rows.capacity() * std::mem::size_of::<Lane>()
    }
}
