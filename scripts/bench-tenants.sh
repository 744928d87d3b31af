#!/usr/bin/env bash
# A thousand tenants, measured (figures in docs/PERFORMANCE.md). One emulator process holds the demo tenant with
# BIG alerts and TENANTS customer tenants of PER alerts each, and enforces Graph's 150 requests a minute per app and
# tenant; then, in one run of this script:
#   1. one tenant × BIG alerts exported at 1,000 a page: time against the throttle floor (BIG/1000 pages at 150 a
#      minute), and how many requests the emulator answered 429;
#   2. TENANTS tenants × PER alerts exported in one run (the MSSP instance's tenants file): time and peak RSS;
#   3. the same export again with nothing changed (what each `--follow` round does): time and requests per tenant;
#   4. `query Alerts.list` over the TENANTS tenants to JSON lines: rows/s and time to the first row.
# Needs a release build: cargo build --release -p secgraph-cli. Usage: scripts/bench-tenants.sh (BIG=… TENANTS=…)
set -euo pipefail
cd "$(dirname "$0")/.."
BIG=${BIG:-1000000}
TENANTS=${TENANTS:-1000}
PER=${PER:-1000}
BIN=$PWD/target/release/secgraph
WORK=$(mktemp -d)
trap 'kill $EMU 2>/dev/null || true; rm -rf "$WORK"' EXIT

"$BIN" -v emulator --alerts "$BIG" --tenants "$TENANTS" --alerts-per-tenant "$PER" \
  --write-config "$WORK/emu.yaml" > "$WORK/emu.out" 2> "$WORK/emu.log" &
EMU=$!
for _ in $(seq 1 1200); do [ -s "$WORK/emu.yaml" ] && break; sleep 0.1; done
export MSTICPYCONFIG="$WORK/emu.yaml"
requests() { grep -c ' request ' "$WORK/emu.log" || true; }
throttled() { grep -c 'status=429' "$WORK/emu.log" || true; }

timed() { # label, command... → "secs peakMiB" on stdout, the command's stderr in $WORK/err
  /usr/bin/time -f "%e %M" -o "$WORK/time" "$@" > /dev/null 2> "$WORK/err" || true
  # The last line: time puts "Command exited with non-zero status N" first when a tenant failed (exit 8).
  read -r secs kb < <(tail -n 1 "$WORK/time")
  echo "$secs $((kb / 1024))"
}

echo "emulator: $BIG alerts in the demo tenant, $TENANTS customer tenants × $PER alerts, 150 requests/min per app and tenant"

r0=$(requests); t0=$(throttled)
read -r secs mib < <(timed "$BIN" export --root "$WORK/one" --stream alerts_v2 --page-size 1000)
pages=$(( (BIG + 999) / 1000 ))
floor=$(awk -v p="$pages" 'BEGIN { printf "%.0f", p / 150 * 60 }')
echo "1. one tenant × $BIG alerts: ${secs}s (throttle floor ${floor}s = $pages pages at 150/min; $(awk -v s="$secs" -v f="$floor" 'BEGIN { printf "%.2f", s / f }')× the floor), peak RSS ${mib} MiB, $(( $(requests) - r0 )) requests, $(( $(throttled) - t0 )) answered 429"

r0=$(requests); t0=$(throttled)
read -r secs mib < <(timed "$BIN" --instance MSSP export --root "$WORK/many" --stream alerts_v2 --page-size 1000)
ok=$(grep -c 'alerts_v2: ' "$WORK/err" || true); failed=$(grep -c 'FAILED' "$WORK/err" || true)
echo "2. $TENANTS tenants × $PER alerts: ${secs}s, peak RSS ${mib} MiB, $(( $(requests) - r0 )) requests, $(( $(throttled) - t0 )) answered 429 ($ok tenant reports, $failed failed by design: no consent or no roles)"

r0=$(requests)
read -r secs mib < <(timed "$BIN" --instance MSSP export --root "$WORK/many" --stream alerts_v2 --page-size 1000)
n=$(( $(requests) - r0 ))
echo "3. no-change run over $TENANTS tenants: ${secs}s, peak RSS ${mib} MiB, $n requests ($(awk -v n="$n" -v t="$TENANTS" 'BEGIN { printf "%.2f", n / t }') per tenant, sign-in included)"

start=$(date +%s.%N)
# Exit 8 is expected: the tenants without consent or roles are named, the others' rows written.
{ "$BIN" --instance MSSP query Alerts.list --start -30d -o jsonl 2> "$WORK/err" || true; } | {
  IFS= read -r _ && date +%s.%N > "$WORK/first"
  wc -l > "$WORK/rows"
}
end=$(date +%s.%N)
rows=$(( $(cat "$WORK/rows") + 1 ))
echo "4. query over $TENANTS tenants: $rows rows in $(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')s ($(awk -v a="$start" -v b="$end" -v r="$rows" 'BEGIN { printf "%.0f", r / (b - a) }') rows/s), first row after $(awk -v a="$start" -v b="$(cat "$WORK/first")" 'BEGIN { printf "%.2f", b - a }')s"
