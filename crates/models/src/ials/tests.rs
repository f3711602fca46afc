//! Behaviour of iALS training, fold-in and scoring on small data.

use proptest::prelude::*;
use tephra_core::{Duplicates, Interactions};

use super::simd::flat;
use super::*;

/// Users in `groups` taste groups, each liking its own block of items, plus a
/// little noise: a matrix with a clear low-rank structure.
fn clustered(
    n_users: usize,
    n_items: usize,
    groups: usize,
    per_user: usize,
    seed: u64,
) -> Interactions {
    let mut state = seed | 1;
    let mut next = move |bound: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % bound as u64) as usize
    };
    let block = n_items / groups;
    let mut triples = Vec::new();
    for u in 0..n_users {
        let g = u % groups;
        for _ in 0..per_user {
            let item = if next(10) == 0 {
                next(n_items)
            } else {
                g * block + next(block)
            };
            triples.push((u as u32, item as u32, 1.0 + next(3) as f32));
        }
    }
    Interactions::from_triples(n_users, n_items, triples, Duplicates::Max).unwrap()
}

fn small_config(factors: usize) -> IalsConfig {
    IalsConfig {
        factors,
        iterations: 10,
        alpha: 2.0,
        unobserved_weight: 0.2,
        regularization: 0.05,
        frequency_exponent: 0.0,
        cg_steps: 3,
        init_scale: 0.1,
        seed: 7,
        gather_precision: GatherPrecision::Single,
    }
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| f64::from(x) * f64::from(y))
        .sum();
    let na: f64 = a.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

fn loss_trace(x: &Interactions, config: &IalsConfig, isa: Isa) -> Vec<f64> {
    let mut trainer = IalsTrainer::with_isa(x, config, isa).unwrap();
    let mut losses = vec![trainer.loss()];
    for _ in 0..config.iterations {
        trainer.iterate();
        losses.push(trainer.loss());
    }
    losses
}

#[test]
fn loss_decreases_and_fold_in_reproduces_trained_users() {
    let x = clustered(80, 48, 4, 8, 3);
    let config = IalsConfig {
        iterations: 40,
        cg_steps: 16,
        ..small_config(16)
    };
    let losses = loss_trace(&x, &config, Isa::detect());
    assert!(losses.last().unwrap() < &(losses[0] * 0.5), "{losses:?}");
    for pair in losses.windows(2) {
        assert!(pair[1] <= pair[0] * (1.0 + 1e-6), "{losses:?}");
    }

    let model = IalsModel::fit(&x, &config).unwrap();
    for u in 0..x.n_users() as u32 {
        let (items, values) = x.row(u);
        let history: Vec<(u32, f32)> = items.iter().copied().zip(values.iter().copied()).collect();
        let folded = model.fold_in(&history);
        let trained = model.user_vector(u).unwrap();
        let c = cosine(&folded, trained);
        assert!(c > 0.99, "user {u}: cosine {c}");
    }
}

#[test]
fn fold_in_ranks_the_users_own_group_first() {
    let x = clustered(120, 40, 4, 10, 11);
    let model = IalsModel::fit(&x, &small_config(8)).unwrap();
    // A brand-new user who liked three items of group 2 (items 20..30).
    let history = [(21, 1.0), (24, 1.0), (27, 1.0)];
    let mut scores = vec![0.0; model.n_items()];
    model.score(&history, &mut scores);
    let folded = model.fold_in(&history);
    for (i, &s) in scores.iter().enumerate() {
        let h = model.item_vector(i as u32).unwrap();
        let expected: f32 = h.iter().zip(&folded).map(|(a, b)| a * b).sum();
        assert!((s - expected).abs() < 1e-4, "item {i}");
    }
    // The seven other items of the group come before everything else.
    let top = crate::rank::top_n(&scores, 7, |i| !history.iter().any(|h| h.0 == i));
    assert!(top.iter().all(|&(i, _)| (20..30).contains(&i)), "{top:?}");

    let similar = model.similar_items(25, 5);
    assert_eq!(similar.len(), 5);
    assert!(
        similar
            .iter()
            .all(|&(i, _)| i != 25 && (20..30).contains(&i)),
        "{similar:?}"
    );
    assert!(model.similar_items(999, 5).is_empty());
}

