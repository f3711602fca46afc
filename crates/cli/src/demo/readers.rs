//! Simulated readers of the demo's news portal: who clicks what, and why.
//!
//! The choice model is meant to be fair to a popularity feed, not built for
//! personalization to win:
//!
//! - **Topic taste.** Each reader's interest over the six topics is drawn from a
//!   symmetric Dirichlet with concentration `α` (`--concentration`). A small α
//!   gives readers one or two favourite topics, a large α makes everyone alike
//!   (α → ∞: no taste at all). A story's topic is its first category.
//! - **General appeal.** Every story has an appeal drawn from a log-normal
//!   (σ = 0.5, mean 1), the same for every reader: some stories are simply
//!   better. A share `g` of the click propensity (`--appeal-share`) comes from
//!   appeal regardless of topic, so popular stories really are popular.
//! - **Position bias.** A story in place `p` (0 = top) is looked at with weight
//!   `1 / (1 + p)^b` (`--position-bias`).
//! - **Fatigue.** A story already shown to the reader `k` times is clicked with
//!   weight `f^k` (`--fatigue`); a story the reader clicked is not clicked again.
//! - **Base rate and noise.** The probability of a click is
//!   `base × position × fatigue × noise × ((1 − g)·K·θ[topic] + g·appeal)`,
//!   capped at 0.9, where `K = 6` (so that an average reader's topic term
//!   averages 1, like appeal), `base` is `--base-rate` and `noise` is a
//!   log-normal factor (σ `--noise`, mean 1) drawn per impression.
//!
//! A click is followed by a read (dwell seconds: the story's reading time
//! times a uniform share in 0.2–1), and sometimes by a like (10%) or a
//! subscription purchase worth 5 (1%).
//!
//! The history that exists before the demo starts comes from the same model:
//! each reader browsed `--history` random stories over the past week.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use tephra_core::{Event, Item, Timestamp};

use crate::sample;

/// Spread (σ of the logarithm) of stories' general appeal.
pub const APPEAL_SIGMA: f64 = 0.5;
/// Highest click probability of one impression.
pub const MAX_CLICK_PROBABILITY: f64 = 0.9;
/// Share of clicks followed by a like.
pub const LIKE_RATE: f64 = 0.10;
/// Share of clicks followed by a subscription purchase.
pub const PURCHASE_RATE: f64 = 0.01;
/// Value of a subscription purchase.
pub const PURCHASE_VALUE: f64 = 5.0;

/// The parameters of the choice model (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ReaderModel {
    /// Dirichlet concentration of topic taste.
    pub concentration: f64,
    /// Share of click propensity from general appeal.
    pub appeal_share: f64,
    /// Click probability scale.
    pub base_rate: f64,
    /// Exponent of the position bias.
    pub position_bias: f64,
    /// Weight per earlier impression of the same story.
    pub fatigue: f64,
    /// σ of the log-normal noise per impression.
    pub noise: f64,
}

impl Default for ReaderModel {
    fn default() -> Self {
        Self {
            concentration: 0.3,
            appeal_share: 0.25,
            base_rate: 0.1,
            position_bias: 0.5,
            fatigue: 0.5,
            noise: 0.3,
        }
    }
}

impl ReaderModel {
    /// Checks the parameters, naming the flag at fault.
    pub fn validate(&self) -> Result<(), String> {
        let positive = |name: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(format!("--{name} must be a positive number, got {v}"))
            }
        };
        let share = |name: &str, v: f64| {
            if (0.0..=1.0).contains(&v) {
                Ok(())
            } else {
                Err(format!("--{name} must be between 0 and 1, got {v}"))
            }
        };
        positive("concentration", self.concentration)?;
        share("appeal-share", self.appeal_share)?;
        share("base-rate", self.base_rate)?;
        share("fatigue", self.fatigue)?;
        if !(self.position_bias.is_finite() && self.position_bias >= 0.0) {
            return Err(format!(
                "--position-bias must be 0 or more, got {}",
                self.position_bias
            ));
        }
        if !(self.noise.is_finite() && self.noise >= 0.0) {
            return Err(format!("--noise must be 0 or more, got {}", self.noise));
        }
        Ok(())
    }
}

