//! Layered configuration seen from outside: file, environment, flags.

use crate::support::{free_port, get, run_err, s, write, Server};

const KEY: &str = "integration-test-key-0123456789";

#[tokio::test]
async fn api_key_from_the_environment_protects_v1() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let args = ["serve", "--data-dir", s(tmp.path()), "--listen", &listen];
    let server = Server::start(&args, port, &[("TEPHRA_SERVER__API_KEY", KEY)]).await;
    let url = format!("{}/v1/popular", server.url);
    assert_eq!(get(&url, None).await.0, 401);
    assert_eq!(get(&url, Some("wrong-key-wrong-key-wrong")).await.0, 401);
    assert_eq!(get(&url, Some(KEY)).await.0, 200);
    assert_eq!(
        get(&format!("{}/healthz", server.url), None).await.0,
        200,
        "health checks stay open"
    );
}

#[tokio::test]
async fn file_sets_values_flags_override_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (file_port, flag_port) = (free_port(), free_port());
    let config = write(
        tmp.path(),
        "tephra.toml",
        format!(
            "data_dir = {:?}\n[server]\nlisten = \"127.0.0.1:{file_port}\"\napi_key = \"{KEY}\"\n",
            s(&tmp.path().join("data"))
        ),
    );

    // The file alone: its port, its key, its data directory.
    let server = Server::start(&["serve", "--config", &config], file_port, &[]).await;
    assert_eq!(
        get(&format!("{}/v1/popular", server.url), None).await.0,
        401
    );
    assert_eq!(
        get(&format!("{}/v1/popular", server.url), Some(KEY))
            .await
            .0,
        200
    );
    drop(server);
    assert!(
        tmp.path().join("data").is_dir(),
        "data_dir from the file is used"
    );

    // TEPHRA_CONFIG names the file too, and --listen beats it.
    let listen = format!("127.0.0.1:{flag_port}");
    let server = Server::start(
        &["serve", "--listen", &listen],
        flag_port,
        &[("TEPHRA_CONFIG", &config)],
    )
    .await;
    assert_eq!(
        get(&format!("{}/v1/popular", server.url), None).await.0,
        401,
        "the key still comes from the file"
    );
}

#[test]
fn a_missing_config_file_is_an_error_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("absent.toml");
    let err = run_err(&["serve", "--config", s(&missing)]);
    assert!(err.contains("absent.toml"), "{err}");
}

#[test]
fn an_invalid_setting_is_an_error_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let out = crate::support::tephra()
        .args(["serve", "--data-dir", s(tmp.path())])
        .env("TEPHRA_SERVER__MAX_BATCH", "0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("server.max_batch"), "{err}");
    let err = run_err(&["serve", "--data-dir", s(tmp.path()), "--api-key", "short"]);
    assert!(err.contains("server.api_key"), "{err}");
}
