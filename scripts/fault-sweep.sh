#!/usr/bin/env bash
# Fault sweep: RUNS runs (default 60) of `secgraph query Alerts.list` against an emulator that injects faults at
# random (a different seed each run, so different requests fail), checking that every run either delivers every
# alert exactly once with exit 0, or fails with a clear error (non-zero exit, one `error:` line) — never a wrong result.
# Uses target/debug/secgraph unless BIN is set. Prints one line per run and a summary.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/debug/secgraph}
RUNS=${1:-60}
ALERTS=${ALERTS:-300}
FAULTS=${FAULTS:-"alerts_v2:reset@rate=0.04;alerts_v2:500@rate=0.03;alerts_v2:503(0)@rate=0.03;alerts_v2:429(0.1)@rate=0.03;alerts_v2:truncate@rate=0.03;alerts_v2:slow-body(50)@rate=0.05;alerts_v2:duplicate-item@rate=0.1;alerts_v2:expire-token@rate=0.02;token:503(0)@rate=0.2;token:reset@rate=0.1"}
ok=0; clear_error=0; wrong=0
for seed in $(seq 1 "$RUNS"); do
  dir=$(mktemp -d)
  "$BIN" emulator --write-config "$dir/e.yaml" --alerts "$ALERTS" --page-size 20 --seed "$seed" --faults "$FAULTS" >/dev/null 2>&1 &
  emu=$!
  for _ in $(seq 1 200); do [ -s "$dir/e.yaml" ] && break; sleep 0.05; done
  sleep 0.1
  MSTICPYCONFIG="$dir/e.yaml" XDG_CACHE_HOME="$dir/cache" "$BIN" query Alerts.list --start -31d -o jsonl >"$dir/out" 2>"$dir/err"
  rc=$?
  kill "$emu" 2>/dev/null; wait "$emu" 2>/dev/null
  rows=$(wc -l <"$dir/out")
  uniq=$(grep -o '"id":"[^"]*"' "$dir/out" | sort -u | wc -l)
  if [ "$rc" = 0 ] && [ "$rows" = "$ALERTS" ] && [ "$uniq" = "$ALERTS" ]; then
    ok=$((ok+1)); echo "seed $seed: ok ($rows rows)"
  elif [ "$rc" != 0 ] && [ "$(grep -c '^error:' "$dir/err")" = 1 ] && [ "$rows" = "$uniq" ]; then
    clear_error=$((clear_error+1)); echo "seed $seed: exit $rc after $rows unique rows: $(grep '^error:' "$dir/err" | cut -c1-160)"
  else
    wrong=$((wrong+1)); echo "seed $seed: WRONG exit $rc rows $rows unique $uniq"; tail -3 "$dir/err"
  fi
  rm -rf "$dir"
done
echo "runs $RUNS: complete $ok, clear error $clear_error, wrong $wrong"
[ "$wrong" = 0 ]