/// The hidden truth of the simulation: each story's topic and appeal, each
/// reader's taste.
#[derive(Debug, Clone)]
pub struct World {
    model: ReaderModel,
    /// Story ids, by story index.
    pub stories: Vec<String>,
    topic: Vec<usize>,
    appeal: Vec<f64>,
    reading_seconds: Vec<f64>,
    /// Whether the story can be shown (not hidden, not expired).
    visible: Vec<bool>,
    /// Reader ids, by reader index.
    pub readers: Vec<String>,
    taste: Vec<Vec<f64>>,
}

impl World {
    /// Draws appeal and taste for the catalogue's stories and `readers`, from `seed`.
    pub fn new(
        model: ReaderModel,
        items: &[Item],
        readers: Vec<String>,
        seed: u64,
        now: Timestamp,
    ) -> Self {
        let mut rng = StdRng::seed_from_u64(seed ^ 0x005e_ed0f_7ea5);
        let topics = sample::topics();
        let topic = items
            .iter()
            .map(|i| {
                let first = i.categories.first().map_or("", String::as_str);
                topics.iter().position(|t| *t == first).unwrap_or(0)
            })
            .collect();
        let appeal = items
            .iter()
            .map(|_| lognormal(&mut rng, APPEAL_SIGMA))
            .collect();
        let reading_seconds = items
            .iter()
            .map(|i| {
                i.attributes
                    .get("reading_minutes")
                    .and_then(|v| v.as_f64())
                    .unwrap_or(4.0)
                    * 60.0
            })
            .collect();
        let visible = items
            .iter()
            .map(|i| !i.hidden && i.expires_at.is_none_or(|t| t > now))
            .collect();
        let taste = readers
            .iter()
            .map(|_| dirichlet(&mut rng, model.concentration, topics.len()))
            .collect();
        Self {
            model,
            stories: items.iter().map(|i| i.id.clone()).collect(),
            topic,
            appeal,
            reading_seconds,
            visible,
            readers,
            taste,
        }
    }

    /// How much `reader` wants `story`, before position, fatigue and noise
    /// (1 on average over readers and stories).
    pub fn interest(&self, reader: usize, story: usize) -> f64 {
        let k = self.taste[reader].len() as f64;
        let g = self.model.appeal_share;
        (1.0 - g) * k * self.taste[reader][self.topic[story]] + g * self.appeal[story]
    }

    /// The probability that `reader` clicks `story` shown at `position` after
    /// `seen_before` earlier impressions of it, with one draw of noise.
    pub fn click_probability(
        &self,
        rng: &mut impl Rng,
        reader: usize,
        story: usize,
        position: usize,
        seen_before: u32,
    ) -> f64 {
        let m = &self.model;
        let p = m.base_rate
            * (1.0 + position as f64).powf(-m.position_bias)
            * m.fatigue.powi(seen_before as i32)
            * lognormal(rng, m.noise)
            * self.interest(reader, story);
        p.min(MAX_CLICK_PROBABILITY)
    }

    /// What follows a click: a read with dwell seconds, maybe a like or a
    /// purchase. Every event carries `request_id` and `position` when given.
    pub fn after_click(&self, rng: &mut impl Rng, story: usize) -> Vec<(&'static str, f64)> {
        let mut out = vec![("click", 1.0)];
        let dwell = self.reading_seconds[story] * rng.random_range(0.2..1.0);
        out.push(("read", (dwell * 10.0).round() / 10.0));
        if rng.random_bool(LIKE_RATE) {
            out.push(("like", 1.0));
        }
        if rng.random_bool(PURCHASE_RATE) {
            out.push(("purchase", PURCHASE_VALUE));
        }
        out
    }

    /// Story index of an id.
    pub fn story_index(&self, id: &str) -> Option<usize> {
        // Ids are `news-NNNN` in order; fall back to a search otherwise.
        id.strip_prefix("news-")
            .and_then(|n| n.parse::<usize>().ok())
            .and_then(|n| n.checked_sub(1))
            .filter(|&i| self.stories.get(i).is_some_and(|s| s == id))
            .or_else(|| self.stories.iter().position(|s| s == id))
    }

