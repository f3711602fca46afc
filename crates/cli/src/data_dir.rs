//! Opening the data directory that every offline command and the server work on.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use tephra_store::EmbeddedStore;

/// The only tenant until tenants arrive; its data lives in the data directory.
pub const DEFAULT_TENANT: &str = "default";

/// Opens (creating if needed) the embedded store in `dir`.
///
/// One process at a time may hold a data directory; when `tephra serve` runs on
/// it, the store's "in use" error is passed on as it is, because it says what to
/// do (stop the server or use its HTTP API).
pub fn open_store(dir: &Path) -> anyhow::Result<Arc<EmbeddedStore>> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the data directory `{}`", dir.display()))?;
    let store = EmbeddedStore::open(dir, DEFAULT_TENANT)
        .with_context(|| format!("cannot open the data directory `{}`", dir.display()))?;
    Ok(Arc::new(store))
}
