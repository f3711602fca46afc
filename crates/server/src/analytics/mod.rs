//! Analytics: what happened, and what the recommendations earned.
//!
//! Every figure here is an aggregate kept up to date event by event (the write
//! path feeds each acknowledged event to [`Analytics::apply`], and startup
//! replays the log through the same call), so that a query reads counters
//! instead of scanning the log: its cost depends on the number of hours, items
//! or users asked about, never on the number of events.
//!
//! Attribution happens before an event is stored: [`RequestLog`] remembers what
//! each recommendation response showed, and an event naming that response's
//! `request_id` is stamped with the recall source, experiment and variant of
//! its item. The stamp is stored with the event, so a restart rebuilds the same
//! aggregates.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use tephra_core::{EventKind, EventTypes, Timestamp};
use tephra_eval::stats::{self, Estimate, Samples};
use tephra_store::StoredEvent;
use utoipa::ToSchema;

mod requests;

pub use requests::{RequestLog, ServedItem, ServedRequest};

/// Milliseconds in an hour, the finest time bucket.
pub const HOUR_MS: i64 = 3_600_000;
/// Milliseconds in a day.
pub const DAY_MS: i64 = 24 * HOUR_MS;

/// Which event types analytics counts as what.
#[derive(Debug, Clone, PartialEq)]
pub struct Roles {
    types: EventTypes,
    /// Types that count as a click (the numerator of CTR).
    pub clicks: Vec<String>,
    /// Types that count as a conversion; their value is revenue.
    pub purchases: Vec<String>,
    /// Types whose value is reading time in seconds.
    pub reads: Vec<String>,
    /// The configured scenes: CTR is split by these, any other scene an event
    /// names counts as [`OTHER_SCENE`] (so clients cannot grow the table).
    /// Empty: every scene counts under its own name.
    pub scenes: Vec<String>,
}

/// The CTR row of events naming a scene that is not configured.
pub const OTHER_SCENE: &str = "(other)";

impl Roles {
    /// The default roles (`click`, `purchase`, `read`) over the configured types.
    pub fn new(types: EventTypes) -> Self {
        Self::from_settings(types, &crate::config::AnalyticsSettings::default())
    }

    /// The roles the configuration gives.
    pub fn from_settings(types: EventTypes, settings: &crate::config::AnalyticsSettings) -> Self {
        Self {
            types,
            clicks: settings.click_types.clone(),
            purchases: settings.purchase_types.clone(),
            reads: settings.read_types.clone(),
            scenes: Vec::new(),
        }
    }

    /// These roles, splitting CTR by the configured `scenes` only.
    pub fn with_scenes<'a>(self, scenes: impl IntoIterator<Item = &'a String>) -> Self {
        Self {
            scenes: scenes.into_iter().cloned().collect(),
            ..self
        }
    }

    /// The CTR row an event's scene counts in.
    fn scene_key<'a>(&self, scene: &'a str) -> &'a str {
        if self.scenes.is_empty() || self.scenes.iter().any(|s| s == scene) {
            scene
        } else {
            OTHER_SCENE
        }
    }

    fn role(&self, event_type: &str) -> Role {
        let is = |list: &[String]| list.iter().any(|t| t == event_type);
        if self.types.classify(event_type) == Some(EventKind::Impression) {
            Role::Impression
        } else if is(&self.clicks) {
            Role::Click
        } else if is(&self.purchases) {
            Role::Purchase
        } else if is(&self.reads) {
            Role::Read
        } else {
            Role::Other
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Impression,
    Click,
    Purchase,
    Read,
    Other,
}

/// Impressions and clicks of one group (a scene, a source, a variant, an hour).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Exposure {
    /// Items shown.
    pub impressions: u64,
    /// Clicks on them.
    pub clicks: u64,
}

impl Exposure {
    fn add(&mut self, role: Role) {
        match role {
            Role::Impression => self.impressions += 1,
            Role::Click => self.clicks += 1,
            _ => {}
        }
    }
}

