//! iALS: implicit alternating least squares with conjugate-gradient updates
//! (Hu, Koren & Volinsky 2008; Rendle, Krichene, Zhang & Koren 2022).
//!
//! Every user and item gets a vector of `factors` numbers such that w_u·h_i is
//! close to 1 for observed pairs (weighted by a confidence) and to 0 for all the
//! others (weighted by `unobserved_weight`). Training alternates: all item
//! vectors given the users, then all user vectors given the items; each row is
//! a small regularized least-squares problem, improved by a few warm-started
//! conjugate-gradient steps instead of an exact solve (see [`solve`] for the
//! cost model). Scoring folds the *current* history in with an exact solve, so
//! new users and users who just acted are served like trained ones.
//!
//! Speed comes from: one Gram matrix per half-iteration instead of per-row
//! d × d systems; gathering each row's factor vectors into one contiguous
//! buffer, software-pipelined so that the next row's vectors arrive while this
//! one is solved, and from a half-precision copy of the fixed side when it is
//! large (see [`GatherPrecision`]); register-blocked AVX2/FMA kernels picked at
//! run time, portable code elsewhere; rayon over chunks of rows with
//! per-worker buffers and no allocation per row; users and items renumbered
//! busiest first while training, so that the most-read vectors share a few
//! megabytes of cache (see `order`). Results are deterministic for a seed,
//! whatever the number of threads.

mod config;
mod exact;
mod factors;
mod kernels;
mod order;
mod simd;
mod solve;

pub use config::{GatherPrecision, IalsConfig};
pub use exact::training_loss;
pub use factors::Factors;
pub use simd::Isa;

use rayon::prelude::*;
use tephra_core::Interactions;

use crate::error::ModelError;
use crate::recommender::{History, Recommender};
use order::Ordering;
use solve::{all_dots, scaled_gram, GramTerm, HalfStep};

const NAME: &str = "ials";

/// Which side a half-iteration solves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Users,
    Items,
}

/// Trains iALS one iteration at a time.
///
/// [`IalsModel::fit`] is the usual entry point; the trainer exists so that
/// callers can watch the loss, report progress or stop early.
///
/// Internally users and items are renumbered busiest first (see `order`), for
/// cache locality and load balance; everything the trainer hands out is in
/// the caller's numbering.
#[derive(Debug)]
pub struct IalsTrainer<'a> {
    config: IalsConfig,
    isa: Isa,
    /// The training matrix in the internal numbering, and its transpose.
    x: Interactions,
    xt: Interactions,
    order: Ordering,
    /// Factors in the internal numbering.
    users: Factors,
    items: Factors,
    iterations_done: usize,
    /// Rotate into the fixed side's Gram eigenbasis before each half-step
    /// (always, except in tests of the dense fallback).
    eigenbasis: bool,
    /// The trainer works on its own relabelled copy of the matrix; the
    /// lifetime stays so that callers' types do not change.
    _input: std::marker::PhantomData<&'a Interactions>,
}

impl<'a> IalsTrainer<'a> {
    /// Prepares training on `x` (users × items, values feed the confidence):
    /// checks the configuration and draws the seeded initial factors.
    pub fn new(x: &'a Interactions, config: &IalsConfig) -> Result<Self, ModelError> {
        Self::with_isa(x, config, Isa::detect())
    }

    /// Like [`Self::new`] with an explicit instruction set, e.g. to compare the
    /// fast kernels with the portable ones.
    pub fn with_isa(
        x: &'a Interactions,
        config: &IalsConfig,
        isa: Isa,
    ) -> Result<Self, ModelError> {
        config.validate()?;
        let d = config.factors;
        let order = Ordering::by_degree(x);
        let (relabelled, transposed) = order.apply(x)?;
        // Drawn in the caller's numbering, so that the start does not depend
        // on the renumbering.
        let users = random_factors(order.users(), d, config, 0);
        let items = random_factors(order.items(), d, config, 1);
        Ok(Self {
            config: *config,
            isa,
            x: relabelled,
            xt: transposed,
            order,
            users,
            items,
            iterations_done: 0,
            eigenbasis: true,
            _input: std::marker::PhantomData,
        })
    }

    /// One iteration: every item vector re-solved given the users, then every
    /// user vector given the items (users last, so that a user's trained vector
    /// is the fold-in of its history against the final item factors).
    ///
    /// Before each half, both sides are rotated by the same orthogonal matrix
    /// (the eigenvectors of the fixed side's Gram matrix): predictions and the
    /// objective are unchanged, and the Gram term of every CG step becomes
    /// diagonal (see `solve::rotate_to_eigenbasis`). The factors of a trained
    /// model are therefore in some rotated basis — any basis is as good.
    pub fn iterate(&mut self) {
        self.half_iteration(Side::Items);
        self.half_iteration(Side::Users);
        self.iterations_done += 1;
    }

