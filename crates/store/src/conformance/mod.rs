//! The conformance suite every [`Store`](crate::Store) backend must pass.
//!
//! The server treats all backends alike, so they must agree on every observable
//! behaviour of the trait. Each case here is a public async function taking a fresh
//! store; a backend's tests run them all through [`conformance_tests!`](crate::conformance_tests)
//! and, if the backend can be closed and reopened, [`persistence_tests!`](crate::persistence_tests):
//!
//! ```ignore
//! mod memory {
//!     tephra_store::conformance_tests!(|| async {
//!         std::sync::Arc::new(tephra_store::MemoryStore::new()) as tephra_store::SharedStore
//!     });
//! }
//! ```
//!
//! The factory is any closure returning a future of something convertible into a
//! [`Fixture`]: a [`SharedStore`], or a `(SharedStore, guard)` pair whose guard
//! (e.g. a temporary directory) must outlive the store. A backend that needs a
//! service which may be absent (a database server) uses the `_or_skip` variants
//! ([`conformance_tests_or_skip!`](crate::conformance_tests_or_skip),
//! [`persistence_tests_or_skip!`](crate::persistence_tests_or_skip),
//! [`registry_conformance_tests_or_skip!`](crate::registry_conformance_tests_or_skip)),
//! whose factories return an `Option`: `None` skips the case. The generated tests use
//! `#[tokio::test]`, so the calling crate needs `tokio` (with `macros` and
//! `rt-multi-thread`) among its dev-dependencies; invoke each macro in its own
//! module, since the test names are the case names.
//!
//! Cases panic with a description of the broken rule; none depends on wall-clock
//! time.

use std::any::Any;

use crate::SharedStore;

/// A store under test, plus whatever must stay alive as long as it (dropped
/// after the store).
pub struct Fixture {
    /// The store the cases run against.
    pub store: SharedStore,
    _guard: Option<Box<dyn Any + Send>>,
}

impl From<SharedStore> for Fixture {
    fn from(store: SharedStore) -> Self {
        Self {
            store,
            _guard: None,
        }
    }
}

impl<G: Send + 'static> From<(SharedStore, G)> for Fixture {
    fn from((store, guard): (SharedStore, G)) -> Self {
        Self {
            store,
            _guard: Some(Box::new(guard)),
        }
    }
}

/// Expands to one `#[tokio::test]` per conformance case, each with a fresh store
/// from `$make` (a closure returning a future of a [`SharedStore`] or
/// `(SharedStore, guard)`; see the [module documentation](crate::conformance)).
#[macro_export]
macro_rules! conformance_tests {
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let fixture: $crate::conformance::Fixture = ($make)().await.into();
                $crate::conformance::$case(fixture.store.clone()).await;
            }
        )*
    };
    ($make:expr) => {
        $crate::__store_cases!(conformance_tests!(@cases $make));
    };
}

/// Expands to one `#[tokio::test]` per persistence case. `$open` is a closure
/// taking a directory (`PathBuf`) and returning a future of the [`SharedStore`]
/// kept in it; the cases call it again on the same directory after dropping every
/// handle, and expect everything back.
#[macro_export]
macro_rules! persistence_tests {
    (@cases $open:expr; $($case:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                $crate::conformance::$case($open).await;
            }
        )*
    };
    ($open:expr) => {
        $crate::__persistence_cases!(persistence_tests!(@cases $open));
    };
}

/// Like [`conformance_tests!`](crate::conformance_tests), for a backend that
/// needs an outside service (a database server): `$make` returns a future of
/// an `Option` of what `conformance_tests!` takes, and `None` skips the case
/// (the factory says why, and decides whether a missing service is an error).
#[macro_export]
macro_rules! conformance_tests_or_skip {
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let Some(fixture) = ($make)().await else {
                    return;
                };
                let fixture: $crate::conformance::Fixture = fixture.into();
                $crate::conformance::$case(fixture.store.clone()).await;
            }
        )*
    };
    ($make:expr) => {
        $crate::__store_cases!(conformance_tests_or_skip!(@cases $make));
    };
}

/// Like [`persistence_tests!`](crate::persistence_tests), for a backend that
/// needs an outside service: `$setup` is a closure returning a future of
/// `Option<(open, guard)>`, where `open` is what `persistence_tests!` takes
/// and `guard` lives until the case ends (e.g. a scratch database schema);
/// `None` skips the case.
#[macro_export]
macro_rules! persistence_tests_or_skip {
    (@cases $setup:expr; $($case:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let Some((open, _guard)) = ($setup)().await else {
                    return;
                };
                $crate::conformance::$case(open).await;
            }
        )*
    };
    ($setup:expr) => {
        $crate::__persistence_cases!(persistence_tests_or_skip!(@cases $setup));
    };
}

/// Calls `$mac!($args; <every store case>)`: the one list of the cases, shared
/// by [`conformance_tests!`](crate::conformance_tests) and its variants.
#[doc(hidden)]
#[macro_export]
macro_rules! __store_cases {
    ($mac:ident!($($args:tt)*)) => {
        $crate::$mac!($($args)*;
            items_upsert_get_replace,
            items_patch,
            items_delete_keeps_index,
            items_list_pages_in_byte_order,
            users_upsert_get_replace,
            users_patch,
            users_delete_keeps_index,
            users_list_pages_in_byte_order,
            experiments_put_list_delete,
            invalid_batches_store_nothing,
            duplicate_ids_are_refused,
            empty_batches_are_accepted,
            events_get_increasing_seq_and_dense_indices,
            events_create_placeholders_for_unseen_ids_only,
            events_do_not_resurrect_deleted_records,
            scan_events_pages_and_events_by_seq,
            id_maps_match_returned_indices,
            counts_follow_writes,
            import_commit_makes_everything_visible,
            import_dropped_stores_nothing,
            import_refused_batch_keeps_session_usable,
            concurrent_appends_lose_nothing,
            bad_writes_do_not_fail_concurrent_good_ones,
            unicode_ids,
            large_values_round_trip,
            matches_model_on_a_fixed_sequence,
        );
    };
}

/// Calls `$mac!($args; <every persistence case>)`, like
/// [`__store_cases!`](crate::__store_cases).
#[doc(hidden)]
#[macro_export]
macro_rules! __persistence_cases {
    ($mac:ident!($($args:tt)*)) => {
        $crate::$mac!($($args)*;
            reopen_restores_everything,
            reopen_after_dropped_import_finds_nothing_of_it,
        );
    };
}

mod batches;
mod edges;
mod events;
mod imports;
mod model;
mod persistence;
mod records;
mod registry;
mod support;

pub use batches::*;
pub use edges::*;
pub use events::*;
pub use imports::*;
pub use model::*;
pub use persistence::*;
pub use records::*;
pub use registry::*;
pub use support::{event, item, user};
