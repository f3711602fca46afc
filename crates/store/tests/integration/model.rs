//! Property test: random sequences of writes leave every backend in the state a
//! simple model predicts.

use std::sync::Arc;

use proptest::prelude::*;
use tephra_store::conformance::{check_against_model, ModelOp};
use tephra_store::{EmbeddedStore, MemoryStore, SharedStore};

fn id() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["a", "b", "c", "é", "日本", "z"]).prop_map(str::to_owned)
}

fn op() -> impl Strategy<Value = ModelOp> {
    prop_oneof![
        prop::collection::vec((id(), "[a-z]{0,4}"), 1..4).prop_map(ModelOp::UpsertItems),
        id().prop_map(ModelOp::DeleteItem),
        prop::collection::vec((id(), any::<i64>()), 1..4).prop_map(ModelOp::UpsertUsers),
        id().prop_map(ModelOp::DeleteUser),
        (id(), "[a-z]{0,4}").prop_map(|(id, title)| ModelOp::PatchItem(id, title)),
        prop::collection::vec((id(), id()), 1..4).prop_map(ModelOp::Append),
    ]
}

fn run(store: SharedStore, ops: Vec<ModelOp>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(check_against_model(store, ops));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn memory_store_matches_model(ops in prop::collection::vec(op(), 1..30)) {
        run(Arc::new(MemoryStore::new()), ops);
    }

    #[test]
    fn embedded_store_matches_model(ops in prop::collection::vec(op(), 1..30)) {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store = Arc::new(EmbeddedStore::open(dir.path(), "model").expect("open store"));
        run(store, ops);
    }
}
