#!/usr/bin/env bash
# Runs schemathesis (from PyPI, in a virtual environment under .cache) against
# /openapi.json of a real server: a small demo portal in a scratch directory.
# Checks: no 5xx answer, every status code and response body as documented.
# Usage: scripts/schemathesis.sh [MAX_EXAMPLES]   (default 50 per operation)
set -euo pipefail
cd "$(dirname "$0")/.."
examples="${1:-50}"
venv=.cache/venv-schemathesis
if [ ! -x "$venv/bin/schemathesis" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q schemathesis
fi
cargo build --release -q
scratch="$(mktemp -d)"
port=$((20000 + RANDOM % 20000))
# With an admin key, so that the admin routes are exercised too (schemathesis
# sends it as the bearer token the OpenAPI document asks for).
admin_key="schemathesis-admin-key-0123456789"
TEPHRA_SERVER__ADMIN_KEY="$admin_key" ./target/release/tephra demo --data-dir "$scratch/data" --listen "127.0.0.1:$port" \
    --readers 100 --stories 80 --rounds 1 >"$scratch/demo.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; rm -rf "$scratch"' EXIT
for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
    sleep 0.2
done
"$venv/bin/schemathesis" run "http://127.0.0.1:$port/openapi.json" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance \
    --max-examples "$examples" --workers 2 \
    --header "Authorization: Bearer $admin_key"