/// One user's figures in one experiment variant: the unit the statistics are
/// computed over (assignment is by user, so users are the independent samples).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct UnitStats {
    /// Impressions attributed to the variant.
    pub impressions: u64,
    /// Clicks attributed to the variant.
    pub clicks: u64,
    /// Purchases attributed to the variant.
    pub purchases: u64,
    /// Their summed value.
    pub revenue: f64,
    /// Read events.
    pub reads: u64,
    /// Their summed seconds.
    pub dwell: f64,
}

/// One variant's users and the running moments of their figures.
///
/// Each event changes one user's sums; the moments take back the user's old
/// values and add the new ones ([`Samples::remove`], [`Samples::push`]), so
/// results are read in constant time however many users a variant has.
#[derive(Debug, Clone, Default)]
pub struct VariantStats {
    units: HashMap<u32, UnitStats>,
    /// (clicks, impressions) per user.
    ctr: Samples,
    /// (revenue, 1) per user.
    revenue: Samples,
    /// (dwell, reads) per user with at least one read.
    dwell: Samples,
    impressions: u64,
    clicks: u64,
    buyers: u64,
}

impl VariantStats {
    /// Changes one user's figures with `change` and updates the moments.
    pub fn record(&mut self, user: u32, change: impl FnOnce(&mut UnitStats)) {
        let known = self.units.contains_key(&user);
        let unit = self.units.entry(user).or_default();
        let old = *unit;
        change(unit);
        let new = *unit;
        if known {
            self.ctr.remove(old.clicks as f64, old.impressions as f64);
            self.revenue.remove(old.revenue, 1.0);
        }
        self.ctr.push(new.clicks as f64, new.impressions as f64);
        self.revenue.push(new.revenue, 1.0);
        if old.reads > 0 {
            self.dwell.remove(old.dwell, old.reads as f64);
        }
        if new.reads > 0 {
            self.dwell.push(new.dwell, new.reads as f64);
        }
        self.impressions += new.impressions - old.impressions;
        self.clicks += new.clicks - old.clicks;
        self.buyers += u64::from(old.purchases == 0 && new.purchases > 0);
    }

    /// Users with at least one attributed event.
    pub fn users(&self) -> u64 {
        self.units.len() as u64
    }
}

/// The variants of one experiment, by name.
pub type VariantUnits = HashMap<String, VariantStats>;

/// Distinct users active on one day, split by whether it was their first day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct DayUsers {
    new: u64,
    returning: u64,
}

/// The days (UTC, days since 1970) a user was active on, ascending; the
/// first is the day they were new. Kept whole so that the counts do not depend
/// on the order events arrive in (concurrent writes finish in any order; a
/// restart replays them in log order).
type UserDays = Vec<i32>;

/// Event counts of one hour.
#[derive(Debug, Clone, Default)]
struct HourBucket {
    /// Count per type, indexed like [`Analytics::type_names`].
    counts: Vec<u64>,
    exposure: Exposure,
}

/// All aggregates of one store.
#[derive(Debug)]
pub struct Analytics {
    roles: Roles,
    /// The configured event types, in a fixed order.
    type_names: Vec<String>,
    hours: BTreeMap<i64, HourBucket>,
    by_scene: HashMap<String, Exposure>,
    by_source: HashMap<String, Exposure>,
    by_variant: HashMap<String, Exposure>,
    /// Per type, per item index: how many events.
    item_counts: Vec<Vec<u64>>,
    /// Items with at least one impression.
    impressed: Vec<bool>,
    impressed_count: u64,
    /// Items answered by a recommendation since this process started.
    recommended: Vec<bool>,
    recommended_count: u64,
    users: Vec<UserDays>,
    days: BTreeMap<i64, DayUsers>,
    experiments: HashMap<String, VariantUnits>,
    events: u64,
}

/// Bucket width of a time series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Interval {
    /// One bucket per hour.
    Hour,
    /// One bucket per day (UTC).
    Day,
}

