use tephra_core::Attribution;

use super::*;

const T0: i64 = 1_764_374_400_000; // 2025-11-29T00:00:00Z, a day start

fn event(user: u32, item: u32, event_type: &str, ms: i64) -> StoredEvent {
    StoredEvent {
        seq: 0,
        user,
        item,
        event_type: event_type.to_owned(),
        value: 1.0,
        timestamp: Timestamp(ms),
        request_id: None,
        scene: None,
        position: None,
        attribution: None,
    }
}

fn attributed(mut e: StoredEvent, source: &str, arm: Option<(&str, &str)>) -> StoredEvent {
    e.scene = Some("home".to_owned());
    e.attribution = Some(Attribution {
        source: Some(source.to_owned()),
        experiment: arm.map(|(x, _)| x.to_owned()),
        variant: arm.map(|(_, v)| v.to_owned()),
    });
    e
}

fn analytics() -> Analytics {
    Analytics::new(Roles::new(EventTypes::default()))
}

#[test]
fn time_series_count_by_type_in_zero_filled_buckets() {
    let mut a = analytics();
    a.apply(&event(0, 0, "click", T0 + 10));
    a.apply(&event(0, 1, "click", T0 + HOUR_MS + 5));
    a.apply(&event(1, 1, "impression", T0 + HOUR_MS + 6));
    a.apply(&event(1, 1, "impression", T0 + DAY_MS));
    let range = Range::new(
        Interval::Hour,
        Some(Timestamp(T0)),
        Some(Timestamp(T0 + 3 * HOUR_MS - 1)),
        Timestamp(T0),
    )
    .unwrap();
    let series = a.event_series(&range);
    assert_eq!(series.len(), 3);
    assert_eq!(series[0].counts["click"], 1);
    assert_eq!(series[1].counts["click"], 1);
    assert_eq!(series[1].counts["impression"], 1);
    assert_eq!(series[2].counts["click"], 0);
    assert_eq!(series[2].counts.len(), EventTypes::default().all().count());

    let days = Range::new(
        Interval::Day,
        Some(Timestamp(T0)),
        Some(Timestamp(T0 + DAY_MS)),
        Timestamp(T0),
    )
    .unwrap();
    let series = a.event_series(&days);
    assert_eq!(series.len(), 2);
    assert_eq!(
        (series[0].counts["click"], series[0].counts["impression"]),
        (2, 1)
    );
    assert_eq!(series[1].counts["impression"], 1);
    // Only events of a placement (with a scene) count towards CTR.
    let ctr = a.ctr_series(&days);
    assert_eq!(
        (ctr[0].impressions, ctr[0].clicks, ctr[0].ctr),
        (0, 0, None)
    );
    let mut shown = event(1, 1, "impression", T0 + 7);
    shown.scene = Some("home".to_owned());
    a.apply(&shown);
    let mut clicked = event(1, 1, "click", T0 + 8);
    clicked.scene = Some("home".to_owned());
    a.apply(&clicked);
    let ctr = a.ctr_series(&days);
    assert_eq!(
        (ctr[0].impressions, ctr[0].clicks, ctr[0].ctr),
        (1, 1, Some(1.0))
    );
}

#[test]
fn ranges_are_checked() {
    let now = Timestamp(T0);
    let r = Range::new(Interval::Hour, None, None, now).unwrap();
    assert_eq!(r.starts().count(), 48);
    assert_eq!(r.to, T0 + HOUR_MS);
    assert!(Range::new(
        Interval::Hour,
        Some(Timestamp(T0 + 5)),
        Some(Timestamp(T0 - DAY_MS)),
        now
    )
    .is_err());
    let err = Range::new(Interval::Hour, Some(Timestamp(0)), None, now).unwrap_err();
    assert_eq!(err.0, "from");
    assert!(Range::new(Interval::Day, Some(Timestamp(0)), None, now).is_err());
}

#[test]
fn ctr_by_scene_source_and_variant() {
    let mut a = analytics();
    for i in 0..10 {
        a.apply(&attributed(
            event(i, 1, "impression", T0),
            "collaborative",
            Some(("x", "b")),
        ));
    }
    for i in 0..3 {
        a.apply(&attributed(
            event(i, 1, "click", T0),
            "collaborative",
            Some(("x", "b")),
        ));
    }
    a.apply(&attributed(event(0, 2, "impression", T0), "popular", None));
    let scenes = a.ctr_by(CtrBy::Scene);
    assert_eq!(scenes.len(), 1);
    assert_eq!((scenes[0].impressions, scenes[0].clicks), (11, 3));
    let sources = a.ctr_by(CtrBy::Source);
    assert_eq!(sources[0].key, "collaborative");
    assert_eq!(sources[0].ctr, Some(0.3));
    let (low, high) = (sources[0].ci_low.unwrap(), sources[0].ci_high.unwrap());
    assert!(low < 0.3 && 0.3 < high, "{low} {high}");
    assert_eq!(sources[1].ctr, Some(0.0));
    let variants = a.ctr_by(CtrBy::Variant);
    assert_eq!(variants.len(), 1);
    assert_eq!(variants[0].key, "x/b");
}

