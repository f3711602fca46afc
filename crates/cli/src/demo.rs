//! `tephra demo`: sample data on first run, then the real server.

use anyhow::Context;
use tephra_server::Config;
use tephra_store::{Store, StoreCounts};

use crate::number::grouped;
use crate::sample::{self, SampleSize};
use crate::{data_dir, serve};

/// Fills an empty data directory with the sample catalogue, then serves it
/// exactly like `tephra serve`, printing requests to try.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let store = data_dir::open_store(&config.data_dir)?;
    let counts = store
        .counts()
        .await
        .context("cannot read the data directory")?;
    if counts == StoreCounts::default() {
        let loaded = load_sample(store.as_ref()).await?;
        println!(
            "Created sample data in {}: {} items, {} users, {} events.",
            config.data_dir.display(),
            grouped(loaded.items),
            grouped(loaded.users),
            grouped(loaded.events)
        );
    } else {
        println!(
            "Using the data already in {}: {} items, {} users, {} events.",
            config.data_dir.display(),
            grouped(counts.items),
            grouped(counts.users),
            grouped(counts.events)
        );
    }
    let auth = config.server.api_key.is_some();
    serve::serve(config, store, |url| print_tour(url, auth)).await
}

/// Imports the sample data in one import session (all or nothing).
pub async fn load_sample(store: &dyn Store) -> anyhow::Result<StoreCounts> {
    let data = sample::generate(
        SampleSize::default(),
        sample::DEMO_SEED,
        tephra_core::Timestamp::now(),
    );
    let mut session = store
        .begin_import()
        .await
        .context("cannot start importing the sample data")?;
    session
        .add_items(data.items)
        .await
        .context("cannot import the sample items")?;
    session
        .add_users(data.users)
        .await
        .context("cannot import the sample users")?;
    session
        .add_events(data.events)
        .await
        .context("cannot import the sample events")?;
    session
        .commit()
        .await
        .context("cannot commit the sample data")
}

fn print_tour(url: &str, auth: bool) {
    let header = if auth {
        " -H \"Authorization: Bearer $TEPHRA_API_KEY\""
    } else {
        ""
    };
    let user = sample::sample_user_id();
    println!("Tephra demo is listening on {url} (Ctrl-C to stop). Try:");
    println!("  curl{header} '{url}/v1/popular?n=5'");
    println!("  curl{header} '{url}/v1/trending?n=5&category=electric-cars'");
    println!("  curl{header} '{url}/v1/recommend/{user}?n=5'");
    println!("  curl{header} '{url}/v1/users/{user}/events?limit=5'");
    println!("API docs: {url}/docs");
}
