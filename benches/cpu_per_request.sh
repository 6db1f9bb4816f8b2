#!/usr/bin/env bash
# CPU time per request of the load generator, the simulator and the bridge during one closed-loop
# cell of benches/overhead.rs (docs/performance.md, "Where the 5× target stands").
# usage: benches/cpu_per_request.sh OVERHEAD_BIN BRIDGE_BIN WORKLOAD CLIENTS
# e.g.   benches/cpu_per_request.sh target/release/deps/overhead-<hash> target/release/c4c-scim-bridge get 16
set -euo pipefail
overhead=$1 bridge=$2 workload=$3 clients=$4
log=$(mktemp)
"$overhead" --servers bridge --workloads "$workload" --clients "$clients" --duration-secs 20 \
    --warmup-secs 2 --open-rate 0 --bin "$bridge" >"$log" 2>&1 &
runner=$!
sleep 9 # servers started, 100 users created, warm-up over: inside the measured window
generator=$(pgrep -f "overhead.*--workloads $workload" | tail -n1)
simulator=$(pgrep -f "c4c-scim-bridge sim" | head -n1)
server=$(pgrep -f "bridge.toml serve" | head -n1)
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; } # utime + stime
g1=$(ticks "$generator") s1=$(ticks "$simulator") b1=$(ticks "$server") t1=$(date +%s.%N)
sleep 10
g2=$(ticks "$generator") s2=$(ticks "$simulator") b2=$(ticks "$server") t2=$(date +%s.%N)
wait "$runner"
rps=$(grep -E "^\| [A-Z]+ [^|]*\| $clients \| bridge \|" "$log" | head -n1 | awk -F'|' '{print $5}')
awk -v hz="$(getconf CLK_TCK)" -v rps="$rps" -v t1="$t1" -v t2="$t2" \
    -v g="$g1 $g2" -v s="$s1 $s2" -v b="$b1 $b2" 'BEGIN {
    wall = t2 - t1; requests = rps * wall
    split("generator simulator bridge", names, " "); values[1] = g; values[2] = s; values[3] = b
    for (i = 1; i <= 3; i++) {
        split(values[i], v, " "); cpu = (v[2] - v[1]) / hz
        printf "%s: %.2f CPU s over %.1f s = %.2f cores, %.0f us per request\n", names[i], cpu, wall, cpu / wall, cpu / requests * 1e6
    }
    printf "bridge requests/s: %.0f\n", rps
}'
rm -f "$log"