impl Interval {
    /// The bucket width in milliseconds.
    pub fn millis(self) -> i64 {
        match self {
            Interval::Hour => HOUR_MS,
            Interval::Day => DAY_MS,
        }
    }

    /// Buckets shown when the caller gives no range: two days of hours, a month
    /// of days.
    pub fn default_buckets(self) -> i64 {
        match self {
            Interval::Hour => 48,
            Interval::Day => 30,
        }
    }
}

/// A time range cut into whole buckets: `[from, to)`, both bucket starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// Start of the first bucket, in ms.
    pub from: i64,
    /// End of the last bucket (exclusive), in ms.
    pub to: i64,
    /// Bucket width.
    pub interval: Interval,
}

/// Most buckets one time-series answer holds.
pub const MAX_BUCKETS: i64 = 5_000;

impl Range {
    /// The range covering `from..=to` (default: the last
    /// [`Interval::default_buckets`] buckets up to `now`), rounded out to whole
    /// buckets; `Err` names the parameter at fault.
    pub fn new(
        interval: Interval,
        from: Option<Timestamp>,
        to: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<Self, (&'static str, String)> {
        let width = interval.millis();
        let to_ms = to.map_or(now.millis(), Timestamp::millis);
        let end = to_ms.div_euclid(width) * width + width;
        let start = match from {
            Some(f) => f.millis().div_euclid(width) * width,
            None => end - interval.default_buckets() * width,
        };
        if start >= end {
            return Err(("from", "`from` must be before `to`".to_owned()));
        }
        if (end - start) / width > MAX_BUCKETS {
            return Err((
                "from",
                format!("the range holds more than {MAX_BUCKETS} buckets; narrow it or use a wider interval"),
            ));
        }
        Ok(Self {
            from: start,
            to: end,
            interval,
        })
    }

    /// Bucket starts, in order.
    pub fn starts(&self) -> impl Iterator<Item = i64> + '_ {
        (self.from..self.to).step_by(self.interval.millis() as usize)
    }
}

/// Events per type in one bucket of a time series.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct EventBucket {
    /// Start of the bucket.
    pub start: Timestamp,
    /// Events per type (every configured type, zeros included).
    pub counts: BTreeMap<String, u64>,
}

/// Impressions, clicks and CTR of one bucket.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct CtrBucket {
    /// Start of the bucket.
    pub start: Timestamp,
    /// Impressions in the bucket.
    pub impressions: u64,
    /// Clicks in the bucket.
    pub clicks: u64,
    /// clicks / impressions; null without impressions.
    pub ctr: Option<f64>,
}

/// CTR of one group with its 95% (Wilson) interval.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct CtrRow {
    /// The scene, source or `experiment/variant`.
    pub key: String,
    /// Impressions.
    pub impressions: u64,
    /// Clicks.
    pub clicks: u64,
    /// clicks / impressions; null without impressions.
    pub ctr: Option<f64>,
    /// Lower end of the 95% interval (null when clicks exceed impressions,
    /// i.e. clicks were reported without their impressions).
    pub ci_low: Option<f64>,
    /// Upper end of the 95% interval.
    pub ci_high: Option<f64>,
}

/// Users active in one bucket, new (first seen in it) or returning.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct UserBucket {
    /// Start of the bucket.
    pub start: Timestamp,
    /// Distinct active users (new + returning).
    pub active: u64,
    /// Users whose first event fell in this bucket.
    pub new: u64,
    /// Users seen on an earlier day.
    pub returning: u64,
}

/// How much of the catalogue reaches users.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Coverage {
    /// Items in the catalogue.
    pub catalogue_items: u64,
    /// Items with at least one impression (ever).
    pub impressed_items: u64,
    /// Items answered by a recommendation since the server started.
    pub recommended_items: u64,
    /// impressed_items / catalogue_items.
    pub coverage: f64,
}