    /// Re-solves every vector of `solved` given the other side: rotates both
    /// sides into the fixed side's Gram eigenbasis (or, without it, builds the
    /// dense α0·G), then runs the row solves.
    fn half_iteration(&mut self, solved: Side) {
        let alpha0 = self.config.unobserved_weight;
        let fixed_is_users = solved == Side::Items;
        let diagonal = self
            .eigenbasis
            .then(|| {
                solve::rotate_to_eigenbasis(
                    self.isa,
                    &mut self.users,
                    &mut self.items,
                    fixed_is_users,
                    alpha0,
                )
            })
            .flatten();
        let (x, fixed, target) = match solved {
            Side::Items => (&self.xt, &mut self.users, &mut self.items),
            Side::Users => (&self.x, &mut self.items, &mut self.users),
        };
        let half = self
            .config
            .gather_precision
            .uses_half(fixed.data().len() * 8)
            .then(|| solve::to_half(self.isa, fixed));
        let dense;
        let gram = match &diagonal {
            Some(diagonal) => GramTerm::Diagonal(diagonal),
            None => {
                dense = scaled_gram(self.isa, fixed, alpha0);
                GramTerm::Dense(&dense)
            }
        };
        HalfStep {
            x,
            fixed,
            gram,
            config: &self.config,
            half: half.as_deref(),
        }
        .run(self.isa, target);
    }

    /// Iterations run so far.
    pub fn iterations_done(&self) -> usize {
        self.iterations_done
    }

    /// The training objective of the current factors (see [`training_loss`]).
    pub fn loss(&self) -> f64 {
        training_loss(&self.x, &self.config, &self.users, &self.items)
    }

    /// Current user vectors, one row per user of the training matrix (a copy:
    /// the trainer keeps them in its own numbering).
    pub fn user_factors(&self) -> Factors {
        self.order.restore_users(&self.users)
    }

    /// Current item vectors, one row per item (a copy, as for users).
    pub fn item_factors(&self) -> Factors {
        self.order.restore_items(&self.items)
    }

    /// The model with the current factors.
    pub fn into_model(self) -> IalsModel {
        let (mut users, mut items) = (self.users, self.items);
        self.order.restore_in_place(&mut users, &mut items);
        IalsModel::assemble(self.config, self.isa, users, items)
    }
}

/// A trained iALS model: user and item factors, plus what fold-in needs.
#[derive(Debug, Clone)]
pub struct IalsModel {
    config: IalsConfig,
    isa: Isa,
    users: Factors,
    items: Factors,
    /// HᵀH, for folding in users.
    item_gram: Vec<f64>,
    /// WᵀW, for folding in items.
    user_gram: Vec<f64>,
    /// ‖h_i‖, for cosine similar items.
    item_norms: Vec<f32>,
}

impl IalsModel {
    /// Trains on `x` (users × items; values feed the confidence 1 + alpha·value)
    /// for `config.iterations` iterations.
    pub fn fit(x: &Interactions, config: &IalsConfig) -> Result<Self, ModelError> {
        let mut trainer = IalsTrainer::new(x, config)?;
        for _ in 0..config.iterations {
            trainer.iterate();
        }
        Ok(trainer.into_model())
    }

    /// Rebuilds a model from saved factors (both with `config.factors`
    /// columns), e.g. when loading a snapshot.
    pub fn from_factors(
        config: &IalsConfig,
        users: Factors,
        items: Factors,
    ) -> Result<Self, ModelError> {
        config.validate()?;
        if users.dim() != config.factors || items.dim() != config.factors {
            return Err(ModelError::Shape {
                model: NAME,
                message: format!(
                    "factor matrices have {} and {} columns but the configuration says {}",
                    users.dim(),
                    items.dim(),
                    config.factors
                ),
            });
        }
        Ok(Self::assemble(*config, Isa::detect(), users, items))
    }

    fn assemble(config: IalsConfig, isa: Isa, users: Factors, items: Factors) -> Self {
        let item_gram = solve::gram_f64(isa, &items);
        let user_gram = solve::gram_f64(isa, &users);
        let item_norms = (0..items.n_rows())
            .map(|i| {
                let h = items.get(i).unwrap_or_default();
                h.iter().map(|x| x * x).sum::<f32>().sqrt()
            })
            .collect();
        Self {
            config,
            isa,
            users,
            items,
            item_gram,
            user_gram,
            item_norms,
        }
    }

    /// The configuration the model was trained with.
    pub fn config(&self) -> &IalsConfig {
        &self.config
    }

    /// All user vectors (one row per training user).
    pub fn user_factors(&self) -> &Factors {
        &self.users
    }

