//! The embedded store under disk faults ([`FaultSwitch`]) and in periodic
//! durability mode: failed writes are refused with a clear error and store
//! nothing, reads keep working, writes resume by themselves once the disk works,
//! and the file holds exactly what was acknowledged.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tephra_core::{Event, Item, ItemPatch, Timestamp, User};
use tephra_store::conformance::{event, item, user};
use tephra_store::{
    Durability, EmbeddedStore, FaultMode, FaultSwitch, SharedStore, Store, StoreCounts, StoreError,
    StoreOptions,
};

const TENANT: &str = "t";
const FAULTS: [FaultMode; 3] = [
    FaultMode::FailWrites,
    FaultMode::DiskFull,
    FaultMode::FailSync,
];

fn with_faults(switch: &FaultSwitch, durability: Durability) -> StoreOptions {
    StoreOptions {
        durability,
        faults: Some(switch.clone()),
        ..StoreOptions::default()
    }
}

/// A store in `dir` whose disk fails when `switch` says so; writes fsynced.
fn open_faulty(dir: &Path, switch: &FaultSwitch) -> EmbeddedStore {
    EmbeddedStore::open_with(dir, TENANT, with_faults(switch, Durability::Immediate))
        .expect("open store with fault injection")
}

/// The store in `dir` opened the ordinary way: what the file holds.
fn open_plain(dir: &Path) -> EmbeddedStore {
    EmbeddedStore::open(dir, TENANT).expect("reopen store")
}

/// What the disk error of `mode` says.
fn reason(mode: FaultMode) -> &'static str {
    match mode {
        FaultMode::DiskFull => "No space left on device",
        _ => "Input/output error",
    }
}

/// Asserts that a write was refused as a disk failure, with a message saying
/// that it failed, why, that nothing was stored and what to do.
#[track_caller]
fn expect_refused<T: std::fmt::Debug>(result: Result<T, StoreError>, mode: FaultMode, what: &str) {
    match result {
        Err(StoreError::Io(message)) => {
            for needle in [
                "failed and nothing of it was stored",
                reason(mode),
                "resume by themselves",
            ] {
                assert!(
                    message.contains(needle),
                    "{what} under {mode:?}: the message should say `{needle}`: {message}"
                );
            }
        }
        other => panic!("{what} under {mode:?}: expected StoreError::Io, got {other:?}"),
    }
}

fn named_item(id: &str, title: &str) -> Item {
    let mut it = item(id);
    it.title = title.to_owned();
    it
}

/// What the store should hold: exactly the acknowledged writes.
#[derive(Debug, Default)]
struct Model {
    /// Item ids by dense index.
    item_ids: Vec<String>,
    /// User ids by dense index.
    user_ids: Vec<String>,
    items: BTreeMap<String, Item>,
    users: BTreeMap<String, User>,
    /// (user id, item id) of each event, by `seq`.
    events: Vec<(String, String)>,
}

impl Model {
    fn index(ids: &mut Vec<String>, id: &str) -> (u32, bool) {
        match ids.iter().position(|known| known == id) {
            Some(i) => (i as u32, false),
            None => {
                ids.push(id.to_owned());
                (ids.len() as u32 - 1, true)
            }
        }
    }

    fn upsert_items(&mut self, items: &[Item]) -> Vec<u32> {
        items
            .iter()
            .map(|it| {
                self.items.insert(it.id.clone(), it.clone());
                Self::index(&mut self.item_ids, &it.id).0
            })
            .collect()
    }

    fn upsert_users(&mut self, users: &[User]) -> Vec<u32> {
        users
            .iter()
            .map(|u| {
                self.users.insert(u.id.clone(), u.clone());
                Self::index(&mut self.user_ids, &u.id).0
            })
            .collect()
    }

    fn append(&mut self, events: &[Event]) {
        for e in events {
            if Self::index(&mut self.user_ids, &e.user_id).1 {
                self.users
                    .insert(e.user_id.clone(), User::placeholder(e.user_id.as_str()));
            }
            if Self::index(&mut self.item_ids, &e.item_id).1 {
                self.items.insert(
                    e.item_id.clone(),
                    Item::placeholder(e.item_id.as_str(), e.timestamp),
                );
            }
            self.events.push((e.user_id.clone(), e.item_id.clone()));
        }
    }

