//! Dot products of one query with many stored rows: the only arithmetic of
//! retrieval, shared by the exact scan, the IVF probes and k-means.
//!
//! Rows are stored padded with zeros to whole groups of eight floats
//! ([`Lane`]), so the loops have a constant inner width and vectorize. The code
//! is plain Rust compiled twice: once for the baseline instruction set and once
//! inside an AVX2 entry point chosen at run time, so the binary is not tied to
//! the build machine. Multiplications and additions are not fused, and every
//! row is summed in the same order whatever its position in a block, so a score
//! is bit-for-bit the same on every path: the exact index and the IVF lists
//! agree exactly on the score of an item.
//!
//! Written here rather than on the iALS kernels (`ials::simd`), which are
//! private to training; this needs only one loop and no intrinsics.

/// Eight `f32` lanes, aligned to 32 bytes: the storage unit of every stored
/// row, so that vector loads never straddle a cache line.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[repr(C, align(32))]
pub(crate) struct Lane(pub(crate) [f32; 8]);

/// Rows processed together: independent accumulators hide the latency of the
/// additions without changing any row's summation order.
const BLOCK: usize = 4;

/// Copies a row-major `n × dim` array into rows of `dim.div_ceil(8)` lanes
/// padded with zeros.
pub(crate) fn pad_rows(vectors: &[f32], dim: usize) -> Vec<Lane> {
    let lanes = dim.div_ceil(8);
    if dim == 0 {
        return Vec::new();
    }
    let mut out = vec![Lane::default(); vectors.len() / dim * lanes];
    for (row, padded) in vectors.chunks_exact(dim).zip(out.chunks_exact_mut(lanes)) {
        write_row(padded, row);
    }
    out
}

/// Writes `values` into the padded row `lanes` (padding zeroed).
pub(crate) fn write_row(lanes: &mut [Lane], values: &[f32]) {
    for (k, lane) in lanes.iter_mut().enumerate() {
        lane.0 = std::array::from_fn(|j| values.get(k * 8 + j).copied().unwrap_or(0.0));
    }
}

/// The first `dim` values of a padded row.
pub(crate) fn unpad(lanes: &[Lane], dim: usize) -> impl Iterator<Item = f32> + '_ {
    lanes.iter().flat_map(|l| l.0).take(dim)
}

/// `out[r] = rows[r] · query` for the first `out.len()` rows of `rows`
/// (`lanes` groups each).
pub(crate) fn dots(rows: &[Lane], lanes: usize, query: &[Lane], out: &mut [f32]) {
    if lanes == 0 {
        out.fill(0.0);
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2") {
        // SAFETY: the running CPU has AVX2, the only requirement of the entry
        // point; the body itself is safe code.
        unsafe { dots_avx2(rows, lanes, query, out) };
        return;
    }
    dots_body(rows, lanes, query, out);
}

/// [`dots_body`] with AVX2 registers: the compiler's own vectorization of the
/// portable loop stays at 128 bits, so the blocks are written with intrinsics,
/// in the same order of operations (one multiply, then one add per lane; the
/// same horizontal sum), so that the scores are identical to the portable ones.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn dots_avx2(rows: &[Lane], lanes: usize, query: &[Lane], out: &mut [f32]) {
    use std::arch::x86_64::{
        _mm256_add_ps, _mm256_load_ps, _mm256_mul_ps, _mm256_setzero_ps, _mm256_storeu_ps,
    };
    let query = &query[..lanes];
    let n = out.len();
    let rows = &rows[..n * lanes];
    let full = n / BLOCK * BLOCK;
    for (block, out) in rows[..full * lanes]
        .chunks_exact(BLOCK * lanes)
        .zip(out.chunks_exact_mut(BLOCK))
    {
        let mut acc = [_mm256_setzero_ps(); BLOCK];
        for (l, q) in query.iter().enumerate() {
            // SAFETY: `Lane` is 32-byte aligned and holds eight floats.
            let q = unsafe { _mm256_load_ps(q.0.as_ptr()) };
            for (r, acc) in acc.iter_mut().enumerate() {
                // SAFETY: as above.
                let x = unsafe { _mm256_load_ps(block[r * lanes + l].0.as_ptr()) };
                *acc = _mm256_add_ps(*acc, _mm256_mul_ps(x, q));
            }
        }
        for (o, acc) in out.iter_mut().zip(acc) {
            let mut sums = [0f32; 8];
            // SAFETY: `sums` has room for eight floats (unaligned store).
            unsafe { _mm256_storeu_ps(sums.as_mut_ptr(), acc) };
            *o = horizontal_sum(sums);
        }
    }
    dots_body(&rows[full * lanes..], lanes, query, &mut out[full..]);
}

