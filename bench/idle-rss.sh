#!/bin/sh
# Idle RSS of the compiled daemon (npm run build first) per V8 heap setting, in a private network
# namespace (an empty socket table: the figure is the runtime's floor). Root; prints one line per run.
# Usage: sh bench/idle-rss.sh [runs]
set -eu
runs=${1:-3}
ns="tcpstate-idle-$$"
ip netns add "$ns"
trap 'ip netns del "$ns"' EXIT
ip -n "$ns" link set lo up
for opts in "" "--max-semi-space-size=1" "--max-old-space-size=48" "--max-semi-space-size=1 --max-old-space-size=48"; do
  run=1
  while [ "$run" -le "$runs" ]; do
    ip netns exec "$ns" env NODE_OPTIONS="$opts" node bin/tcpstate-exporter.js --web.listen-address=127.0.0.1:9812 --poll.interval 1s --log.level error >/dev/null 2>&1 &
    pid=$!
    sleep 4
    ip netns exec "$ns" curl -s -H 'Accept-Encoding: gzip' -o /dev/null http://127.0.0.1:9812/metrics
    sleep 1
    echo "NODE_OPTIONS='$opts' run=$run $(grep -E '^Vm(RSS|HWM)' /proc/$pid/status | tr -s ' \t' ' ' | tr '\n' ' ')"
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    run=$((run + 1))
  done
done
