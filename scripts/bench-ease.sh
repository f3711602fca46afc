#!/usr/bin/env bash
# EASE^R training time and peak memory, Tephra next to NumPy, in one run.
#
# usage: scripts/bench-ease.sh [--runs N] [--items N]
#
# Generates (once) a synthetic log of 50,000 users over --items items (10,000)
# with the peers' synth.py into .cache/, then times EASE^R (lambda 500) on it:
# Tephra's `ease_bench` example and `scripts/ease_peer.py` (NumPy, float64 and
# float32), both on 2 threads, --runs times each (3). Prints the median fit
# time of each side, its peak memory and the ratio. Needs the peers' virtual
# environment (.cache/peers-venv, made by setup-peers.sh from
# $TEPHRA_PEERS_DIR, default ../shared/bench).
set -euo pipefail

runs=3
items=10000
while [[ $# -gt 0 ]]; do
    case "$1" in
        --runs) runs="$2"; shift 2 ;;
        --items) items="$2"; shift 2 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
peers="${TEPHRA_PEERS_DIR:-$root/../shared/bench}"
venv=.cache/peers-venv
mkdir -p .cache
if [[ ! -x "$venv/bin/python" ]]; then
    bash "$peers/setup-peers.sh" "$venv"
fi
data=".cache/synth-ease-$items.csv"
if [[ ! -s "$data" ]]; then
    echo "generating $data ..." >&2
    "$venv/bin/python" "$peers/synth.py" 50000 "$items" 50 "$data"
fi

cargo build --release --quiet -p tephra-eval --example ease_bench
export RAYON_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 OMP_NUM_THREADS=2 MKL_NUM_THREADS=2

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
for ((r = 1; r <= runs; r++)); do
    # Alternate the order so that neither side always runs on a warmer machine.
    target/release/examples/ease_bench "$data" --runs 1 | tee -a "$out/tephra"
    "$venv/bin/python" scripts/ease_peer.py "$data" --runs 1 --dtype float64 | tee -a "$out/numpy64"
    "$venv/bin/python" scripts/ease_peer.py "$data" --runs 1 --dtype float32 | tee -a "$out/numpy32"
done

median() { grep -o "$2=[0-9.]*" "$1" | cut -d= -f2 | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
t=$(median "$out/tephra" fit_s);   tm=$(median "$out/tephra" peak_rss_mib)
n64=$(median "$out/numpy64" fit_s); m64=$(median "$out/numpy64" peak_rss_mib)
n32=$(median "$out/numpy32" fit_s); m32=$(median "$out/numpy32" peak_rss_mib)
echo
echo "EASE^R, $items items, lambda 500, 2 threads, median of $runs runs"
printf '%-22s %10s %14s %22s\n' side fit_s peak_rss_mib "time / Tephra's time"
printf '%-22s %10s %14s %22s\n' tephra "$t" "$tm" 1.00
printf '%-22s %10s %14s %22.2f\n' "numpy float64" "$n64" "$m64" "$(awk -v a="$n64" -v b="$t" 'BEGIN { print a / b }')"
printf '%-22s %10s %14s %22.2f\n' "numpy float32" "$n32" "$m32" "$(awk -v a="$n32" -v b="$t" 'BEGIN { print a / b }')"
