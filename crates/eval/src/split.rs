//! Cutting a log into training and test parts, the way the reference protocol does.
//!
//! A split keeps, per user, the **ordered** training history (oldest first),
//! because the strongest signal on a temporal split is what a user did last:
//! recency-weighted scoring needs the order, not just the set. The training
//! part of a split is again a [`Sequences`], so a validation split is cut from
//! it with the very same code ([`Protocol::validation`]).

use std::fmt;
use std::str::FromStr;

use tephra_core::{Duplicates, Interactions, Timestamp};
use tephra_models::registry::TrainingData;

use crate::dataset::Log;
use crate::EvalError;

/// One interaction in a user's timeline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    /// When it happened.
    pub time: Timestamp,
    /// Dense item index.
    pub item: u32,
    /// The logged value (1.0 when the log has none).
    pub value: f32,
}

/// Every user's interactions sorted by (time, item index).
///
/// Item indices follow sorted item ids (see [`crate::dataset`]), so this is the
/// reference order "(timestamp, item id)". Repeated interactions with the same
/// item stay separate steps.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sequences {
    n_items: usize,
    per_user: Vec<Vec<Step>>,
}

impl Sequences {
    /// Groups a log by user and sorts each user's interactions by (time, item).
    pub fn from_log(log: &Log) -> Self {
        let mut per_user: Vec<Vec<Step>> = vec![Vec::new(); log.n_users()];
        for e in log.events() {
            per_user[e.user as usize].push(Step {
                time: e.time,
                item: e.item,
                value: e.value,
            });
        }
        for steps in &mut per_user {
            steps.sort_by(step_order);
        }
        Self {
            n_items: log.n_items(),
            per_user,
        }
    }

    /// Wraps per-user timelines (each is sorted here) over `n_items` items.
    pub fn new(n_items: usize, mut per_user: Vec<Vec<Step>>) -> Result<Self, EvalError> {
        for (u, steps) in per_user.iter_mut().enumerate() {
            if let Some(step) = steps.iter().find(|s| s.item as usize >= n_items) {
                return Err(EvalError::InvalidArgument(format!(
                    "user {u} has item {} but there are only {n_items} items",
                    step.item
                )));
            }
            steps.sort_by(step_order);
        }
        Ok(Self { n_items, per_user })
    }

    /// Number of users (including users without interactions).
    pub fn n_users(&self) -> usize {
        self.per_user.len()
    }

    /// Number of items.
    pub fn n_items(&self) -> usize {
        self.n_items
    }

    /// Total number of steps.
    pub fn n_steps(&self) -> usize {
        self.per_user.iter().map(Vec::len).sum()
    }

    /// `user`'s timeline, oldest first (empty for an unknown user).
    pub fn user(&self, user: u32) -> &[Step] {
        self.per_user.get(user as usize).map_or(&[], Vec::as_slice)
    }

    /// All timelines, indexed by user.
    pub fn users(&self) -> &[Vec<Step>] {
        &self.per_user
    }

    /// The binary users × items matrix (1.0 for every pair that occurs), which
    /// is what the reference protocol trains on.
    pub fn to_matrix(&self) -> Result<Interactions, EvalError> {
        self.to_weighted_matrix(|_, _| 1.0, Duplicates::Max)
    }

    /// The registry's view of these timelines ([`TrainingData`]), which every
    /// model is fitted from, so that evaluation, `tephra train` and the server
    /// feed models identically.
    pub fn training_data(&self) -> Result<TrainingData, EvalError> {
        let sequences = self
            .per_user
            .iter()
            .map(|steps| steps.iter().map(|s| (s.item, s.time.0)).collect())
            .collect();
        TrainingData::from_sequences(self.n_items, sequences)
            .map_err(|e| EvalError::Internal(format!("building the training data: {e}")))
    }

    /// A users × items matrix with a weight per step, `weight(step, age)` where
    /// `age` counts the user's later steps (0 for the latest), and repeats merged
    /// as `duplicates` says. A non-finite weight counts as 0.
    pub fn to_weighted_matrix(
        &self,
        weight: impl Fn(&Step, usize) -> f32,
        duplicates: Duplicates,
    ) -> Result<Interactions, EvalError> {
        let weight = &weight;
        let triples = self.per_user.iter().enumerate().flat_map(|(u, steps)| {
            let n = steps.len();
            steps.iter().enumerate().map(move |(k, s)| {
                let w = weight(s, n - 1 - k);
                (u as u32, s.item, if w.is_finite() { w } else { 0.0 })
            })
        });
        // Indices were checked when the timelines were built, so a failure here
        // is a bug, not bad input.
        Interactions::from_triples(self.n_users(), self.n_items, triples, duplicates)
            .map_err(|e| EvalError::Internal(format!("building the interaction matrix: {e}")))
    }