/// Which grouping a CTR table uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CtrBy {
    /// By the event's scene.
    Scene,
    /// By the recall source that produced the item.
    Source,
    /// By `experiment/variant`.
    Variant,
}

impl Analytics {
    /// Empty aggregates for these roles.
    pub fn new(roles: Roles) -> Self {
        let type_names: Vec<String> = roles.types.all().map(str::to_owned).collect();
        Self {
            item_counts: vec![Vec::new(); type_names.len()],
            type_names,
            roles,
            hours: BTreeMap::new(),
            by_scene: HashMap::new(),
            by_source: HashMap::new(),
            by_variant: HashMap::new(),
            impressed: Vec::new(),
            impressed_count: 0,
            recommended: Vec::new(),
            recommended_count: 0,
            users: Vec::new(),
            days: BTreeMap::new(),
            experiments: HashMap::new(),
            events: 0,
        }
    }

    /// Events counted so far.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Counts one stored event in every aggregate.
    pub fn apply(&mut self, event: &StoredEvent) {
        self.events += 1;
        let role = self.roles.role(&event.event_type);
        let ms = event.timestamp.millis();
        let type_index = self.type_names.iter().position(|t| *t == event.event_type);

        let hour = self.hours.entry(ms.div_euclid(HOUR_MS)).or_default();
        if let Some(t) = type_index {
            if hour.counts.len() < self.type_names.len() {
                hour.counts.resize(self.type_names.len(), 0);
            }
            hour.counts[t] += 1;
            let counts = &mut self.item_counts[t];
            let item = event.item as usize;
            if counts.len() <= item {
                counts.resize(item + 1, 0);
            }
            counts[item] += 1;
        }
        // CTR counts the events of placements: those naming a scene (filled
        // in from `request_id` at ingestion). A click from a search page or an
        // article link has no impression to be divided by.
        if event.scene.is_some() {
            hour.exposure.add(role);
        }

        if role == Role::Impression {
            mark(&mut self.impressed, &mut self.impressed_count, event.item);
        }
        if matches!(role, Role::Impression | Role::Click) {
            if let Some(scene) = &event.scene {
                let key = self.roles.scene_key(scene);
                add_to(&mut self.by_scene, key, role);
            }
            if let Some(source) = event.attribution.as_ref().and_then(|a| a.source.as_ref()) {
                add_to(&mut self.by_source, source, role);
            }
        }
        if let Some((experiment, variant)) = event
            .attribution
            .as_ref()
            .and_then(|a| Some((a.experiment.as_ref()?, a.variant.as_ref()?)))
        {
            if matches!(role, Role::Impression | Role::Click) {
                add_to(
                    &mut self.by_variant,
                    &format!("{experiment}/{variant}"),
                    role,
                );
            }
            let value = event.value;
            self.experiments
                .entry(experiment.clone())
                .or_default()
                .entry(variant.clone())
                .or_default()
                .record(event.user, |unit| match role {
                    Role::Impression => unit.impressions += 1,
                    Role::Click => unit.clicks += 1,
                    Role::Purchase => {
                        unit.purchases += 1;
                        unit.revenue += value;
                    }
                    Role::Read => {
                        unit.reads += 1;
                        unit.dwell += value;
                    }
                    Role::Other => {}
                });
        }
        self.see_user(event.user, ms.div_euclid(DAY_MS));
    }

    /// Counts a user once per active day: new on their first day, returning
    /// on later ones. An event older than the user's first day moves "new" to
    /// it, so the counts are the same in any arrival order.
    fn see_user(&mut self, user: u32, day: i64) {
        let u = user as usize;
        if self.users.len() <= u {
            self.users.resize(u + 1, Vec::new());
        }
        let day32 = day.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32;
        let days = &mut self.users[u];
        let Err(at) = days.binary_search(&day32) else {
            return; // already counted on this day
        };
        let previous_first = days.first().copied();
        days.insert(at, day32);
        match previous_first {
            None => self.days.entry(day).or_default().new += 1,
            Some(first) if day32 < first => {
                let old = self.days.entry(i64::from(first)).or_default();
                old.new -= 1;
                old.returning += 1;
                self.days.entry(day).or_default().new += 1;
            }
            Some(_) => self.days.entry(day).or_default().returning += 1,
        }
    }

