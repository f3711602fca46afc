#!/usr/bin/env bash
# Side-by-side training benchmark: Tephra against the Python library `implicit`
# on the same synthetic log, in the same run, alternating the two so that a
# busy neighbour on the machine slows both alike.
#
#   iALS      implicit AlternatingLeastSquares  vs  ials_bench (tephra-eval example)
#   item-kNN  implicit CosineRecommender        vs  knn_bench  (tephra-models example)
#
# Both sides use 2 threads, 64 factors and 15 iterations, and the accuracy of
# both iALS models is measured on exactly the same users (the ones the peer
# script samples). Prints the median training time over the runs, NDCG@10,
# Recall@20, peak memory and the speed ratio.
#
# usage: scripts/bench-training.sh [--runs N] [--no-knn]
#
# Environment:
#   TEPHRA_PEERS_DIR  folder with setup-peers.sh, csv_peers.py and synth.py
#                     (default ../shared/bench, relative to the repository root)
#   CARGO_TARGET_DIR  where cargo builds (default target)
#
# Generated data and the peer virtual environment live in the ignored .cache
# folder and are reused by later runs. The synthetic log (200,000 users, 50,000
# items, ~6.9M training pairs) takes a few minutes to write the first time.
set -euo pipefail

runs=3
knn=1
while [[ $# -gt 0 ]]; do
    case "$1" in
        --runs)
            runs=${2:?--runs needs a value}
            shift 2
            ;;
        --no-knn)
            knn=0
            shift
            ;;
        -h | --help)
            sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
            exit 0
            ;;
        *)
            echo "unknown argument: $1 (see --help)" >&2
            exit 2
            ;;
    esac
done
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || { echo "--runs must be a positive integer" >&2; exit 2; }

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
peers_dir="${TEPHRA_PEERS_DIR:-../shared/bench}"
venv=.cache/peers-venv
python="$venv/bin/python"
data=.cache/synth-200k.csv
eval_users=3000
threads=2
target_dir="${CARGO_TARGET_DIR:-target}"

for file in setup-peers.sh csv_peers.py synth.py; do
    [[ -f "$peers_dir/$file" ]] || {
        echo "error: $peers_dir/$file not found (set TEPHRA_PEERS_DIR)" >&2
        exit 1
    }
done
mkdir -p .cache

if [[ ! -x "$python" ]]; then
    echo "setting up the peer environment in $venv ..." >&2
    bash "$peers_dir/setup-peers.sh" "$venv" >&2
fi
if [[ ! -s "$data" ]]; then
    echo "generating $data ..." >&2
    "$python" "$peers_dir/synth.py" 200000 50000 50 "$data.tmp"
    mv "$data.tmp" "$data"
fi

echo "building the Tephra examples ..." >&2
cargo build --release --quiet -p tephra-eval --example ials_bench
[[ $knn == 1 ]] && cargo build --release --quiet -p tephra-models --example knn_bench
ials_bench="$target_dir/release/examples/ials_bench"
knn_bench="$target_dir/release/examples/knn_bench"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# The users the peer script evaluates: numpy default_rng(0).choice over users
# indexed in sorted id order (see csv_peers.py and the ials_bench docs).
users_file="$work/users.txt"
"$python" - "$data" "$eval_users" >"$users_file" <<'EOF'
import sys
import numpy as np
import pandas as pd
ids = pd.read_csv(sys.argv[1], usecols=["user_id"], dtype={"user_id": str}).user_id
ids = ids.astype("category").cat.categories
n = min(int(sys.argv[2]), len(ids))
print("\n".join(ids[np.random.default_rng(0).choice(len(ids), n, replace=False)]))
EOF

# Runs a command with its output (plus the peak RSS line of GNU time, when
# available) appended to a log; echoes the log path.
have_time=0
/usr/bin/time -v true >/dev/null 2>&1 && have_time=1
measure() {
    local log=$1
    shift
    if [[ $have_time == 1 ]]; then
        /usr/bin/time -v "$@" >"$log" 2>"$log.time" || { cat "$log" "$log.time" >&2; return 1; }
        grep 'Maximum resident set size' "$log.time" >>"$log" || true
    else
        "$@" >"$log" 2>&1 || { cat "$log" >&2; return 1; }
    fi
}

# Value of `key=` on the first line of a log that matches `pattern`.
field() {
    local log=$1 pattern=$2 key=$3
    grep -E "$pattern" "$log" | head -n 1 | tr ' ' '\n' | sed -n "s/^$key=//p" | head -n 1
}

# Peak RSS in MiB of a finished command: GNU time's figure, else `fallback`.
peak_mib() {
    local log=$1 fallback=${2:-}
    local kib
    kib=$(sed -n 's/.*Maximum resident set size (kbytes): *//p' "$log" | head -n 1)
    if [[ -n "$kib" ]]; then
        echo $((kib / 1024))
    else
        echo "${fallback:-n/a}"
    fi
}

