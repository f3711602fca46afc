#!/usr/bin/env bash
# Runs every fuzz target for SECONDS (default 60) each, starting from the seeds
# in fuzz/seeds. Needs cargo-fuzz (`cargo install cargo-fuzz`); the stable
# toolchain builds the sanitizer flags with RUSTC_BOOTSTRAP=1. Crashes are
# written to fuzz/artifacts/<target>/ and make this script fail.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
export RUSTC_BOOTSTRAP=1
cargo fuzz build -O
status=0
for target in json_bodies csv_import jsonl_import snapshot_load; do
    mkdir -p "fuzz/corpus/$target"
    if [ -d "fuzz/seeds/$target" ]; then
        cp -n fuzz/seeds/"$target"/* "fuzz/corpus/$target/" 2>/dev/null || true
    fi
    echo "== $target, ${seconds} s"
    log="fuzz/corpus/$target.log"
    if cargo fuzz run -O "$target" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=4096 >"$log" 2>&1; then
        grep -E "^Done" "$log" || true
    else
        status=1
        grep -E "SUMMARY|panicked|crash-|ERROR" "$log" || tail -n 20 "$log"
    fi
done
exit "$status"
