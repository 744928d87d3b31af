#!/usr/bin/env bash
# Results benchmark (issues 11 and 12), one run side by side on the same emulator and data:
#   - the fetch-only floor (examples/fetch_floor.rs: one reqwest client following @odata.nextLink, items skipped
#     unparsed, nothing written), secgraph → JSON lines, secgraph → Parquet,
#     ../shared/bench/python_baseline.py (httpx + pandas + pyarrow → Parquet), the Python package → DataFrame;
#   - peak RSS writing 10k vs 100k rows to Parquet;
#   - cold start: connect + the first page of 10 alerts, secgraph CLI vs the baseline;
#   - a time-split run (8 slices, 4 at once) vs serial, with 50 ms added to every page by the emulator.
# Medians of RUNS runs (default 5); ONLY_SPLIT=1 runs the last part alone, ONLY_EXPORT=1 the export benchmark,
# ONLY_EXPORT10=1 the ten-tenant export (ALERTS per tenant). Figures go to docs/PERFORMANCE.md.
# Needs: cargo build --release -p secgraph-cli --example fetch_floor -p secgraph (the script builds both); a venv with httpx pandas pyarrow (PYTHON, default /tmp/pybase) and one
# with the package installed by `pip install ./crates/secgraph-py` (PKG_PYTHON, default /tmp/cleanvenv; its rows are
# skipped when that interpreter is missing).
set -euo pipefail
cd "$(dirname "$0")/.."
ALERTS=${ALERTS:-100000}
RUNS=${RUNS:-5}
BIN=$PWD/target/release/secgraph
FLOOR=$PWD/target/release/examples/fetch_floor
cargo build -q --release -p secgraph-cli
cargo build -q --release -p secgraph --example fetch_floor
PY=${PYTHON:-/tmp/pybase/bin/python}
PKG=${PKG_PYTHON:-/tmp/cleanvenv/bin/python}
BASELINE=${BASELINE:-$PWD/../shared/bench/python_baseline.py}
TENANT=8f3b9a52-6c1d-4e2f-9a7b-0c5d3e1f2a4b
CLIENT=5d2f1c3b-8a7e-4b6d-9c0f-1e2a3b4c5d6e
SECRET=demo-secret-for-the-local-emulator-only
WORK=$(mktemp -d)
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null || true; rm -rf "$WORK"' EXIT

start_emulator() { # name, args...
  local name=$1; shift
  "$BIN" emulator "$@" --write-config "$WORK/$name.yaml" > "$WORK/$name.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 1200); do [ -s "$WORK/$name.yaml" ] && return; sleep 0.1; done
  echo "emulator $name did not start" >&2; exit 1
}
base_of() { sed -n "s/^  resource_manager_url: '\(.*\)\/'$/\1/p" "$WORK/$1.yaml"; }
ca_of() { sed -n "/ca_certificates:/{n;s/^    - '\(.*\)'$/\1/p}" "$WORK/$1.yaml"; }

