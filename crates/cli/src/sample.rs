//! A deterministic news catalogue and its readers, for `tephra demo`.
//!
//! The data is shaped like a real news app so that the demo answers look
//! plausible: stories in six topics with templated headlines and tags, publish
//! times over the last two weeks (a few hidden or expired), and reader
//! records. What readers did is made by the reader simulation
//! (`demo::readers`). The same seed always gives the same data (times are
//! relative to `now`).

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value};
use tephra_core::{Item, Timestamp, User};

/// How much sample data to make.
#[derive(Debug, Clone, Copy)]
pub struct SampleSize {
    /// Catalogue items.
    pub items: usize,
    /// Users.
    pub users: usize,
}

impl Default for SampleSize {
    fn default() -> Self {
        Self {
            items: 600,
            users: 1000,
        }
    }
}

/// A generated data set.
#[derive(Debug, Clone)]
pub struct SampleData {
    /// The catalogue.
    pub items: Vec<Item>,
    /// The users.
    pub users: Vec<User>,
}

/// The seed of the demo data.
pub const DEMO_SEED: u64 = 20_261_129;

/// The user the demo's curl examples ask about: one with a typical history
/// (about a hundred events), not the most active one, who has seen most of the
/// catalogue.
pub fn sample_user_id() -> String {
    user_id(41)
}

fn user_id(index: usize) -> String {
    format!("user-{:03}", index + 1)
}

const DAY_MS: i64 = 24 * 3600 * 1000;
const HOUR_MS: i64 = 3600 * 1000;

/// One category of the catalogue: its name, headline subjects and templates, tags.
struct Category {
    name: &'static str,
    subjects: &'static [&'static str],
    headlines: &'static [&'static str],
    tags: &'static [&'static str],
}

const CATEGORIES: &[Category] = &[
    Category {
        name: "electric-cars",
        subjects: &[
            "Volta Motors",
            "Ampere Auto",
            "Kestrel EV",
            "Nordlys Cars",
            "Sundial Mobility",
        ],
        headlines: &[
            "{s} unveils a compact EV with {n} km of range",
            "{s} cuts prices on its best-selling electric SUV",
            "{s} opens {n} new fast-charging sites",
            "Solid-state batteries: {s} promises production within {n} years",
            "{s} recalls {n} vehicles over a software fault",
            "Review: a week of commuting in the new {s} hatchback",
        ],
        tags: &[
            "ev",
            "batteries",
            "charging",
            "autonomy",
            "recall",
            "review",
        ],
    },
    Category {
        name: "chips",
        subjects: &[
            "Silica Labs",
            "Quanta Foundry",
            "Meridian Semi",
            "Ostrava Devices",
            "Lumen Micro",
        ],
        headlines: &[
            "{s} shows a {n}-nanometre process on its roadmap",
            "{s} books record orders for data-centre accelerators",
            "Inside the {s} fab that runs around the clock",
            "{s} delays its next-generation chip by {n} months",
            "Why {s} is betting on chiplets",
            "{s} and the race for faster memory",
        ],
        tags: &[
            "semiconductors",
            "foundry",
            "gpu",
            "supply-chain",
            "memory",
            "analysis",
        ],
    },
    Category {
        name: "robots",
        subjects: &[
            "Kinetix",
            "Atlas Forge",
            "Humm Robotics",
            "Perch Automation",
            "Tessel Bots",
        ],
        headlines: &[
            "{s} puts {n} warehouse robots to work",
            "Humanoid from {s} learns to fold laundry",
            "{s} raises funding for farm robots",
            "Surgeons trial the {s} assistant arm",
            "{s} robot vacuum gets a {n}-day battery",
            "What {s} gets right about robot safety",
        ],
        tags: &[
            "automation",
            "humanoids",
            "logistics",
            "agritech",
            "healthcare",
            "opinion",
        ],
    },
    Category {
        name: "cloud",
        subjects: &[
            "Stratus",
            "Nimbus Cloud",
            "Cirrus Compute",
            "Hearth Hosting",
            "Altocloud",
        ],
        headlines: &[
            "{s} outage takes down {n} popular apps for hours",
            "{s} launches a region in the far north",
            "{s} lowers storage prices by {n} percent",
            "How {s} cut its data-centre power bill",
            "{s} adds confidential computing to every plan",
            "Migrating off {s}: a field report",
        ],
        tags: &[
            "outage",
            "pricing",
            "datacenter",
            "security",
            "kubernetes",
            "how-to",
        ],
    },
    Category {
        name: "social-apps",
        subjects: &["Chirp", "Pinwheel", "Murmur", "Loop Social", "Gather"],
        headlines: &[
            "{s} passes {n} million daily users",
            "{s} tests a chronological feed again",
            "Teenagers are leaving {s}, survey says",
            "{s} adds end-to-end encrypted group chats",
            "{s} fined over data handling",
            "The creator economy on {s}, by the numbers",
        ],
        tags: &[
            "feeds",
            "privacy",
            "creators",
            "regulation",
            "messaging",
            "survey",
        ],
    },
    Category {
        name: "finance",
        subjects: &[
            "Harbor Bank",
            "Ledgerly",
            "Coinstead",
            "Meridian Pay",
            "Fathom Capital",
        ],
        headlines: &[
            "{s} shares jump {n} percent after earnings",
            "{s} launches instant cross-border payments",
            "Regulators look into {s} lending practices",
            "{s} cuts {n} jobs in a restructuring",
            "{s} bets on tokenised deposits",
            "Five charts that explain {s}'s quarter",
        ],
        tags: &[
            "markets",
            "payments",
            "earnings",
            "regulation",
            "fintech",
            "charts",
        ],
    },
];

