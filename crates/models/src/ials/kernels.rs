//! The inner loops of iALS, written once over [`Simd`] and compiled per
//! instruction set.
//!
//! Every function here is `#[inline(always)]` so that it is compiled inside the
//! dispatched entry point (see [`super::simd`]). Rows are `lanes` groups of
//! eight floats; tiles of up to eight groups (64 floats) are kept in registers
//! with a constant width, so the loops unroll and nothing spills.

use super::simd::{flat, F16x8, F32x8, Simd};

/// Runs `$body` with `$w` bound to a constant tile width equal to `$n`
/// (1..=8), so that accumulator arrays have a size known at compile time.
macro_rules! with_width {
    ($n:expr, $w:ident => $body:expr) => {
        match $n {
            1 => {
                const $w: usize = 1;
                $body
            }
            2 => {
                const $w: usize = 2;
                $body
            }
            3 => {
                const $w: usize = 3;
                $body
            }
            4 => {
                const $w: usize = 4;
                $body
            }
            5 => {
                const $w: usize = 5;
                $body
            }
            6 => {
                const $w: usize = 6;
                $body
            }
            7 => {
                const $w: usize = 7;
                $body
            }
            _ => {
                const $w: usize = 8;
                $body
            }
        }
    };
}

/// `a · b` over whole rows.
#[inline(always)]
pub(crate) fn dot<S: Simd>(s: S, a: &[F32x8], b: &[F32x8]) -> f32 {
    let b = &b[..a.len()];
    let (mut even, mut odd) = (s.zero(), s.zero());
    let pairs = a.len() / 2;
    for l in 0..pairs {
        even = s.mul_add(s.load(&a[2 * l]), s.load(&b[2 * l]), even);
        odd = s.mul_add(s.load(&a[2 * l + 1]), s.load(&b[2 * l + 1]), odd);
    }
    if a.len() % 2 == 1 {
        even = s.mul_add(s.load(&a[a.len() - 1]), s.load(&b[a.len() - 1]), even);
    }
    s.sum(s.add(even, odd))
}

/// `out[k] = row_k · v` for the `out.len()` rows stored back to back in `rows`.
///
/// Eight rows at a time: eight independent accumulators keep both FMA units
/// busy, `v` is loaded once per eight rows, and one [`Simd::sum8`] finishes
/// eight dot products.
#[inline(always)]
pub(crate) fn row_dots<S: Simd>(s: S, rows: &[F32x8], lanes: usize, v: &[F32x8], out: &mut [f32]) {
    let n = out.len();
    let v = &v[..lanes];
    let mut k = 0;
    while k + 8 <= n {
        let block = &rows[k * lanes..(k + 8) * lanes];
        let mut acc = [s.zero(); 8];
        for (l, vl) in v.iter().enumerate() {
            let vl = s.load(vl);
            for (r, a) in acc.iter_mut().enumerate() {
                *a = s.mul_add(s.load(&block[r * lanes + l]), vl, *a);
            }
        }
        let mut sums = F32x8::default();
        s.store(&mut sums, s.sum8(acc));
        out[k..k + 8].copy_from_slice(&sums.0);
        k += 8;
    }
    while k < n {
        out[k] = dot(s, &rows[k * lanes..(k + 1) * lanes], v);
        k += 1;
    }
}

/// `y += Σ_k coef(k, h_k · v) · h_k` over the vectors h_k of `blocks`: the
/// data-dependent part of A·v, in one pass.
///
/// `blocks` holds the vectors eight at a time, interleaved by lane: block `b`
/// is `lanes` groups of eight `F32x8`, group `l` holding lane group `l` of
/// vectors `8b … 8b + 7` (see [`interleave`]). So both halves of the work read
/// memory strictly in order: the eight dot products with `v` (eight
/// independent accumulators, finished by one [`Simd::sum8`]), then the
/// weighted sum into `y` while the block is still in L1. Each vector is read
/// from memory once per call, which matters when a row's vectors do not fit
/// L1 (items with hundreds of users). `pump` runs once per block, to
/// interleave other work with the arithmetic.
#[inline(always)]
pub(crate) fn apply_rows<S: Simd>(
    s: S,
    blocks: &[F32x8],
    lanes: usize,
    v: &[F32x8],
    coef: impl Fn(usize, f32) -> f32,
    y: &mut [F32x8],
    pump: &mut impl Pump,
) {
    let v = &v[..lanes];
    let y = &mut y[..lanes];
    for (b, block) in blocks.chunks_exact(8 * lanes).enumerate() {
        pump.pump(s);
        let dots = block_dots(s, block, v);
        let mut c = [s.zero(); 8];
        for (r, (cr, &dot)) in c.iter_mut().zip(dots.0.iter()).enumerate() {
            *cr = s.splat(coef(8 * b + r, dot));
        }
        for (group, yl) in block.chunks_exact(8).zip(y.iter_mut()) {
            let mut low = s.mul_add(s.load(&group[0]), c[0], s.load(yl));
            let mut high = s.mul(s.load(&group[4]), c[4]);
            for r in 1..4 {
                low = s.mul_add(s.load(&group[r]), c[r], low);
                high = s.mul_add(s.load(&group[r + 4]), c[r + 4], high);
            }
            s.store(yl, s.add(low, high));
        }
    }
}

