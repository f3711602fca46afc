//! One half of an iALS iteration: every row of one side re-solved by
//! conjugate gradient against the fixed factors of the other side.
//!
//! For row u with observed entries I_u (confidences c_k) the normal equations are
//! A_u w = b_u with A_u = α0·G + Σ_k (c_k − α0)·h_k h_kᵀ + λ_u·I and
//! b_u = Σ_k c_k·h_k, G = HᵀH the Gram matrix of the fixed side. A_u is never
//! formed: each CG step needs A_u·p = α0·G·p + λ_u·p + Σ_k (c_k − α0)(h_k·p)·h_k,
//! i.e. one register-blocked Gram product (d² multiply-adds) and one pass over
//! the row's |I_u| factor vectors.
//!
//! Those vectors sit at random places of a matrix far larger than the caches,
//! so they are first gathered into one contiguous buffer, and the gathering is
//! software-pipelined: while row r is being solved, the vectors of row r + 1
//! are prefetched a few at a time between the kernel's blocks and copied into a
//! second buffer once they have arrived. Memory latency then overlaps with
//! arithmetic instead of stalling it.

use rayon::prelude::*;
use tephra_core::Interactions;

use super::factors::Factors;
use super::kernels::{
    add_gram, apply_rows, dot, gram_matvec, interleave, interleave_half, row_dots, scale_add, Pump,
};
use super::simd::{dispatch, flat, flat_mut, F16x8, F32x8, Isa, Kernel, Simd};
use super::IalsConfig;

/// Rows per parallel task: small enough to balance uneven rows across threads,
/// large enough that scheduling and the unpipelined first row cost nothing.
const ROWS_PER_TASK: usize = 128;

/// Rows per partial Gram sum. Fixed, so the summation order — and therefore the
/// result, bit for bit — does not depend on the number of threads.
const GRAM_BLOCK_ROWS: usize = 4096;

/// How many rows ahead a plain (unpipelined) gather prefetches.
const PREFETCH_ROWS: usize = 16;

/// How many pump calls pass between prefetching a vector and copying it: long
/// enough for a DRAM access to complete behind the arithmetic.
const PUMP_LAG: usize = 4;

/// One row's factor vectors, gathered in the interleaved block layout of
/// [`apply_rows`], with the confidences c_k and c_k − α0 of its entries.
#[derive(Debug, Default)]
struct Gathered {
    blocks: Vec<F32x8>,
    confidence: Vec<f32>,
    excess: Vec<f32>,
    /// Entries (vectors) gathered.
    len: usize,
}

impl Gathered {
    /// Makes room for `len` vectors (rounded up to whole blocks) and zeroes the
    /// padding of the last block, which then adds nothing to any product.
    #[inline(always)]
    fn reset(&mut self, len: usize, lanes: usize) {
        let padded = len.next_multiple_of(8);
        grow(&mut self.blocks, padded * lanes);
        grow(&mut self.confidence, padded);
        grow(&mut self.excess, padded);
        for k in len..padded {
            let block = &mut self.blocks[(k / 8) * 8 * lanes..(k / 8 + 1) * 8 * lanes];
            for group in block.chunks_exact_mut(8) {
                group[k % 8] = F32x8::default();
            }
            self.confidence[k] = 0.0;
            self.excess[k] = 0.0;
        }
        self.len = len;
    }

    /// Copies entry `k` of `entries` into place.
    #[inline(always)]
    fn copy<S: Simd>(&mut self, s: S, entries: &Entries<'_>, k: usize) {
        let lanes = entries.lanes;
        let other = entries.indices[k] as usize;
        if let Some(half) = entries.half {
            let src = &half[other * lanes..(other + 1) * lanes];
            interleave_half(s, &mut self.blocks, lanes, k, src);
        } else {
            let src = &entries.data[other * lanes..(other + 1) * lanes];
            interleave(s, &mut self.blocks, lanes, k, src);
        }
        let c = entries.config.confidence(entries.values[k]);
        self.confidence[k] = c;
        self.excess[k] = c - entries.config.unobserved_weight;
    }
}

/// The observed entries of one row and where their vectors live.
#[derive(Clone, Copy)]
struct Entries<'a> {
    indices: &'a [u32],
    values: &'a [f32],
    data: &'a [F32x8],
    /// The same vectors in half precision, gathered from instead when given.
    half: Option<&'a [F16x8]>,
    lanes: usize,
    config: &'a IalsConfig,
}

