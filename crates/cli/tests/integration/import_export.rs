//! `tephra import` and `tephra export` on temporary data directories.

use serde_json::json;

use crate::support::{json_lines, run_err, run_ok, s, write};

const ITEMS_CSV: &str = "id,categories,tags,title,text,published_at,hidden,expires_at,attributes\n\
a1,cars|ev,new,\"Volta, the new EV\",Body text,2026-01-02T03:04:05Z,false,,\"{\"\"price\"\":30000}\"\n\
a2,chips,,Chip news,,1767225600,true,2100-01-01T00:00:00Z,\n\
a3,robots,,Robot,,2026-01-01T00:00:00Z,,,\n";

const USERS_JSONL: &str = "{\"id\":\"u1\",\"attributes\":{\"region\":\"eu\"}}\n\n{\"id\":\"u2\"}\n";

const EVENTS_CSV: &str = "user_id,item_id,type,value,timestamp,request_id,scene\n\
u1,a1,click,1,2026-01-05T00:00:00Z,req-1,home\n\
u2,a1,,2.5,1767571200,,\n\
u2,a3,like,,2026-01-06T00:00:00Z,,\n";

const EVENTS_JSONL: &str = "{\"user_id\":\"u1\",\"item_id\":\"a3\",\"type\":\"dislike\",\"timestamp\":\"2026-01-07T00:00:00Z\"}\n\
{\"user_id\":\"u3\",\"item_id\":\"a9\",\"type\":\"read\",\"value\":30,\"timestamp\":\"2026-01-08T00:00:00Z\",\"scene\":\"article\"}\n";

/// Imports the four sample files into `data`.
fn import_samples(files: &std::path::Path, data: &str) {
    let items = write(files, "items.csv", ITEMS_CSV);
    let users = write(files, "users.jsonl", USERS_JSONL);
    let events_csv = write(files, "events.csv", EVENTS_CSV);
    let events_jsonl = write(files, "events.jsonl", EVENTS_JSONL);
    let out = run_ok(&["import", "items", &items, "--data-dir", data]);
    assert!(out.contains("Imported 3 items"), "{out}");
    let out = run_ok(&["import", "users", &users, "--data-dir", data]);
    assert!(out.contains("Imported 2 users"), "{out}");
    run_ok(&["import", "events", &events_csv, "--data-dir", data]);
    let out = run_ok(&["import", "events", &events_jsonl, "--data-dir", data]);
    assert!(out.contains("Imported 2 events"), "{out}");
    assert!(
        out.contains("5 events"),
        "the summary gives the store's totals: {out}"
    );
}

#[test]
fn csv_and_jsonl_imports_export_in_the_api_schema() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    import_samples(tmp.path(), s(&data));

    let items = json_lines(&run_ok(&["export", "items", "--data-dir", s(&data)]));
    let ids: Vec<&str> = items.iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["a1", "a2", "a3", "a9"], "a9 was created by an event");
    assert_eq!(items[0]["categories"], json!(["cars", "ev"]));
    assert_eq!(items[0]["tags"], json!(["new"]));
    assert_eq!(items[0]["title"], "Volta, the new EV");
    assert_eq!(items[0]["attributes"], json!({"price": 30000}));
    assert_eq!(items[0]["published_at"], "2026-01-02T03:04:05.000Z");
    assert_eq!(items[1]["hidden"], true);
    assert_eq!(
        items[1]["published_at"], "2026-01-01T00:00:00.000Z",
        "Unix seconds in CSV"
    );
    assert_eq!(items[1]["expires_at"], "2100-01-01T00:00:00.000Z");

    let users = json_lines(&run_ok(&["export", "users", "--data-dir", s(&data)]));
    assert_eq!(users.len(), 3, "u3 was created by an event");
    assert_eq!(
        users[0],
        json!({"id": "u1", "attributes": {"region": "eu"}})
    );

    let events = json_lines(&run_ok(&["export", "events", "--data-dir", s(&data)]));
    assert_eq!(events.len(), 5);
    assert_eq!(events[0]["request_id"], "req-1");
    assert_eq!(events[0]["scene"], "home");
    assert_eq!(
        (&events[1]["type"], &events[1]["value"]),
        (&json!("click"), &json!(2.5)),
        "--event-type default"
    );
    assert_eq!(events[1]["timestamp"], "2026-01-05T00:00:00.000Z");
    assert_eq!(events[2]["value"], json!(1.0));
    assert_eq!(
        events[4],
        json!({"user_id": "u3", "item_id": "a9", "type": "read", "value": 30.0,
        "timestamp": "2026-01-08T00:00:00.000Z", "scene": "article"})
    );
}

#[test]
fn export_then_import_into_a_fresh_directory_gives_identical_data() {
    let tmp = tempfile::tempdir().unwrap();
    let (first, second) = (tmp.path().join("first"), tmp.path().join("second"));
    import_samples(tmp.path(), s(&first));

    let dump = tmp.path().join("dump");
    run_ok(&["export", "all", "--out", s(&dump), "--data-dir", s(&first)]);
    for kind in ["items", "users", "events"] {
        let file = dump.join(format!("{kind}.jsonl"));
        run_ok(&["import", kind, s(&file), "--data-dir", s(&second)]);
    }
    for kind in ["items", "users", "events", "all"] {
        let a = run_ok(&["export", kind, "--data-dir", s(&first)]);
        let b = run_ok(&["export", kind, "--data-dir", s(&second)]);
        assert!(!a.is_empty());
        assert_eq!(a, b, "{kind} differ after the round trip");
    }
    let to_file = tmp.path().join("events.out");
    run_ok(&[
        "export",
        "events",
        "--out",
        s(&to_file),
        "--data-dir",
        s(&second),
    ]);
    assert_eq!(
        std::fs::read_to_string(&to_file).unwrap(),
        run_ok(&["export", "events", "--data-dir", s(&first)])
    );
}