/// The eight dot products of one interleaved block with `v`.
#[inline(always)]
fn block_dots<S: Simd>(s: S, block: &[F32x8], v: &[F32x8]) -> F32x8 {
    let mut acc = [s.zero(); 8];
    for (group, vl) in block.chunks_exact(8).zip(v) {
        let vl = s.load(vl);
        for (r, a) in acc.iter_mut().enumerate() {
            *a = s.mul_add(s.load(&group[r]), vl, *a);
        }
    }
    let mut dots = F32x8::default();
    s.store(&mut dots, s.sum8(acc));
    dots
}

/// Work interleaved with a kernel's arithmetic, a slice per call (e.g.
/// gathering the next row while this one is solved).
pub(crate) trait Pump {
    /// Does one slice; must be `#[inline(always)]` like the kernels.
    fn pump<S: Simd>(&mut self, s: S);
}

/// Nothing to interleave.
impl Pump for () {
    #[inline(always)]
    fn pump<S: Simd>(&mut self, _s: S) {}
}

/// [`interleave`] from a half-precision row.
#[inline(always)]
pub(crate) fn interleave_half<S: Simd>(
    s: S,
    blocks: &mut [F32x8],
    lanes: usize,
    k: usize,
    row: &[F16x8],
) {
    let block = &mut blocks[(k / 8) * 8 * lanes..(k / 8 + 1) * 8 * lanes];
    for (group, x) in block.chunks_exact_mut(8).zip(row) {
        s.store(&mut group[k % 8], s.load_half(x));
    }
}

/// Writes vector `k` (one row, `lanes` groups) into its place in the
/// interleaved block layout of [`apply_rows`].
#[inline(always)]
pub(crate) fn interleave<S: Simd>(
    s: S,
    blocks: &mut [F32x8],
    lanes: usize,
    k: usize,
    row: &[F32x8],
) {
    let block = &mut blocks[(k / 8) * 8 * lanes..(k / 8 + 1) * 8 * lanes];
    for (group, x) in block.chunks_exact_mut(8).zip(row) {
        s.store(&mut group[k % 8], s.load(x));
    }
}

