//! Statistics behind Tephra's A/B experiment results.
//!
//! Online experiments randomize *users*, so every interval here treats the user
//! as the independent unit: per-user sums go into [`Samples`], and ratio metrics
//! such as CTR (Σ clicks / Σ impressions) get delta-method intervals over users
//! rather than naive binomial intervals over impressions, which would be far too
//! narrow when a few heavy users dominate the impressions.
//!
//! Contents:
//! - distribution functions: [`normal_cdf`], [`two_sided_p`], [`chi_square_sf`],
//!   all accurate to roughly 1e-13 relative (the normal tail uses W. J. Cody's
//!   rational Chebyshev approximations, the chi-square tail the regularized
//!   incomplete gamma function);
//! - estimates with 95% intervals: [`Samples::mean`], [`Samples::ratio`],
//!   [`wilson`];
//! - comparisons of two independent arms: [`compare`] (difference and z-test),
//!   [`ratio_of`] (relative lift), [`two_proportion_z`] (the textbook test);
//! - the sample-ratio-mismatch guard [`srm`], which must pass before any of the
//!   above is trusted.
//!
//! Degenerate input (no units, a single unit, zero denominators, zero standard
//! errors where a test statistic would divide by them) yields `None`, never a
//! panic and never a NaN hidden inside an `Option::Some`.

/// z for a two-sided 95% interval.
///
/// Φ⁻¹(0.975), the multiplier of every confidence interval in this module.
pub const Z95: f64 = 1.959963984540054;

/// The conventional SRM threshold (p < 0.001).
///
/// Deliberately strict: an SRM check runs on every experiment, so a loose
/// threshold would raise false alarms, while a true assignment bug on real
/// traffic volumes produces p-values far below this.
pub const SRM_ALPHA: f64 = 0.001;

// ---------------------------------------------------------------------------
// Normal distribution
// ---------------------------------------------------------------------------

/// 1/√(2π).
const FRAC_1_SQRT_2PI: f64 = 0.3989422804014327;

/// Below this |x| Cody's first approximation is used; Φ(0.66291) ≈ 0.75.
const CENTRAL_LIMIT: f64 = 0.66291;

/// √32 as Cody's code rounds it: the boundary between his second and third
/// approximations.
const SQRT_32: f64 = 5.656854248;

/// Standard normal CDF (accurate to ~1e-12; use erfc via a high-accuracy
/// rational/continued-fraction approximation, e.g. W. J. Cody's or the
/// Numerical Recipes erfc with Chebyshev, not the 1e-7 Abramowitz–Stegun one).
///
/// Exists because p-values and interval levels are read off it; the
/// implementation is Cody's ANORM (rational Chebyshev approximations; within
/// about 1e-13 relative of a 40-digit reference over [−38, 9]). Both tails keep
/// their relative accuracy: the smaller of Φ(x) and 1 − Φ(x) is always computed
/// directly.
/// `normal_cdf(NaN)` is NaN; ±∞ map to 1 and 0.
pub fn normal_cdf(x: f64) -> f64 {
    if x.abs() <= CENTRAL_LIMIT {
        0.5 + central_part(x)
    } else if x < 0.0 {
        upper_tail(-x)
    } else {
        1.0 - upper_tail(x)
    }
}

/// Two-sided p-value of a z statistic: 2·(1 − Φ(|z|)), computed without
/// cancellation for large |z| (use the upper tail directly).
///
/// Exists so that every z-test in the module (and the caller's own tests)
/// reports p-values the same way; `two_sided_p(10.0)` is 1.5e-23, not 0.
/// NaN in, NaN out.
pub fn two_sided_p(z: f64) -> f64 {
    2.0 * upper_tail(z.abs())
}

/// Φ(x) − 1/2 for |x| ≤ [`CENTRAL_LIMIT`] (Cody's first interval).
#[allow(clippy::excessive_precision)]
fn central_part(x: f64) -> f64 {
    const A: [f64; 5] = [
        2.2352520354606839287e00,
        1.6102823106855587881e02,
        1.0676894854603709582e03,
        1.8154981253343561249e04,
        6.5682337918207449113e-2,
    ];
    const B: [f64; 4] = [
        4.7202581904688241870e01,
        9.7609855173777669322e02,
        1.0260932208618978205e04,
        4.5507789335026729956e04,
    ];
    let xsq = x * x;
    let mut num = A[4] * xsq;
    let mut den = xsq;
    for (a, b) in A[..3].iter().zip(&B[..3]) {
        num = (num + a) * xsq;
        den = (den + b) * xsq;
    }
    x * (num + A[3]) / (den + B[3])
}

/// 1 − Φ(y) for y ≥ 0, computed directly (no `1 − Φ` cancellation).
fn upper_tail(y: f64) -> f64 {
    if y.is_nan() {
        f64::NAN
    } else if y <= CENTRAL_LIMIT {
        0.5 - central_part(y)
    } else if y <= SQRT_32 {
        gaussian_factor(y) * intermediate_tail_ratio(y)
    } else if y.is_finite() {
        gaussian_factor(y) * far_tail_ratio(y)
    } else {
        0.0
    }
}

/// exp(−y²/2), evaluated in two factors so the rounding of y² does not
/// destroy the relative accuracy of the far tail (Cody's device).
fn gaussian_factor(y: f64) -> f64 {
    let coarse = (y * 16.0).trunc() / 16.0;
    let rest = (y - coarse) * (y + coarse);
    (-coarse * coarse * 0.5).exp() * (-rest * 0.5).exp()
}