impl Entries<'_> {
    /// The same source with no entries.
    #[inline(always)]
    fn take_if(self, keep: bool) -> Self {
        if keep {
            self
        } else {
            Self {
                indices: &[],
                values: &[],
                ..self
            }
        }
    }

    /// Prefetches every cache line of entry `k`'s vector: one every 64 bytes
    /// and the last group (rows need not start on a 64-byte boundary).
    #[inline(always)]
    fn prefetch<S: Simd>(&self, s: S, k: usize) {
        let lanes = self.lanes;
        let other = self.indices[k] as usize;
        if let Some(half) = self.half {
            let row = &half[other * lanes..(other + 1) * lanes];
            for l in (0..lanes).step_by(4) {
                s.prefetch_half(&row[l]);
            }
            s.prefetch_half(&row[lanes - 1]);
        } else {
            let row = &self.data[other * lanes..(other + 1) * lanes];
            for l in (0..lanes).step_by(2) {
                s.prefetch(&row[l]);
            }
            s.prefetch(&row[lanes - 1]);
        }
    }
}

/// Gathers the next row into the spare buffer a little at a time while the
/// current row is solved (see the module documentation).
struct Pipeline<'a, 'b> {
    entries: Entries<'a>,
    into: &'b mut Gathered,
    /// Entries prefetched so far, and after each of the last `PUMP_LAG` pumps.
    prefetched: usize,
    marks: [usize; PUMP_LAG],
    pumps: usize,
    copied: usize,
    per_pump: usize,
}

impl<'a, 'b> Pipeline<'a, 'b> {
    #[inline(always)]
    fn new(entries: Entries<'a>, into: &'b mut Gathered, pumps_expected: usize) -> Self {
        let n = entries.indices.len();
        into.reset(n, entries.lanes);
        Self {
            entries,
            into,
            prefetched: 0,
            marks: [0; PUMP_LAG],
            pumps: 0,
            copied: 0,
            per_pump: n.div_ceil(pumps_expected.max(1)),
        }
    }

    /// Completes the gather (whatever the pumps did not get to).
    #[inline(always)]
    fn finish<S: Simd>(&mut self, s: S) {
        let n = self.entries.indices.len();
        for k in self.copied..n {
            if k + PREFETCH_ROWS < n && k + PREFETCH_ROWS >= self.prefetched {
                self.entries.prefetch(s, k + PREFETCH_ROWS);
            }
            self.into.copy(s, &self.entries, k);
        }
        self.copied = n;
    }
}

impl Pump for Pipeline<'_, '_> {
    /// One slice of the work: prefetch a few more vectors, copy those
    /// prefetched `PUMP_LAG` pumps ago.
    #[inline(always)]
    fn pump<S: Simd>(&mut self, s: S) {
        let n = self.entries.indices.len();
        let ready = self.marks[self.pumps % PUMP_LAG];
        while self.copied < ready {
            self.into.copy(s, &self.entries, self.copied);
            self.copied += 1;
        }
        let end = (self.prefetched + self.per_pump).min(n);
        for k in self.prefetched..end {
            self.entries.prefetch(s, k);
        }
        self.prefetched = end;
        self.marks[self.pumps % PUMP_LAG] = end;
        self.pumps += 1;
    }
}

/// Buffers one worker reuses for every row it solves (no allocation per row).
#[derive(Debug, Default)]
pub(crate) struct Workspace {
    current: Gathered,
    next: Gathered,
    r: Vec<F32x8>,
    p: Vec<F32x8>,
    ap: Vec<F32x8>,
}

/// The α0·G·p part of A·p.
#[derive(Clone, Copy)]
pub(crate) enum GramTerm<'a> {
    /// G is diagonal (the factors were rotated into its eigenbasis, see
    /// [`rotate_to_eigenbasis`]): α0·G·p is an elementwise product, d
    /// multiply-adds instead of d².
    Diagonal(&'a [F32x8]),
    /// The full padded α0·G (see [`scaled_gram`]), should the eigenbasis be
    /// unavailable.
    Dense(&'a [F32x8]),
}

impl GramTerm<'_> {
    /// `y = bias·v + scale·α0·G·v`.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn apply<S: Simd>(
        self,
        s: S,
        lanes: usize,
        dim: usize,
        bias: f32,
        v: &[F32x8],
        y: &mut [F32x8],
        scale: f32,
    ) {
        match self {
            GramTerm::Diagonal(diagonal) => {
                let (bias, scale) = (s.splat(bias), s.splat(scale));
                for ((yl, vl), gl) in y.iter_mut().zip(v).zip(diagonal) {
                    let g = s.mul_add(s.load(gl), scale, bias);
                    s.store(yl, s.mul(g, s.load(vl)));
                }
            }
            GramTerm::Dense(gram) => gram_matvec(s, gram, lanes, dim, bias, v, y, scale),
        }
    }
}

