//! A six-item, three-user log whose every metric is computed by hand below.

use std::io::Write;

use tephra_eval::{
    evaluate, EvalError, EvalOptions, HistoryWeighting, Log, Protocol, Sequences, Split,
};
use tephra_models::{History, Recommender};

/// Items a..f get indices 0..5 (sorted ids).
/// - u1: a b c d e at times 1..5 → train a b c d, test e.
/// - u2: a, b, c all at time 1, then f, then d → train a b c f, test d
///   (the time-1 tie is broken by item id).
/// - u3: one event → it is the test item; empty training history.
const LOG: &str = "user_id,item_id,timestamp\n\
    u1,a,1\nu1,b,2\nu1,c,3\nu1,d,4\nu1,e,5\n\
    u2,c,1\nu2,f,2\nu2,b,1\nu2,d,3\nu2,a,1\n\
    u3,a,1\n";

fn split() -> Split {
    let log = Log::read_csv(LOG.as_bytes()).unwrap();
    Protocol::STANDARD
        .split(&Sequences::from_log(&log))
        .unwrap()
}

/// Scores item i as i + 1 whatever the history: f > e > d > c > b > a.
struct Static;

impl Recommender for Static {
    fn name(&self) -> &'static str {
        "static"
    }
    fn n_items(&self) -> usize {
        6
    }
    fn score(&self, _history: History<'_>, scores: &mut [f32]) {
        for (i, s) in scores.iter_mut().enumerate() {
            *s = i as f32 + 1.0;
        }
    }
}

/// Each history item votes for one fixed item with its weight: a → e, d → f.
struct Votes;

impl Recommender for Votes {
    fn name(&self) -> &'static str {
        "votes"
    }
    fn n_items(&self) -> usize {
        6
    }
    fn score(&self, history: History<'_>, scores: &mut [f32]) {
        scores.fill(0.0);
        for &(item, w) in history {
            match item {
                0 => scores[4] += w,
                3 => scores[5] += w,
                _ => {}
            }
        }
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn split_follows_the_protocol() {
    let split = split();
    let train: Vec<Vec<u32>> = split
        .train
        .users()
        .iter()
        .map(|s| s.iter().map(|s| s.item).collect())
        .collect();
    assert_eq!(train, vec![vec![0, 1, 2, 3], vec![0, 1, 2, 5], vec![]]);
    assert_eq!(split.test, vec![vec![4], vec![3], vec![0]]);
    assert_eq!(split.train.item_popularity(), vec![2, 2, 2, 1, 0, 1]);
}

#[test]
fn static_ranking_metrics_by_hand() {
    // u1 ranks f, e (train items excluded): hit at 2. u2 ranks e, d: hit at 2.
    // u3 ranks f e d c b a: hit at 6.
    let options = EvalOptions {
        ks: vec![1, 2, 6],
        ..Default::default()
    };
    let m = evaluate(&Static, &split(), &options).unwrap();
    assert_eq!(m.users, 3);
    let at1 = m.at_k(1).unwrap();
    assert!(close(at1.recall, 0.0) && close(at1.hit_rate, 0.0));
    assert!(close(at1.coverage, 2.0 / 6.0)); // f and e
    let at2 = m.at_k(2).unwrap();
    let d2 = 1.0 / 3f64.log2();
    assert!(close(at2.recall, 2.0 / 3.0));
    assert!(close(at2.precision, (0.5 + 0.5) / 3.0));
    assert!(close(at2.ndcg, 2.0 * d2 / 3.0));
    assert!(close(at2.map, (0.5 + 0.5) / 3.0));
    assert!(close(at2.mrr, (0.5 + 0.5) / 3.0));
    assert!(close(at2.coverage, 3.0 / 6.0)); // d, e, f
                                             // Recommended: f e | e d | f e with training popularity 1 0 0 1 1 0.
    assert!(close(at2.avg_popularity, 3.0 / 6.0));
    let at6 = m.at_k(6).unwrap();
    assert!(close(at6.recall, 1.0));
    assert!(close(at6.ndcg, (2.0 * d2 + 1.0 / 7f64.log2()) / 3.0));
    assert!(close(at6.mrr, (0.5 + 0.5 + 1.0 / 6.0) / 3.0));
    assert!(close(at6.coverage, 1.0));
}

#[test]
fn recency_weighting_uses_event_age() {
    // u1's history a b c d: plainly, e (from a) and f (from d) tie at 1 and the
    // lower index e wins — a hit. With half-life 1, a is 3 events old (1/8) and d
    // is the latest (1): f first, the hit drops to rank 2.
    let split = split();
    let plain = evaluate(
        &Votes,
        &split,
        &EvalOptions {
            ks: vec![1],
            ..Default::default()
        },
    )
    .unwrap();
    let recent = EvalOptions {
        ks: vec![1],
        weighting: HistoryWeighting::Recency { half_life: 1.0 },
    };
    let recent = evaluate(&Votes, &split, &recent).unwrap();
    // u2 (history a b c f: e first) misses either way; u3 has no history, all
    // scores tie at 0 and the lowest index, a, is its test item: a hit either way.
    assert!(close(plain.at_k(1).unwrap().ndcg, 2.0 / 3.0));
    assert!(close(recent.at_k(1).unwrap().ndcg, 1.0 / 3.0));
}

#[test]
fn a_model_for_another_catalogue_is_refused() {
    struct Small;
    impl Recommender for Small {
        fn name(&self) -> &'static str {
            "small"
        }
        fn n_items(&self) -> usize {
            2
        }
        fn score(&self, _: History<'_>, _: &mut [f32]) {}
    }
    let err = evaluate(&Small, &split(), &EvalOptions::default()).unwrap_err();
    assert!(matches!(err, EvalError::ModelMismatch(_)), "{err}");
}

#[test]
fn files_are_read_by_extension_and_errors_carry_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let inter = dir.path().join("tiny.inter");
    let mut file = std::fs::File::create(&inter).unwrap();
    writeln!(
        file,
        "user_id:token\titem_id:token\trating:float\ttimestamp:float"
    )
    .unwrap();
    writeln!(file, "7\t3\t4\t100").unwrap();
    writeln!(file, "7\t2\t5\t90").unwrap();
    drop(file);
    let log = Log::open(&inter).unwrap();
    assert_eq!(log.len(), 2);
    assert_eq!(log.events()[1].value, 5.0);

    let csv = dir.path().join("bad.csv");
    std::fs::write(&csv, "u,i,1\nu,i,2\nu,i\n").unwrap();
    let err = Log::open(&csv).unwrap_err();
    assert!(matches!(err, EvalError::Parse { line: 3, .. }), "{err}");

    let missing = dir.path().join("missing.csv");
    let err = Log::open(&missing).unwrap_err();
    assert!(err.to_string().contains("missing.csv"), "{err}");
}