const GENERIC_TAGS: &[&str] = &["breaking", "interview", "explainer", "weekend-read"];
const REGIONS: &[&str] = &["eu", "us", "asia", "latam"];
const PLANS: &[&str] = &["free", "plus"];

/// The topics of the catalogue (each item's first category), in a fixed order.
pub fn topics() -> Vec<&'static str> {
    CATEGORIES.iter().map(|c| c.name).collect()
}

/// An index in `0..n` where small indices are much more likely: log-uniform, so
/// that frequencies fall off roughly as 1/rank (a Zipf law with exponent 1), like
/// item popularity and user activity in real logs.
pub fn skewed_index(rng: &mut impl Rng, n: usize) -> usize {
    let u: f64 = rng.random();
    let i = ((n as f64 + 1.0).ln() * u).exp() as usize;
    i.saturating_sub(1).min(n.saturating_sub(1))
}

/// Generates the sample data for `seed`, with times relative to `now`.
pub fn generate(size: SampleSize, seed: u64, now: Timestamp) -> SampleData {
    let mut rng = StdRng::seed_from_u64(seed);
    let items = items(&mut rng, size.items, now);
    let users = users(&mut rng, size.users);
    SampleData { items, users }
}

fn items(rng: &mut StdRng, count: usize, now: Timestamp) -> Vec<Item> {
    (0..count)
        .map(|i| {
            let category = &CATEGORIES[i % CATEGORIES.len()];
            let subject = *category.subjects.choose(rng).unwrap_or(&"Someone");
            let template = *category.headlines.choose(rng).unwrap_or(&"{s} in the news");
            let title = template
                .replace("{s}", subject)
                .replace("{n}", &rng.random_range(2..=90).to_string());
            let mut tags: Vec<String> = category
                .tags
                .choose_multiple(rng, 2)
                .map(|t| t.to_string())
                .collect();
            if rng.random_bool(0.3) {
                tags.push(GENERIC_TAGS.choose(rng).unwrap_or(&"breaking").to_string());
            }
            let published_at = Timestamp(now.0 - rng.random_range(0..14 * DAY_MS));
            let mut categories = vec![category.name.to_string()];
            if rng.random_bool(0.1) {
                categories.push(
                    CATEGORIES[rng.random_range(0..CATEGORIES.len())]
                        .name
                        .to_string(),
                );
                categories.dedup();
            }
            let mut attributes = Map::new();
            attributes.insert(
                "author".into(),
                Value::from(format!("desk-{}", rng.random_range(1..=12))),
            );
            attributes.insert(
                "reading_minutes".into(),
                Value::from(rng.random_range(2..=15)),
            );
            Item {
                id: format!("news-{:04}", i + 1),
                text: format!(
                    "{title}. Our {} desk reports on what happened and what comes next.",
                    category.name
                ),
                title,
                categories,
                tags,
                published_at,
                // A few withdrawn stories and a few that ran out, so the demo shows
                // that neither is ever recommended.
                hidden: i % 41 == 7,
                expires_at: (i % 53 == 11)
                    .then(|| Timestamp(now.0 - rng.random_range(1..48) * HOUR_MS)),
                attributes,
            }
        })
        .collect()
}

fn users(rng: &mut StdRng, count: usize) -> Vec<User> {
    (0..count)
        .map(|i| {
            let mut attributes = Map::new();
            attributes.insert(
                "region".into(),
                Value::from(*REGIONS.choose(rng).unwrap_or(&"eu")),
            );
            attributes.insert(
                "plan".into(),
                Value::from(*PLANS.choose(rng).unwrap_or(&"free")),
            );
            User {
                id: user_id(i),
                attributes,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp(1_780_000_000_000);

    #[test]
    fn same_seed_same_data() {
        let a = generate(SampleSize::default(), DEMO_SEED, NOW);
        let b = generate(SampleSize::default(), DEMO_SEED, NOW);
        assert_eq!(a.items, b.items);
        assert_eq!(a.users, b.users);
        let c = generate(SampleSize::default(), DEMO_SEED + 1, NOW);
        assert_ne!(a.items, c.items);
    }

    #[test]
    fn everything_is_valid_and_shaped_like_the_brief() {
        let data = generate(SampleSize::default(), DEMO_SEED, NOW);
        assert_eq!((data.items.len(), data.users.len()), (600, 1000));
        data.items.iter().for_each(|i| i.validate().unwrap());
        data.users.iter().for_each(|u| u.validate().unwrap());
        assert!(data.items.iter().any(|i| i.hidden));
        assert!(data
            .items
            .iter()
            .any(|i| i.expires_at.is_some_and(|t| t < NOW)));
        assert!(data
            .items
            .iter()
            .all(|i| i.published_at <= NOW && i.published_at.0 > NOW.0 - 14 * DAY_MS));
        for topic in topics() {
            assert!(
                data.items.iter().any(|i| i.categories[0] == topic),
                "{topic}"
            );
        }
        assert!(data.users.iter().any(|u| u.id == sample_user_id()));
    }

    #[test]
    fn skewed_index_stays_in_range() {
        let mut rng = StdRng::seed_from_u64(1);
        for n in [1, 2, 10] {
            for _ in 0..1000 {
                assert!(skewed_index(&mut rng, n) < n);
            }
        }
    }
}
