//! Eight-lane `f32` arithmetic with the instruction set picked at run time.
//!
//! The iALS kernels are written once, generic over [`Simd`], and compiled twice:
//! for AVX2 + FMA (chosen when the running CPU has them) and for plain portable
//! code (any other CPU, and the reference the fast path is tested against). The
//! shipped binary is therefore not tied to the build machine, unlike
//! `-C target-cpu=native`.
//!
//! Hand-written rather than built on a portable-SIMD crate on purpose: the
//! factor rows are padded to multiples of eight lanes and the kernels are
//! register-blocked for exactly that width (a tile of eight accumulators is one
//! 64-factor row), which a width-generic abstraction would hide. It is a small
//! surface — load, store, multiply-add, horizontal sums — all `unsafe` code of
//! the model lives here.
//!
//! How the dispatch works: a [`Kernel`] is a value with a method generic over
//! [`Simd`]. [`dispatch`] calls it through a `#[target_feature]` entry point when
//! the CPU supports AVX2 and FMA; because every kernel and every [`Simd`] method
//! is `#[inline(always)]`, the whole kernel is compiled inside that entry point
//! with the features enabled.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// Eight `f32` lanes aligned to 32 bytes: the storage unit of every factor row,
/// so that vector loads never straddle a cache line.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[repr(C, align(32))]
pub struct F32x8(pub [f32; 8]);

/// Eight IEEE 754 half-precision values (raw bits): the storage unit of the
/// compact copy of factors that training gathers from when memory traffic
/// dominates (see `GatherPrecision`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[repr(C, align(16))]
pub struct F16x8(pub [u16; 8]);

/// Views lane groups as plain floats (`8 × lanes.len()` values).
pub(crate) fn flat(lanes: &[F32x8]) -> &[f32] {
    // SAFETY: `F32x8` is `repr(C)` around `[f32; 8]`, 32 bytes with no padding,
    // so a slice of them is a valid slice of `8 × len` floats with the same
    // lifetime; alignment 32 satisfies f32's alignment.
    unsafe { std::slice::from_raw_parts(lanes.as_ptr().cast::<f32>(), lanes.len() * 8) }
}

/// Mutable counterpart of [`flat`].
pub(crate) fn flat_mut(lanes: &mut [F32x8]) -> &mut [f32] {
    // SAFETY: as in `flat`; the exclusive borrow is carried over.
    unsafe { std::slice::from_raw_parts_mut(lanes.as_mut_ptr().cast::<f32>(), lanes.len() * 8) }
}