    /// All item vectors (one row per item).
    pub fn item_factors(&self) -> &Factors {
        &self.items
    }

    /// The trained vector of user `user`, or `None` for an unknown index.
    pub fn user_vector(&self, user: u32) -> Option<&[f32]> {
        self.users.get(user as usize)
    }

    /// The trained vector of item `item`, or `None` for an unknown index.
    pub fn item_vector(&self, item: u32) -> Option<&[f32]> {
        self.items.get(item as usize)
    }

    /// The user vector that best explains `history` given the item factors:
    /// the exact solution of the user step, without retraining. Items outside
    /// the catalogue are ignored; an empty history gives the zero vector.
    pub fn fold_in(&self, history: History<'_>) -> Vec<f32> {
        fold(&self.config, &self.item_gram, &self.items, history)
    }

    /// The item vector that best explains which users interacted with a (new)
    /// item, `(user index, value)` pairs, given the user factors: the exact item
    /// step. Users outside the training set are ignored.
    pub fn fold_in_item(&self, users: &[(u32, f32)]) -> Vec<f32> {
        fold(&self.config, &self.user_gram, &self.users, users)
    }
}

/// The exact half-step solve for one row from its observed entries.
fn fold(config: &IalsConfig, gram: &[f64], fixed: &Factors, entries: &[(u32, f32)]) -> Vec<f32> {
    let known = || {
        entries
            .iter()
            .filter_map(|&(r, value)| Some((fixed.get(r as usize)?, config.confidence(value))))
    };
    let lambda = config.row_regularization(known().count(), fixed.n_rows());
    exact::solve_exact(gram, fixed.dim(), config.unobserved_weight, lambda, known())
}

impl Recommender for IalsModel {
    fn name(&self) -> &'static str {
        NAME
    }

    fn n_items(&self) -> usize {
        self.items.n_rows()
    }

    /// Folds the history in, then scores every item by its dot product with
    /// the folded-in vector.
    fn score(&self, history: History<'_>, scores: &mut [f32]) {
        let w = self.fold_in(history);
        let mut padded = Factors::zeros(1, w.len());
        padded.row_mut(0).copy_from_slice(&w);
        all_dots(self.isa, &self.items, padded.padded(0), scores);
    }

    /// Items whose vectors point the same way (cosine of item factors): the
    /// model's own notion of "liked by the same users".
    fn similar_items(&self, item: u32, n: usize) -> Vec<(u32, f32)> {
        let Some(h) = self.items.get(item as usize) else {
            return Vec::new();
        };
        let norm = self.item_norms[item as usize];
        let mut scores = vec![0f32; self.items.n_rows()];
        all_dots(
            self.isa,
            &self.items,
            self.items.padded(item as usize),
            &mut scores,
        );
        debug_assert_eq!(h.len(), self.items.dim());
        for (s, &other) in scores.iter_mut().zip(&self.item_norms) {
            let denominator = norm * other;
            *s = if denominator > 0.0 {
                *s / denominator
            } else {
                0.0
            };
        }
        scores[item as usize] = f32::NEG_INFINITY;
        crate::rank::top_n(&scores, n, |_| true)
    }
}

/// Seeded random factors with standard deviation `init_scale / √factors`,
/// one row per entry of `original`. Row r draws from its own stream (seed,
/// side, original[r]), so the result depends neither on how the work is split
/// nor on the internal numbering.
///
/// Each value is a centred sum of four uniforms (Irwin–Hall): bell-shaped
/// like a Gaussian, bounded at ±3.5 standard deviations, and a few integer
/// operations per value instead of a logarithm and two trigonometric calls —
/// the start only has to be small, random and symmetric.
fn random_factors(original: &[u32], dim: usize, config: &IalsConfig, side: u64) -> Factors {
    let mut factors = Factors::zeros(original.len(), dim);
    let lanes = factors.lanes();
    if lanes == 0 {
        return factors;
    }
    // Four 16-bit uniforms on [0, 1): sum has mean 2 and variance 4/12.
    let scale = config.init_scale / (dim as f32).sqrt() * 3f32.sqrt() / 65536.0;
    let seed = config.seed;
    factors
        .data_mut()
        .par_chunks_mut(lanes)
        .zip(original.par_iter())
        .for_each(|(row, &r)| {
            let mut state = splitmix(seed ^ splitmix(side << 32 ^ u64::from(r)));
            for x in &mut simd::flat_mut(row)[..dim] {
                state = splitmix(state);
                let sum: u64 = (0..4).map(|k| (state >> (16 * k)) & 0xffff).sum();
                *x = (sum as f32 - 2.0 * 65535.0) * scale;
            }
        });
    factors
}

/// SplitMix64 finalizer: a cheap, well-mixed hash of a 64-bit state.
fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests;
