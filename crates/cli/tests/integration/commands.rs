//! The command line itself.

use crate::support::{run, run_ok};

#[test]
fn help_lists_the_subcommands() {
    let help = run_ok(&["--help"]);
    for sub in ["serve", "import", "export", "demo", "bench"] {
        assert!(
            help.lines().any(|l| l.trim_start().starts_with(sub)),
            "`{sub}` missing from:\n{help}"
        );
    }
    for flag in ["--config", "--data-dir"] {
        assert!(help.contains(flag), "`{flag}` missing from:\n{help}");
    }
}

#[test]
fn serve_help_lists_its_flags() {
    let help = run_ok(&["serve", "--help"]);
    for flag in [
        "--listen",
        "--api-key",
        "--data-dir",
        "--config",
        "--log-format",
    ] {
        assert!(help.contains(flag), "`{flag}` missing from:\n{help}");
    }
}

#[test]
fn unknown_subcommand_fails() {
    let out = run(&["frobnicate"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("frobnicate"));
}

/// The short form of the crash test: SIGKILL during sustained ingestion,
/// five times; the command fails if an acknowledged event is missing.
#[test]
fn no_acknowledged_event_is_lost_when_the_server_is_killed() {
    let out = crate::support::run_ok(&["bench", "crash", "--rounds", "5", "--max-ms", "800"]);
    assert!(
        out.contains("No acknowledged event was lost in 5 rounds"),
        "{out}"
    );
    let rounds = out
        .lines()
        .filter(|l| {
            l.trim_start()
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_digit())
        })
        .count();
    assert_eq!(rounds, 5, "{out}");
}

/// A few seconds of the soak benchmark's mixed traffic: every request is
/// answered and the report has its windows and totals.
#[test]
fn a_short_soak_answers_every_request() {
    let out = crate::support::run_ok(&[
        "bench",
        "soak",
        "--minutes",
        "0.1",
        "--rate",
        "40",
        "--history",
        "2000",
        "--report-secs",
        "2",
        "--warmup-minutes",
        "0.02",
        "--no-training",
    ]);
    assert!(out.contains("requests answered, 0 errors"), "{out}");
    assert!(out.contains("Resident memory:"), "{out}");
}