#[test]
fn top_items_coverage_and_users() {
    let mut a = analytics();
    for (item, clicks) in [(0u32, 2), (1, 5), (2, 5), (3, 1)] {
        for _ in 0..clicks {
            a.apply(&event(0, item, "click", T0));
        }
    }
    a.apply(&event(1, 3, "impression", T0 + DAY_MS));
    assert_eq!(a.top_items("click", 3), Some(vec![(1, 5), (2, 5), (0, 2)]));
    assert_eq!(a.top_items("click", 0), Some(vec![]));
    assert_eq!(a.top_items("teleport", 3), None);
    a.recommended([3, 4, 4]);
    assert_eq!(
        a.coverage(10),
        Coverage {
            catalogue_items: 10,
            impressed_items: 1,
            recommended_items: 2,
            coverage: 0.1
        }
    );
    // User 0 returns on day 2; user 1 is new then.
    a.apply(&event(0, 0, "click", T0 + DAY_MS + 5));
    a.apply(&event(0, 0, "click", T0 + DAY_MS + 6));
    let days = Range::new(
        Interval::Day,
        Some(Timestamp(T0)),
        Some(Timestamp(T0 + DAY_MS)),
        Timestamp(T0),
    )
    .unwrap();
    let users = a.user_series(&days);
    assert_eq!((users[0].new, users[0].returning), (1, 0));
    assert_eq!(
        (users[1].new, users[1].returning, users[1].active),
        (1, 1, 2)
    );
    // Hourly buckets show a day's users in its first hour only.
    let hours = Range::new(
        Interval::Hour,
        Some(Timestamp(T0 + DAY_MS - HOUR_MS)),
        Some(Timestamp(T0 + DAY_MS + HOUR_MS)),
        Timestamp(T0),
    )
    .unwrap();
    let users = a.user_series(&hours);
    assert_eq!(
        users.iter().map(|b| b.active).collect::<Vec<_>>(),
        [0, 2, 0]
    );
}

#[test]
fn new_and_returning_users_do_not_depend_on_arrival_order() {
    let days = |a: &Analytics| {
        let range = Range::new(
            Interval::Day,
            Some(Timestamp(T0)),
            Some(Timestamp(T0 + 2 * DAY_MS)),
            Timestamp(T0),
        )
        .unwrap();
        a.user_series(&range)
            .iter()
            .map(|b| (b.new, b.returning))
            .collect::<Vec<_>>()
    };
    let events = [
        event(0, 1, "click", T0 + 2 * DAY_MS),
        event(0, 1, "click", T0),
        event(0, 2, "click", T0 + DAY_MS),
        event(0, 2, "click", T0 + DAY_MS + 5),
        event(1, 2, "click", T0 + DAY_MS),
    ];
    let mut forward = analytics();
    events.iter().for_each(|e| forward.apply(e));
    let mut backward = analytics();
    events.iter().rev().for_each(|e| backward.apply(e));
    assert_eq!(days(&forward), [(1, 0), (1, 1), (0, 1)]);
    assert_eq!(days(&forward), days(&backward));
}

#[test]
fn scenes_that_are_not_configured_share_one_row() {
    let roles = Roles::new(EventTypes::default()).with_scenes(&["home".to_owned()]);
    let mut a = Analytics::new(roles);
    for scene in ["home", "made-up-1", "made-up-2"] {
        let mut e = event(0, 1, "impression", T0);
        e.scene = Some(scene.to_owned());
        a.apply(&e);
    }
    let rows = a.ctr_by(CtrBy::Scene);
    let keys: Vec<&str> = rows.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys, [OTHER_SCENE, "home"]);
}

#[test]
fn experiment_units_feed_variant_figures() {
    let mut a = analytics();
    let arm = Some(("x", "a"));
    // Two users: 10 impressions each, 1 and 3 clicks; one buys for 20.
    for user in 0..2u32 {
        for _ in 0..10 {
            a.apply(&attributed(
                event(user, 1, "impression", T0),
                "popular",
                arm,
            ));
        }
    }
    a.apply(&attributed(event(0, 1, "click", T0), "popular", arm));
    for _ in 0..3 {
        a.apply(&attributed(event(1, 1, "click", T0), "popular", arm));
    }
    let mut purchase = attributed(event(1, 1, "purchase", T0), "popular", arm);
    purchase.value = 20.0;
    a.apply(&purchase);
    let mut read = attributed(event(1, 1, "read", T0), "popular", arm);
    read.value = 30.0;
    a.apply(&read);

    let units = a.experiment_units("x").unwrap();
    let f = variant_figures(units.get("a"));
    assert_eq!((f.users, f.impressions, f.clicks), (2, 20, 4));
    assert!((f.ctr.unwrap().value - 0.2).abs() < 1e-12);
    assert!((f.conversion.unwrap().value - 0.5).abs() < 1e-12);
    assert!((f.revenue_per_user.unwrap().value - 10.0).abs() < 1e-12);
    // One reader only: no interval yet.
    assert_eq!(f.dwell_seconds, None);
    assert_eq!(variant_figures(None).users, 0);
}
