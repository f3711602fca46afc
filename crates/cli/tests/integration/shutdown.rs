//! `tephra serve` stopped by SIGTERM under sustained writes: requests in
//! flight are answered, every acknowledged write is in the store afterwards,
//! and the process exits cleanly.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::{json, Value};

use crate::support::{free_port, get, s, Server};

/// Events per request.
const BATCH: usize = 200;
/// Concurrent writers.
const WRITERS: usize = 6;

/// One answered request: its first user, and when the answer came.
struct Answer {
    first_user: String,
    at: Instant,
}

async fn start(data: &str, port: u16) -> Server {
    Server::serve(data, port, &[("TEPHRA_TRAINING__ENABLED", "false")]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_requests_in_flight_and_keeps_every_acknowledged_write() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let port = free_port();
    let mut server = start(s(&data), port).await;
    let url = format!("{}/v1/events", server.url);

    let answers: Arc<Mutex<Vec<Answer>>> = Arc::default();
    let refusals: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let (url, answers, refusals) = (url.clone(), answers.clone(), refusals.clone());
        writers.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            for n in 0.. {
                let batch: Vec<Value> = (0..BATCH)
                    .map(|i| {
                        json!({"user_id": format!("w{w}-b{n}-u{i}"), "item_id": format!("i{}", i % 50), "type": "click"})
                    })
                    .collect();
                match client.post(&url).json(&batch).send().await {
                    Ok(reply) if reply.status().is_success() => answers.lock().push(Answer {
                        first_user: format!("w{w}-b{n}-u0"),
                        at: Instant::now(),
                    }),
                    Ok(reply) => refusals.lock().push(format!("{}", reply.status())),
                    // The server closed the connection: it is stopping.
                    Err(_) => return,
                }
            }
        }));
    }
    // Let the writers run, then stop the server as a process manager would.
    while answers.lock().len() < 20 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let terminated_at = Instant::now();
    let status = server.terminate().await;
    for writer in writers {
        writer.await.unwrap();
    }
    assert!(
        status.success(),
        "exit status {status}:\n{}",
        server.stderr_text()
    );
    assert!(
        refusals.lock().is_empty(),
        "requests were refused instead of drained: {:?}",
        refusals.lock()
    );
    let answers = std::mem::take(&mut *answers.lock());
    let drained = answers.iter().filter(|a| a.at > terminated_at).count();
    assert!(drained > 0, "no request in flight at SIGTERM was answered");

    // Every acknowledged batch is in the store, and nothing else but whole
    // batches.
    let server = start(s(&data), port).await;
    let (_, ready) = get(&format!("{}/readyz", server.url), None).await;
    let events = ready["events"].as_u64().expect("event count") as usize;
    assert!(
        events >= answers.len() * BATCH,
        "{events} events for {} acknowledged batches",
        answers.len()
    );
    assert_eq!(events % BATCH, 0, "a batch was stored in part");
    for answer in &answers {
        let (status, body) = get(
            &format!("{}/v1/users/{}/events", server.url, answer.first_user),
            None,
        )
        .await;
        assert_eq!(status, 200, "{}: {body}", answer.first_user);
        assert_eq!(body["events"].as_array().map(Vec::len), Some(1));
    }
}
