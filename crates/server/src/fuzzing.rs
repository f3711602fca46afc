//! Entry points for fuzz targets: the request-body parsers and checks exactly
//! as the routes run them, without a server, so that a fuzzer can feed them
//! any bytes. Each returns whether the body was accepted; a panic is a bug.

use tephra_core::{Event, EventTypes, Item, User};

use crate::experiments::NewExperiment;
use crate::extract::{parse_batch, parse_one, Batch};
use crate::routes::recommend::RecommendBody;

/// The batch limit of the default configuration.
const MAX_BATCH: usize = 10_000;

/// Renders an error as the API would (exercises the message formatting).
fn refused(error: &crate::ApiError) -> bool {
    let body = error.body();
    assert!(
        !body.error.message.is_empty(),
        "every error says what to fix"
    );
    false
}

/// A `POST /v1/events` body: parsed, then checked against the default event
/// types and by the store's own checks.
pub fn events_body(body: &[u8]) -> bool {
    let batch: Batch<Event> = match parse_batch(body, MAX_BATCH) {
        Ok(batch) => batch,
        Err(e) => return refused(&e),
    };
    let types = EventTypes::default();
    if let Err(e) = batch.check_each(|event| event.validate(&types).map(drop)) {
        return refused(&e);
    }
    tephra_store::validate_events(&batch.items).is_ok()
}

/// A `POST /v1/items` body.
pub fn items_body(body: &[u8]) -> bool {
    let batch: Batch<Item> = match parse_batch(body, MAX_BATCH) {
        Ok(batch) => batch,
        Err(e) => return refused(&e),
    };
    if let Err(e) = batch.check_each(Item::validate) {
        return refused(&e);
    }
    tephra_store::validate_items(&batch.items).is_ok()
}

/// A `POST /v1/users` body.
pub fn users_body(body: &[u8]) -> bool {
    let batch: Batch<User> = match parse_batch(body, MAX_BATCH) {
        Ok(batch) => batch,
        Err(e) => return refused(&e),
    };
    if let Err(e) = batch.check_each(User::validate) {
        return refused(&e);
    }
    tephra_store::validate_users(&batch.items).is_ok()
}

/// A `POST /v1/recommend` body (parsing only: the rest needs a live state).
pub fn recommend_body(body: &[u8]) -> bool {
    match parse_one::<RecommendBody>(body) {
        Ok(_) => true,
        Err(e) => refused(&e),
    }
}

/// A `POST /v1/experiments` body, checked against the default scenes.
pub fn experiment_body(body: &[u8]) -> bool {
    let spec: NewExperiment = match parse_one(body) {
        Ok(spec) => spec,
        Err(e) => return refused(&e),
    };
    let scenes = crate::pipeline::scene::Scene::defaults();
    spec.build(&scenes, tephra_core::Timestamp(0)).is_ok()
}

/// A `POST /admin/tenants` body, its settings merged over the default
/// configuration and checked as at creation.
pub fn tenant_body(body: &[u8]) -> bool {
    let spec: crate::routes::admin::NewTenant = match parse_one(body) {
        Ok(spec) => spec,
        Err(e) => return refused(&e),
    };
    tephra_store::registry::validate_tenant_name(&spec.name).is_ok()
        && crate::Config::default().for_tenant(&spec.settings).is_ok()
}

/// A `POST /admin/tenants/{tenant}/keys` body.
pub fn key_body(body: &[u8]) -> bool {
    match parse_one::<crate::routes::admin::NewKey>(body) {
        Ok(_) => true,
        Err(e) => refused(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_points_accept_good_bodies_and_refuse_bad_ones() {
        assert!(events_body(
            br#"[{"user_id":"u","item_id":"i","type":"click"}]"#
        ));
        assert!(!events_body(
            br#"[{"user_id":"u","item_id":"i","type":"teleport"}]"#
        ));
        assert!(!events_body(b"\xff\xfe"));
        assert!(items_body(br#"{"id":"i1","title":"t"}"#));
        assert!(!items_body(br#"[{"id":"a"},{"id":"a"}]"#));
        assert!(users_body(br#"[{"id":"u1"}]"#));
        assert!(recommend_body(br#"{"user_id":"u","n":3}"#));
        assert!(!recommend_body(b"{"));
        assert!(experiment_body(
            br#"{"name":"x","scene":"home","variants":[{"name":"a"},{"name":"b"}]}"#
        ));
        assert!(!experiment_body(
            br#"{"name":"x","scene":"home","variants":[]}"#
        ));
        assert!(tenant_body(
            br#"{"name":"shop","settings":{"recommend":{"default_n":3}}}"#
        ));
        assert!(!tenant_body(br#"{"name":"shop","settings":{"server":{}}}"#));
        assert!(!tenant_body(br#"{"name":"../x"}"#));
        assert!(key_body(
            br#"{"scopes":["read"],"rate_limit":{"per_second":1,"burst":2}}"#
        ));
        assert!(!key_body(br#"{"scopes":["root"]}"#));
    }
}