median() {
    sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "n/a"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

for run in $(seq 1 "$runs"); do
    echo "run $run/$runs: implicit ALS ..." >&2
    measure "$work/implicit-als-$run.log" \
        "$python" "$peers_dir/csv_peers.py" "$data" --models als --eval-users "$eval_users"
    echo "run $run/$runs: tephra iALS ..." >&2
    RAYON_NUM_THREADS=$threads measure "$work/tephra-ials-$run.log" \
        "$ials_bench" "$data" --users-file "$users_file"
    # Also with implicit's 3 conjugate-gradient steps per solve (Tephra's
    # default is 2, which ranks as well), to show what that choice is worth.
    echo "run $run/$runs: tephra iALS, 3 CG steps ..." >&2
    RAYON_NUM_THREADS=$threads measure "$work/tephra-ials3-$run.log" \
        "$ials_bench" "$data" --users-file "$users_file" --cg-steps 3
    if [[ $knn == 1 ]]; then
        echo "run $run/$runs: implicit item-kNN ..." >&2
        measure "$work/implicit-knn-$run.log" \
            "$python" "$peers_dir/csv_peers.py" "$data" --models knn --eval-users "$eval_users"
        echo "run $run/$runs: tephra item-kNN ..." >&2
        RAYON_NUM_THREADS=$threads measure "$work/tephra-knn-$run.log" \
            "$knn_bench" "$data" --model cosine --neighbours 100 --runs 1
    fi
done

# One row per side: name, median seconds, NDCG@10, Recall@20, peak MiB.
row() {
    local name=$1 prefix=$2 pattern=$3 time_key=$4 ndcg=$5 recall=$6 peak=$7
    local times
    times=$(for log in "$work/$prefix"-[0-9]*.log; do field "$log" "$pattern" "$time_key"; done | median)
    printf '%-28s %10s %9s %10s %10s\n' "$name" "$times" "$ndcg" "$recall" "$peak"
    echo "$times" >"$work/$prefix.median"
}

last=$runs
als_log="$work/implicit-als-$last.log"
ials_log="$work/tephra-ials-$last.log"
echo
echo "synthetic log $data, $threads threads, $runs run(s), medians; accuracy on $eval_users users sampled by the peer script"
printf '%-28s %10s %9s %10s %10s\n' "model" "train_s" "NDCG@10" "Recall@20" "peak_MiB"
row "implicit ALS" implicit-als '^als ' train_s \
    "$(field "$als_log" '^als ' NDCG@10)" "$(field "$als_log" '^als ' Recall@20)" \
    "$(peak_mib "$als_log")"
row "tephra iALS" tephra-ials '^ials ' train_s \
    "$(field "$ials_log" '^ials ' NDCG@10)" "$(field "$ials_log" '^ials ' Recall@20)" \
    "$(peak_mib "$ials_log" "$(field "$ials_log" '^ials ' after_train)")"
ials3_log="$work/tephra-ials3-$last.log"
row "tephra iALS, 3 CG steps" tephra-ials3 '^ials ' train_s \
    "$(field "$ials3_log" '^ials ' NDCG@10)" "$(field "$ials3_log" '^ials ' Recall@20)" \
    "$(peak_mib "$ials3_log" "$(field "$ials3_log" '^ials ' after_train)")"
if [[ $knn == 1 ]]; then
    knn_peer_log="$work/implicit-knn-$last.log"
    knn_log="$work/tephra-knn-$last.log"
    row "implicit item-kNN (cosine)" implicit-knn '^knn ' train_s \
        "$(field "$knn_peer_log" '^knn ' NDCG@10)" "$(field "$knn_peer_log" '^knn ' Recall@20)" \
        "$(peak_mib "$knn_peer_log")"
    row "tephra item-kNN (cosine)" tephra-knn 'median_fit_s=' median_fit_s "n/a" "n/a" \
        "$(peak_mib "$knn_log" "$(field "$knn_log" 'median_fit_s=' peak_rss_mib)")"
fi
echo "(peak memory: whole process, loading included)"

ratio() {
    local label=$1 peer=$2 ours=$3 target=$4
    awk -v p="$(cat "$work/$peer.median")" -v o="$(cat "$work/$ours.median")" \
        -v l="$label" -v t="$target" \
        'BEGIN { if (o + 0 > 0) printf "%s speed-up: %.2fx (target >= %sx)\n", l, p / o, t; else print l " speed-up: n/a" }'
}
echo
ratio "iALS" implicit-als tephra-ials 5
ratio "iALS with 3 CG steps" implicit-als tephra-ials3 5
[[ $knn == 1 ]] && ratio "item-kNN" implicit-knn tephra-knn 2
echo
echo "per-run training seconds:"
for prefix in implicit-als tephra-ials tephra-ials3 implicit-knn tephra-knn; do
    compgen -G "$work/$prefix-[0-9]*.log" >/dev/null || continue
    key=train_s pattern='train_s='
    [[ $prefix == tephra-knn ]] && key=fit_s pattern='fit_s='
    printf '  %-14s' "$prefix"
    for log in "$work/$prefix"-[0-9]*.log; do
        printf ' %s' "$(field "$log" "$pattern" "$key")"
    done
    echo
done