/// What every row solve of one half-iteration shares.
#[derive(Clone, Copy)]
pub(crate) struct HalfStep<'a> {
    /// Rows being solved (users × items for the user step).
    pub x: &'a Interactions,
    /// The fixed side's factors.
    pub fixed: &'a Factors,
    /// The α0·G term of the fixed side.
    pub gram: GramTerm<'a>,
    /// Hyper-parameters.
    pub config: &'a IalsConfig,
    /// The fixed side's factors in half precision (see [`to_half`]), to
    /// gather from instead of `fixed`.
    pub half: Option<&'a [F16x8]>,
}

impl HalfStep<'_> {
    /// Re-solves every row of `target` (one row per row of `x`), in parallel.
    pub(crate) fn run(&self, isa: Isa, target: &mut Factors) {
        let lanes = target.lanes();
        if lanes == 0 {
            return;
        }
        target
            .data_mut()
            .par_chunks_mut(ROWS_PER_TASK * lanes)
            .enumerate()
            .for_each_init(Workspace::default, |ws, (task, chunk)| {
                dispatch(
                    isa,
                    SolveRows {
                        step: *self,
                        first_row: task * ROWS_PER_TASK,
                        rows: chunk,
                        ws,
                    },
                );
            });
    }

    fn entries(&self, row: usize) -> Entries<'_> {
        let (indices, values) = self.x.row(row as u32);
        Entries {
            indices,
            values,
            data: self.fixed.data(),
            half: self.half,
            lanes: self.fixed.lanes(),
            config: self.config,
        }
    }
}

/// Solves a contiguous run of rows (one parallel task).
struct SolveRows<'a, 'b> {
    step: HalfStep<'a>,
    first_row: usize,
    rows: &'b mut [F32x8],
    ws: &'b mut Workspace,
}

impl Kernel for SolveRows<'_, '_> {
    type Output = ();

    #[inline(always)]
    fn run<S: Simd>(self, s: S) {
        let step = self.step;
        let lanes = step.fixed.lanes();
        let others = step.x.n_items();
        let count = self.rows.len() / lanes;
        let ws = self.ws;
        // The first row is gathered up front; every later one while its
        // predecessor is solved.
        let first = step.entries(self.first_row);
        Pipeline::new(first, &mut ws.current, 1).finish(s);
        for (offset, w) in self.rows.chunks_exact_mut(lanes).enumerate() {
            let row = self.first_row + offset;
            // The last row of the task has no successor to gather.
            let next = step.entries(row + 1).take_if(offset + 1 < count);
            let current = &ws.current;
            // Pumps: one per block of eight vectors and per Gram product, in
            // each of the 1 + cg_steps passes.
            let passes = 1 + step.config.cg_steps;
            let expected = passes * (current.len.div_ceil(8) + 1);
            let mut pipeline = Pipeline::new(next, &mut ws.next, expected);
            let lambda = step.config.row_regularization(current.len, others);
            grow(&mut ws.r, lanes);
            grow(&mut ws.p, lanes);
            grow(&mut ws.ap, lanes);
            let vectors = (&mut ws.r[..lanes], &mut ws.p[..lanes], &mut ws.ap[..lanes]);
            cg_row(s, &step, current, lambda, w, vectors, &mut pipeline);
            pipeline.finish(s);
            std::mem::swap(&mut ws.current, &mut ws.next);
        }
    }
}

/// Improves `w` (the warm start) towards the solution of A_u w = b_u with
/// `config.cg_steps` conjugate-gradient steps, for the gathered vectors of
/// `rows`. `pump` is called regularly to advance other work (the next gather).
///
/// Each step minimizes the row's part of the objective along a direction, so a
/// step never increases the loss (up to rounding), however few are taken.
#[inline(always)]
fn cg_row<S: Simd>(
    s: S,
    step: &HalfStep<'_>,
    rows: &Gathered,
    lambda: f32,
    w: &mut [F32x8],
    (r, p, ap): (&mut [F32x8], &mut [F32x8], &mut [F32x8]),
    pump: &mut impl Pump,
) {
    let lanes = step.fixed.lanes();
    let dim = step.fixed.dim();
    if rows.len == 0 {
        // b = 0, so the exact solution is 0 (A is positive definite).
        w.fill(F32x8::default());
        return;
    }
    let padded = rows.len.next_multiple_of(8);
    let blocks = &rows.blocks[..padded * lanes];
    let (confidence, excess) = (&rows.confidence[..padded], &rows.excess[..padded]);

    // r = b − A·w = Σ_k (c_k − (c_k − α0)(h_k·w))·h_k − (α0·G + λ)·w.
    pump.pump(s);
    step.gram.apply(s, lanes, dim, -lambda, w, r, -1.0);
    apply_rows(
        s,
        blocks,
        lanes,
        w,
        |k, t| confidence[k] - excess[k] * t,
        r,
        pump,
    );

    p.copy_from_slice(r);
    let mut rs = dot(s, r, r);
    for _ in 0..step.config.cg_steps {
        // Stops on a tiny residual and on NaN alike.
        if rs.is_nan() || rs <= 1e-30 {
            break;
        }
        // ap = A·p.
        pump.pump(s);
        step.gram.apply(s, lanes, dim, lambda, p, ap, 1.0);
        apply_rows(s, blocks, lanes, p, |k, t| excess[k] * t, ap, pump);
        let pap = dot(s, p, ap);
        if pap.is_nan() || pap <= 0.0 {
            break;
        }
        let a = rs / pap;
        scale_add(s, a, p, 1.0, w);
        scale_add(s, -a, ap, 1.0, r);
        let rs_next = dot(s, r, r);
        scale_add(s, 1.0, r, rs_next / rs, p);
        rs = rs_next;
    }
}