    fn counts(&self) -> StoreCounts {
        StoreCounts {
            items: self.items.len() as u64,
            users: self.users.len() as u64,
            events: self.events.len() as u64,
        }
    }

    /// Asserts that `store` holds exactly this.
    async fn check(&self, store: &dyn Store, context: &str) {
        assert_eq!(
            store.counts().await.expect("counts"),
            self.counts(),
            "{context}: counts"
        );
        let maps = store.id_maps().await.expect("id maps");
        let listed = |map: &tephra_core::IdMap| -> Vec<String> {
            map.iter()
                .enumerate()
                .map(|(position, (index, id))| {
                    assert_eq!(index as usize, position, "{context}: indices are dense");
                    id.to_owned()
                })
                .collect()
        };
        assert_eq!(listed(&maps.items), self.item_ids, "{context}: item id map");
        assert_eq!(listed(&maps.users), self.user_ids, "{context}: user id map");
        let items = store.list_items(None, 100_000).await.expect("list items");
        assert_eq!(
            items,
            self.items.values().cloned().collect::<Vec<_>>(),
            "{context}: items"
        );
        let users = store.list_users(None, 100_000).await.expect("list users");
        assert_eq!(
            users,
            self.users.values().cloned().collect::<Vec<_>>(),
            "{context}: users"
        );
        let events = store.scan_events(0, 1_000_000).await.expect("scan events");
        assert_eq!(
            events.len(),
            self.events.len(),
            "{context}: number of events"
        );
        for (position, (stored, (user_id, item_id))) in events.iter().zip(&self.events).enumerate()
        {
            assert_eq!(
                stored.seq, position as u64,
                "{context}: seq numbers are contiguous"
            );
            assert_eq!(
                maps.users.id(stored.user),
                Some(user_id.as_str()),
                "{context}: user of event {position}"
            );
            assert_eq!(
                maps.items.id(stored.item),
                Some(item_id.as_str()),
                "{context}: item of event {position}"
            );
        }
    }
}

#[tokio::test]
async fn failing_writes_are_refused_and_reads_keep_working() {
    for mode in FAULTS {
        let dir = tempfile::tempdir().expect("temporary directory");
        let switch = FaultSwitch::new();
        let store = open_faulty(dir.path(), &switch);
        let mut model = Model::default();
        let items = vec![named_item("i1", "one"), named_item("i2", "two")];
        store
            .upsert_items(items.clone())
            .await
            .expect("upsert items");
        model.upsert_items(&items);
        let events = vec![event("u1", "i1"), event("u1", "i3")];
        store.append_events(events.clone()).await.expect("append");
        model.append(&events);
        store
            .put_experiment("exp", &serde_json::json!({"arms": 2}))
            .await
            .expect("put experiment");

        switch.set(mode);
        expect_refused(
            store.append_events(vec![event("u2", "i1")]).await,
            mode,
            "append_events",
        );
        expect_refused(
            store.upsert_items(vec![named_item("i9", "nine")]).await,
            mode,
            "upsert_items",
        );
        expect_refused(
            store.upsert_users(vec![user("u9")]).await,
            mode,
            "upsert_users",
        );
        let patch = ItemPatch {
            title: Some("patched".into()),
            ..ItemPatch::default()
        };
        expect_refused(store.patch_item("i1", patch).await, mode, "patch_item");
        expect_refused(store.delete_item("i2").await, mode, "delete_item");
        expect_refused(
            store.put_experiment("exp2", &serde_json::json!({})).await,
            mode,
            "put_experiment",
        );
        expect_refused(store.begin_import().await.map(|_| ()), mode, "begin_import");

        // Reads work and show only what was acknowledged.
        let context = format!("reads while {mode:?}");
        model.check(&store, &context).await;
        assert_eq!(
            store
                .get_item("i1")
                .await
                .expect("get item")
                .map(|it| it.title),
            Some("one".to_owned()),
            "{context}"
        );
        assert_eq!(
            store.get_user("u9").await.expect("get user"),
            None,
            "{context}"
        );
        assert_eq!(
            store.events_by_seq(&[1, 2]).await.expect("by seq").len(),
            1,
            "{context}"
        );
        assert_eq!(
            store.experiments().await.expect("experiments").len(),
            1,
            "{context}"
        );
    }
}

