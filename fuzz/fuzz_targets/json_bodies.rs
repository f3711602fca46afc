//! Every JSON request body parser of the API, on the same bytes: the first
//! byte picks the route, the rest is the body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tephra_server::fuzzing;

fuzz_target!(|data: &[u8]| {
    let Some((&route, body)) = data.split_first() else {
        return;
    };
    match route % 7 {
        0 => drop(fuzzing::events_body(body)),
        1 => drop(fuzzing::items_body(body)),
        2 => drop(fuzzing::users_body(body)),
        3 => drop(fuzzing::recommend_body(body)),
        4 => drop(fuzzing::experiment_body(body)),
        5 => drop(fuzzing::tenant_body(body)),
        _ => drop(fuzzing::key_body(body)),
    }
});