# time_it LABEL CMD...: appends "secs maxrss_kib" to $WORK/LABEL.
time_it() {
  local label=$1; shift
  /usr/bin/time -f "%e %M" -o "$WORK/t" "$@" > /dev/null 2> "$WORK/err" || { echo "$label failed:"; tail -5 "$WORK/err"; exit 1; }
  cat "$WORK/t" >> "$WORK/$label"
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
report() { # label rows
  local label=$1 rows=$2 secs kib
  secs=$(cut -d' ' -f1 "$WORK/$label" | median)
  kib=$(cut -d' ' -f2 "$WORK/$label" | median)
  printf '%-34s median %6.2f s  %8.0f rows/s  peak RSS %5d MiB  (%s runs)\n' "$label" "$secs" \
    "$(echo "$rows / $secs" | bc -l)" "$((${kib%.*} / 1024))" "$(wc -l < "$WORK/$label")"
}

fetch_floor() { # emulator-name path: every page through one reqwest client, nothing else.
  "$FLOOR" "$(base_of "$1")" "$(ca_of "$1")" "$TENANT" "$CLIENT" "$SECRET" "$2"
}
export -f fetch_floor base_of ca_of
export WORK TENANT CLIENT SECRET FLOOR

if [ -n "${ONLY_EXPORT10:-}" ]; then
  # MSSP scale: ten tenants, each served ALERTS alerts (the emulator serves its one dataset under every tenant), the
  # alerts_v2 stream exported in one run, then a run with nothing new. TENANTS (default 10) sets the count.
  TENANTS=${TENANTS:-10}
  {
    echo "tenants:"
    for k in $(seq 0 $((TENANTS - 1))); do
      printf '  - id: 00000000-0000-4000-8000-%012d\n    domain: t%d.example.onmicrosoft.com\n    users: []\n' "$k" "$k"
      printf '    apps:\n      - client_id: 10000000-0000-4000-8000-%012d\n        display_name: bench %d\n' "$k" "$k"
      printf '        secret: bench-secret-%d\n        roles: [SecurityAlert.Read.All, SecurityIncident.Read.All]\n' "$k"
    done
  } > "$WORK/tenants.yaml"
  start_emulator mssp --alerts "$ALERTS" --directory "$WORK/tenants.yaml"
  {
    sed -n '/^Azure:/,/^KeyVault:/p' "$WORK/mssp.yaml" | sed '$d'
    echo "DataProviders:"
    for k in $(seq 0 $((TENANTS - 1))); do
      printf '  MicrosoftGraph-T%d:\n    Args:\n      TenantId: 00000000-0000-4000-8000-%012d\n' "$k" "$k"
      printf '      ClientId: 10000000-0000-4000-8000-%012d\n      ClientSecret: bench-secret-%d\n' "$k" "$k"
    done
  } > "$WORK/mssp-client.yaml"
  time_it "export $TENANTS tenants, first run" "$BIN" --config "$WORK/mssp-client.yaml" export --all-instances \
    --root "$WORK/mssp" --stream alerts_v2 --summary "$WORK/mssp-1.json"
  time_it "export $TENANTS tenants, no change" "$BIN" --config "$WORK/mssp-client.yaml" export --all-instances \
    --root "$WORK/mssp" --stream alerts_v2 --summary "$WORK/mssp-2.json"
  echo "== alerts_v2 of $TENANTS tenants x $ALERTS alerts; $(find "$WORK/mssp" -name '*.parquet' | wc -l) files, $(du -sh "$WORK/mssp" | cut -f1)"
  report "export $TENANTS tenants, first run" $((ALERTS * TENANTS))
  report "export $TENANTS tenants, no change" 0
  for run in 1 2; do
    echo "run $run: $(grep -o '"new_versions": [0-9]*' "$WORK/mssp-$run.json" | awk '{s+=$2} END {print s}') new versions," \
      "$(grep -o '"pages": [0-9]*' "$WORK/mssp-$run.json" | awk '{s+=$2} END {print s}') pages"
  done
  exit 0
fi
if [ -n "${ONLY_EXPORT:-}" ]; then
  # Incremental export: every alert and incident version of two tenants, then a run with nothing new.
  start_emulator lake --alerts "$ALERTS"
  time_it "export, first run" "$BIN" --config "$WORK/lake.yaml" --instance Default,Fabrikam export --root "$WORK/lake"
  time_it "export, no change" "$BIN" --config "$WORK/lake.yaml" --instance Default,Fabrikam export --root "$WORK/lake" \
    --summary "$WORK/lake-summary.json"
  versions=$(find "$WORK/lake" -name '*.parquet' | wc -l)
  echo "== export of 2 tenants x $ALERTS alerts (+ incidents); $versions files"
  report "export, first run" $((ALERTS * 2))
  report "export, no change" 0
  grep -E '"(pages|new_versions)"' "$WORK/lake-summary.json" | tr -d ' ' | paste -sd' '
  time_it "secgraph -> parquet, 10k rows" "$BIN" --config "$WORK/lake.yaml" exec '/security/alerts_v2?$top=1000' -o parquet --limit 10000 --out "$WORK/c.parquet"
  time_it "secgraph -> parquet, 100k rows" "$BIN" --config "$WORK/lake.yaml" exec '/security/alerts_v2?$top=1000' -o parquet --out "$WORK/c.parquet"
  report "secgraph -> parquet, 10k rows" 10000
  report "secgraph -> parquet, 100k rows" "$ALERTS"
  exit 0
fi
if [ -z "${ONLY_SPLIT:-}" ]; then
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); $(uname -sr)"
start_emulator big --alerts "$ALERTS"
export MSTICPYCONFIG="$WORK/big.yaml"
PATH_V2='/security/alerts_v2?$top=1000'
for i in $(seq 1 "$RUNS"); do
  time_it "fetch-only floor (reqwest)" bash -c "fetch_floor big '$PATH_V2'"
  time_it "secgraph -> jsonl" "$BIN" exec "$PATH_V2" -o jsonl --out "$WORK/a.jsonl"
  time_it "secgraph -> parquet" "$BIN" exec "$PATH_V2" -o parquet --out "$WORK/a.parquet"
  time_it "python baseline -> parquet" "$PY" "$BASELINE" --token-url "$(base_of big)/{tenant}/oauth2/v2.0/token" \
    --graph-url "$(base_of big)" --tenant "$TENANT" --client-id "$CLIENT" --client-secret "$SECRET" --ca "$(ca_of big)" \
    --path "/v1.0$PATH_V2" --out "$WORK/b.parquet"
  if [ -x "$PKG" ]; then
    time_it "python package -> DataFrame" "$PKG" -c "