/// (1 − Φ(y)) / exp(−y²/2) for [`CENTRAL_LIMIT`] < y ≤ √32 (Cody's second interval).
#[allow(clippy::excessive_precision)]
fn intermediate_tail_ratio(y: f64) -> f64 {
    const C: [f64; 9] = [
        3.9894151208813466764e-1,
        8.8831497943883759412e00,
        9.3506656132177855979e01,
        5.9727027639480026226e02,
        2.4945375852903726711e03,
        6.8481904505362823326e03,
        1.1602651437647350124e04,
        9.8427148383839780218e03,
        1.0765576773720192317e-8,
    ];
    const D: [f64; 8] = [
        2.2266688044328115691e01,
        2.3538790178262499861e02,
        1.5193775994075548050e03,
        6.4855582982667607550e03,
        1.8615571640885098091e04,
        3.4900952721145977266e04,
        3.8912003286093271411e04,
        1.9685429676859990727e04,
    ];
    let mut num = C[8] * y;
    let mut den = y;
    for (c, d) in C[..7].iter().zip(&D[..7]) {
        num = (num + c) * y;
        den = (den + d) * y;
    }
    (num + C[7]) / (den + D[7])
}

/// (1 − Φ(y)) / exp(−y²/2) for y > √32 (Cody's third interval, an
/// asymptotic-series correction in 1/y²).
#[allow(clippy::excessive_precision)]
fn far_tail_ratio(y: f64) -> f64 {
    const P: [f64; 6] = [
        2.1589853405795699e-1,
        1.274011611602473639e-1,
        2.2235277870649807e-2,
        1.421619193227893466e-3,
        2.9112874951168792e-5,
        2.307344176494017303e-2,
    ];
    const Q: [f64; 5] = [
        1.28426009614491121e00,
        4.68238212480865118e-1,
        6.59881378689285515e-2,
        3.78239633202758244e-3,
        7.29751555083966205e-5,
    ];
    let inv_sq = 1.0 / (y * y);
    let mut num = P[5] * inv_sq;
    let mut den = inv_sq;
    for (p, q) in P[..4].iter().zip(&Q[..4]) {
        num = (num + p) * inv_sq;
        den = (den + q) * inv_sq;
    }
    let correction = inv_sq * (num + P[4]) / (den + Q[4]);
    (FRAC_1_SQRT_2PI - correction) / y
}

// ---------------------------------------------------------------------------
// Chi-square distribution
// ---------------------------------------------------------------------------

/// Relative tolerance of the incomplete-gamma series and continued fraction.
const GAMMA_EPS: f64 = 1e-16;

/// Iteration cap of the incomplete-gamma expansions; both converge in
/// O(√a) steps, so this only guards against non-finite input.
const GAMMA_MAX_ITER: usize = 100_000;

/// Smallest magnitude allowed in the modified Lentz recurrence.
const LENTZ_TINY: f64 = 1e-300;

/// Upper tail of the chi-square distribution with k degrees of freedom,
/// P(X ≥ x) = Q(k/2, x/2) (regularized upper incomplete gamma: series for
/// x < a+1, continued fraction otherwise; ln_gamma via Lanczos).
///
/// Exists for the p-value of the SRM goodness-of-fit test (and any other
/// chi-square test a caller runs). Returns 1 for x ≤ 0 and 0 for x = +∞.
/// Invalid parameters (k ≤ 0, k not finite, or a NaN argument) give NaN: they
/// are caller bugs, not degenerate data.
pub fn chi_square_sf(x: f64, k: f64) -> f64 {
    if x.is_nan() || !k.is_finite() || k <= 0.0 {
        return f64::NAN;
    }
    if x <= 0.0 {
        return 1.0;
    }
    if x.is_infinite() {
        return 0.0;
    }
    regularized_gamma_q(k / 2.0, x / 2.0)
}

/// Q(a, x) = Γ(a, x)/Γ(a) for a > 0, x > 0 (finite).
fn regularized_gamma_q(a: f64, x: f64) -> f64 {
    if x < a + 1.0 {
        (1.0 - lower_gamma_series(a, x)).max(0.0)
    } else {
        upper_gamma_continued_fraction(a, x)
    }
}

/// e^(−x)·x^a / Γ(a), the common prefactor of both expansions.
fn gamma_prefactor(a: f64, x: f64) -> f64 {
    (a * x.ln() - x - ln_gamma(a)).exp()
}

/// P(a, x) by its power series; converges quickly for x < a + 1.
fn lower_gamma_series(a: f64, x: f64) -> f64 {
    let mut denominator = a;
    let mut term = 1.0 / a;
    let mut sum = term;
    for _ in 0..GAMMA_MAX_ITER {
        denominator += 1.0;
        term *= x / denominator;
        sum += term;
        if term.abs() < sum.abs() * GAMMA_EPS {
            break;
        }
    }
    sum * gamma_prefactor(a, x)
}

/// Q(a, x) by its continued fraction (modified Lentz); converges quickly for
/// x ≥ a + 1.
fn upper_gamma_continued_fraction(a: f64, x: f64) -> f64 {
    let mut b = x + 1.0 - a;
    let mut c = 1.0 / LENTZ_TINY;
    let mut d = 1.0 / b;
    let mut fraction = d;
    for i in 1..GAMMA_MAX_ITER {
        let i = i as f64;
        let an = -i * (i - a);
        b += 2.0;
        d = nonzero(an * d + b).recip();
        c = nonzero(b + an / c);
        let step = d * c;
        fraction *= step;
        if (step - 1.0).abs() < GAMMA_EPS {
            break;
        }
    }
    fraction * gamma_prefactor(a, x)
}

/// Keeps a Lentz denominator away from zero.
fn nonzero(v: f64) -> f64 {
    if v.abs() < LENTZ_TINY {
        LENTZ_TINY
    } else {
        v
    }
}