fn events_with_bad_line_4() -> String {
    let good = |u: &str| format!("{{\"user_id\":\"{u}\",\"item_id\":\"i1\",\"type\":\"click\"}}\n");
    [
        good("a"),
        good("b"),
        good("c"),
        "{\"user_id\":\"\",\"item_id\":\"i1\",\"type\":\"click\"}\n".into(),
        good("d"),
        "{\"user_id\":\"e\",\"item_id\":\"i1\",\"type\":\"teleport\"}\n".into(),
    ]
    .concat()
}

#[test]
fn a_bad_line_stops_the_import_and_nothing_is_committed() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let file = write(tmp.path(), "events.jsonl", events_with_bad_line_4());
    // Batches of one: earlier lines have reached the store's import session
    // before the bad line is read, and must still not be committed.
    let err = run_err(&[
        "import",
        "events",
        &file,
        "--batch-size",
        "1",
        "--data-dir",
        s(&data),
    ]);
    assert!(err.contains("line 4: user_id: "), "{err}");
    assert!(err.contains("nothing was imported"), "{err}");
    assert_eq!(
        run_ok(&["export", "--data-dir", s(&data)]),
        "",
        "nothing may be stored"
    );
}

#[test]
fn skip_invalid_imports_the_rest_and_reports_why() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let file = write(tmp.path(), "events.jsonl", events_with_bad_line_4());
    let out = run_ok(&[
        "import",
        "events",
        &file,
        "--skip-invalid",
        "--batch-size",
        "2",
        "--data-dir",
        s(&data),
    ]);
    assert!(out.contains("Imported 4 events"), "{out}");
    assert!(out.contains("Skipped 2 invalid lines"), "{out}");
    assert!(out.contains("invalid_id: 1 line (line 4)"), "{out}");
    assert!(out.contains("unknown_event_type: 1 line (line 6)"), "{out}");
    let events = json_lines(&run_ok(&["export", "events", "--data-dir", s(&data)]));
    let users: Vec<&str> = events
        .iter()
        .map(|e| e["user_id"].as_str().unwrap())
        .collect();
    assert_eq!(users, ["a", "b", "c", "d"]);
}

#[test]
fn bad_utf8_is_a_bad_line_not_a_crash() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut content = b"{\"id\":\"ok1\"}\n{\"id\":\"bad\xff\xfe\"}\n".to_vec();
    content.extend_from_slice(b"{\"id\":\"ok2\"}\n");
    let file = write(tmp.path(), "users.jsonl", &content);
    let err = run_err(&["import", "users", &file, "--data-dir", s(&data)]);
    assert!(err.contains("line 2") && err.contains("UTF-8"), "{err}");
    assert_eq!(run_ok(&["export", "users", "--data-dir", s(&data)]), "");

    let out = run_ok(&[
        "import",
        "users",
        &file,
        "--skip-invalid",
        "--data-dir",
        s(&data),
    ]);
    assert!(
        out.contains("Imported 2 users") && out.contains("invalid_utf8"),
        "{out}"
    );

    let csv = write(tmp.path(), "users.csv", b"id,attributes\nc\xff,\nc2,\n");
    let err = run_err(&["import", "users", &csv, "--data-dir", s(&data)]);
    assert!(
        err.contains("line 2: id: ") && err.contains("UTF-8"),
        "{err}"
    );
}

#[test]
fn format_comes_from_the_flag_the_extension_or_the_content() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let sniffed = write(tmp.path(), "users.txt", "{\"id\":\"j\"}\n");
    let out = run_ok(&["import", "users", &sniffed, "--data-dir", s(&data)]);
    assert!(out.contains("(JSON Lines)"), "{out}");
    let forced = write(tmp.path(), "users.data", "id\nk\n");
    let out = run_ok(&[
        "import",
        "users",
        &forced,
        "--format",
        "csv",
        "--data-dir",
        s(&data),
    ]);
    assert!(out.contains("(CSV)"), "{out}");
    let err = run_err(&[
        "import",
        "items",
        &forced,
        "--format",
        "jsonl",
        "--data-dir",
        s(&data),
    ]);
    assert!(err.contains("line 1: "), "{err}");
}

#[test]
fn csv_header_problems_are_reported_before_anything_is_read() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let file = write(tmp.path(), "items.csv", "id,colour\na,red\n");
    let err = run_err(&["import", "items", &file, "--data-dir", s(&data)]);
    assert!(err.contains("unknown column `colour`"), "{err}");
    let err = run_err(&["export", "--data-dir", s(&tmp.path().join("typo"))]);
    assert!(
        err.contains("typo") && err.contains("does not exist"),
        "{err}"
    );
    let missing = tmp.path().join("missing.csv");
    let err = run_err(&["import", "items", s(&missing), "--data-dir", s(&data)]);
    assert!(err.contains("missing.csv"), "{err}");
}
