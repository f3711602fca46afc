//! `tephra export`: the data directory as JSON Lines in the API's schema.
//!
//! Records are paged out of the store, never loaded whole. Events carry the
//! string ids of their user and item (resolved through the store's id maps), so
//! an export imports back with `tephra import` into an identical store: items,
//! then users, then events.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use anyhow::{anyhow, Context};
use clap::ValueEnum;
use serde::Serialize;
use tephra_core::Event;
use tephra_server::Config;
use tephra_store::{IdMaps, Store, StoredEvent};

use crate::cli::ExportArgs;
use crate::data_dir;
use crate::number::grouped;

/// Records per page read from the store.
const PAGE: usize = 1000;
/// Events per page read from the log.
const EVENT_PAGE: usize = 10_000;

/// What `tephra export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportWhat {
    /// Catalogue items, by id.
    Items,
    /// Users, by id.
    Users,
    /// Events, in log order.
    Events,
    /// Items, then users, then events.
    All,
}

/// Records written, per kind.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ExportCounts {
    /// Items written.
    pub items: u64,
    /// Users written.
    pub users: u64,
    /// Events written.
    pub events: u64,
}

/// Runs the export to `out` (a file, or for `all` a directory receiving
/// `items.jsonl`, `users.jsonl` and `events.jsonl`), or to stdout.
pub async fn export(
    store: &dyn Store,
    what: ExportWhat,
    out: Option<&Path>,
) -> anyhow::Result<ExportCounts> {
    let mut counts = ExportCounts::default();
    match (what, out) {
        (ExportWhat::All, Some(dir)) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create `{}`", dir.display()))?;
            for (what, name) in [
                (ExportWhat::Items, "items.jsonl"),
                (ExportWhat::Users, "users.jsonl"),
                (ExportWhat::Events, "events.jsonl"),
            ] {
                let path = dir.join(name);
                let mut w = create(&path)?;
                write_kind(store, what, &mut w, &mut counts).await?;
                finish(w, &path)?;
            }
        }
        (what, Some(path)) => {
            let mut w = create(path)?;
            write_kind(store, what, &mut w, &mut counts).await?;
            finish(w, path)?;
        }
        (what, None) => {
            let mut w = BufWriter::with_capacity(256 * 1024, io::stdout().lock());
            write_kind(store, what, &mut w, &mut counts).await?;
            w.flush().context("cannot write to stdout")?;
        }
    }
    Ok(counts)
}

/// `tephra export`: exports from the configured data directory.
pub async fn run(args: &ExportArgs, config: &Config) -> anyhow::Result<()> {
    // A mistyped path would otherwise become a new, empty data directory and
    // an export that silently writes nothing.
    if !config.data_dir.is_dir() {
        anyhow::bail!(
            "the data directory `{}` does not exist",
            config.data_dir.display()
        );
    }
    let store = data_dir::open_store(&config.data_dir)?;
    let counts = export(store.as_ref(), args.what, args.out.as_deref()).await?;
    if let Some(out) = &args.out {
        eprintln!(
            "Exported {} items, {} users and {} events to {}.",
            grouped(counts.items),
            grouped(counts.users),
            grouped(counts.events),
            out.display()
        );
    }
    Ok(())
}

fn create(path: &Path) -> anyhow::Result<BufWriter<File>> {
    let file = File::create(path).with_context(|| format!("cannot create `{}`", path.display()))?;
    Ok(BufWriter::with_capacity(256 * 1024, file))
}

fn finish(w: BufWriter<File>, path: &Path) -> anyhow::Result<()> {
    let file = w
        .into_inner()
        .map_err(|e| anyhow!("cannot write `{}`: {}", path.display(), e.error()))?;
    file.sync_all()
        .with_context(|| format!("cannot write `{}`", path.display()))
}

async fn write_kind(
    store: &dyn Store,
    what: ExportWhat,
    w: &mut impl Write,
    counts: &mut ExportCounts,
) -> anyhow::Result<()> {
    if matches!(what, ExportWhat::Items | ExportWhat::All) {
        counts.items += write_items(store, w).await?;
    }
    if matches!(what, ExportWhat::Users | ExportWhat::All) {
        counts.users += write_users(store, w).await?;
    }
    if matches!(what, ExportWhat::Events | ExportWhat::All) {
        counts.events += write_events(store, w).await?;
    }
    Ok(())
}