/// `y = bias · v + scale · G · v` for a symmetric Gram matrix `G` stored as `lanes × 8`
/// padded rows of `lanes` groups (only the first `dim` rows are read: the
/// padding rows are zero).
///
/// Register-blocked: a tile of up to 64 outputs stays in registers while the
/// loop runs over the columns of G, so each element of G is loaded once and
/// feeds one FMA, and nothing is written back until the tile is done.
#[inline(always)]
#[allow(clippy::too_many_arguments)] // a hot kernel: a parameter struct would cost loads
pub(crate) fn gram_matvec<S: Simd>(
    s: S,
    gram: &[F32x8],
    lanes: usize,
    dim: usize,
    bias: f32,
    v: &[F32x8],
    y: &mut [F32x8],
    scale: f32,
) {
    let mut start = 0;
    while start < lanes {
        let width = (lanes - start).min(8);
        with_width!(width, W => gram_matvec_tile::<S, W>(s, gram, lanes, dim, bias, v, start, y, scale));
        start += width;
    }
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn gram_matvec_tile<S: Simd, const W: usize>(
    s: S,
    gram: &[F32x8],
    lanes: usize,
    dim: usize,
    bias: f32,
    v: &[F32x8],
    start: usize,
    y: &mut [F32x8],
    scale: f32,
) {
    let bias = s.splat(bias);
    let mut acc = [s.zero(); W];
    for l in 0..W {
        acc[l] = s.mul(bias, s.load(&v[start + l]));
    }
    let scalars = &flat(v)[..dim];
    for (j, &vj) in scalars.iter().enumerate() {
        let vj = s.splat(scale * vj);
        let row = &gram[j * lanes + start..j * lanes + start + W];
        for l in 0..W {
            acc[l] = s.mul_add(s.load(&row[l]), vj, acc[l]);
        }
    }
    for l in 0..W {
        s.store(&mut y[start + l], acc[l]);
    }
}

/// `out += Σ_r row_r row_rᵀ` over the rows stored back to back in `rows`;
/// `out` holds `dim` padded rows of `lanes` groups (the Gram matrix).
///
/// Works through 64 rows at a time so they stay in L1 while every row of the
/// output tile is accumulated in registers.
#[inline(always)]
pub(crate) fn add_gram<S: Simd>(s: S, rows: &[F32x8], lanes: usize, dim: usize, out: &mut [F32x8]) {
    if lanes == 0 {
        return;
    }
    for block in rows.chunks(64 * lanes) {
        let mut start = 0;
        while start < lanes {
            let width = (lanes - start).min(8);
            with_width!(width, W => add_gram_tile::<S, W>(s, block, lanes, dim, start, out));
            start += width;
        }
    }
}

#[inline(always)]
fn add_gram_tile<S: Simd, const W: usize>(
    s: S,
    block: &[F32x8],
    lanes: usize,
    dim: usize,
    start: usize,
    out: &mut [F32x8],
) {
    let scalars = flat(block);
    let n = block.len() / lanes;
    for j in 0..dim {
        let out_row = &mut out[j * lanes + start..j * lanes + start + W];
        let mut acc = [s.zero(); W];
        for l in 0..W {
            acc[l] = s.load(&out_row[l]);
        }
        for r in 0..n {
            let hj = s.splat(scalars[r * lanes * 8 + j]);
            let row = &block[r * lanes + start..r * lanes + start + W];
            for l in 0..W {
                acc[l] = s.mul_add(s.load(&row[l]), hj, acc[l]);
            }
        }
        for l in 0..W {
            s.store(&mut out_row[l], acc[l]);
        }
    }
}

/// `y = a · x + b · y` elementwise.
#[inline(always)]
pub(crate) fn scale_add<S: Simd>(s: S, a: f32, x: &[F32x8], b: f32, y: &mut [F32x8]) {
    let (a, b) = (s.splat(a), s.splat(b));
    for (yl, xl) in y.iter_mut().zip(x) {
        let v = s.mul_add(a, s.load(xl), s.mul(b, s.load(yl)));
        s.store(yl, v);
    }
}

#[cfg(test)]
mod tests {
    use super::super::simd::{dispatch, Isa, Kernel};
    use super::*;
    use proptest::prelude::*;

    fn lanes_of(values: &[f32]) -> Vec<F32x8> {
        values
            .chunks(8)
            .map(|c| {
                let mut l = F32x8::default();
                l.0[..c.len()].copy_from_slice(c);
                l
            })
            .collect()
    }

    /// Runs every kernel once on the given inputs.
    struct All<'a> {
        rows: &'a [F32x8],
        lanes: usize,
        dim: usize,
        v: &'a [F32x8],
        coef: &'a [f32],
        gram: &'a [F32x8],
    }

    struct Outputs {
        dots: Vec<f32>,
        matvec: Vec<f32>,
        gram: Vec<f32>,
        scaled: Vec<f32>,
        applied: Vec<f32>,
    }

    impl Kernel for All<'_> {
        type Output = Outputs;
        #[inline(always)]
        fn run<S: Simd>(self, s: S) -> Outputs {
            let n = self.coef.len();
            let mut dots = vec![0.0; n];
            row_dots(s, self.rows, self.lanes, self.v, &mut dots);
            let mut matvec = vec![F32x8::default(); self.lanes];
            gram_matvec(
                s,
                self.gram,
                self.lanes,
                self.dim,
                0.5,
                self.v,
                &mut matvec,
                -2.0,
            );
            let mut gram = vec![F32x8::default(); self.lanes * 8 * self.lanes];
            add_gram(s, self.rows, self.lanes, self.dim, &mut gram);
            let mut scaled = self.v.to_vec();
            scale_add(s, 2.0, self.v, -0.5, &mut scaled);
            let mut blocks = vec![F32x8::default(); n.next_multiple_of(8) * self.lanes];
            for (k, row) in self.rows.chunks_exact(self.lanes).enumerate() {
                interleave(s, &mut blocks, self.lanes, k, row);
            }
            let mut applied = self.v.to_vec();
            let coef = self.coef;
            let padded_coef = |k: usize, d: f32| if k < n { coef[k] - 0.5 * d } else { 0.0 };
            apply_rows(
                s,
                &blocks,
                self.lanes,
                self.v,
                padded_coef,
                &mut applied,
                &mut (),
            );
            Outputs {
                applied: flat(&applied).to_vec(),
                dots,
                matvec: flat(&matvec).to_vec(),
                gram: flat(&gram).to_vec(),
                scaled: flat(&scaled).to_vec(),
            }
        }
    }

    fn close(a: &[f32], b: &[f64], tolerance: f64) -> Result<(), TestCaseError> {
        prop_assert_eq!(a.len(), b.len());
        for (k, (&x, &y)) in a.iter().zip(b).enumerate() {
            prop_assert!(
                (f64::from(x) - y).abs() <= tolerance * (1.0 + y.abs()),
                "index {}: {} vs {}",
                k,
                x,
                y
            );
        }
        Ok(())
    }

    proptest! {
        /// Both instruction sets agree with a plain f64 reference, for any
        /// dimension (padded or not) and any number of rows.
        #[test]
        fn kernels_match_a_scalar_reference(
            dim in 1usize..80,
            n in 0usize..90,
            seed in any::<u64>(),
        ) {
            let lanes = dim.div_ceil(8);
            let mut state = seed | 1;
            let mut next = move || {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            };
            let padded = |values: Vec<f32>| {
                let mut out = Vec::new();
                for row in values.chunks(dim) {
                    out.extend(lanes_of(row));
                }
                out
            };
            let rows_plain: Vec<f32> = (0..n * dim).map(|_| next()).collect();
            let v_plain: Vec<f32> = (0..dim).map(|_| next()).collect();
            let coef: Vec<f32> = (0..n).map(|_| next()).collect();
            let sym: Vec<f32> = {
                let mut m = vec![0.0; dim * dim];
                for i in 0..dim {
                    for j in 0..=i {
                        let x = next();
                        m[i * dim + j] = x;
                        m[j * dim + i] = x;
                    }
                }
                m
            };
            let rows = padded(rows_plain.clone());
            let v = padded(v_plain.clone());
            let mut gram = padded(sym.clone());
            gram.resize(lanes * 8 * lanes, F32x8::default());

            let f = |x: f32| f64::from(x);
            let dots: Vec<f64> = (0..n)
                .map(|k| (0..dim).map(|j| f(rows_plain[k * dim + j]) * f(v_plain[j])).sum())
                .collect();
            let pad = |values: Vec<f64>| {
                let mut out = Vec::new();
                for row in values.chunks(dim) {
                    out.extend_from_slice(row);
                    out.resize(out.len() + lanes * 8 - dim, 0.0);
                }
                out
            };
            let matvec = pad((0..dim)
                .map(|i| 0.5 * f(v_plain[i]) - 2.0 * (0..dim).map(|j| f(sym[i * dim + j]) * f(v_plain[j])).sum::<f64>())
                .collect());
            let mut gram_ref = Vec::new();
            for i in 0..lanes * 8 {
                for j in 0..lanes * 8 {
                    gram_ref.push(if i < dim && j < dim {
                        (0..n).map(|k| f(rows_plain[k * dim + i]) * f(rows_plain[k * dim + j])).sum()
                    } else {
                        0.0
                    });
                }
            }
            let scaled = pad(v_plain.iter().map(|&x| 1.5 * f(x)).collect());
            let applied = pad((0..dim)
                .map(|j| f(v_plain[j]) + (0..n).map(|k| (f(coef[k]) - 0.5 * dots[k]) * f(rows_plain[k * dim + j])).sum::<f64>())
                .collect());

            for isa in [Isa::Portable, Isa::detect()] {
                let out = dispatch(isa, All { rows: &rows, lanes, dim, v: &v, coef: &coef, gram: &gram });
                close(&out.dots, &dots, 1e-4)?;
                close(&out.matvec, &matvec, 1e-4)?;
                close(&out.gram, &gram_ref, 1e-4)?;
                close(&out.scaled, &scaled, 1e-6)?;
                close(&out.applied, &applied, 1e-4)?;
            }
        }
    }
}