#[tokio::test]
async fn writes_resume_when_the_fault_clears_without_reopening() {
    for mode in FAULTS {
        let dir = tempfile::tempdir().expect("temporary directory");
        let switch = FaultSwitch::new();
        let store = open_faulty(dir.path(), &switch);
        let first = store
            .append_events(vec![event("u1", "i1")])
            .await
            .expect("append before the fault");
        assert_eq!(first[0].seq, 0);

        switch.set(mode);
        for attempt in 0..3 {
            expect_refused(
                store.append_events(vec![event("u2", "i2")]).await,
                mode,
                &format!("append attempt {attempt}"),
            );
        }
        switch.set(FaultMode::Off);

        let stored = store
            .append_events(vec![event("u3", "i3"), event("u1", "i1")])
            .await
            .expect("the first write after the fault succeeds");
        assert_eq!(
            stored
                .iter()
                .map(|e| (e.seq, e.user, e.item))
                .collect::<Vec<_>>(),
            [(1, 1, 1), (2, 0, 0)],
            "{mode:?}: refused writes consumed no seq and no index"
        );
        let indices = store
            .upsert_items(vec![item("i4")])
            .await
            .expect("later writes succeed too");
        assert_eq!(indices, [2], "{mode:?}");
        assert_eq!(
            store.counts().await.expect("counts"),
            StoreCounts {
                items: 3,
                users: 2,
                events: 3
            },
            "{mode:?}"
        );
        // An import works again as well.
        let mut import = store.begin_import().await.expect("begin import");
        import.add_users(vec![user("u5")]).await.expect("add users");
        assert_eq!(import.commit().await.expect("commit").users, 3, "{mode:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_reads_never_fail_while_the_disk_fails_and_recovers() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let switch = FaultSwitch::new();
    let store = Arc::new(open_faulty(dir.path(), &switch));
    store
        .upsert_items(vec![item("stable")])
        .await
        .expect("upsert");
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (store, done) = (store.clone(), done.clone());
            tokio::spawn(async move {
                let mut reads = 0;
                while !done.load(std::sync::atomic::Ordering::SeqCst) {
                    let found = store
                        .get_item("stable")
                        .await
                        .expect("get_item never fails");
                    assert!(found.is_some(), "an acknowledged item never disappears");
                    store
                        .scan_events(0, 100)
                        .await
                        .expect("scan_events never fails");
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    let mut acknowledged = 0;
    for round in 0..30 {
        let mode = [FaultMode::Off, FaultMode::DiskFull, FaultMode::FailSync][round % 3];
        switch.set(mode);
        let result = store.append_events(vec![event("u", "stable")]).await;
        match mode {
            FaultMode::Off => {
                let stored = result.expect("a write with a working disk succeeds");
                assert_eq!(stored[0].seq, acknowledged, "round {round}");
                acknowledged += 1;
            }
            _ => expect_refused(result, mode, &format!("round {round}")),
        }
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    for reader in readers {
        assert!(reader.await.expect("reader task") > 0, "the readers ran");
    }
    assert_eq!(store.counts().await.expect("counts").events, acknowledged);
}

#[tokio::test]
async fn only_acknowledged_batches_are_in_the_file() {
    for mode in FAULTS {
        let dir = tempfile::tempdir().expect("temporary directory");
        let switch = FaultSwitch::new();
        let store = open_faulty(dir.path(), &switch);
        let mut model = Model::default();

        // ok
        let items = vec![named_item("a", "A"), named_item("b", "B")];
        assert_eq!(
            store.upsert_items(items.clone()).await.expect("items"),
            model.upsert_items(&items)
        );
        let users = vec![user("x")];
        assert_eq!(
            store.upsert_users(users.clone()).await.expect("users"),
            model.upsert_users(&users)
        );
        let events = vec![event("x", "a"), event("y", "c")];
        store.append_events(events.clone()).await.expect("events");
        model.append(&events);

        // failed
        switch.set(mode);
        expect_refused(
            store
                .upsert_items(vec![named_item("a", "changed"), named_item("d", "D")])
                .await,
            mode,
            "items",
        );
        expect_refused(store.upsert_users(vec![user("z")]).await, mode, "users");
        expect_refused(
            store
                .append_events(vec![event("z", "e"), event("x", "b")])
                .await,
            mode,
            "events",
        );
        expect_refused(store.delete_item("b").await, mode, "delete");
        switch.set(FaultMode::Off);

        // ok again
        let events = vec![event("w", "f"), event("x", "b")];
        store
            .append_events(events.clone())
            .await
            .expect("events after");
        model.append(&events);
        let items = vec![named_item("g", "G"), named_item("a", "A2")];
        assert_eq!(
            store
                .upsert_items(items.clone())
                .await
                .expect("items after"),
            model.upsert_items(&items)
        );
        let users = vec![user("v")];
        assert_eq!(
            store
                .upsert_users(users.clone())
                .await
                .expect("users after"),
            model.upsert_users(&users)
        );

        let context = format!("{mode:?}, live");
        model.check(&store, &context).await;
        drop(store);
        let reopened = open_plain(dir.path());
        model.check(&reopened, &format!("{mode:?}, reopened")).await;
    }
}

/// A small deterministic generator, so that a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn id(&mut self, prefix: &str) -> String {
        format!("{prefix}{}", self.below(6))
    }
}

/// Runs ~50 random steps (fault switched on or off, or a batch of writes) with
/// `seed`, tracking what was acknowledged, then checks that the store and the
/// reopened file hold exactly that. With immediate durability, every write must
/// fail while the disk fails and succeed while it works; with periodic
/// durability, a write may also be acknowledged while the disk fails (it was not
/// written to disk yet). Returns how many writes were acknowledged and refused.
async fn random_faults(durability: Durability, seed: u64) -> (u32, u32) {
    let strict = durability == Durability::Immediate;
    let dir = tempfile::tempdir().expect("temporary directory");
    let switch = FaultSwitch::new();
    let store = EmbeddedStore::open_with(dir.path(), TENANT, with_faults(&switch, durability))
        .expect("open store with fault injection");
    let mut model = Model::default();
    let mut rng = Rng(seed);
    let (mut acknowledged, mut refused) = (0, 0);
    for step in 0..50 {
        let mode = switch.mode();
        let context = format!("{durability:?}, seed {seed:#x}, step {step}, {mode:?}");
        let result: Result<(), StoreError> = match rng.below(6) {
            0 => {
                let next = match rng.below(3) {
                    0 => FaultMode::Off,
                    _ => FAULTS[rng.below(3) as usize],
                };
                switch.set(next);
                if !strict {
                    // Let the durable commits due meanwhile happen (and fail).
                    tokio::time::sleep(Duration::from_millis(15)).await;
                }
                continue;
            }
            1 => {
                let mut ids = BTreeSet::new();
                let items: Vec<Item> = (0..1 + rng.below(3))
                    .map(|_| rng.id("i"))
                    .filter(|id| ids.insert(id.clone()))
                    .map(|id| named_item(&id, &format!("title {step}")))
                    .collect();
                store.upsert_items(items.clone()).await.map(|indices| {
                    assert_eq!(indices, model.upsert_items(&items), "{context}: indices");
                })
            }
            2 => {
                let users = vec![user(&rng.id("u"))];
                store.upsert_users(users.clone()).await.map(|indices| {
                    assert_eq!(indices, model.upsert_users(&users), "{context}: indices");
                })
            }
            3 => {
                let id = rng.id("i");
                store.delete_item(&id).await.map(|deleted| {
                    assert_eq!(
                        deleted,
                        model.items.remove(&id).is_some(),
                        "{context}: delete"
                    );
                })
            }
            _ => {
                let events: Vec<Event> = (0..1 + rng.below(4))
                    .map(|_| {
                        let mut e = event(&rng.id("u"), &rng.id("i"));
                        e.timestamp = Timestamp(1_700_000_000_000 + step);
                        e
                    })
                    .collect();
                store.append_events(events.clone()).await.map(|stored| {
                    let first = model.events.len() as u64;
                    model.append(&events);
                    let seqs: Vec<u64> = stored.iter().map(|e| e.seq).collect();
                    let expected: Vec<u64> = (first..first + events.len() as u64).collect();
                    assert_eq!(seqs, expected, "{context}: seq numbers");
                })
            }
        };
        match (mode, result) {
            (_, Ok(())) if mode == FaultMode::Off || !strict => acknowledged += 1,
            (FaultMode::Off, Err(e)) => {
                panic!("{context}: a write failed with a working disk: {e}")
            }
            (_, Ok(())) => panic!("{context}: a write was acknowledged while the disk fails"),
            (_, result) => {
                expect_refused(result, mode, &context);
                refused += 1;
            }
        }
        // Reads show the file's last durable commit while the store is broken,
        // which in periodic mode may lag behind what was acknowledged.
        if strict && step % 10 == 9 {
            model
                .check(&store, &format!("seed {seed:#x}, after step {step}"))
                .await;
        }
    }
    switch.set(FaultMode::Off);
    let last = vec![event("last-user", "last-item")];
    store
        .append_events(last.clone())
        .await
        .expect("a write after the faults");
    model.append(&last);
    let context = format!("{durability:?}, seed {seed:#x}");
    model.check(&store, &format!("{context}, live")).await;
    drop(store);
    model
        .check(&open_plain(dir.path()), &format!("{context}, reopened"))
        .await;
    (acknowledged, refused)
}

#[tokio::test]
async fn random_faults_leave_exactly_the_acknowledged_writes() {
    for seed in [0x5EED_u64, 0xFA17, 0xD15C] {
        let (acknowledged, refused) = random_faults(Durability::Immediate, seed).await;
        assert!(
            acknowledged > 5 && refused > 5,
            "seed {seed:#x}: {acknowledged} acknowledged, {refused} refused; pick another seed"
        );
    }
}

#[tokio::test]
async fn random_faults_in_periodic_mode_lose_nothing_acknowledged() {
    let durability = periodic(Duration::from_millis(10));
    let (mut acknowledged, mut refused) = (0, 0);
    for seed in [0x5EED_u64, 0xFA17, 0xD15C, 0xB0B] {
        let (a, r) = random_faults(durability, seed).await;
        acknowledged += a;
        refused += r;
    }
    assert!(
        acknowledged > 20 && refused > 5,
        "{acknowledged} acknowledged, {refused} refused; pick other seeds"
    );
}

#[tokio::test]
async fn a_failed_import_commit_stores_nothing() {
    for mode in FAULTS {
        let dir = tempfile::tempdir().expect("temporary directory");
        let switch = FaultSwitch::new();
        let store = open_faulty(dir.path(), &switch);
        store
            .upsert_items(vec![item("kept")])
            .await
            .expect("upsert");
        let mut import = store.begin_import().await.expect("begin import");
        import
            .add_items(vec![item("imported")])
            .await
            .expect("add items");
        import
            .add_events(vec![event("u", "imported")])
            .await
            .expect("add events");
        switch.set(mode);
        match import.commit().await {
            Err(StoreError::Io(message)) => {
                assert!(
                    message.contains("the import failed and nothing of it was stored"),
                    "{mode:?}: {message}"
                );
                assert!(message.contains(reason(mode)), "{mode:?}: {message}");
            }
            other => panic!("{mode:?}: expected the import to fail, got {other:?}"),
        }
        assert_eq!(
            store.get_item("imported").await.expect("get"),
            None,
            "{mode:?}"
        );
        switch.set(FaultMode::Off);
        let indices = store
            .upsert_items(vec![item("after")])
            .await
            .expect("upsert after");
        assert_eq!(
            indices,
            [1],
            "{mode:?}: the import's indices were not consumed"
        );
        drop(store);
        let reopened = open_plain(dir.path());
        assert_eq!(
            reopened.counts().await.expect("counts"),
            StoreCounts {
                items: 2,
                users: 0,
                events: 0
            },
            "{mode:?}"
        );
    }
}

#[tokio::test]
async fn the_file_stays_locked_with_fault_injection() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let switch = FaultSwitch::new();
    let first = open_faulty(dir.path(), &switch);
    for (what, second) in [
        (
            "with faults",
            EmbeddedStore::open_with(
                dir.path(),
                TENANT,
                with_faults(&switch, Durability::Immediate),
            ),
        ),
        ("plain", EmbeddedStore::open(dir.path(), TENANT)),
    ] {
        assert!(
            matches!(second, Err(StoreError::Locked(_))),
            "second open {what}: {second:?}"
        );
    }
    drop(first);
    let plain = open_plain(dir.path());
    let faulty = EmbeddedStore::open_with(
        dir.path(),
        TENANT,
        with_faults(&switch, Durability::Immediate),
    );
    assert!(
        matches!(faulty, Err(StoreError::Locked(_))),
        "open with faults after a plain one: {faulty:?}"
    );
    drop(plain);

    // While the disk fails the store serves reads from a view of the file that
    // keeps it locked, and after it recovers it holds the lock again.
    let store = open_faulty(dir.path(), &switch);
    switch.set(FaultMode::DiskFull);
    expect_refused(
        store.upsert_items(vec![item("x")]).await,
        FaultMode::DiskFull,
        "upsert",
    );
    let during = EmbeddedStore::open(dir.path(), TENANT);
    assert!(
        matches!(during, Err(StoreError::Locked(_))),
        "open while the disk fails: {during:?}"
    );
    switch.set(FaultMode::Off);
    store
        .upsert_items(vec![item("y")])
        .await
        .expect("upsert after the fault");
    assert!(matches!(
        EmbeddedStore::open(dir.path(), TENANT),
        Err(StoreError::Locked(_))
    ));
}

fn periodic(interval: Duration) -> Durability {
    Durability::Periodic { interval }
}

#[tokio::test]
async fn periodic_writes_are_readable_at_once_and_survive_a_reopen() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let options = StoreOptions {
        durability: periodic(Duration::from_secs(3600)),
        faults: None,
        ..StoreOptions::default()
    };
    let store = EmbeddedStore::open_with(dir.path(), TENANT, options).expect("open periodic");
    let mut model = Model::default();
    for round in 0..20 {
        let items = vec![named_item(&format!("i{round}"), "t")];
        assert_eq!(
            store.upsert_items(items.clone()).await.expect("items"),
            model.upsert_items(&items)
        );
        let events = vec![event(&format!("u{}", round % 3), &format!("i{round}"))];
        let stored = store.append_events(events.clone()).await.expect("events");
        model.append(&events);
        assert_eq!(stored[0].seq, round, "seq numbers follow each other");
        assert_eq!(
            store
                .get_item(&format!("i{round}"))
                .await
                .expect("get")
                .map(|it| it.id),
            Some(format!("i{round}")),
            "readable at once"
        );
    }
    model.check(&store, "periodic, live").await;
    drop(store);
    model
        .check(&open_plain(dir.path()), "periodic, reopened")
        .await;
}

#[tokio::test]
async fn periodic_mode_makes_writes_durable_within_the_interval() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let switch = FaultSwitch::new();
    let store = EmbeddedStore::open_with(
        dir.path(),
        TENANT,
        with_faults(&switch, periodic(Duration::from_millis(50))),
    )
    .expect("open periodic");
    store
        .upsert_items(vec![item("early")])
        .await
        .expect("upsert");
    tokio::time::sleep(Duration::from_millis(400)).await;
    // From now on nothing reaches the disk, not even at close.
    switch.set(FaultMode::FailSync);
    store
        .upsert_items(vec![item("late")])
        .await
        .expect("acknowledged without fsync");
    assert!(store.get_item("late").await.expect("get").is_some());
    drop(store);
    let reopened = open_plain(dir.path());
    assert!(
        reopened.get_item("early").await.expect("get").is_some(),
        "the timer made the early write durable"
    );
    assert_eq!(
        reopened.get_item("late").await.expect("get"),
        None,
        "a write acknowledged in the last interval before a failure may be lost"
    );
}

#[tokio::test]
async fn periodic_mode_writes_again_what_a_failed_durable_commit_lost() {
    for mode in FAULTS {
        let dir = tempfile::tempdir().expect("temporary directory");
        let switch = FaultSwitch::new();
        let store = EmbeddedStore::open_with(
            dir.path(),
            TENANT,
            with_faults(&switch, periodic(Duration::from_millis(50))),
        )
        .expect("open periodic");
        let mut model = Model::default();
        let first = vec![event("u1", "i1"), event("u2", "i1")];
        store.append_events(first.clone()).await.expect("first");
        model.append(&first);
        switch.set(mode);
        // Either acknowledged in memory, or refused if the disk is touched.
        let second = vec![event("u3", "i2")];
        if store.append_events(second.clone()).await.is_ok() {
            model.append(&second);
        }
        // The durable commit due by now fails; the writes stay acknowledged.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            store.counts().await.expect("counts"),
            model.counts(),
            "{mode:?}"
        );
        expect_refused(
            store.upsert_users(vec![user("refused")]).await,
            mode,
            "upsert while broken",
        );
        switch.set(FaultMode::Off);
        let third = vec![event("u1", "i3")];
        let stored = store
            .append_events(third.clone())
            .await
            .expect("writes resume");
        assert_eq!(
            stored[0].seq,
            model.events.len() as u64,
            "{mode:?}: no seq reused or skipped"
        );
        model.append(&third);
        model.check(&store, &format!("{mode:?}, live")).await;
        drop(store);
        model
            .check(&open_plain(dir.path()), &format!("{mode:?}, reopened"))
            .await;
    }
}