/// Lanczos coefficients (g = 7, n = 9), good to about 1e-15 relative.
#[allow(clippy::excessive_precision)]
const LANCZOS: [f64; 9] = [
    0.999_999_999_999_809_93,
    676.520_368_121_885_1,
    -1_259.139_216_722_402_8,
    771.323_428_777_653_13,
    -176.615_029_162_140_59,
    12.507_343_278_686_905,
    -0.138_571_095_265_720_12,
    9.984_369_578_019_571_6e-6,
    1.505_632_735_149_311_6e-7,
];

/// ln Γ(x) for x > 0 by the Lanczos approximation.
fn ln_gamma(x: f64) -> f64 {
    if x < 0.5 {
        // Γ(x) = Γ(x + 1)/x keeps the approximation inside its accurate range.
        return ln_gamma(x + 1.0) - x.ln();
    }
    let z = x - 1.0;
    let t = z + 7.5;
    let series = LANCZOS[1..]
        .iter()
        .enumerate()
        .fold(LANCZOS[0], |acc, (i, c)| acc + c / (z + (i + 1) as f64));
    0.5 * (2.0 * std::f64::consts::PI).ln() + (z + 0.5) * t.ln() - t + series.ln()
}

// ---------------------------------------------------------------------------
// Estimates
// ---------------------------------------------------------------------------

/// An estimate with its 95% confidence interval and standard error.
///
/// The one shape every metric of an experiment report takes, so that means,
/// ratios, proportions and lifts can be printed and compared uniformly.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Estimate {
    /// The point estimate.
    pub value: f64,
    /// Its (estimated) standard error.
    pub std_error: f64,
    /// Lower end of the 95% confidence interval.
    pub ci_low: f64,
    /// Upper end of the 95% confidence interval.
    pub ci_high: f64,
}

impl Estimate {
    /// An estimate with the symmetric normal-approximation interval
    /// `value ± Z95·std_error`.
    ///
    /// Exists so that estimates computed elsewhere (another metric, a stored
    /// result) get the same interval convention as this module's. `None` if
    /// either number is not finite or the standard error is negative.
    pub fn normal(value: f64, std_error: f64) -> Option<Self> {
        if !value.is_finite() || !std_error.is_finite() || std_error < 0.0 {
            return None;
        }
        let half_width = Z95 * std_error;
        Some(Self {
            value,
            std_error,
            ci_low: value - half_width,
            ci_high: value + half_width,
        })
    }
}

/// Per-unit (per-user) sums, the input of every experiment metric:
/// randomization is by user, so variances must be computed over users, not
/// over impressions.
///
/// Besides n, Σx and Σy it keeps the centered (co-)moments Σ(x−x̄)²,
/// Σ(y−ȳ)², Σ(x−x̄)(y−ȳ), updated one unit at a time (Welford's method), which
/// avoids the cancellation of the raw-sum formula Σx² − n·x̄² on large counts.
#[derive(Debug, Clone, Default)]
pub struct Samples {
    n: u64,
    sum_x: f64,
    sum_y: f64,
    comoment_xx: f64,
    comoment_yy: f64,
    comoment_xy: f64,
}

impl Samples {
    /// An empty accumulator.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one unit with numerator x (e.g. clicks) and denominator y (e.g.
    /// impressions).
    ///
    /// Non-finite values are not rejected here; they make [`Samples::mean`]
    /// and [`Samples::ratio`] return `None`.
    pub fn push(&mut self, x: f64, y: f64) {
        if self.n > 0 {
            let previous = self.n as f64;
            let dx = x - self.sum_x / previous;
            let dy = y - self.sum_y / previous;
            let weight = previous / (previous + 1.0);
            self.comoment_xx += weight * dx * dx;
            self.comoment_yy += weight * dy * dy;
            self.comoment_xy += weight * dx * dy;
        }
        self.n += 1;
        self.sum_x += x;
        self.sum_y += y;
    }

    /// Takes back one unit pushed earlier with these values: the exact
    /// inverse of [`Samples::push`], so that a unit whose sums changed can be
    /// replaced (remove the old values, push the new) and per-unit figures can
    /// be kept up to date event by event without a pass over all units.
    pub fn remove(&mut self, x: f64, y: f64) {
        if self.n <= 1 {
            *self = Self::default();
            return;
        }
        let rest = (self.n - 1) as f64;
        let dx = x - (self.sum_x - x) / rest;
        let dy = y - (self.sum_y - y) / rest;
        let weight = rest / (rest + 1.0);
        self.comoment_xx = (self.comoment_xx - weight * dx * dx).max(0.0);
        self.comoment_yy = (self.comoment_yy - weight * dy * dy).max(0.0);
        self.comoment_xy -= weight * dx * dy;
        self.n -= 1;
        self.sum_x -= x;
        self.sum_y -= y;
    }

    /// Number of units pushed so far.
    pub fn n(&self) -> u64 {
        self.n
    }

    /// Σx over units (e.g. total clicks), for reporting raw totals.
    pub fn sum_x(&self) -> f64 {
        self.sum_x
    }

    /// Σy over units (e.g. total impressions), for reporting raw totals.
    pub fn sum_y(&self) -> f64 {
        self.sum_y
    }

    /// Mean of x over units with a normal-approximation CI (sample variance,
    /// n−1); None if n < 2.
    ///
    /// The per-user metric (e.g. clicks per user), whose standard error is
    /// s/√n. Zero variance gives a zero-width interval, not `None`.
    pub fn mean(&self) -> Option<Estimate> {
        let n = self.sample_size()?;
        let variance = self.comoment_xx / (n - 1.0);
        Estimate::normal(self.sum_x / n, (variance / n).sqrt())
    }

