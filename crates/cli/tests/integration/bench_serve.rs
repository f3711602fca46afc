//! `tephra bench serve` at a tiny scale: the whole pipeline (gen, import,
//! train, serve, load, freshness) runs and prints its table. Figures are not
//! checked: benchmarks print, tests check behaviour.

use crate::support::{run_ok, s};

#[test]
fn serve_bench_runs_end_to_end_and_reuses_its_data() {
    let tmp = tempfile::tempdir().unwrap();
    let args = [
        "bench",
        "serve",
        "--users",
        "200",
        "--items",
        "100",
        "--events",
        "5000",
        "--seconds",
        "1",
        "--warmup-seconds",
        "0",
        "--runs",
        "1",
        "--connections",
        "4",
        "--freshness-samples",
        "20",
        "--cache-dir",
        s(tmp.path()),
    ];
    let out = run_ok(&args);
    for expected in [
        "gen: wrote",
        "train: ",
        "Results (median of 1 runs)",
        "recommend ?n=10 p50",
        "/healthz requests/s",
        "freshness: click reflected",
    ] {
        assert!(out.contains(expected), "`{expected}` missing from:\n{out}");
    }
    let errors = out
        .lines()
        .find_map(|l| l.strip_prefix("errors (non-2xx or failed), all runs"))
        .and_then(|rest| rest.split_whitespace().next());
    assert_eq!(errors, Some("0"), "{out}");
    assert!(out.contains("20/20 clicks reflected"), "{out}");

    let again = run_ok(&args);
    assert!(again.contains("gen: reusing"), "{again}");
    assert!(again.contains("import + train: reusing"), "{again}");
}