/// Makes `buffer` at least `len` long (new entries zero; never shrinks).
#[inline(always)]
fn grow<T: Copy + Default>(buffer: &mut Vec<T>, len: usize) {
    if buffer.len() < len {
        buffer.resize(len, T::default());
    }
}

/// `scale · FᵀF` for factors F, as `dim` padded rows of `lanes` groups
/// (`lanes · 8` rows in all, the padding rows zero).
pub(crate) fn scaled_gram(isa: Isa, factors: &Factors, scale: f32) -> Vec<F32x8> {
    let lanes = factors.lanes();
    let dim = factors.dim();
    let size = lanes * 8 * lanes;
    if lanes == 0 {
        return Vec::new();
    }
    let partials: Vec<Vec<F32x8>> = factors
        .data()
        .par_chunks(GRAM_BLOCK_ROWS * lanes)
        .map(|block| {
            let mut out = vec![F32x8::default(); size];
            dispatch(
                isa,
                GramBlock {
                    rows: block,
                    lanes,
                    dim,
                    out: &mut out,
                },
            );
            out
        })
        .collect();
    let mut gram = vec![F32x8::default(); size];
    let total = flat_mut(&mut gram);
    for partial in &partials {
        for (t, &x) in total.iter_mut().zip(flat(partial)) {
            *t += x;
        }
    }
    for t in total.iter_mut() {
        *t *= scale;
    }
    gram
}

/// FᵀF as a dense `dim × dim` row-major `f64` matrix (computed in `f32` with
/// the fast kernels), for exact fold-in solves.
pub(crate) fn gram_f64(isa: Isa, factors: &Factors) -> Vec<f64> {
    let dim = factors.dim();
    let stride = factors.lanes() * 8;
    let gram = scaled_gram(isa, factors, 1.0);
    let gram = flat(&gram);
    let mut out = Vec::with_capacity(dim * dim);
    for i in 0..dim {
        out.extend(
            gram[i * stride..i * stride + dim]
                .iter()
                .map(|&g| f64::from(g)),
        );
    }
    out
}

struct GramBlock<'a> {
    rows: &'a [F32x8],
    lanes: usize,
    dim: usize,
    out: &'a mut [F32x8],
}

impl Kernel for GramBlock<'_> {
    type Output = ();

    #[inline(always)]
    fn run<S: Simd>(self, s: S) {
        add_gram(s, self.rows, self.lanes, self.dim, self.out);
    }
}

/// `out[k] = row_k · v` for every row of `factors` (scoring all items).
pub(crate) fn all_dots(isa: Isa, factors: &Factors, v: &[F32x8], out: &mut [f32]) {
    struct Dots<'a> {
        rows: &'a [F32x8],
        lanes: usize,
        v: &'a [F32x8],
        out: &'a mut [f32],
    }
    impl Kernel for Dots<'_> {
        type Output = ();
        #[inline(always)]
        fn run<S: Simd>(self, s: S) {
            row_dots(s, self.rows, self.lanes, self.v, self.out);
        }
    }
    let n = out.len().min(factors.n_rows());
    if factors.lanes() == 0 {
        out.fill(0.0);
        return;
    }
    dispatch(
        isa,
        Dots {
            rows: factors.data(),
            lanes: factors.lanes(),
            v,
            out: &mut out[..n],
        },
    );
}