#[test]
fn unknown_and_empty_histories_are_harmless() {
    let x = clustered(20, 16, 2, 4, 5);
    let model = IalsModel::fit(&x, &small_config(5)).unwrap();
    assert_eq!(model.fold_in(&[]), vec![0.0; 5]);
    assert_eq!(model.fold_in(&[(999, 1.0)]), vec![0.0; 5]);
    let mut scores = vec![1.0; 16];
    model.score(&[(999, 1.0)], &mut scores);
    assert!(scores.iter().all(|&s| s == 0.0));
    assert!(model.user_vector(20).is_none());
    assert_eq!(
        model.fold_in(&[(3, 1.0), (999, 1.0)]),
        model.fold_in(&[(3, 1.0)])
    );
    let item = model.fold_in_item(&[(0, 1.0), (2, 1.0), (12345, 1.0)]);
    assert_eq!(item.len(), 5);
    assert!(item.iter().all(|v| v.is_finite()));
}

#[test]
fn fold_in_item_recovers_a_trained_item() {
    let x = clustered(80, 32, 4, 8, 9);
    let config = IalsConfig {
        iterations: 40,
        cg_steps: 16,
        ..small_config(8)
    };
    let model = IalsModel::fit(&x, &config).unwrap();
    let xt = x.transpose();
    for i in 0..x.n_items() as u32 {
        let (users, values) = xt.row(i);
        if users.is_empty() {
            continue;
        }
        let history: Vec<(u32, f32)> = users.iter().copied().zip(values.iter().copied()).collect();
        let c = cosine(&model.fold_in_item(&history), model.item_vector(i).unwrap());
        assert!(c > 0.99, "item {i}: cosine {c}");
    }
}

#[test]
fn padding_stays_zero_for_odd_factor_counts() {
    let x = clustered(30, 20, 2, 5, 1);
    let mut trainer = IalsTrainer::new(&x, &small_config(5)).unwrap();
    for _ in 0..3 {
        trainer.iterate();
    }
    for factors in [trainer.user_factors(), trainer.item_factors()] {
        for r in 0..factors.n_rows() {
            assert!(flat(factors.padded(r))[5..].iter().all(|&v| v == 0.0));
        }
    }
}

#[test]
fn simd_training_matches_portable_training() {
    let x = clustered(60, 40, 3, 7, 13);
    let config = IalsConfig {
        iterations: 3,
        ..small_config(24)
    };
    let run = |isa| {
        let mut trainer = IalsTrainer::with_isa(&x, &config, isa).unwrap();
        for _ in 0..config.iterations {
            trainer.iterate();
        }
        trainer.into_model()
    };
    let fast = run(Isa::detect());
    let portable = run(Isa::Portable);
    for (a, b) in [
        (fast.user_factors(), portable.user_factors()),
        (fast.item_factors(), portable.item_factors()),
    ] {
        for (x, y) in a.to_row_major().iter().zip(b.to_row_major()) {
            assert!((x - y).abs() <= 1e-3 * (1.0 + y.abs()), "{x} vs {y}");
        }
    }
}

#[test]
fn half_precision_gathering_stays_close_to_exact_training() {
    let x = clustered(200, 60, 3, 9, 23);
    let exact = IalsConfig {
        iterations: 6,
        ..small_config(16)
    };
    let half = IalsConfig {
        gather_precision: GatherPrecision::Half,
        ..exact
    };
    for isa in [Isa::Portable, Isa::detect()] {
        let exact_losses = loss_trace(&x, &exact, isa);
        let half_losses = loss_trace(&x, &half, isa);
        for (a, b) in exact_losses.iter().zip(&half_losses) {
            assert!(
                (a - b).abs() <= 1e-3 * a,
                "{exact_losses:?} vs {half_losses:?}"
            );
        }
        // Monotone up to the rounding of the fixed side.
        for pair in half_losses.windows(2) {
            assert!(pair[1] <= pair[0] * (1.0 + 1e-4), "{half_losses:?}");
        }
    }
    // The items were rounded before the last user step: they are exact halves.
    let mut trainer = IalsTrainer::new(&x, &half).unwrap();
    trainer.iterate();
    for &v in &trainer.item_factors().to_row_major() {
        assert_eq!(simd::f16_to_f32(simd::f32_to_f16(v)), v);
    }
}

