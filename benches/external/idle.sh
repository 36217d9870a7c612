#!/bin/bash
# Gateway RSS per idle connection (issue 14): for each protocol, a fresh gateway, N connections
# from a separate client process (benches/external/idle.py) that each make one request and then
# stay open and idle; RSS growth from /proc/PID/status. Run from the repository root after
# `cargo build --release --bins`:
#   bash benches/external/idle.sh [COUNT] [PROTOCOLS...]      (default 10000, all protocols)
# GATEWAY=path/to/tai-gateway compares another build, GATEWAY=grpc-gateway the peer (protocols
# http1 and h2c only). Bounded: COUNT connections per protocol.
set -euo pipefail
COUNT=${1:-10000}
shift || true
PROTOCOLS=${*:-http1 h2c tls tls-h2 silent}
GATEWAY=${GATEWAY:-target/release/tai-gateway}
STUBS=${STUBS:-target/release/tai-stubs}
WORK=$(mktemp -d)
trap 'stop ${GATEWAY_PID:-} ${STUBS_PID:-}; rm -rf "$WORK"' EXIT
source "$(dirname "$0")/common.sh"
ulimit -n $((COUNT * 2 + 512)) 2>/dev/null || ulimit -n "$(ulimit -Hn)"
start_stubs
for protocol in $PROTOCOLS; do
  start_gateway "$GATEWAY" "limits:
  max_connections: $((COUNT * 2))"
  port=$GATEWAY_PORT
  [ "${protocol#tls}" != "$protocol" ] && port=$TLS_PORT
  python3 "$(dirname "$0")/idle.py" "$protocol" "$port" "$COUNT" "$GATEWAY_PID" "$WORK/certs/ca.pem"
  stop "$GATEWAY_PID"
done