/// A fresh store in periodic mode (with a short interval, so that the timer
/// runs during the cases).
async fn fresh_periodic() -> (SharedStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let options = StoreOptions {
        durability: periodic(Duration::from_millis(20)),
        faults: None,
        ..StoreOptions::default()
    };
    let store = EmbeddedStore::open_with(dir.path(), TENANT, options).expect("open store");
    (Arc::new(store) as SharedStore, dir)
}

/// A fresh store behind the fault-injecting backend, its switch left off.
async fn fresh_behind_switch() -> (SharedStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = open_faulty(dir.path(), &FaultSwitch::new());
    (Arc::new(store) as SharedStore, dir)
}

/// Periodic mode behaves like the default mode in everything but durability.
mod conformance_periodic {
    tephra_store::conformance_tests!(super::fresh_periodic);
}

mod persistence_periodic {
    use super::*;

    tephra_store::persistence_tests!(|dir: PathBuf| async move {
        let options = StoreOptions {
            durability: periodic(Duration::from_millis(20)),
            faults: None,
            ..StoreOptions::default()
        };
        Arc::new(EmbeddedStore::open_with(&dir, TENANT, options).expect("open store"))
            as SharedStore
    });
}

/// The fault-injecting backend changes nothing while its switch is off.
mod conformance_behind_switch {
    tephra_store::conformance_tests!(super::fresh_behind_switch);
}

#[test]
fn a_zero_interval_is_refused() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let options = StoreOptions {
        durability: periodic(Duration::ZERO),
        faults: None,
        ..StoreOptions::default()
    };
    match EmbeddedStore::open_with(dir.path(), TENANT, options) {
        Err(StoreError::Invalid(e)) => assert_eq!(e.field.as_deref(), Some("durability.interval")),
        other => panic!("expected a validation error, got {other:?}"),
    }
}
