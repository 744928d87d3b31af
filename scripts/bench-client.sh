#!/usr/bin/env bash
# Client benchmark: secgraph against the Python loop a hunter would otherwise write (../shared/bench/python_baseline.py:
# httpx + pandas.json_normalize + pyarrow), both paging the same emulator's alerts_v2 with $top=1000.
# Figures go to docs/PERFORMANCE.md. Needs a release build and a venv with httpx, pandas and pyarrow:
#   cargo build --release -p secgraph-cli
#   python3 -m venv /tmp/pybase && /tmp/pybase/bin/pip install httpx pandas pyarrow
#   scripts/bench-client.sh [ALERTS]
set -euo pipefail
cd "$(dirname "$0")/.."
ALERTS=${1:-20000}
BIN=target/release/secgraph
PY=${PYTHON:-/tmp/pybase/bin/python}
BASELINE=${BASELINE:-../shared/bench/python_baseline.py}
WORK=$(mktemp -d)
trap 'kill $EMU 2>/dev/null || true; rm -rf "$WORK"' EXIT

"$BIN" emulator --alerts "$ALERTS" --write-config "$WORK/emu.yaml" > "$WORK/emu.log" 2>&1 &
EMU=$!
for _ in $(seq 1 600); do [ -s "$WORK/emu.yaml" ] && break; sleep 0.1; done
BASE=$(sed -n "s/^  resource_manager_url: '\(.*\)\/'$/\1/p" "$WORK/emu.yaml")
CA=$(sed -n "/ca_certificates:/{n;s/^    - '\(.*\)'$/\1/p}" "$WORK/emu.yaml")
export MSTICPYCONFIG="$WORK/emu.yaml"

measure() { # label, command...
  local label=$1; shift
  /usr/bin/time -f "%e %M" -o "$WORK/time" "$@" > /dev/null 2> "$WORK/err" || { cat "$WORK/err"; exit 1; }
  read -r secs kb < "$WORK/time"
  echo "$label: ${secs}s, peak RSS $((kb / 1024)) MiB"
}

for i in 1 2 3; do
  measure "secgraph jsonl (run $i)" "$BIN" exec '/security/alerts_v2?$top=1000' -o jsonl --out "$WORK/a.jsonl"
  measure "secgraph csv, flattened (run $i)" "$BIN" exec '/security/alerts_v2?$top=1000' -o csv --out "$WORK/a.csv"
  measure "python httpx+pandas+pyarrow (run $i)" "$PY" "$BASELINE" --token-url "$BASE/{tenant}/oauth2/v2.0/token" --graph-url "$BASE" \
    --tenant 8f3b9a52-6c1d-4e2f-9a7b-0c5d3e1f2a4b --client-id 5d2f1c3b-8a7e-4b6d-9c0f-1e2a3b4c5d6e \
    --client-secret demo-secret-for-the-local-emulator-only --ca "$CA" --path '/v1.0/security/alerts_v2?$top=1000' --out "$WORK/b.parquet"
done
echo "rows: secgraph $(wc -l < "$WORK/a.jsonl") jsonl lines; python: $("$PY" -c "import pyarrow.parquet as p,sys; print(p.read_metadata(sys.argv[1]).num_rows)" "$WORK/b.parquet")"
