//! Snapshots: what is saved loads back and scores identically; damaged,
//! foreign or future files are refused cleanly; version 1 files keep loading.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use tephra_models::snapshot::{self, FORMAT_VERSION};
use tephra_models::{fit, ModelError, ModelSpec, Recommender, TrainedModel, TrainingData};

/// Every kind of model, small enough for a unit of test data.
const SPECS: &[&str] = &[
    "ease:lambda=2",
    "seq_ease:lambda=2,beta=1.5,window=3",
    "popularity",
    "ials:factors=8,iterations=3",
    "bpr:factors=8,epochs=5,fold_in_epochs=5",
    "itemknn:neighbours=3",
    "itemknn:similarity=bm25",
    "rp3beta:neighbours=4",
    r#"{"kind":"blend","normalization":"max_abs","parts":[
        {"spec":{"kind":"seq_ease","lambda":3},"weight":1.0},
        {"spec":{"kind":"ials","factors":8,"iterations":2},"weight":0.5},
        {"spec":{"kind":"blend","parts":[{"spec":{"kind":"popularity"},"weight":1},
                                          {"spec":{"kind":"itemknn"},"weight":2}]},"weight":0.25}]}"#,
];

/// Deterministic pseudo-random timelines.
fn timelines(n_users: usize, n_items: u32, per_user: usize, seed: u64) -> TrainingData {
    let mut state = seed | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let sequences = (0..n_users)
        .map(|_| {
            (0..per_user)
                .map(|t| ((next() % u64::from(n_items)) as u32, t as i64))
                .collect()
        })
        .collect();
    TrainingData::from_sequences(n_items as usize, sequences).unwrap()
}

fn scores(model: &dyn Recommender, history: &[(u32, f32)]) -> Vec<f32> {
    let mut s = vec![0f32; model.n_items()];
    model.score(history, &mut s);
    s
}

fn round_trip(model: &TrainedModel, dir: &Path) -> TrainedModel {
    let path = dir.join("model.tephra");
    let header = snapshot::save(model, &path).unwrap();
    assert_eq!(header.format_version, FORMAT_VERSION);
    let (loaded, read) = snapshot::load(&path).unwrap();
    assert_eq!(read, header);
    assert_eq!(snapshot::read_header(&path).unwrap(), header);
    loaded
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn a_loaded_snapshot_scores_identically(
        seed in any::<u64>(),
        n_items in 3u32..12,
        history in proptest::collection::vec((0u32..12, 0.1f32..2.0), 0..5),
    ) {
        let data = timelines(15, n_items, 6, seed);
        let dir = tempfile::tempdir().unwrap();
        let history: Vec<(u32, f32)> = history.into_iter().filter(|h| h.0 < n_items).collect();
        for text in SPECS {
            let spec: ModelSpec = text.parse().unwrap();
            let model = fit(&spec, &data).unwrap();
            let loaded = round_trip(&model, dir.path());
            prop_assert_eq!(loaded.spec(), &spec);
            prop_assert_eq!(loaded.n_items(), n_items as usize);
            let (a, b) = (scores(&model, &history), scores(&loaded, &history));
            prop_assert!(
                a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()),
                "{}: {:?} vs {:?}", text, a, b
            );
            prop_assert_eq!(model.similar_items(0, 3), loaded.similar_items(0, 3));
        }
    }
}

#[test]
fn notes_are_kept() {
    let data = timelines(5, 4, 3, 7);
    let model = fit(&"popularity".parse().unwrap(), &data).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m");
    let notes = BTreeMap::from([("ndcg_at_10".to_string(), serde_json::json!(0.25))]);
    snapshot::save_with_notes(&model, notes.clone(), &path).unwrap();
    assert_eq!(snapshot::read_header(&path).unwrap().notes, notes);
}

fn snapshot_error(result: Result<(TrainedModel, snapshot::SnapshotHeader), ModelError>) -> String {
    match result {
        Err(e @ ModelError::Snapshot { .. }) | Err(e @ ModelError::Shape { .. }) => e.to_string(),
        Err(other) => panic!("unexpected error kind: {other}"),
        Ok(_) => panic!("a bad snapshot was accepted"),
    }
}