    /// How many users interacted with each item (distinct users per item).
    pub fn item_popularity(&self) -> Vec<u32> {
        let mut counts = vec![0u32; self.n_items];
        let mut seen = Vec::new();
        for steps in &self.per_user {
            seen.clear();
            seen.extend(steps.iter().map(|s| s.item));
            seen.sort_unstable();
            seen.dedup();
            for &item in &seen {
                counts[item as usize] += 1;
            }
        }
        counts
    }
}

fn step_order(a: &Step, b: &Step) -> std::cmp::Ordering {
    a.time.cmp(&b.time).then(a.item.cmp(&b.item))
}

/// A training part and, per user, the set of items to find.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    /// What models may learn from, as ordered timelines.
    pub train: Sequences,
    /// Per user, the distinct held-out items (sorted); empty for users not
    /// evaluated. Items also present in the training part stay in the set (they
    /// can never be hit, since training items are excluded from the ranking),
    /// exactly as the reference script counts them.
    pub test: Vec<Vec<u32>>,
}

impl Split {
    /// Users with at least one test item, in index order: the users averaged over.
    pub fn test_users(&self) -> impl Iterator<Item = u32> + '_ {
        self.test
            .iter()
            .enumerate()
            .filter(|(_, t)| !t.is_empty())
            .map(|(u, _)| u as u32)
    }

    /// Number of users with a test set.
    pub fn n_test_users(&self) -> usize {
        self.test_users().count()
    }

    /// Total number of (distinct per user) test items.
    pub fn n_test_items(&self) -> usize {
        self.test.iter().map(Vec::len).sum()
    }
}

/// How to hold out the test part.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Protocol {
    /// Per user, the last `round(n · test_fraction)` interactions — at least one
    /// — are test (the standard protocol, `test_fraction` 0.2). Rounding is
    /// half-to-even, as Python's `round` does, so counts match the reference.
    UserTemporal {
        /// Share of each user's interactions held out, in (0, 1].
        test_fraction: f64,
    },
    /// Per user, the single last interaction is test.
    LeaveLastOne,
    /// One global time cut: the last `round(N · test_fraction)` interactions of the
    /// whole log (ordered by time, user, item) are test. Users with no training
    /// interaction before the cut are not evaluated: no history, nothing to
    /// personalize from.
    GlobalTemporal {
        /// Share of all interactions held out, in (0, 1).
        test_fraction: f64,
    },
}

impl Protocol {
    /// The standard protocol: per-user temporal, 20% test.
    pub const STANDARD: Protocol = Protocol::UserTemporal { test_fraction: 0.2 };

    /// Cuts `data` into a training part and test sets.
    pub fn split(&self, data: &Sequences) -> Result<Split, EvalError> {
        self.check()?;
        match *self {
            Protocol::UserTemporal { test_fraction } => {
                Ok(per_user(data, |n| user_test_count(n, test_fraction)))
            }
            Protocol::LeaveLastOne => Ok(per_user(data, |n| n.min(1))),
            Protocol::GlobalTemporal { test_fraction } => Ok(global(data, test_fraction)),
        }
    }

    /// A validation split: the same cut applied to the training part of `split`,
    /// for tuning without touching the test set.
    pub fn validation(&self, split: &Split) -> Result<Split, EvalError> {
        self.split(&split.train)
    }

    fn check(&self) -> Result<(), EvalError> {
        let bad = |f: f64, upper_inclusive: bool| {
            !(f > 0.0 && (f < 1.0 || (upper_inclusive && f == 1.0)))
        };
        match *self {
            Protocol::UserTemporal { test_fraction } if bad(test_fraction, true) => {
                Err(EvalError::InvalidArgument(format!(
                    "test fraction {test_fraction} must be in (0, 1]"
                )))
            }
            Protocol::GlobalTemporal { test_fraction } if bad(test_fraction, false) => {
                Err(EvalError::InvalidArgument(format!(
                    "test fraction {test_fraction} must be in (0, 1)"
                )))
            }
            _ => Ok(()),
        }
    }
}

/// `max(1, round_half_even(n · fraction))`, capped at `n`: Python's
/// `max(1, int(round(n * 0.2)))` for the same double-precision product.
pub fn user_test_count(n: usize, fraction: f64) -> usize {
    if n == 0 {
        return 0;
    }
    let rounded = (n as f64 * fraction).round_ties_even();
    (rounded as usize).clamp(1, n)
}

