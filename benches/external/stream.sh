#!/bin/bash
# Server-stream throughput from outside (issue 14): tai.Governor/WatchPolicies with N synthetic
# ~1 KiB events, read as fast as the client can, straight from the stub over gRPC (h2load, one
# stream) and through the gateway as NDJSON over HTTP/1.1 (curl), in alternating turns; messages
# per second, the ratio to the direct stream and the gateway's CPU time per message. Run from the repository root after
# `cargo build --release --bins`:
#   bash benches/external/stream.sh [ROUNDS] [MESSAGES]      (default 3 rounds, 200000 messages)
# GATEWAYS="path/a path/b" alternates several builds. Bounded: MESSAGES per phase, 120 s each.
set -euo pipefail
ROUNDS=${1:-3}
MESSAGES=${2:-200000}
GATEWAYS=${GATEWAYS:-target/release/tai-gateway}
STUBS=${STUBS:-target/release/tai-stubs}
WORK=$(mktemp -d)
trap 'stop ${GATEWAY_PID:-} ${STUBS_PID:-}; rm -rf "$WORK"' EXIT
source "$(dirname "$0")/common.sh"
python3 - "$WORK/watch.bin" "$MESSAGES" <<'PY'
import sys
n = int(sys.argv[2])
varint = b""
while True:
    byte, n = n & 0x7F, n >> 7
    varint += bytes([byte | (0x80 if n else 0)])
    if not n:
        break
message = b"\x18" + varint  # synthetic_events = 3
open(sys.argv[1], "wb").write(b"\x00" + len(message).to_bytes(4, "big") + message)
PY
start_stubs

rate() { python3 -c "import sys; print(f'{$MESSAGES / float(sys.argv[1]):9.0f}')" "$1"; }

direct() {
  local out secs
  out=$(timeout 120 h2load -n1 -c1 -m1 -d "$WORK/watch.bin" -H 'content-type: application/grpc' \
    -H 'te: trailers' "http://127.0.0.1:$STUB_PORT/tai.Governor/WatchPolicies")
  echo "$out" | grep -q "1 succeeded" || { echo "$out" >&2; return 1; }
  secs=$(echo "$out" | sed -n 's/^finished in \([0-9.]*\)ms,.*/\1 1000/p; s/^finished in \([0-9.]*\)s,.*/\1 1/p' \
    | awk '{ print $1 / $2 }')
  rate "$secs"
}

ndjson() {
  local secs lines
  secs=$(timeout 120 curl -s -o "$WORK/ndjson.out" -w '%{time_total}' -H 'accept: application/x-ndjson' \
    "http://127.0.0.1:$GATEWAY_PORT/v1/policies:watch?syntheticEvents=$MESSAGES")
  lines=$(wc -l < "$WORK/ndjson.out")
  [ "$lines" -eq "$MESSAGES" ] || { echo "only $lines lines" >&2; return 1; }
  rate "$secs"
}

for round in $(seq 1 "$ROUNDS"); do
  d=$(direct)
  echo "round $round: direct gRPC $d msg/s"
  for gateway in $GATEWAYS; do
    start_gateway "$gateway" "" "    timeout: 120s"
    cpu0=$(cpu_us "$GATEWAY_PID")
    n=$(ndjson)
    cpu=$(( $(cpu_us "$GATEWAY_PID") - cpu0 ))
    python3 -c "import sys; print(f'  {sys.argv[1]:<40} NDJSON {float(sys.argv[2]):9.0f} msg/s  {float(sys.argv[2]) / float(sys.argv[3]):5.2f} x direct  gateway CPU {int(sys.argv[4]) / $MESSAGES:5.2f} us/msg')" "$gateway" "$n" "$d" "$cpu"
    stop "$GATEWAY_PID"
  done
done