    /// The history before the demo: each reader looked at `per_reader` random
    /// visible stories (at a random place of a 10-story page) over the week
    /// before `now` and clicked by the model. Events are oldest first.
    pub fn history(
        &self,
        per_reader: usize,
        seed: u64,
        now: Timestamp,
        published: &[Timestamp],
    ) -> Vec<Event> {
        let mut rng = StdRng::seed_from_u64(seed ^ 0x0000_4115_70e1);
        let visible: Vec<usize> = (0..self.stories.len())
            .filter(|&s| self.visible[s])
            .collect();
        let week = 7 * 24 * 3_600_000i64;
        let mut events = Vec::new();
        for reader in 0..self.readers.len() {
            let mut shown = visible.clone();
            shown.shuffle(&mut rng);
            shown.truncate(per_reader);
            for story in shown {
                let position = rng.random_range(0..10);
                let p = self.click_probability(&mut rng, reader, story, position, 0);
                if !rng.random_bool(p) {
                    continue;
                }
                let start = published[story].millis().max(now.millis() - week);
                let at = rng.random_range(start..=now.millis().max(start));
                for (event_type, value) in self.after_click(&mut rng, story) {
                    events.push(Event {
                        user_id: self.readers[reader].clone(),
                        item_id: self.stories[story].clone(),
                        event_type: event_type.to_owned(),
                        value,
                        timestamp: Timestamp(at),
                        request_id: None,
                        scene: None,
                        position: None,
                        attribution: None,
                    });
                }
            }
        }
        events.sort_by_key(|e| e.timestamp);
        events
    }
}

/// exp(σZ − σ²/2): log-normal with mean 1.
fn lognormal(rng: &mut impl Rng, sigma: f64) -> f64 {
    if sigma == 0.0 {
        return 1.0;
    }
    (sigma * standard_normal(rng) - sigma * sigma / 2.0).exp()
}

/// Box–Muller.
fn standard_normal(rng: &mut impl Rng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Gamma(shape, 1) by Marsaglia and Tsang; shapes below 1 are boosted with
/// `U^(1/shape)`.
fn gamma(rng: &mut impl Rng, shape: f64) -> f64 {
    if shape < 1.0 {
        let u: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
        return gamma(rng, shape + 1.0) * u.powf(1.0 / shape);
    }
    let d = shape - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        let x = standard_normal(rng);
        let v = (1.0 + c * x).powi(3);
        if v <= 0.0 {
            continue;
        }
        let u: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
        if u.ln() < 0.5 * x * x + d - d * v + d * v.ln() {
            return d * v;
        }
    }
}