/// The operations the kernels are written in. Implementors are zero-sized
/// tokens: holding one proves that the CPU can run its instructions.
pub(crate) trait Simd: Copy {
    /// A register of eight lanes.
    type V: Copy;
    /// All lanes zero.
    fn zero(self) -> Self::V;
    /// All lanes `x`.
    fn splat(self, x: f32) -> Self::V;
    /// Reads eight lanes.
    fn load(self, x: &F32x8) -> Self::V;
    /// Writes eight lanes.
    fn store(self, x: &mut F32x8, v: Self::V);
    /// `a · b + c` (fused where the hardware has it).
    fn mul_add(self, a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    /// `a + b`.
    fn add(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a · b`.
    fn mul(self, a: Self::V, b: Self::V) -> Self::V;
    /// Sum of the eight lanes.
    fn sum(self, v: Self::V) -> f32;
    /// Lane `k` of the result is the sum of the lanes of `v[k]`: eight dot
    /// products finished at once.
    fn sum8(self, v: [Self::V; 8]) -> Self::V;
    /// Hints that the cache line holding `x` will be read soon.
    fn prefetch(self, x: &F32x8);
    /// Hints that the cache line holding `x` will be read soon.
    fn prefetch_half(self, x: &F16x8);
    /// Reads eight half-precision lanes (exactly).
    fn load_half(self, x: &F16x8) -> Self::V;
    /// Writes eight lanes rounded to half precision (to nearest, ties to even;
    /// out-of-range values saturate to the largest finite half).
    fn store_half(self, x: &mut F16x8, v: Self::V);
}

/// Plain Rust arithmetic on arrays; the compiler vectorizes it for the baseline
/// instruction set. Multiply-add is not fused, so results differ from the FMA
/// path in the last bits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Portable;

impl Simd for Portable {
    type V = [f32; 8];

    #[inline(always)]
    fn zero(self) -> Self::V {
        [0.0; 8]
    }
    #[inline(always)]
    fn splat(self, x: f32) -> Self::V {
        [x; 8]
    }
    #[inline(always)]
    fn load(self, x: &F32x8) -> Self::V {
        x.0
    }
    #[inline(always)]
    fn store(self, x: &mut F32x8, v: Self::V) {
        x.0 = v;
    }
    #[inline(always)]
    fn mul_add(self, a: Self::V, b: Self::V, c: Self::V) -> Self::V {
        std::array::from_fn(|k| a[k] * b[k] + c[k])
    }
    #[inline(always)]
    fn add(self, a: Self::V, b: Self::V) -> Self::V {
        std::array::from_fn(|k| a[k] + b[k])
    }
    #[inline(always)]
    fn mul(self, a: Self::V, b: Self::V) -> Self::V {
        std::array::from_fn(|k| a[k] * b[k])
    }
    #[inline(always)]
    fn sum(self, v: Self::V) -> f32 {
        ((v[0] + v[4]) + (v[2] + v[6])) + ((v[1] + v[5]) + (v[3] + v[7]))
    }
    #[inline(always)]
    fn sum8(self, v: [Self::V; 8]) -> Self::V {
        std::array::from_fn(|k| self.sum(v[k]))
    }
    #[inline(always)]
    fn prefetch(self, _x: &F32x8) {}
    #[inline(always)]
    fn prefetch_half(self, _x: &F16x8) {}
    #[inline(always)]
    fn load_half(self, x: &F16x8) -> Self::V {
        std::array::from_fn(|k| f16_to_f32(x.0[k]))
    }
    #[inline(always)]
    fn store_half(self, x: &mut F16x8, v: Self::V) {
        x.0 = std::array::from_fn(|k| f32_to_f16(v[k].clamp(-HALF_MAX, HALF_MAX)));
    }
}

/// The largest finite half-precision value.
const HALF_MAX: f32 = 65504.0;

/// IEEE 754 binary16 bits of `x`, rounded to nearest with ties to even (what
/// the F16C instructions do); NaN stays NaN, overflow gives infinity.
pub(crate) fn f32_to_f16(x: f32) -> u16 {
    let bits = x.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let exponent = ((bits >> 23) & 0xff) as i32;
    let mantissa = bits & 0x7f_ffff;
    if exponent == 0xff {
        return sign | 0x7c00 | if mantissa != 0 { 0x200 } else { 0 };
    }
    let e = exponent - 127 + 15;
    if e >= 0x1f {
        return sign | 0x7c00;
    }
    if e <= 0 {
        // Subnormal half (or zero): shift the implicit bit in, round to even.
        if e < -10 {
            return sign;
        }
        let m = mantissa | 0x80_0000;
        let shift = (14 - e) as u32;
        let halfway = 1u32 << (shift - 1);
        let rounded = (m + halfway - 1 + ((m >> shift) & 1)) >> shift;
        return sign | rounded as u16;
    }
    // A carry out of the mantissa correctly bumps the exponent.
    let rounded = mantissa + 0xfff + ((mantissa >> 13) & 1);
    let out = ((e as u32) << 10) + (rounded >> 13);
    sign | out.min(0x7c00) as u16
}

/// The `f32` value of IEEE 754 binary16 bits (exact).
pub(crate) fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h & 0x8000) << 16;
    let exponent = u32::from((h >> 10) & 0x1f);
    let mantissa = u32::from(h & 0x3ff);
    let bits = match exponent {
        0 if mantissa == 0 => sign,
        0 => {
            // Subnormal: normalize the mantissa.
            let shift = mantissa.leading_zeros() - 21;
            sign | ((113 - shift) << 23) | (((mantissa << shift) & 0x3ff) << 13)
        }
        0x1f => sign | 0x7f80_0000 | (mantissa << 13),
        _ => sign | ((exponent + 112) << 23) | (mantissa << 13),
    };
    f32::from_bits(bits)
}

/// AVX2 + FMA + F16C (x86-64 CPUs since about 2013).
#[cfg(target_arch = "x86_64")]
#[derive(Debug, Clone, Copy)]
pub(crate) struct Avx2Fma {
    _proof: (),
}

#[cfg(target_arch = "x86_64")]
impl Avx2Fma {
    /// The token, if the running CPU has AVX2, FMA and F16C.
    pub(crate) fn detect() -> Option<Self> {
        (is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("fma")
            && is_x86_feature_detected!("f16c"))
        .then_some(Self { _proof: () })
    }
}

// SAFETY (for every `unsafe` block in this impl): an `Avx2Fma` value exists only
// after `detect` confirmed AVX2, FMA and F16C on this CPU, so the intrinsics
// are supported; loads and stores go through references to `F32x8` (32 bytes,
// 32-aligned) and `F16x8` (16 bytes, 16-aligned) values, valid for eight lanes.
#[cfg(target_arch = "x86_64")]
impl Simd for Avx2Fma {
    type V = __m256;

    #[inline(always)]
    fn zero(self) -> Self::V {
        unsafe { _mm256_setzero_ps() }
    }
    #[inline(always)]
    fn splat(self, x: f32) -> Self::V {
        unsafe { _mm256_set1_ps(x) }
    }
    #[inline(always)]
    fn load(self, x: &F32x8) -> Self::V {
        unsafe { _mm256_load_ps(x.0.as_ptr()) }
    }
    #[inline(always)]
    fn store(self, x: &mut F32x8, v: Self::V) {
        unsafe { _mm256_store_ps(x.0.as_mut_ptr(), v) }
    }
    #[inline(always)]
    fn mul_add(self, a: Self::V, b: Self::V, c: Self::V) -> Self::V {
        unsafe { _mm256_fmadd_ps(a, b, c) }
    }
    #[inline(always)]
    fn add(self, a: Self::V, b: Self::V) -> Self::V {
        unsafe { _mm256_add_ps(a, b) }
    }
    #[inline(always)]
    fn mul(self, a: Self::V, b: Self::V) -> Self::V {
        unsafe { _mm256_mul_ps(a, b) }
    }
    #[inline(always)]
    fn sum(self, v: Self::V) -> f32 {
        unsafe {
            let quad = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
            let pair = _mm_add_ps(quad, _mm_movehl_ps(quad, quad));
            let one = _mm_add_ss(pair, _mm_shuffle_ps(pair, pair, 0b01));
            _mm_cvtss_f32(one)
        }
    }
    #[inline(always)]
    fn sum8(self, v: [Self::V; 8]) -> Self::V {
        unsafe {
            // Pairwise horizontal adds, then the two 128-bit halves.
            let s01 = _mm256_hadd_ps(v[0], v[1]);
            let s23 = _mm256_hadd_ps(v[2], v[3]);
            let s45 = _mm256_hadd_ps(v[4], v[5]);
            let s67 = _mm256_hadd_ps(v[6], v[7]);
            let s0123 = _mm256_hadd_ps(s01, s23);
            let s4567 = _mm256_hadd_ps(s45, s67);
            // s0123 = [v0 v1 v2 v3 (low halves) | v0 v1 v2 v3 (high halves)].
            let low = _mm256_permute2f128_ps(s0123, s4567, 0x20);
            let high = _mm256_permute2f128_ps(s0123, s4567, 0x31);
            _mm256_add_ps(low, high)
        }
    }
    #[inline(always)]
    fn prefetch(self, x: &F32x8) {
        unsafe { _mm_prefetch(x.0.as_ptr().cast::<i8>(), _MM_HINT_T0) }
    }
    #[inline(always)]
    fn prefetch_half(self, x: &F16x8) {
        unsafe { _mm_prefetch(x.0.as_ptr().cast::<i8>(), _MM_HINT_T0) }
    }
    #[inline(always)]
    fn load_half(self, x: &F16x8) -> Self::V {
        unsafe { _mm256_cvtph_ps(_mm_load_si128(x.0.as_ptr().cast::<__m128i>())) }
    }
    #[inline(always)]
    fn store_half(self, x: &mut F16x8, v: Self::V) {
        unsafe {
            let limit = _mm256_set1_ps(HALF_MAX);
            let v = _mm256_max_ps(
                _mm256_min_ps(v, limit),
                _mm256_sub_ps(_mm256_setzero_ps(), limit),
            );
            let h = _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(v);
            _mm_store_si128(x.0.as_mut_ptr().cast::<__m128i>(), h);
        }
    }
}

/// A computation generic over the instruction set, run by [`dispatch`].
pub(crate) trait Kernel {
    /// What the computation returns.
    type Output;
    /// Runs it; implementations must be `#[inline(always)]` (and so must every
    /// helper they call) to be compiled with the dispatched features.
    fn run<S: Simd>(self, simd: S) -> Self::Output;
}

/// Which implementation the kernels run with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// Baseline instructions only; also the reference in tests.
    Portable,
    /// AVX2 with fused multiply-add and F16C conversions (used only if the
    /// CPU has all three).
    Avx2Fma,
}

impl Isa {
    /// The fastest implementation the running CPU supports.
    pub fn detect() -> Isa {
        #[cfg(target_arch = "x86_64")]
        if Avx2Fma::detect().is_some() {
            return Isa::Avx2Fma;
        }
        Isa::Portable
    }

