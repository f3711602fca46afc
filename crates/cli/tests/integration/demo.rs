//! `tephra demo`: the first command of the README.

use crate::support::{free_port, get, item_ids, s, Server};

#[tokio::test]
async fn demo_creates_sample_data_and_serves_recommendations() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("demo");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let server = Server::start(
        &["demo", "--data-dir", s(&data), "--listen", &listen],
        port,
        &[],
    )
    .await;

    let printed = server.stdout_text();
    assert!(printed.contains("Created sample data"), "{printed}");
    assert!(
        printed.contains(&format!("curl '{}/v1/recommend/user-042", server.url)),
        "{printed}"
    );

    let (status, body) = get(&format!("{}/v1/recommend/user-042?n=5", server.url), None).await;
    assert_eq!(status, 200, "{body}");
    let ids = item_ids(&body);
    assert_eq!(ids.len(), 5, "{body}");
    assert!(ids.iter().all(|id| id.starts_with("news-")), "{body}");
    let (status, body) = get(
        &format!("{}/v1/trending?n=3&category=electric-cars", server.url),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(item_ids(&body).len(), 3, "{body}");
    server.kill();

    // A second start keeps the data instead of generating it again.
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let server = Server::start(
        &["demo", "--data-dir", s(&data), "--listen", &listen],
        port,
        &[],
    )
    .await;
    assert!(
        server.stdout_text().contains("Using the data already in"),
        "{}",
        server.stdout_text()
    );
}
