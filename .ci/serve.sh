#!/usr/bin/env bash
# Runs the README's first command literally (`cargo run -- serve`, embedded defaults: SQLite
# under ./data and the built-in İYS simulator), waits until it answers /readyz, runs schemathesis
# against it with its own /openapi.json, then stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v curl >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl >&2
fi
log="$(mktemp)"
cargo run --locked -- serve >"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do
  if curl -fsS localhost:8080/readyz >/dev/null 2>&1; then
    grep -q "BUILT-IN SIMULATOR" "$log" || { echo "no simulator banner" >&2; cat "$log" >&2; exit 1; }
    echo "cargo run -- serve: ready on :8080, simulator banner shown"
    bash .ci/schemathesis.sh http://127.0.0.1:8080
    kill -0 "$pid" || { echo "the service died under schemathesis" >&2; cat "$log" >&2; exit 1; }
    exit 0
  fi
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "cargo run -- serve exited" >&2; cat "$log" >&2; exit 1
  fi
  sleep 1
done
echo "cargo run -- serve did not become ready" >&2
cat "$log" >&2
exit 1