    /// A short label for logs and benchmark output.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Portable => "portable",
            Isa::Avx2Fma => "avx2+fma",
        }
    }
}

/// Runs `kernel` with `isa`, falling back to portable code if the CPU lacks it.
#[inline]
pub(crate) fn dispatch<K: Kernel>(isa: Isa, kernel: K) -> K::Output {
    #[cfg(target_arch = "x86_64")]
    if isa == Isa::Avx2Fma {
        if let Some(token) = Avx2Fma::detect() {
            // SAFETY: the token proves the CPU has AVX2 and FMA.
            return unsafe { run_avx2_fma(token, kernel) };
        }
    }
    let _ = isa;
    kernel.run(Portable)
}

/// The entry point compiled with AVX2 and FMA enabled; the kernel is inlined
/// into it.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn run_avx2_fma<K: Kernel>(token: Avx2Fma, kernel: K) -> K::Output {
    kernel.run(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Sums([[f32; 8]; 8]);

    impl Kernel for Sums {
        type Output = ([f32; 8], f32, [f32; 8]);
        #[inline(always)]
        fn run<S: Simd>(self, s: S) -> Self::Output {
            let v: [S::V; 8] = std::array::from_fn(|k| s.load(&F32x8(self.0[k])));
            let mut out = F32x8::default();
            s.store(&mut out, s.sum8(v));
            let mut fma = F32x8::default();
            s.store(&mut fma, s.mul_add(v[0], v[1], s.splat(1.0)));
            (out.0, s.sum(v[2]), fma.0)
        }
    }

    #[test]
    fn horizontal_sums_and_fma_agree_across_instruction_sets() {
        let rows: [[f32; 8]; 8] =
            std::array::from_fn(|r| std::array::from_fn(|c| (r * 8 + c) as f32 * 0.5 - 3.0));
        let expected: [f32; 8] = std::array::from_fn(|r| rows[r].iter().sum());
        for isa in [Isa::Portable, Isa::detect()] {
            let (sums, one, fma) = dispatch(isa, Sums(rows));
            assert_eq!(sums, expected, "{isa:?}");
            assert_eq!(one, expected[2]);
            let want: [f32; 8] = std::array::from_fn(|c| rows[0][c] * rows[1][c] + 1.0);
            assert_eq!(fma, want);
        }
    }

    struct Halves([f32; 8]);

    impl Kernel for Halves {
        type Output = ([u16; 8], [f32; 8]);
        #[inline(always)]
        fn run<S: Simd>(self, s: S) -> Self::Output {
            let mut half = F16x8::default();
            s.store_half(&mut half, s.load(&F32x8(self.0)));
            let mut back = F32x8::default();
            s.store(&mut back, s.load_half(&half));
            (half.0, back.0)
        }
    }

    #[test]
    fn half_precision_round_trips_like_the_hardware() {
        let mut state = 0x1234_5678_9abc_def0u64;
        for round in 0..2000 {
            let values: [f32; 8] = std::array::from_fn(|k| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let unit = (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
                // Magnitudes from subnormal halves to overflow.
                unit * 2f32.powi((round % 40) - 26 + k as i32)
            });
            let (bits_portable, back_portable) = dispatch(Isa::Portable, Halves(values));
            let (bits_fast, back_fast) = dispatch(Isa::detect(), Halves(values));
            assert_eq!(bits_portable, bits_fast, "{values:?}");
            assert_eq!(back_portable, back_fast);
            for (x, y) in values.iter().zip(back_portable) {
                if x.abs() <= HALF_MAX && x.abs() >= 6.2e-5 {
                    assert!((x - y).abs() <= x.abs() / 2048.0, "{x} → {y}");
                }
            }
        }
        assert_eq!(f32_to_f16(1.0), 0x3c00);
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(f32_to_f16(-2.5)), -2.5);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
    }

    #[test]
    fn flat_views_cover_every_lane() {
        let mut lanes = vec![F32x8([1.0; 8]), F32x8([2.0; 8])];
        assert_eq!(flat(&lanes).len(), 16);
        flat_mut(&mut lanes)[9] = 5.0;
        assert_eq!(lanes[1].0[1], 5.0);
    }
}
