#!/usr/bin/env bash
# Schemathesis (all checks) against /openapi.json of a fresh herald on SQLite, bounded in
# examples. Not part of `cargo test` yet: the failures it still reports are listed in the
# notes of issue 18. Needs `pip install schemathesis` and a built herald.
# Usage: tests/conformance.sh [path/to/herald] [max-examples]
set -euo pipefail
herald=${1:-target/debug/herald}
examples=${2:-15}
dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
HERALD_ADMIN_TOKEN=conformance-admin HERALD_SERVER__PORT=$port HERALD_DATABASE__URL="$dir/herald.db" \
    HERALD_LIMITS__RATE_LIMIT_PER_MINUTE=1000000 "$herald" >"$dir/out.log" 2>"$dir/err.log" &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 1 50); do grep -q "listening on" "$dir/out.log" 2>/dev/null && break; sleep 0.2; done
key=$(grep -o 'hk_[A-Za-z0-9_-]*' "$dir/out.log" | head -n 1)
# Revoking the key under test would turn every later request into a 401.
schemathesis run "http://127.0.0.1:$port/openapi.json" --checks all -n "$examples" --no-color \
    -H "Authorization: Bearer $key" --exclude-path '/v1/api-keys/{id}'
