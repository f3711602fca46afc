//! `tephra demo`: the first command of the README.

use crate::support::{free_port, get, item_ids, run, run_err, s, Server};

/// A small portal, so that the test stays quick in a debug build.
const SMALL: &[&str] = &[
    "--readers",
    "300",
    "--stories",
    "150",
    "--history",
    "300",
    "--rounds",
    "4",
];

/// The CTR ratio and its interval as the command printed them.
fn printed_ratio(out: &str) -> (f64, f64, f64) {
    let line = out
        .lines()
        .find(|l| l.contains("CTR ratio personalized / popularity:"))
        .unwrap_or_else(|| panic!("no ratio line in:\n{out}"));
    // "…: 2.06 (95% CI 1.67 to 2.54), p = …"
    let number = |after: &str| -> f64 {
        let rest = &line[line.find(after).unwrap_or_else(|| panic!("{line}")) + after.len()..];
        let end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        rest[..end].parse().unwrap_or_else(|_| panic!("{line}"))
    };
    (number("popularity: "), number("CI "), number(" to "))
}

#[tokio::test]
async fn demo_runs_the_experiment_prints_its_results_and_serves_on() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("demo");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut args = vec!["demo", "--data-dir", s(&data), "--listen", &listen];
    args.extend_from_slice(SMALL);
    args.push("--exit-after-simulation");
    let out = run(&args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("Created a news portal"), "{stdout}");
    assert!(
        stdout.contains(&format!("http://127.0.0.1:{port}/dashboard")),
        "{stdout}"
    );
    assert!(stdout.contains("Experiment `news-feed`"), "{stdout}");
    assert!(stdout.contains("no mismatch"), "{stdout}");
    // The personalized feed wins even at this small scale.
    let (ratio, low, high) = printed_ratio(&stdout);
    assert!(low <= ratio && ratio <= high, "{stdout}");
    assert!(low > 1.0, "{stdout}");

    // A second start keeps the data and the experiment's results, and serves.
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let server = Server::start(
        &[
            "demo",
            "--data-dir",
            s(&data),
            "--listen",
            &listen,
            "--rounds",
            "0",
        ],
        port,
        &[],
    )
    .await;
    assert!(
        server.stdout_text().contains("Using the data already in"),
        "{}",
        server.stdout_text()
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
    let (status, results) = get(
        &format!("{}/v1/experiments/news-feed/results", server.url),
        None,
    )
    .await;
    assert_eq!(status, 200, "{results}");
    let users: u64 = results["variants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["users"].as_u64().unwrap())
        .sum();
    assert_eq!(users, 300, "{results}");
    let (status, page) = get(&format!("{}/dashboard", server.url), None).await;
    assert_eq!(status, 200, "{page}");
}

#[test]
fn demo_refuses_bad_simulation_flags() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("demo");
    let err = run_err(&["demo", "--data-dir", s(&data), "--appeal-share", "2"]);
    assert!(err.contains("--appeal-share"), "{err}");
    let err = run_err(&["demo", "--data-dir", s(&data), "--readers", "0"]);
    assert!(err.contains("--readers"), "{err}");
}