#[test]
fn eigenbasis_and_dense_gram_solve_the_same_problem() {
    let x = clustered(150, 50, 3, 8, 29);
    let config = IalsConfig {
        iterations: 5,
        ..small_config(12)
    };
    for isa in [Isa::Portable, Isa::detect()] {
        let mut rotated = IalsTrainer::with_isa(&x, &config, isa).unwrap();
        let mut dense = IalsTrainer::with_isa(&x, &config, isa).unwrap();
        dense.eigenbasis = false;
        for _ in 0..config.iterations {
            rotated.iterate();
            dense.iterate();
            let (a, b) = (rotated.loss(), dense.loss());
            assert!((a - b).abs() <= 1e-4 * b, "{a} vs {b}");
        }
        // Same predictions, whatever the basis.
        let (r, d) = (rotated.into_model(), dense.into_model());
        let history = [(3, 1.0), (17, 1.0), (30, 1.0)];
        let (mut sr, mut sd) = (vec![0.0; 50], vec![0.0; 50]);
        r.score(&history, &mut sr);
        d.score(&history, &mut sd);
        for (a, b) in sr.iter().zip(&sd) {
            assert!((a - b).abs() <= 1e-3 * (1.0 + b.abs()), "{a} vs {b}");
        }
    }
}

#[test]
fn same_seed_same_model_whatever_the_thread_count() {
    let x = clustered(300, 60, 3, 9, 17);
    let config = IalsConfig {
        iterations: 3,
        ..small_config(16)
    };
    let train = |threads| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| IalsModel::fit(&x, &config).unwrap())
    };
    let one = train(1);
    let three = train(3);
    assert_eq!(one.user_factors(), three.user_factors());
    assert_eq!(one.item_factors(), three.item_factors());
    let other_seed = IalsModel::fit(&x, &IalsConfig { seed: 8, ..config }).unwrap();
    assert_ne!(one.user_factors(), other_seed.user_factors());
}

#[test]
fn refuses_bad_configs_and_mismatched_factors() {
    let x = clustered(10, 8, 2, 3, 1);
    let bad = IalsConfig {
        regularization: -1.0,
        ..small_config(4)
    };
    assert!(IalsModel::fit(&x, &bad).is_err());
    let model = IalsModel::fit(&x, &small_config(4)).unwrap();
    let users = model.user_factors().clone();
    let items = model.item_factors().clone();
    assert!(IalsModel::from_factors(&small_config(8), users.clone(), items.clone()).is_err());
    let rebuilt = IalsModel::from_factors(&small_config(4), users, items).unwrap();
    let history = [(1, 1.0), (5, 1.0)];
    assert_eq!(rebuilt.fold_in(&history), model.fold_in(&history));
}

#[test]
fn empty_matrix_trains_to_nothing() {
    let x = Interactions::from_triples(3, 0, [], Duplicates::Max).unwrap();
    let model = IalsModel::fit(&x, &small_config(8)).unwrap();
    assert_eq!(model.n_items(), 0);
    assert!(model
        .user_factors()
        .to_row_major()
        .iter()
        .all(|&v| v == 0.0));
}

fn matrices() -> impl Strategy<Value = Interactions> {
    (2usize..25, 2usize..25).prop_flat_map(|(n_users, n_items)| {
        let cell = (0..n_users as u32, 0..n_items as u32, 0u8..4);
        proptest::collection::vec(cell, 1..120).prop_map(move |cells| {
            let triples = cells.into_iter().map(|(u, i, v)| (u, i, f32::from(v)));
            Interactions::from_triples(n_users, n_items, triples, Duplicates::Max).unwrap()
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Every CG step minimizes its row's objective along a direction, so the
    /// training loss never goes up — with the default two steps as with
    /// near-exact solves, and with frequency-scaled regularization.
    #[test]
    fn training_loss_never_increases(
        x in matrices(),
        factors in 1usize..20,
        cg_steps in 1usize..12,
        nu in 0u8..2,
        seed in any::<u64>(),
    ) {
        let config = IalsConfig {
            factors,
            iterations: 6,
            alpha: 1.5,
            unobserved_weight: 0.3,
            regularization: 0.1,
            frequency_exponent: f32::from(nu),
            cg_steps,
            init_scale: 0.5,
            seed,
            gather_precision: GatherPrecision::Single,
        };
        for isa in [Isa::Portable, Isa::detect()] {
            let losses = loss_trace(&x, &config, isa);
            for pair in losses.windows(2) {
                prop_assert!(pair[1] <= pair[0] * (1.0 + 1e-5) + 1e-7, "{:?} {:?}", isa, losses);
            }
        }
    }
}