#[inline(always)]
fn dots_body(rows: &[Lane], lanes: usize, query: &[Lane], out: &mut [f32]) {
    let query = &query[..lanes];
    let n = out.len();
    let rows = &rows[..n * lanes];
    let full = n / BLOCK * BLOCK;
    for (block, out) in rows[..full * lanes]
        .chunks_exact(BLOCK * lanes)
        .zip(out.chunks_exact_mut(BLOCK))
    {
        let (r0, rest) = block.split_at(lanes);
        let (r1, rest) = rest.split_at(lanes);
        let (r2, r3) = rest.split_at(lanes);
        let mut acc = [[0f32; 8]; BLOCK];
        for ((((q, x0), x1), x2), x3) in query.iter().zip(r0).zip(r1).zip(r2).zip(r3) {
            acc[0] = mul_add(x0.0, q.0, acc[0]);
            acc[1] = mul_add(x1.0, q.0, acc[1]);
            acc[2] = mul_add(x2.0, q.0, acc[2]);
            acc[3] = mul_add(x3.0, q.0, acc[3]);
        }
        for (o, acc) in out.iter_mut().zip(acc) {
            *o = horizontal_sum(acc);
        }
    }
    for (row, o) in rows[full * lanes..]
        .chunks_exact(lanes)
        .zip(&mut out[full..])
    {
        let mut acc = [0f32; 8];
        for (x, q) in row.iter().zip(query) {
            acc = mul_add(x.0, q.0, acc);
        }
        *o = horizontal_sum(acc);
    }
}

/// `a · b + c` lane by lane (not fused, so every path rounds alike).
#[inline(always)]
fn mul_add(a: [f32; 8], b: [f32; 8], c: [f32; 8]) -> [f32; 8] {
    std::array::from_fn(|j| c[j] + a[j] * b[j])
}

/// Sum of eight lanes in a fixed order.
#[inline(always)]
fn horizontal_sum(v: [f32; 8]) -> f32 {
    ((v[0] + v[4]) + (v[2] + v[6])) + ((v[1] + v[5]) + (v[3] + v[7]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dot(row: &[Lane], query: &[Lane]) -> f32 {
        let mut out = [0f32];
        dots(row, row.len(), query, &mut out);
        out[0]
    }

    #[test]
    fn block_and_tail_rows_score_alike() {
        let dim = 13;
        let values: Vec<f32> = (0..7 * dim).map(|v| (v as f32 * 0.37).sin()).collect();
        let rows = pad_rows(&values, dim);
        let lanes = dim.div_ceil(8);
        let query = pad_rows(&values[2 * dim..3 * dim], dim);
        let mut all = vec![0f32; 7];
        dots(&rows, lanes, &query, &mut all);
        for r in 0..7 {
            let single = dot(&rows[r * lanes..(r + 1) * lanes], &query);
            assert_eq!(single.to_bits(), all[r].to_bits());
            let naive: f32 = (0..dim)
                .map(|j| values[r * dim + j] * values[2 * dim + j])
                .sum();
            assert!((naive - single).abs() < 1e-5, "{naive} vs {single}");
        }
        dots_body(&rows, lanes, &query, &mut all[..5]);
        assert_eq!(
            all[4].to_bits(),
            dot(&rows[4 * lanes..5 * lanes], &query).to_bits()
        );
        assert_eq!(
            unpad(&rows[lanes..2 * lanes], dim).collect::<Vec<_>>(),
            &values[dim..2 * dim]
        );
    }
}