#[test]
fn damaged_foreign_and_future_files_are_refused() {
    let data = timelines(10, 6, 5, 3);
    let model = fit(&"ease:lambda=1".parse().unwrap(), &data).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.tephra");
    snapshot::save(&model, &path).unwrap();
    let good = std::fs::read(&path).unwrap();

    // A flipped bit in the weights.
    let mut flipped = good.clone();
    let last = flipped.len() - 3;
    flipped[last] ^= 0x10;
    let message = snapshot_error(snapshot::load_bytes(&path, &flipped));
    assert!(message.contains("damaged"), "{message}");

    // Truncated, empty, not a snapshot at all.
    for bad in [
        &good[..good.len() - 10],
        &[][..],
        b"hello world, not a snapshot",
    ] {
        snapshot_error(snapshot::load_bytes(&path, bad));
    }
    let message = snapshot_error(snapshot::load(&dir.path().join("missing")));
    assert!(message.contains("cannot read"), "{message}");

    // A file from a future version.
    let header = snapshot::read_header(&path).unwrap();
    let future = rewrite_header(&good, |h| {
        h["format_version"] = serde_json::json!(FORMAT_VERSION + 1)
    });
    let message = snapshot_error(snapshot::load_bytes(&path, &future));
    assert!(message.contains("not supported"), "{message}");
    // A header that lies about the model.
    let lying = rewrite_header(&good, |h| {
        h["n_items"] = serde_json::json!(header.n_items + 1)
    });
    snapshot_error(snapshot::load_bytes(&path, &lying));
    let wrong_kind = rewrite_header(&good, |h| {
        h["spec"] = serde_json::json!({"kind": "popularity"})
    });
    snapshot_error(snapshot::load_bytes(&path, &wrong_kind));
}

/// Re-encodes a snapshot with its JSON header edited by `edit`.
fn rewrite_header(bytes: &[u8], edit: impl Fn(&mut serde_json::Value)) -> Vec<u8> {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut outer: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let inner = outer["__metadata__"]["tephra"]
        .as_str()
        .unwrap()
        .to_string();
    let mut header: serde_json::Value = serde_json::from_str(&inner).unwrap();
    edit(&mut header);
    outer["__metadata__"]["tephra"] = serde_json::Value::String(header.to_string());
    let mut encoded = outer.to_string().into_bytes();
    encoded.resize(encoded.len().next_multiple_of(8), b' ');
    let mut out = (encoded.len() as u64).to_le_bytes().to_vec();
    out.extend(encoded);
    out.extend(&bytes[8 + n..]);
    out
}

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The committed version-1 fixture: a blend of every model kind, with the
/// scores it gave when written.
fn fixture_model() -> TrainedModel {
    let data = timelines(12, 6, 5, 11);
    fit(&SPECS[SPECS.len() - 1].parse().unwrap(), &data).unwrap()
}

const FIXTURE_HISTORY: &[(u32, f32)] = &[(0, 1.0), (3, 0.5)];

/// Writes the fixture and its expected scores; run with
/// `TEPHRA_WRITE_FIXTURES=1 cargo test -p tephra-models --test integration` only
/// when a new format version is introduced (old fixtures stay committed).
#[test]
fn write_fixture_when_asked() {
    if std::env::var_os("TEPHRA_WRITE_FIXTURES").is_none() {
        return;
    }
    let model = fixture_model();
    snapshot::save(&model, &fixtures().join("blend_v1.tephra")).unwrap();
    let expected = serde_json::json!({
        "history": FIXTURE_HISTORY,
        "scores": scores(&model, FIXTURE_HISTORY),
    });
    std::fs::write(
        fixtures().join("blend_v1.scores.json"),
        serde_json::to_string_pretty(&expected).unwrap(),
    )
    .unwrap();
}

#[test]
fn the_version_1_fixture_still_loads_and_scores_as_it_did() {
    let (model, header) = snapshot::load(&fixtures().join("blend_v1.tephra")).unwrap();
    assert_eq!(header.format_version, 1);
    assert_eq!(header.n_items, 6);
    assert_eq!(model.name(), "blend");
    let expected: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("blend_v1.scores.json")).unwrap(),
    )
    .unwrap();
    let history: Vec<(u32, f32)> = serde_json::from_value(expected["history"].clone()).unwrap();
    let want: Vec<f32> = serde_json::from_value(expected["scores"].clone()).unwrap();
    // Loose enough for another CPU's vector width (iALS fold-in), far tighter
    // than any change of the stored numbers would be.
    let got = scores(&model, &history);
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert!(
            (g - w).abs() <= 1e-4 * w.abs().max(1.0),
            "{got:?} vs {want:?}"
        );
    }
}