    /// Notes the items one recommendation answered (for coverage).
    pub fn recommended(&mut self, items: impl IntoIterator<Item = u32>) {
        for item in items {
            mark(&mut self.recommended, &mut self.recommended_count, item);
        }
    }

    /// The configured event types, in their configured order.
    pub fn type_names(&self) -> &[String] {
        &self.type_names
    }

    /// The hourly buckets inside the series bucket starting at `start` (ms)
    /// of `range`.
    fn hours_in(&self, range: &Range, start: i64) -> impl Iterator<Item = &HourBucket> {
        let end = start + range.interval.millis();
        self.hours
            .range(start.div_euclid(HOUR_MS)..end.div_euclid(HOUR_MS))
            .map(|(_, bucket)| bucket)
    }

    /// Events per type per bucket of `range`, zero-filled.
    pub fn event_series(&self, range: &Range) -> Vec<EventBucket> {
        range
            .starts()
            .map(|start| {
                let mut counts: Vec<u64> = vec![0; self.type_names.len()];
                for bucket in self.hours_in(range, start) {
                    for (sum, c) in counts.iter_mut().zip(&bucket.counts) {
                        *sum += c;
                    }
                }
                EventBucket {
                    start: Timestamp(start),
                    counts: self.type_names.iter().cloned().zip(counts).collect(),
                }
            })
            .collect()
    }

    /// Impressions, clicks and CTR per bucket of `range`.
    pub fn ctr_series(&self, range: &Range) -> Vec<CtrBucket> {
        range
            .starts()
            .map(|start| {
                let mut e = Exposure::default();
                for bucket in self.hours_in(range, start) {
                    e.impressions += bucket.exposure.impressions;
                    e.clicks += bucket.exposure.clicks;
                }
                CtrBucket {
                    start: Timestamp(start),
                    impressions: e.impressions,
                    clicks: e.clicks,
                    ctr: ratio(e.clicks, e.impressions),
                }
            })
            .collect()
    }

    /// CTR per scene, source or variant, most impressions first.
    pub fn ctr_by(&self, by: CtrBy) -> Vec<CtrRow> {
        let groups = match by {
            CtrBy::Scene => &self.by_scene,
            CtrBy::Source => &self.by_source,
            CtrBy::Variant => &self.by_variant,
        };
        let mut rows: Vec<CtrRow> = groups
            .iter()
            .map(|(key, e)| {
                let interval = (e.clicks <= e.impressions)
                    .then(|| stats::wilson(e.clicks, e.impressions))
                    .flatten();
                CtrRow {
                    key: key.clone(),
                    impressions: e.impressions,
                    clicks: e.clicks,
                    ctr: ratio(e.clicks, e.impressions),
                    ci_low: interval.map(|i| i.ci_low),
                    ci_high: interval.map(|i| i.ci_high),
                }
            })
            .collect();
        rows.sort_by(|a, b| {
            b.impressions
                .cmp(&a.impressions)
                .then(b.clicks.cmp(&a.clicks))
                .then_with(|| a.key.cmp(&b.key))
        });
        rows
    }

    /// The `n` items with most events of `event_type` (dense index, count),
    /// ties by index; `None` if the type is not configured.
    pub fn top_items(&self, event_type: &str, n: usize) -> Option<Vec<(u32, u64)>> {
        let t = self.type_names.iter().position(|name| name == event_type)?;
        let mut top: Vec<(u32, u64)> = Vec::with_capacity(n + 1);
        for (item, &count) in self.item_counts[t].iter().enumerate() {
            if count == 0 || n == 0 {
                continue;
            }
            let better = |&(i, c): &(u32, u64)| c > count || (c == count && (i as usize) < item);
            if top.len() == n && better(&top[n - 1]) {
                continue;
            }
            let at = top.partition_point(better);
            top.insert(at, (item as u32, count));
            top.truncate(n);
        }
        Some(top)
    }