/// A draw from the symmetric Dirichlet with concentration `alpha` over `k` parts.
fn dirichlet(rng: &mut impl Rng, alpha: f64, k: usize) -> Vec<f64> {
    let draws: Vec<f64> = (0..k).map(|_| gamma(rng, alpha)).collect();
    let sum: f64 = draws.iter().sum();
    if sum > 0.0 && sum.is_finite() {
        draws.iter().map(|d| d / sum).collect()
    } else {
        vec![1.0 / k as f64; k]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world(model: ReaderModel) -> World {
        let now = Timestamp(1_780_000_000_000);
        let data = sample::generate(
            sample::SampleSize {
                items: 120,
                users: 300,
            },
            7,
            now,
        );
        let readers = data.users.iter().map(|u| u.id.clone()).collect();
        World::new(model, &data.items, readers, 7, now)
    }

    #[test]
    fn dirichlet_and_gamma_have_the_right_means() {
        let mut rng = StdRng::seed_from_u64(3);
        let n = 20_000;
        for shape in [0.3, 1.0, 4.0] {
            let mean: f64 = (0..n).map(|_| gamma(&mut rng, shape)).sum::<f64>() / n as f64;
            assert!(
                (mean - shape).abs() < 0.05 * shape.max(1.0),
                "{shape}: {mean}"
            );
        }
        let draws: Vec<Vec<f64>> = (0..n).map(|_| dirichlet(&mut rng, 0.3, 6)).collect();
        assert!(draws
            .iter()
            .all(|d| (d.iter().sum::<f64>() - 1.0).abs() < 1e-9));
        let first: f64 = draws.iter().map(|d| d[0]).sum::<f64>() / n as f64;
        assert!((first - 1.0 / 6.0).abs() < 0.01, "{first}");
        // Small α concentrates taste: the largest share averages well above 1/6.
        let top: f64 = draws
            .iter()
            .map(|d| d.iter().cloned().fold(0.0, f64::max))
            .sum::<f64>()
            / n as f64;
        assert!(top > 0.5, "{top}");
        let mean: f64 = (0..n).map(|_| lognormal(&mut rng, 0.5)).sum::<f64>() / n as f64;
        assert!((mean - 1.0).abs() < 0.02, "{mean}");
    }

    #[test]
    fn interest_averages_one_and_clicks_follow_the_model() {
        let w = world(ReaderModel::default());
        let (readers, stories) = (w.readers.len(), w.stories.len());
        let mean: f64 = (0..readers)
            .flat_map(|r| (0..stories).map(move |s| (r, s)))
            .map(|(r, s)| w.interest(r, s))
            .sum::<f64>()
            / (readers * stories) as f64;
        assert!((mean - 1.0).abs() < 0.08, "{mean}");
        let mut rng = StdRng::seed_from_u64(1);
        let p = |rng: &mut StdRng, position, seen| {
            (0..2000)
                .map(|_| w.click_probability(rng, 0, 0, position, seen))
                .sum::<f64>()
                / 2000.0
        };
        let top = p(&mut rng, 0, 0);
        assert!(p(&mut rng, 9, 0) < top * 0.5, "position bias");
        assert!(p(&mut rng, 0, 2) < top * 0.35, "fatigue");
        assert!(top <= MAX_CLICK_PROBABILITY);
    }

    #[test]
    fn without_taste_or_appeal_every_story_is_alike() {
        let model = ReaderModel {
            concentration: 1e6,
            appeal_share: 0.0,
            ..ReaderModel::default()
        };
        let w = world(model);
        for s in 0..w.stories.len() {
            assert!((w.interest(0, s) - 1.0).abs() < 0.02);
        }
    }

    #[test]
    fn history_is_valid_and_reflects_taste() {
        let now = Timestamp(1_780_000_000_000);
        let data = sample::generate(
            sample::SampleSize {
                items: 120,
                users: 300,
            },
            7,
            now,
        );
        let readers: Vec<String> = data.users.iter().map(|u| u.id.clone()).collect();
        let w = World::new(ReaderModel::default(), &data.items, readers, 7, now);
        let published: Vec<Timestamp> = data.items.iter().map(|i| i.published_at).collect();
        let events = w.history(100, 7, now, &published);
        let types = tephra_core::EventTypes::default();
        assert!(events
            .iter()
            .all(|e| e.validate(&types).is_ok() && e.timestamp <= now));
        let clicks: Vec<&Event> = events.iter().filter(|e| e.event_type == "click").collect();
        assert!(clicks.len() > 300, "{}", clicks.len());
        // Readers click their favourite topic far more than a sixth of the time.
        let favourite = |r: usize| {
            (0..6)
                .max_by(|&a, &b| w.taste[r][a].total_cmp(&w.taste[r][b]))
                .unwrap()
        };
        let on_favourite = clicks
            .iter()
            .filter(|e| {
                let r = w.readers.iter().position(|id| *id == e.user_id).unwrap();
                let s = w.story_index(&e.item_id).unwrap();
                w.topic[s] == favourite(r)
            })
            .count();
        assert!(
            on_favourite * 3 > clicks.len(),
            "{on_favourite} of {}",
            clicks.len()
        );
        assert_eq!(w.story_index("news-0003"), Some(2));
        assert_eq!(w.story_index("nope"), None);
    }

    #[test]
    fn bad_parameters_name_the_flag() {
        let bad = ReaderModel {
            appeal_share: 1.5,
            ..ReaderModel::default()
        };
        assert!(bad.validate().unwrap_err().contains("--appeal-share"));
        let bad = ReaderModel {
            concentration: 0.0,
            ..ReaderModel::default()
        };
        assert!(bad.validate().unwrap_err().contains("--concentration"));
        assert!(ReaderModel::default().validate().is_ok());
    }
}