fn per_user(data: &Sequences, test_count: impl Fn(usize) -> usize) -> Split {
    let mut train = Vec::with_capacity(data.n_users());
    let mut test = Vec::with_capacity(data.n_users());
    for steps in data.users() {
        let cut = steps.len() - test_count(steps.len());
        train.push(steps[..cut].to_vec());
        test.push(distinct_items(&steps[cut..]));
    }
    Split {
        train: Sequences {
            n_items: data.n_items,
            per_user: train,
        },
        test,
    }
}

fn global(data: &Sequences, fraction: f64) -> Split {
    let mut all: Vec<(Timestamp, u32, u32)> = data
        .users()
        .iter()
        .enumerate()
        .flat_map(|(u, steps)| steps.iter().map(move |s| (s.time, u as u32, s.item)))
        .collect();
    let n_test = (all.len() as f64 * fraction).round_ties_even() as usize;
    let n_test = n_test.min(all.len());
    let cut_at = all.len() - n_test;
    let mut train = vec![Vec::new(); data.n_users()];
    let mut test = vec![Vec::new(); data.n_users()];
    if n_test > 0 {
        all.select_nth_unstable(cut_at);
    }
    // Everything before the cut element in (time, user, item) order trains; exact
    // repeats of the cut element (same user, item and time) all go to test.
    let cut = all.get(cut_at).copied();
    for (u, steps) in data.users().iter().enumerate() {
        for &s in steps {
            let key = (s.time, u as u32, s.item);
            match cut {
                Some(c) if key >= c => test[u].push(s),
                _ => train[u].push(s),
            }
        }
    }
    let test = train
        .iter()
        .zip(&test)
        .map(|(tr, te): (&Vec<Step>, &Vec<Step>)| {
            if tr.is_empty() {
                Vec::new()
            } else {
                distinct_items(te)
            }
        })
        .collect();
    Split {
        train: Sequences {
            n_items: data.n_items,
            per_user: train,
        },
        test,
    }
}

fn distinct_items(steps: &[Step]) -> Vec<u32> {
    let mut items: Vec<u32> = steps.iter().map(|s| s.item).collect();
    items.sort_unstable();
    items.dedup();
    items
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Protocol::UserTemporal { test_fraction } => write!(f, "user-temporal:{test_fraction}"),
            Protocol::LeaveLastOne => f.write_str("leave-last-one"),
            Protocol::GlobalTemporal { test_fraction } => {
                write!(f, "global-temporal:{test_fraction}")
            }
        }
    }
}

impl FromStr for Protocol {
    type Err = EvalError;

