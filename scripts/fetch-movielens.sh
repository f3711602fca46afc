#!/usr/bin/env bash
# Fetches MovieLens-100K for `tephra eval --dataset movielens-100k`.
#
# The data comes from the `recbole` wheel on PyPI (the standard protocol's
# source): the wheel is downloaded into a temporary directory and
# `recbole/dataset_example/ml-100k/ml-100k.inter` is extracted into
# `.cache/ml-100k/ml-100k.inter` at the repository root (an ignored folder; the
# data is never committed). Running it again when the file exists does nothing.
# Needs python3 with pip; no unzip tool.
set -euo pipefail

RECBOLE_VERSION="1.2.1"
MEMBER="recbole/dataset_example/ml-100k/ml-100k.inter"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target_dir="$root/.cache/ml-100k"
target="$target_dir/ml-100k.inter"

if [[ -s "$target" ]]; then
    echo "$target"
    exit 0
fi

command -v python3 >/dev/null || { echo "error: python3 is required" >&2; exit 1; }

workdir="$(mktemp -d)"
trap 'rm -rf "$workdir"' EXIT

echo "downloading recbole==$RECBOLE_VERSION from PyPI ..." >&2
python3 -m pip download --quiet --no-deps --dest "$workdir" "recbole==$RECBOLE_VERSION" >&2

wheel="$(find "$workdir" -maxdepth 1 -name 'recbole-*.whl' | head -n 1)"
if [[ -z "$wheel" ]]; then
    echo "error: pip did not produce a recbole wheel in $workdir" >&2
    exit 1
fi

mkdir -p "$target_dir"
python3 - "$wheel" "$MEMBER" "$target.partial" <<'PY'
import sys, zipfile
wheel, member, out = sys.argv[1:4]
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(out, "wb") as dst:
    while True:
        chunk = src.read(1 << 20)
        if not chunk:
            break
        dst.write(chunk)
PY
# Rename last so that an interrupted run never leaves a truncated file behind.
mv "$target.partial" "$target"
echo "$target"
