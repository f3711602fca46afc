//! The registry backends against the registry conformance cases.

use std::path::PathBuf;
use std::sync::Arc;

use tephra_store::registry::{EmbeddedRegistry, MemoryRegistry};
use tephra_store::SharedRegistry;

mod memory {
    use super::*;
    tephra_store::registry_conformance_tests!(|| async {
        Arc::new(MemoryRegistry::new()) as SharedRegistry
    });
}

mod embedded {
    use super::*;

    async fn fresh() -> (SharedRegistry, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("temporary directory");
        let registry = EmbeddedRegistry::open(dir.path()).expect("open the registry");
        (Arc::new(registry) as SharedRegistry, dir)
    }

    tephra_store::registry_conformance_tests!(
        fresh,
        reopen = |dir: PathBuf| async move {
            Arc::new(EmbeddedRegistry::open(&dir).expect("open the registry")) as SharedRegistry
        }
    );
}

#[tokio::test]
async fn embedded_registry_is_locked_while_open() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let _first = EmbeddedRegistry::open(dir.path()).expect("open");
    assert!(matches!(
        EmbeddedRegistry::open(dir.path()),
        Err(tephra_store::StoreError::Locked(_))
    ));
}