    /// `user-temporal`, `leave-last-one` or `global-temporal`, optionally with a
    /// test fraction after a colon (`user-temporal:0.1`); the default is 0.2.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (name, fraction) = match text.split_once(':') {
            Some((name, f)) => {
                let f = f.parse::<f64>().map_err(|_| {
                    EvalError::InvalidArgument(format!(
                        "test fraction `{f}` in `{text}` is not a number"
                    ))
                })?;
                (name, Some(f))
            }
            None => (text, None),
        };
        let test_fraction = fraction.unwrap_or(0.2);
        let protocol = match name {
            "user-temporal" => Protocol::UserTemporal { test_fraction },
            "leave-last-one" if fraction.is_none() => Protocol::LeaveLastOne,
            "global-temporal" => Protocol::GlobalTemporal { test_fraction },
            _ => {
                return Err(EvalError::InvalidArgument(format!(
                    "unknown protocol `{text}`; use user-temporal[:FRACTION], leave-last-one or global-temporal[:FRACTION]"
                )))
            }
        };
        protocol.check()?;
        Ok(protocol)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn seq(per_user: Vec<Vec<(i64, u32)>>, n_items: usize) -> Sequences {
        let per_user = per_user
            .into_iter()
            .map(|steps| {
                steps
                    .into_iter()
                    .map(|(t, item)| Step {
                        time: Timestamp(t),
                        item,
                        value: 1.0,
                    })
                    .collect()
            })
            .collect();
        Sequences::new(n_items, per_user).unwrap()
    }

    #[test]
    fn test_counts_round_half_to_even_like_python() {
        // Python: [max(1, int(round(n * 0.2))) for n in range(0, 16)]
        let expected = [0, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 3, 3, 3];
        let got: Vec<usize> = (0..16).map(|n| user_test_count(n, 0.2)).collect();
        assert_eq!(got, expected);
        // Ties: round(2.5) == 2, round(3.5) == 4, round(0.5) == 0 → at least 1.
        assert_eq!(user_test_count(5, 0.5), 2);
        assert_eq!(user_test_count(7, 0.5), 4);
        assert_eq!(user_test_count(1, 0.5), 1);
        assert_eq!(user_test_count(3, 1.0), 3);
    }

    #[test]
    fn user_temporal_holds_out_the_latest_with_item_tie_break() {
        // Five steps, two at the same time: (t=5, item 3) sorts before (t=5, item 7).
        let data = seq(
            vec![vec![(5, 7), (1, 0), (5, 3), (2, 4), (9, 1)], vec![(1, 2)]],
            8,
        );
        let split = Protocol::STANDARD.split(&data).unwrap();
        let items: Vec<u32> = split.train.user(0).iter().map(|s| s.item).collect();
        assert_eq!(items, [0, 4, 3, 7]);
        assert_eq!(split.test, vec![vec![1], vec![2]]);
        assert!(split.train.user(1).is_empty());
        assert_eq!(split.test_users().collect::<Vec<_>>(), [0, 1]);

        let split = Protocol::UserTemporal { test_fraction: 0.5 }
            .split(&data)
            .unwrap();
        // 5 × 0.5 = 2.5 rounds to 2: the last two, (5, 7) and (9, 1).
        assert_eq!(split.test[0], vec![1, 7]);
    }

    #[test]
    fn leave_last_one_and_validation() {
        let data = seq(vec![vec![(1, 0), (2, 1), (3, 2)], vec![]], 3);
        let split = Protocol::LeaveLastOne.split(&data).unwrap();
        assert_eq!(split.test, vec![vec![2], vec![]]);
        let validation = Protocol::LeaveLastOne.validation(&split).unwrap();
        assert_eq!(validation.test, vec![vec![1], vec![]]);
        assert_eq!(validation.train.user(0).len(), 1);
        assert_eq!(split.n_test_users(), 1);
    }

    #[test]
    fn global_temporal_cuts_at_one_time_and_skips_cold_users() {
        let data = seq(
            vec![vec![(1, 0), (8, 1)], vec![(2, 1), (3, 2)], vec![(9, 0)]],
            3,
        );
        // Five steps, 0.4 → the last two by time: (8, u0) and (9, u2).
        let split = Protocol::GlobalTemporal { test_fraction: 0.4 }
            .split(&data)
            .unwrap();
        assert_eq!(split.test, vec![vec![1], vec![], vec![]]);
        assert_eq!(split.train.user(1).len(), 2);
        assert!(split.train.user(2).is_empty());
        assert_eq!(split.train.n_steps(), 3);
    }

    #[test]
    fn parses_protocol_names() {
        assert_eq!(
            "user-temporal".parse::<Protocol>().unwrap(),
            Protocol::STANDARD
        );
        assert_eq!(
            "global-temporal:0.1".parse::<Protocol>().unwrap(),
            Protocol::GlobalTemporal { test_fraction: 0.1 }
        );
        assert_eq!(
            "leave-last-one".parse::<Protocol>().unwrap(),
            Protocol::LeaveLastOne
        );
        assert!("user-temporal:1.5".parse::<Protocol>().is_err());
        assert!("global-temporal:1".parse::<Protocol>().is_err());
        assert!("random".parse::<Protocol>().is_err());
        assert!(Protocol::UserTemporal { test_fraction: 0.0 }
            .split(&Sequences::default())
            .is_err());
    }

    #[test]
    fn weighted_matrix_sees_ages() {
        let data = seq(vec![vec![(1, 0), (2, 1), (3, 0)]], 2);
        let m = data
            .to_weighted_matrix(|_, age| age as f32 + 1.0, Duplicates::Max)
            .unwrap();
        assert_eq!(m.row(0), (&[0u32, 1][..], &[3.0f32, 2.0][..]));
        assert_eq!(data.to_matrix().unwrap().row(0).1, &[1.0, 1.0]);
        assert_eq!(data.item_popularity(), vec![1, 1]);
    }

    proptest! {
        #[test]
        fn splits_partition_each_timeline(
            users in proptest::collection::vec(proptest::collection::vec((0i64..20, 0u32..6), 0..15), 1..8),
            fraction in 0.05f64..1.0,
        ) {
            let data = seq(users, 6);
            for protocol in [Protocol::UserTemporal { test_fraction: fraction }, Protocol::LeaveLastOne] {
                let split = protocol.split(&data).unwrap();
                for (u, steps) in data.users().iter().enumerate() {
                    let train = split.train.user(u as u32);
                    prop_assert_eq!(&steps[..train.len()], train);
                    let held: Vec<u32> = distinct_items(&steps[train.len()..]);
                    prop_assert_eq!(&split.test[u], &held);
                    prop_assert_eq!(steps.is_empty(), held.is_empty());
                }
            }
        }
    }
}