/// Writes every item, in id order; returns how many.
pub async fn write_items(store: &dyn Store, w: &mut impl Write) -> anyhow::Result<u64> {
    let mut written = 0;
    let mut after: Option<String> = None;
    loop {
        let page = store
            .list_items(after.as_deref(), PAGE)
            .await
            .context("cannot read items")?;
        for item in &page {
            write_line(w, item)?;
        }
        written += page.len() as u64;
        match page.last() {
            Some(last) if page.len() == PAGE => after = Some(last.id.clone()),
            _ => return Ok(written),
        }
    }
}

/// Writes every user, in id order; returns how many.
pub async fn write_users(store: &dyn Store, w: &mut impl Write) -> anyhow::Result<u64> {
    let mut written = 0;
    let mut after: Option<String> = None;
    loop {
        let page = store
            .list_users(after.as_deref(), PAGE)
            .await
            .context("cannot read users")?;
        for user in &page {
            write_line(w, user)?;
        }
        written += page.len() as u64;
        match page.last() {
            Some(last) if page.len() == PAGE => after = Some(last.id.clone()),
            _ => return Ok(written),
        }
    }
}

/// Writes every event in log order, with string ids; returns how many.
pub async fn write_events(store: &dyn Store, w: &mut impl Write) -> anyhow::Result<u64> {
    let maps = store.id_maps().await.context("cannot read the id maps")?;
    let mut written = 0;
    let mut from = 0;
    loop {
        let page = store
            .scan_events(from, EVENT_PAGE)
            .await
            .context("cannot read events")?;
        for stored in &page {
            write_line(w, &api_event(&maps, stored)?)?;
        }
        written += page.len() as u64;
        match page.last() {
            Some(last) if page.len() == EVENT_PAGE => from = last.seq + 1,
            _ => return Ok(written),
        }
    }
}

/// A stored event in the API's schema.
fn api_event(maps: &IdMaps, e: &StoredEvent) -> anyhow::Result<Event> {
    let user = maps.users.id(e.user).ok_or_else(|| {
        anyhow!(
            "event {} names user index {}, which has no id; the store is damaged",
            e.seq,
            e.user
        )
    })?;
    let item = maps.items.id(e.item).ok_or_else(|| {
        anyhow!(
            "event {} names item index {}, which has no id; the store is damaged",
            e.seq,
            e.item
        )
    })?;
    Ok(Event {
        user_id: user.to_string(),
        item_id: item.to_string(),
        event_type: e.event_type.clone(),
        value: e.value,
        timestamp: e.timestamp,
        request_id: e.request_id.clone(),
        scene: e.scene.clone(),
        position: e.position,
        attribution: e.attribution.clone(),
    })
}

fn write_line(w: &mut impl Write, record: &impl Serialize) -> anyhow::Result<()> {
    serde_json::to_writer(&mut *w, record).context("cannot write the export")?;
    w.write_all(b"\n").context("cannot write the export")
}

#[cfg(test)]
mod tests {
    use tephra_core::{Item, Timestamp, User};
    use tephra_store::MemoryStore;

    use super::*;

    #[tokio::test]
    async fn pages_through_everything_with_string_ids() {
        let store = MemoryStore::new();
        let items: Vec<Item> = (0..PAGE + 5)
            .map(|i| Item::placeholder(format!("i{i:05}"), Timestamp(0)))
            .collect();
        store.upsert_items(items).await.unwrap();
        store
            .upsert_users(vec![User::placeholder("u1")])
            .await
            .unwrap();
        let event: Event = serde_json::from_str(
            r#"{"user_id":"u1","item_id":"i00003","type":"like","value":2.5,"timestamp":"2026-01-01T00:00:00Z","scene":"home"}"#,
        )
        .unwrap();
        store.append_events(vec![event.clone()]).await.unwrap();

        let mut out = Vec::new();
        assert_eq!(
            write_items(&store, &mut out).await.unwrap(),
            PAGE as u64 + 5
        );
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), PAGE + 5);
        assert!(text.lines().next().unwrap().contains("\"id\":\"i00000\""));

        let mut out = Vec::new();
        assert_eq!(write_events(&store, &mut out).await.unwrap(), 1);
        let back: Event = serde_json::from_slice(out.trim_ascii_end()).unwrap();
        assert_eq!(back, event);
    }
}
