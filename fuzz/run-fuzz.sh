#!/bin/sh
# Usage: fuzz/run-fuzz.sh <target> <seconds>
# One job, stable toolchain (no sanitizer), SCIM dictionary, committed seeds + local corpus.
# libFuzzer's log goes to fuzz/fuzz-0.log; the exec count is its final "Done N runs" line.
set -eu
cd "$(dirname "$0")"
target=$1; secs=$2
# Fuzz builds go to fuzz/target unless CARGO_TARGET_DIR says otherwise.
mkdir -p "corpus/$target"
cargo fuzz run -s none -O "$target" "corpus/$target" "seeds/$target" -- \
  -jobs=1 -workers=1 -max_total_time="$secs" -dict=scim.dict -max_len=4096 -print_final_stats=1
