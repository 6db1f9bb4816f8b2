#!/bin/sh
# Usage: fuzz/run-fuzz.sh <target> <seconds>
# Stable toolchain (no sanitizer), SCIM dictionary, committed seeds + local corpus.
# libFuzzer's output goes to fuzz/logs/<target>.log (so that several targets can run at once);
# the exec count is its final "Done N runs in S second(s)" line.
set -eu
cd "$(dirname "$0")"
target=$1; secs=$2
# Fuzz builds go to fuzz/target unless CARGO_TARGET_DIR says otherwise.
mkdir -p "corpus/$target" logs
cargo fuzz run -s none -O "$target" "corpus/$target" "seeds/$target" -- \
  -max_total_time="$secs" -dict=scim.dict -max_len=4096 -print_final_stats=1 \
  > "logs/$target.log" 2>&1
