#!/usr/bin/env bash
# Runs every cargo-fuzz target (or those named as arguments) for SECONDS_EACH seconds (default 600), JOBS at a time
# (default 2), logging to fuzz/logs/<target>.log. Needs cargo-fuzz (cargo install cargo-fuzz); stable Rust with
# RUSTC_BOOTSTRAP=1.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
SECS=${SECONDS_EACH:-600}
JOBS=${JOBS:-2}
mkdir -p logs
RUSTC_BOOTSTRAP=1 cargo fuzz build -s none
targets=${*:-$(cargo fuzz list)}
printf '%s\n' $targets | xargs -P "$JOBS" -I{} sh -c \
  "mkdir -p corpus/{}; RUSTC_BOOTSTRAP=1 cargo fuzz run -s none {} corpus/{} -- -max_total_time=$SECS -rss_limit_mb=2048 -max_len=4096 > logs/{}.log 2>&1; echo \"{} exit \$?\" >> logs/summary.txt"
cat logs/summary.txt