    /// Catalogue coverage, given the catalogue's size.
    pub fn coverage(&self, catalogue_items: u64) -> Coverage {
        Coverage {
            catalogue_items,
            impressed_items: self.impressed_count,
            recommended_items: self.recommended_count,
            coverage: if catalogue_items == 0 {
                0.0
            } else {
                (self.impressed_count as f64 / catalogue_items as f64).min(1.0)
            },
        }
    }

    /// New and returning users per bucket of `range`.
    pub fn user_series(&self, range: &Range) -> Vec<UserBucket> {
        let width = range.interval.millis();
        range
            .starts()
            .map(|start| {
                let mut sum = DayUsers::default();
                // Daily counts: an hourly bucket shows its whole day's figures
                // only in the day's first hour.
                let first_day = start.div_euclid(DAY_MS) + i64::from(start.rem_euclid(DAY_MS) != 0);
                let end_day = (start + width - 1).div_euclid(DAY_MS) + 1;
                for (_, d) in self.days.range(first_day..end_day.max(first_day)) {
                    sum.new += d.new;
                    sum.returning += d.returning;
                }
                UserBucket {
                    start: Timestamp(start),
                    active: sum.new + sum.returning,
                    new: sum.new,
                    returning: sum.returning,
                }
            })
            .collect()
    }

    /// Per-user figures of one experiment's variants.
    pub fn experiment_units(&self, experiment: &str) -> Option<&VariantUnits> {
        self.experiments.get(experiment)
    }
}

/// Adds `role` to the group `key`.
fn add_to(groups: &mut HashMap<String, Exposure>, key: &str, role: Role) {
    match groups.get_mut(key) {
        Some(e) => e.add(role),
        None => {
            let mut e = Exposure::default();
            e.add(role);
            groups.insert(key.to_owned(), e);
        }
    }
}

/// Sets bit `item`, counting it the first time.
fn mark(bits: &mut Vec<bool>, count: &mut u64, item: u32) {
    let i = item as usize;
    if bits.len() <= i {
        bits.resize(i + 1, false);
    }
    if !bits[i] {
        bits[i] = true;
        *count += 1;
    }
}

fn ratio(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

/// One variant's figures with their intervals.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct VariantFigures {
    /// Users with at least one attributed event.
    pub users: u64,
    /// Attributed impressions.
    pub impressions: u64,
    /// Attributed clicks.
    pub clicks: u64,
    /// Clicks per impression, interval by the delta method over users.
    #[schema(value_type = Option<Object>)]
    pub ctr: Option<Estimate>,
    /// Share of users with a purchase (Wilson interval).
    #[schema(value_type = Option<Object>)]
    pub conversion: Option<Estimate>,
    /// Purchase value per user.
    #[schema(value_type = Option<Object>)]
    pub revenue_per_user: Option<Estimate>,
    /// Seconds per read (delta method over users).
    #[schema(value_type = Option<Object>)]
    pub dwell_seconds: Option<Estimate>,
}

/// A variant's figures with their intervals, read from its running moments.
pub fn variant_figures(stats: Option<&VariantStats>) -> VariantFigures {
    let Some(v) = stats else {
        return VariantFigures {
            users: 0,
            impressions: 0,
            clicks: 0,
            ctr: None,
            conversion: None,
            revenue_per_user: None,
            dwell_seconds: None,
        };
    };
    let users = v.users();
    VariantFigures {
        users,
        impressions: v.impressions,
        clicks: v.clicks,
        ctr: v.ctr.ratio(),
        conversion: stats::wilson(v.buyers, users),
        revenue_per_user: v.revenue.mean(),
        dwell_seconds: v.dwell.ratio(),
    }
}

#[cfg(test)]
mod tests;
