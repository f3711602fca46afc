//! `tephra serve` as a real process on a free port.

use serde_json::json;

use crate::support::{free_port, get, item_ids, post, run_err, run_ok, s, write, Server};

const ITEMS: &str = "{\"id\":\"n1\",\"categories\":[\"cars\"],\"title\":\"One\"}\n\
{\"id\":\"n2\",\"categories\":[\"cars\"],\"title\":\"Two\"}\n\
{\"id\":\"n3\",\"categories\":[\"chips\"],\"title\":\"Three\"}\n\
{\"id\":\"n4\",\"categories\":[\"chips\"],\"title\":\"Hidden\",\"hidden\":true}\n\
{\"id\":\"n5\",\"categories\":[\"chips\"],\"title\":\"Expired\",\"expires_at\":\"2001-01-01T00:00:00Z\"}\n";

const EVENTS: &str = "user_id,item_id,type\nv1,n1,click\nv2,n1,click\nv2,n2,like\nv3,n3,read\nv3,n4,click\nv3,n5,click\n";

fn import_catalogue(tmp: &std::path::Path, data: &str) {
    let items = write(tmp, "items.jsonl", ITEMS);
    let events = write(tmp, "events.csv", EVENTS);
    run_ok(&["import", "items", &items, "--data-dir", data]);
    run_ok(&["import", "events", &events, "--data-dir", data]);
}

async fn start(data: &str) -> Server {
    Server::serve(data, free_port(), &[]).await
}

fn assert_recommendable_for_v1(ids: &[String]) {
    assert!(!ids.is_empty(), "recommendations should not be empty");
    for id in ids {
        assert!(
            ["n2", "n3"].contains(&id.as_str()),
            "`{id}` is hidden, expired, unknown or already seen by v1"
        );
    }
}

#[tokio::test]
async fn serves_imported_data_and_still_does_after_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    import_catalogue(tmp.path(), s(&data));

    let server = start(s(&data)).await;
    assert!(
        server.stdout_text().contains(&server.url),
        "serve prints its URL: {}",
        server.stdout_text()
    );
    let (status, _) = get(&format!("{}/healthz", server.url), None).await;
    assert_eq!(status, 200);
    let (status, body) = get(&format!("{}/v1/recommend/v1", server.url), None).await;
    assert_eq!(status, 200, "{body}");
    let before = item_ids(&body);
    assert_recommendable_for_v1(&before);
    let (status, body) = get(&format!("{}/v1/popular", server.url), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        item_ids(&body).first().map(String::as_str),
        Some("n1"),
        "n1 has the most events: {body}"
    );

    // A write acknowledged over HTTP must survive a hard kill.
    let event = json!({"user_id": "v1", "item_id": "n3", "type": "like"});
    let (status, body) = post(&format!("{}/v1/events", server.url), &event).await;
    assert!((200..300).contains(&status), "{status} {body}");
    server.kill();

    let server = start(s(&data)).await;
    let (status, body) = get(&format!("{}/v1/recommend/v1", server.url), None).await;
    assert_eq!(status, 200, "{body}");
    let after = item_ids(&body);
    assert_eq!(after, ["n2"], "n3 is now seen by v1 too: {body}");
    let (_, body) = get(&format!("{}/v1/users/v1/events", server.url), None).await;
    assert!(
        body.to_string().contains("\"n3\""),
        "the event posted before the restart is there: {body}"
    );
}

#[tokio::test]
async fn import_into_a_served_data_directory_fails_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    import_catalogue(tmp.path(), s(&data));
    let _server = start(s(&data)).await;
    let file = write(tmp.path(), "more.jsonl", "{\"id\":\"x\"}\n");
    let err = run_err(&["import", "items", &file, "--data-dir", s(&data)]);
    assert!(err.contains("in use by another Tephra process"), "{err}");
    let err = run_err(&["export", "--data-dir", s(&data)]);
    assert!(err.contains("in use by another Tephra process"), "{err}");
}