/// Rounds every factor to the nearest half-precision value, in place, and
/// returns the half-precision copy (same layout, padding included).
///
/// Rounding the stored factors too keeps the two copies identical, so a
/// half-step that gathers from the copy solves exactly the problem its Gram
/// matrix (computed from the stored factors) describes.
pub(crate) fn to_half(isa: Isa, factors: &mut Factors) -> Vec<F16x8> {
    struct Round<'a> {
        data: &'a mut [F32x8],
        half: &'a mut [F16x8],
    }
    impl Kernel for Round<'_> {
        type Output = ();
        #[inline(always)]
        fn run<S: Simd>(self, s: S) {
            for (x, h) in self.data.iter_mut().zip(self.half.iter_mut()) {
                s.store_half(h, s.load(x));
                s.store(x, s.load_half(h));
            }
        }
    }
    const CHUNK: usize = 4096;
    let mut half = vec![F16x8::default(); factors.data().len()];
    factors
        .data_mut()
        .par_chunks_mut(CHUNK)
        .zip(half.par_chunks_mut(CHUNK))
        .for_each(|(data, half)| dispatch(isa, Round { data, half }));
    half
}

/// Rotates `a` and `b` (users and items, both `dim` wide) by the eigenvectors
/// Q of the Gram matrix G = FᵀF of `fixed_is_a ? a : b`, so that the fixed
/// side's Gram matrix becomes the diagonal Λ; returns α0·Λ, padded.
///
/// Rotating both sides by the same orthogonal Q changes nothing the model
/// predicts (W Q (H Q)ᵀ = W Hᵀ) nor any norm, so the objective is untouched,
/// but every CG step of the half-iteration then needs d multiply-adds for the
/// α0·G·p term instead of d². Costs one d × d product per row of both sides,
/// against (1 + cg_steps) of them saved per solved row. `None` (nothing
/// rotated) if the eigendecomposition fails, e.g. on non-finite factors.
pub(crate) fn rotate_to_eigenbasis(
    isa: Isa,
    a: &mut Factors,
    b: &mut Factors,
    fixed_is_a: bool,
    alpha0: f32,
) -> Option<Vec<F32x8>> {
    let fixed = if fixed_is_a { &*a } else { &*b };
    let dim = fixed.dim();
    let lanes = fixed.lanes();
    let gram = gram_f64(isa, fixed);
    let matrix = faer::Mat::<f64>::from_fn(dim, dim, |i, j| gram[i * dim + j]);
    let eigen = matrix.self_adjoint_eigen(faer::Side::Lower).ok()?;
    let (q, values) = (eigen.U(), eigen.S().column_vector());
    let mut rotation = vec![F32x8::default(); lanes * 8 * lanes];
    let mut diagonal = vec![F32x8::default(); lanes];
    {
        let flat_rotation = flat_mut(&mut rotation);
        for i in 0..dim {
            for j in 0..dim {
                let x = q[(i, j)];
                if !x.is_finite() {
                    return None;
                }
                flat_rotation[i * lanes * 8 + j] = x as f32;
            }
        }
        let flat_diagonal = flat_mut(&mut diagonal);
        for j in 0..dim {
            // Rounding can leave tiny negative eigenvalues of a PSD matrix.
            flat_diagonal[j] = alpha0 * values[j].max(0.0) as f32;
        }
    }
    rotate(isa, a, &rotation);
    rotate(isa, b, &rotation);
    Some(diagonal)
}

/// Replaces every row f of `factors` by f·Q (`rotation` holds Q padded, row j
/// = Q[j, :]; padding rows and columns zero, so padding stays zero).
fn rotate(isa: Isa, factors: &mut Factors, rotation: &[F32x8]) {
    struct Rotate<'a> {
        rows: &'a mut [F32x8],
        lanes: usize,
        dim: usize,
        rotation: &'a [F32x8],
    }
    impl Kernel for Rotate<'_> {
        type Output = ();
        #[inline(always)]
        fn run<S: Simd>(self, s: S) {
            let lanes = self.lanes;
            let mut rotated = vec![F32x8::default(); lanes];
            for row in self.rows.chunks_exact_mut(lanes) {
                gram_matvec(
                    s,
                    self.rotation,
                    lanes,
                    self.dim,
                    0.0,
                    row,
                    &mut rotated,
                    1.0,
                );
                row.copy_from_slice(&rotated);
            }
        }
    }
    let lanes = factors.lanes();
    let dim = factors.dim();
    if lanes == 0 {
        return;
    }
    factors
        .data_mut()
        .par_chunks_mut(ROWS_PER_TASK * 8 * lanes)
        .for_each(|rows| {
            dispatch(
                isa,
                Rotate {
                    rows,
                    lanes,
                    dim,
                    rotation,
                },
            )
        });
}