from secgraph import QueryProvider
qp = QueryProvider('SecurityGraph'); qp.connect()
df = qp.exec_query('$PATH_V2'); assert len(df) == $ALERTS, len(df)"
  fi
  time_it "secgraph -> parquet, 10k rows" "$BIN" exec "$PATH_V2" -o parquet --limit 10000 --out "$WORK/c.parquet"
done
echo "== $ALERTS alerts_v2, \$top=1000"
for l in "fetch-only floor (reqwest)" "secgraph -> jsonl" "secgraph -> parquet" "python baseline -> parquet" "python package -> DataFrame"; do
  if [ -s "$WORK/$l" ]; then report "$l" "$ALERTS"; fi
done
report "secgraph -> parquet, 10k rows" 10000
echo "rows: jsonl $(wc -l < "$WORK/a.jsonl"); parquet $("$PY" -c "import pyarrow.parquet as p,sys; print(p.read_metadata(sys.argv[1]).num_rows)" "$WORK/a.parquet")"

# Cold start: connect + the first page of 10 alerts.
start_emulator small --alerts 10
for i in $(seq 1 "$RUNS"); do
  time_it "cold: secgraph first 10" "$BIN" --config "$WORK/small.yaml" query Alerts.list --start -30d --limit 10 -o jsonl
  time_it "cold: python baseline first 10" "$PY" "$BASELINE" --token-url "$(base_of small)/{tenant}/oauth2/v2.0/token" \
    --graph-url "$(base_of small)" --tenant "$TENANT" --client-id "$CLIENT" --client-secret "$SECRET" --ca "$(ca_of small)" \
    --path '/v1.0/security/alerts_v2?$top=10' --out "$WORK/d.parquet"
  if [ -x "$PKG" ]; then
    time_it "cold: python package first 10" env MSTICPYCONFIG="$WORK/small.yaml" "$PKG" -c "
from secgraph import QueryProvider
qp = QueryProvider('SecurityGraph'); qp.connect(); qp.Alerts.list(start='-30d')"
  fi
done
echo "== cold start (process start, import, connect, 10 alerts)"
for l in "cold: secgraph first 10" "cold: python baseline first 10" "cold: python package first 10"; do
  if [ -s "$WORK/$l" ]; then report "$l" 10; fi
done

fi

# Time split against 50 ms per page.
start_emulator slow --alerts 20000 --page-size 200 --faults 'alerts_v2:slow-first-byte(50)'
for i in $(seq 1 "$RUNS"); do
  time_it "serial, 50 ms per page" "$BIN" --config "$WORK/slow.yaml" query Alerts.list --start -32d --end now -o jsonl
  time_it "split 8 slices x4, 50 ms per page" "$BIN" --config "$WORK/slow.yaml" query Alerts.list --start -32d --end now \
    --split-by 4d --parallel 4 -o jsonl
done
echo "== 20000 alerts, Alerts.list over 32 days, pages of 200, 50 ms added per page"
report "serial, 50 ms per page" 20000
report "split 8 slices x4, 50 ms per page" 20000