    /// Ratio Σx/Σy with a delta-method CI over units (the standard way to get
    /// a CTR interval when users are the unit of randomization):
    /// var(R) ≈ (1/(n·ȳ²))·(s_xx − 2R·s_xy + R²·s_yy) with sample
    /// (co)variances; None if n < 2 or Σy = 0.
    ///
    /// When every unit has exactly the same ratio the residual variance is 0
    /// (up to rounding, which is clamped at 0 so the result is never NaN).
    pub fn ratio(&self) -> Option<Estimate> {
        let n = self.sample_size()?;
        if self.sum_y == 0.0 {
            return None;
        }
        let ratio = self.sum_x / self.sum_y;
        let mean_y = self.sum_y / n;
        let residual_comoment =
            self.comoment_xx - 2.0 * ratio * self.comoment_xy + ratio * ratio * self.comoment_yy;
        let residual_variance = residual_comoment.max(0.0) / (n - 1.0);
        let variance = residual_variance / (n * mean_y * mean_y);
        Estimate::normal(ratio, variance.sqrt())
    }

    /// n as f64 when there are at least two units (a sample variance exists).
    fn sample_size(&self) -> Option<f64> {
        (self.n >= 2).then_some(self.n as f64)
    }
}

/// Wilson score interval for a proportion (successes of n trials); None if
/// n = 0.
///
/// For proportions whose trials really are independent (e.g. the share of
/// users who converted, one trial per user): unlike the Wald interval it stays
/// inside [0, 1] and keeps its coverage near 0 and 1. `value` is the observed
/// proportion p, `std_error` is √(p(1−p)/n), and the interval is the Wilson
/// one (not centred on p). Also `None` if successes > n.
pub fn wilson(successes: u64, n: u64) -> Option<Estimate> {
    if n == 0 || successes > n {
        return None;
    }
    let trials = n as f64;
    let p = successes as f64 / trials;
    let z2 = Z95 * Z95;
    let scale = 1.0 + z2 / trials;
    let centre = (p + z2 / (2.0 * trials)) / scale;
    let half_width = Z95 / scale * (p * (1.0 - p) / trials + z2 / (4.0 * trials * trials)).sqrt();
    Some(Estimate {
        value: p,
        std_error: (p * (1.0 - p) / trials).sqrt(),
        ci_low: (centre - half_width).clamp(0.0, 1.0),
        ci_high: (centre + half_width).clamp(0.0, 1.0),
    })
}

// ---------------------------------------------------------------------------
// Comparing arms
// ---------------------------------------------------------------------------

/// Difference treatment − control with the two-sided p-value of a z-test on
/// independent estimates (se = sqrt(se_c² + se_t²)); None when se is 0.
///
/// The absolute effect of an experiment arm, with the interval and p-value a
/// report shows next to it.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Comparison {
    /// treatment − control.
    pub difference: f64,
    /// difference / se.
    pub z: f64,
    /// Two-sided p-value of `z`.
    pub p_value: f64,
    /// Lower end of the 95% interval of the difference.
    pub ci_low: f64,
    /// Upper end of the 95% interval of the difference.
    pub ci_high: f64,
}

/// Compares two independent estimates (control and treatment arms): the
/// difference, its z statistic, two-sided p-value and 95% interval.
///
/// Exists because every metric of an experiment is read this way. `None` when
/// the combined standard error is 0 (or anything is non-finite), since no test
/// statistic exists then.
pub fn compare(control: &Estimate, treatment: &Estimate) -> Option<Comparison> {
    let difference = treatment.value - control.value;
    let std_error = control.std_error.hypot(treatment.std_error);
    if !difference.is_finite() || !std_error.is_finite() || std_error <= 0.0 {
        return None;
    }
    let z = difference / std_error;
    Some(Comparison {
        difference,
        z,
        p_value: two_sided_p(z),
        ci_low: difference - Z95 * std_error,
        ci_high: difference + Z95 * std_error,
    })
}

/// Ratio treatment/control of two independent positive estimates with a 95%
/// CI from the delta method on the log scale: var(ln r) ≈ (se_t/t)² +
/// (se_c/c)². None if either value ≤ 0.
///
/// The relative lift ("+3.2% CTR") that experiment reports lead with. The
/// interval is symmetric around ln r, so it never crosses 0 and is skewed
/// upwards on the linear scale as it should be; `std_error` is the
/// delta-method r·se(ln r). Also `None` for non-finite input.
pub fn ratio_of(control: &Estimate, treatment: &Estimate) -> Option<Estimate> {
    let (c, t) = (control.value, treatment.value);
    if !(c > 0.0 && t > 0.0 && c.is_finite() && t.is_finite()) {
        return None;
    }
    let ratio = t / c;
    let log_std_error = (treatment.std_error / t).hypot(control.std_error / c);
    if !log_std_error.is_finite() {
        return None;
    }
    let spread = (Z95 * log_std_error).exp();
    Some(Estimate {
        value: ratio,
        std_error: ratio * log_std_error,
        ci_low: ratio / spread,
        ci_high: ratio * spread,
    })
}

/// Two-proportion z-test (pooled) — for the textbook check; returns (z,
/// two-sided p).
///
/// z = (p_b − p_a) / √(p̂(1−p̂)(1/n_a + 1/n_b)) with the pooled p̂, so a
/// positive z means b (the treatment) is higher. Only valid when each trial is
/// an independent unit; for per-impression CTR use [`Samples::ratio`] and
/// [`compare`] instead. `None` if either n is 0, successes exceed n, or the
/// pooled proportion is 0 or 1 (zero standard error).
pub fn two_proportion_z(
    successes_a: u64,
    n_a: u64,
    successes_b: u64,
    n_b: u64,
) -> Option<(f64, f64)> {
    if n_a == 0 || n_b == 0 || successes_a > n_a || successes_b > n_b {
        return None;
    }
    let (na, nb) = (n_a as f64, n_b as f64);
    let pooled = (successes_a + successes_b) as f64 / (na + nb);
    let std_error = (pooled * (1.0 - pooled) * (1.0 / na + 1.0 / nb)).sqrt();
    if std_error <= 0.0 {
        return None;
    }
    let z = (successes_b as f64 / nb - successes_a as f64 / na) / std_error;
    Some((z, two_sided_p(z)))
}

// ---------------------------------------------------------------------------
// Sample ratio mismatch
// ---------------------------------------------------------------------------

/// Sample-ratio-mismatch check: chi-square goodness of fit of observed unit
/// counts against the configured weights (normalized to sum 1).
///
/// An SRM means assignment or logging is broken (bots filtered in one arm,
/// a redirect losing users, …), which biases every metric; reports must show
/// this check and distrust the results when `mismatch` is set.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SrmCheck {
    /// Units observed per group, as given.
    pub observed: Vec<u64>,
    /// Units expected per group: total × normalized weight.
    pub expected: Vec<f64>,
    /// Σ (observed − expected)² / expected.
    pub chi_square: f64,
    /// Upper tail of the chi-square distribution with groups − 1 degrees of freedom.
    pub p_value: f64,
    /// p < SRM_ALPHA
    pub mismatch: bool,
}

/// Runs the SRM chi-square test of `observed` unit counts per group against
/// the configured `weights` (any positive scale; normalized here).
///
/// `None` if fewer than 2 groups, total 0, or any weight ≤ 0 / non-finite, and
/// also if `observed` and `weights` differ in length.
pub fn srm(observed: &[u64], weights: &[f64]) -> Option<SrmCheck> {
    if observed.len() < 2 || observed.len() != weights.len() {
        return None;
    }
    if weights.iter().any(|w| !w.is_finite() || *w <= 0.0) {
        return None;
    }
    let total = observed.iter().map(|&o| o as f64).sum::<f64>();
    let weight_sum = weights.iter().sum::<f64>();
    if total == 0.0 || !weight_sum.is_finite() {
        return None;
    }
    let expected: Vec<f64> = weights.iter().map(|w| total * w / weight_sum).collect();
    let chi_square = observed
        .iter()
        .zip(&expected)
        .map(|(&o, &e)| (o as f64 - e).powi(2) / e)
        .sum::<f64>();
    let p_value = chi_square_sf(chi_square, (observed.len() - 1) as f64);
    Some(SrmCheck {
        observed: observed.to_vec(),
        expected,
        chi_square,
        p_value,
        mismatch: p_value < SRM_ALPHA,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// |actual − expected| ≤ tol·|expected| (plus a tiny absolute floor for 0).
    fn rel_close(actual: f64, expected: f64, tol: f64) -> bool {
        (actual - expected).abs() <= tol * expected.abs().max(1e-300)
    }

    fn abs_close(actual: f64, expected: f64, tol: f64) -> bool {
        (actual - expected).abs() <= tol
    }

    fn samples(units: &[(f64, f64)]) -> Samples {
        let mut s = Samples::new();
        for &(x, y) in units {
            s.push(x, y);
        }
        s
    }

    // Reference values below were evaluated with 40-digit arithmetic
    // (mpmath: ncdf, gammainc(regularized=True), loggamma).

    #[test]
    fn normal_cdf_known_values() {
        assert_eq!(normal_cdf(0.0), 0.5);
        assert!(rel_close(normal_cdf(1.96), 0.9750021048517795, 1e-15));
        assert!(rel_close(normal_cdf(-3.0), 0.0013498980316300945, 1e-13));
        assert_eq!(normal_cdf(f64::INFINITY), 1.0);
        assert_eq!(normal_cdf(f64::NEG_INFINITY), 0.0);
        assert!(normal_cdf(f64::NAN).is_nan());
    }

    #[test]
    fn normal_cdf_matches_reference_in_every_interval() {
        // One or more points in each of Cody's three intervals, both signs.
        let reference = [
            (-9.0, 1.1285884059538406e-19),
            (-8.0, 6.220960574271784e-16),
            (-6.0, 9.86587645037698e-10),
            (-5.7, 5.990371401063528e-9),
            (-5.0, 2.866515718791939e-7),
            (-2.5, 6.209665325776135e-3),
            (-1.0, 0.15865525393145705),
            (-0.5, 0.3085375387259869),
            (0.3, 0.6179114221889526),
            (0.7, 0.758036347776927),
            (1.0, 0.8413447460685429),
            (2.5, 0.9937903346742238),
            (5.0, 0.9999997133484281),
        ];
        for (x, phi) in reference {
            assert!(rel_close(normal_cdf(x), phi, 1e-13), "Φ({x})");
        }
    }

    #[test]
    fn normal_cdf_is_symmetric_and_monotone() {
        let mut previous = 0.0;
        for i in -800..=800 {
            let x = f64::from(i) / 100.0;
            let phi = normal_cdf(x);
            assert!(phi >= previous, "monotone at {x}");
            assert!(
                abs_close(phi + normal_cdf(-x), 1.0, 1e-15),
                "symmetric at {x}"
            );
            previous = phi;
        }
    }

    #[test]
    fn two_sided_p_known_values() {
        assert!(rel_close(two_sided_p(1.96), 0.04999579029644087, 1e-13));
        assert!(rel_close(two_sided_p(-1.96), 0.04999579029644087, 1e-13));
        // The far tail keeps its relative accuracy (1 − Φ would give 0).
        assert!(rel_close(two_sided_p(10.0), 1.523970604832105e-23, 1e-13));
        assert_eq!(two_sided_p(0.0), 1.0);
        assert!(rel_close(two_sided_p(Z95), 0.05, 1e-14));
        assert_eq!(two_sided_p(f64::INFINITY), 0.0);
        assert!(two_sided_p(f64::NAN).is_nan());
    }

    #[test]
    fn ln_gamma_known_values() {
        let reference = [
            (0.1, 2.252712651734206),
            (0.5, 0.5723649429247001),
            (1.0, 0.0),
            (1.5, -0.12078223763524522),
            (3.5, 1.2009736023470743),
            (10.0, 12.801827480081469),
            (100.5, 361.4355404677776),
            (1000.0, 5905.220423209181),
        ];
        for (x, expected) in reference {
            assert!(
                abs_close(ln_gamma(x), expected, 1e-13 * expected.abs().max(1.0)),
                "lnΓ({x})"
            );
        }
    }

    #[test]
    fn chi_square_sf_known_values() {
        // Critical values of the 5% level for 1 and 2 degrees of freedom.
        assert!(rel_close(
            chi_square_sf(3.841458820694124, 1.0),
            0.05,
            1e-13
        ));
        assert!(rel_close(
            chi_square_sf(5.991464547107979, 2.0),
            0.05,
            1e-13
        ));
        assert!(rel_close(
            chi_square_sf(10.0, 3.0),
            0.018566135463043233,
            1e-13
        ));
        // Series branch (x < a + 1) and continued-fraction branch, small and large k.
        assert!(rel_close(
            chi_square_sf(0.5, 1.0),
            0.4795001221869535,
            1e-13
        ));
        assert!(rel_close(
            chi_square_sf(0.001, 3.0),
            0.999991592080942,
            1e-13
        ));
        assert!(rel_close(
            chi_square_sf(1.0, 10.0),
            0.9998278843700442,
            1e-13
        ));
        assert!(rel_close(
            chi_square_sf(100.0, 50.0),
            3.454931382984864e-5,
            1e-12
        ));
        assert!(rel_close(
            chi_square_sf(2000.0, 1000.0),
            4.143678591454992e-69,
            1e-10
        ));
        // k = 2 is exactly exp(−x/2).
        assert!(rel_close(chi_square_sf(7.0, 2.0), (-3.5f64).exp(), 1e-14));
    }

    #[test]
    fn chi_square_sf_edges() {
        for k in [1.0, 2.0, 7.5] {
            assert_eq!(chi_square_sf(0.0, k), 1.0);
            assert_eq!(chi_square_sf(-1.0, k), 1.0);
            assert_eq!(chi_square_sf(f64::INFINITY, k), 0.0);
        }
        assert!(chi_square_sf(1.0, 0.0).is_nan());
        assert!(chi_square_sf(1.0, -1.0).is_nan());
        assert!(chi_square_sf(f64::NAN, 1.0).is_nan());
        assert!(chi_square_sf(1.0, f64::INFINITY).is_nan());
    }

    #[test]
    fn chi_square_with_one_degree_of_freedom_is_a_squared_normal() {
        for z in [0.1, 0.5, 1.0, 1.5, 2.0, 3.0, 4.5, 6.0] {
            assert!(
                rel_close(chi_square_sf(z * z, 1.0), two_sided_p(z), 1e-12),
                "z = {z}"
            );
        }
    }

    #[test]
    fn samples_mean_by_hand() {
        // x = 1, 2, 3, 4: mean 2.5; deviations ±1.5, ±0.5, so Σd² = 5 and
        // s² = 5/3; se = √(s²/n) = √(5/12) = 0.6454972243679028.
        let s = samples(&[(1.0, 1.0), (2.0, 1.0), (3.0, 1.0), (4.0, 1.0)]);
        let mean = s.mean().unwrap();
        assert_eq!(s.n(), 4);
        assert_eq!(s.sum_x(), 10.0);
        assert_eq!(s.sum_y(), 4.0);
        assert!(abs_close(mean.value, 2.5, 1e-15));
        assert!(abs_close(mean.std_error, 0.6454972243679028, 1e-15));
        assert!(abs_close(
            mean.ci_low,
            2.5 - Z95 * 0.6454972243679028,
            1e-14
        ));
        assert!(abs_close(
            mean.ci_high,
            2.5 + Z95 * 0.6454972243679028,
            1e-14
        ));
    }

    #[test]
    fn samples_mean_with_zero_variance_has_a_zero_width_interval() {
        let mean = samples(&[(3.0, 1.0); 5]).mean().unwrap();
        assert_eq!(mean.value, 3.0);
        assert_eq!(mean.std_error, 0.0);
        assert_eq!((mean.ci_low, mean.ci_high), (3.0, 3.0));
    }

    #[test]
    fn samples_mean_is_stable_with_a_large_offset() {
        // The raw-sum formula Σx² − n·x̄² loses every digit here.
        let offset = 1e9;
        let s = samples(&[
            (offset + 1.0, 1.0),
            (offset + 2.0, 1.0),
            (offset + 3.0, 1.0),
            (offset + 4.0, 1.0),
        ]);
        assert!(rel_close(
            s.mean().unwrap().std_error,
            0.6454972243679028,
            1e-9
        ));
    }

    #[test]
    fn samples_ratio_by_hand() {
        // Units (x, y) = (1, 2), (0, 3), (2, 4): Σx = 3, Σy = 9, R = 1/3,
        // n = 3, x̄ = 1, ȳ = 3.
        // Deviations: x − x̄ = 0, −1, 1; y − ȳ = −1, 0, 1.
        // s_xx = (0 + 1 + 1)/2 = 1, s_yy = (1 + 0 + 1)/2 = 1,
        // s_xy = (0 + 0 + 1)/2 = 1/2.
        // var(R) = 1/(3·3²) · (1 − 2·(1/3)·(1/2) + (1/9)·1)
        //        = (1/27)·(7/9) = 7/243,  se = √(7/243) = 0.16972502573910519.
        // Check via residuals x − R·y = 1/3, −1, 2/3: Σ² = 14/9, /(n−1) = 7/9. ✓
        let s = samples(&[(1.0, 2.0), (0.0, 3.0), (2.0, 4.0)]);
        let ratio = s.ratio().unwrap();
        assert_eq!(ratio.value, s.sum_x() / s.sum_y());
        assert!(abs_close(ratio.value, 1.0 / 3.0, 1e-15));
        assert!(abs_close(ratio.std_error, 0.1697250257391052, 1e-15));
        assert!(abs_close(
            ratio.ci_high - ratio.value,
            Z95 * ratio.std_error,
            1e-15
        ));
    }

    #[test]
    fn samples_ratio_with_identical_unit_ratios_has_zero_error() {
        // Every user has CTR exactly 0.1 (x ∝ y), so the residual variance is 0.
        let units: Vec<(f64, f64)> = [10.0, 20.0, 30.0, 70.0, 1000.0]
            .iter()
            .map(|&y| (0.1 * y, y))
            .collect();
        let ratio = samples(&units).ratio().unwrap();
        assert!(abs_close(ratio.value, 0.1, 1e-15));
        assert!(ratio.std_error < 1e-9, "se = {}", ratio.std_error);
        assert!(!ratio.std_error.is_nan());
    }

    #[test]
    fn samples_degenerate_inputs_give_none() {
        assert_eq!(Samples::new().mean(), None);
        assert_eq!(Samples::new().ratio(), None);
        let one = samples(&[(1.0, 2.0)]);
        assert_eq!(one.mean(), None);
        assert_eq!(one.ratio(), None);
        // Σy = 0: no ratio, but the mean of x still exists.
        let no_impressions = samples(&[(0.0, 0.0), (0.0, 0.0)]);
        assert_eq!(no_impressions.ratio(), None);
        assert!(no_impressions.mean().is_some());
        // Non-finite data never leak out as a NaN estimate.
        let broken = samples(&[(f64::NAN, 1.0), (1.0, 1.0)]);
        assert_eq!(broken.mean(), None);
        assert_eq!(broken.ratio(), None);
    }

    #[test]
    fn wilson_known_interval() {
        // 8 of 10: the published Wilson 95% interval is [0.4902, 0.9433].
        let w = wilson(8, 10).unwrap();
        assert_eq!(w.value, 0.8);
        assert!(abs_close(w.std_error, (0.8f64 * 0.2 / 10.0).sqrt(), 1e-15));
        assert!(abs_close(w.ci_low, 0.4902, 5e-5), "low {}", w.ci_low);
        assert!(abs_close(w.ci_high, 0.9433, 5e-5), "high {}", w.ci_high);
    }

    #[test]
    fn wilson_edges() {
        assert_eq!(wilson(0, 0), None);
        assert_eq!(wilson(3, 2), None);
        let none = wilson(0, 20).unwrap();
        assert_eq!((none.value, none.std_error, none.ci_low), (0.0, 0.0, 0.0));
        assert!(none.ci_high > 0.0 && none.ci_high < 0.2);
        let all = wilson(20, 20).unwrap();
        assert_eq!(all.ci_high, 1.0);
        assert!(all.ci_low > 0.8 && all.ci_low < 1.0);
    }

    #[test]
    fn compare_by_hand() {
        // diff = 0.106 − 0.100 = 0.006, se = √(0.003² + 0.004²) = 0.005,
        // z = 1.2, p = 2·(1 − Φ(1.2)) = 0.2301393404434165.
        let control = Estimate::normal(0.100, 0.003).unwrap();
        let treatment = Estimate::normal(0.106, 0.004).unwrap();
        let c = compare(&control, &treatment).unwrap();
        assert!(abs_close(c.difference, 0.006, 1e-15));
        assert!(abs_close(c.z, 1.2, 1e-12));
        assert!(rel_close(c.p_value, 0.2301393404434165, 1e-11));
        assert!(abs_close(c.ci_low, 0.006 - Z95 * 0.005, 1e-15));
        assert!(abs_close(c.ci_high, 0.006 + Z95 * 0.005, 1e-15));
    }

    #[test]
    fn compare_without_uncertainty_gives_none() {
        let exact = Estimate::normal(1.0, 0.0).unwrap();
        assert_eq!(compare(&exact, &exact), None);
    }

    #[test]
    fn ratio_of_is_symmetric_on_the_log_scale() {
        // se(ln r) = √((0.0025/0.11)² + (0.002/0.1)²) = 0.030274228736994023.
        let control = Estimate::normal(0.10, 0.002).unwrap();
        let treatment = Estimate::normal(0.11, 0.0025).unwrap();
        let lift = ratio_of(&control, &treatment).unwrap();
        let log_se = 0.03027422873699402;
        assert!(abs_close(lift.value, 1.1, 1e-15));
        assert!(abs_close(lift.std_error, 1.1 * log_se, 1e-15));
        assert!(lift.ci_low < lift.value && lift.value < lift.ci_high);
        let below = lift.value.ln() - lift.ci_low.ln();
        let above = lift.ci_high.ln() - lift.value.ln();
        assert!(abs_close(below, above, 1e-14));
        assert!(abs_close(above, Z95 * log_se, 1e-14));
    }

    #[test]
    fn ratio_of_needs_positive_values() {
        let positive = Estimate::normal(0.1, 0.01).unwrap();
        let zero = Estimate::normal(0.0, 0.01).unwrap();
        let negative = Estimate::normal(-0.1, 0.01).unwrap();
        assert_eq!(ratio_of(&zero, &positive), None);
        assert_eq!(ratio_of(&positive, &zero), None);
        assert_eq!(ratio_of(&negative, &positive), None);
    }

    #[test]
    fn two_proportion_z_by_hand() {
        // 200/1000 vs 250/1000: pooled p = 450/2000 = 0.225,
        // se = √(0.225·0.775·(2/1000)) = 0.018674849396983099,
        // z = 0.05/se = 2.6773977630083295, p = 0.0074196492610256749.
        let (z, p) = two_proportion_z(200, 1000, 250, 1000).unwrap();
        assert!(rel_close(z, 2.6773977630083295, 1e-13));
        assert!(rel_close(p, 0.007419649261025675, 1e-11));
        let (z_swapped, p_swapped) = two_proportion_z(250, 1000, 200, 1000).unwrap();
        assert_eq!((z_swapped, p_swapped), (-z, p));
    }

    #[test]
    fn two_proportion_z_degenerate_inputs_give_none() {
        assert_eq!(two_proportion_z(0, 0, 1, 10), None);
        assert_eq!(two_proportion_z(1, 10, 0, 0), None);
        assert_eq!(two_proportion_z(11, 10, 1, 10), None);
        assert_eq!(two_proportion_z(0, 10, 0, 10), None);
        assert_eq!(two_proportion_z(10, 10, 10, 10), None);
    }

    #[test]
    fn srm_small_imbalance_is_not_a_mismatch() {
        // Expected 50 500 each; χ² = 2·500²/50 500 = 9.900990099…, p = 0.0016519.
        let check = srm(&[50_000, 51_000], &[1.0, 1.0]).unwrap();
        assert_eq!(check.observed, vec![50_000, 51_000]);
        assert_eq!(check.expected, vec![50_500.0, 50_500.0]);
        assert!(rel_close(check.chi_square, 9.900990099009901, 1e-13));
        assert!(rel_close(check.p_value, 0.001651898732357363, 1e-11));
        assert!(!check.mismatch);
    }

    #[test]
    fn srm_large_imbalance_is_a_mismatch() {
        // Expected 51 000 each; χ² = 2·1000²/51 000 = 39.2156862…, p = 3.7948e-10.
        let check = srm(&[50_000, 52_000], &[1.0, 1.0]).unwrap();
        assert!(rel_close(check.chi_square, 39.2156862745098, 1e-13));
        assert!(rel_close(check.p_value, 3.794791883144958e-10, 1e-10));
        assert!(check.mismatch);
    }

    #[test]
    fn srm_normalizes_unequal_weights() {
        // 90/10 split configured as weights 9 and 1: a perfect match.
        let check = srm(&[9_000, 1_000], &[9.0, 1.0]).unwrap();
        assert_eq!(check.expected, vec![9_000.0, 1_000.0]);
        assert_eq!(check.chi_square, 0.0);
        assert_eq!(check.p_value, 1.0);
        assert!(!check.mismatch);
        // The same split written as percentages gives the same test.
        let scaled = srm(&[9_100, 900], &[90.0, 10.0]).unwrap();
        let unit = srm(&[9_100, 900], &[0.9, 0.1]).unwrap();
        assert!(rel_close(scaled.chi_square, unit.chi_square, 1e-12));
    }

    #[test]
    fn srm_degenerate_inputs_give_none() {
        assert_eq!(srm(&[100], &[1.0]), None);
        assert_eq!(srm(&[], &[]), None);
        assert_eq!(srm(&[0, 0], &[1.0, 1.0]), None);
        assert_eq!(srm(&[10, 10], &[1.0, 0.0]), None);
        assert_eq!(srm(&[10, 10], &[1.0, -1.0]), None);
        assert_eq!(srm(&[10, 10], &[1.0, f64::NAN]), None);
        assert_eq!(srm(&[10, 10], &[1.0, f64::INFINITY]), None);
        assert_eq!(srm(&[10, 10, 10], &[1.0, 1.0]), None);
    }

    #[test]
    fn estimate_normal_rejects_non_finite_input() {
        assert_eq!(Estimate::normal(f64::NAN, 1.0), None);
        assert_eq!(Estimate::normal(1.0, f64::INFINITY), None);
        assert_eq!(Estimate::normal(1.0, -1.0), None);
    }

    #[test]
    fn remove_undoes_push() {
        let units = [
            (1.0, 10.0),
            (3.0, 12.0),
            (0.0, 4.0),
            (7.0, 20.0),
            (2.0, 9.0),
        ];
        let mut all = Samples::new();
        units.iter().for_each(|&(x, y)| all.push(x, y));
        // Replace the second unit's values, as an event would.
        all.remove(3.0, 12.0);
        all.push(5.0, 13.0);
        let mut direct = Samples::new();
        for &(x, y) in &[
            (1.0, 10.0),
            (0.0, 4.0),
            (7.0, 20.0),
            (2.0, 9.0),
            (5.0, 13.0),
        ] {
            direct.push(x, y);
        }
        let (a, b) = (all.ratio().unwrap(), direct.ratio().unwrap());
        assert!((a.value - b.value).abs() < 1e-12);
        assert!((a.std_error - b.std_error).abs() < 1e-12, "{a:?} {b:?}");
        let (a, b) = (all.mean().unwrap(), direct.mean().unwrap());
        assert!((a.std_error - b.std_error).abs() < 1e-12, "{a:?} {b:?}");
        let mut one = Samples::new();
        one.push(1.0, 2.0);
        one.remove(1.0, 2.0);
        assert_eq!((one.n(), one.sum_x(), one.sum_y()), (0, 0.0, 0.0));
    }
}
