#!/bin/bash
# Gateway CPU per request under an external load generator (issue 14): wrk (HTTP/1.1 keep-alive)
# and h2load (h2c) against the gateway, `POST /v1/policies/propose` with the Policy JSON, and the
# same call straight to the stub backend as gRPC with h2load, for the throughput ratio. Gateway
# CPU is utime + stime from /proc/PID/stat, context switches are summed over
# /proc/PID/task/*/status, read/write system calls come from /proc/PID/io (syscr, syscw), all read
# before and after each phase. Run from the repository root after `cargo build --release --bins`
# (needs `apt-get install wrk nghttp2-client`):
#   bash benches/external/run.sh [ROUNDS]        (default 3 rounds, 10 s a phase)
# GATEWAYS="path/a path/b" alternates several builds round by round (before/after in one run);
# CONNECTIONS (default 32), SECONDS_PER_PHASE (default 10), PHASES (default "wrk h2load direct").
# PHASES may add `paced`: h2load h2c at RATE requests/s in all (default 800), so that backends of
# different speeds are compared at the same request rate (per-request CPU depends on the rate:
# batching). BACKENDS="stub python go" alternates backends within each round too: `stub` is STUBS,
# `python` is benches/external/backend.py (grpcio's server; `pip install grpcio`), `go` is
# benches/external/backend.go (grpc-go's server; `apt-get install golang-go golang-google-grpc-dev`,
# built here in GOPATH mode). A GATEWAYS entry `grpc-gateway` is the peer the issue compares against:
# grpc-gateway from Debian's packages (benches/external/peer/build.sh, built once per run).
# Bounded: every phase runs for SECONDS_PER_PHASE.
set -euo pipefail
ROUNDS=${1:-3}
GATEWAYS=${GATEWAYS:-target/release/tai-gateway}
STUBS=${STUBS:-target/release/tai-stubs}
BACKENDS=${BACKENDS:-stub}
CONNECTIONS=${CONNECTIONS:-32}
SECONDS_PER_PHASE=${SECONDS_PER_PHASE:-10}
PHASES=${PHASES:-wrk h2load direct}
RATE=${RATE:-800}
WORK=$(mktemp -d)
trap 'stop ${GATEWAY_PID:-} ${STUBS_PID:-}; rm -rf "$WORK"' EXIT
here=$(dirname "$0")
source "$here/common.sh"
python3 "$here/grpc_body.py" "$WORK/grpc.bin"
printf '%s' '{"policyType":"access","policyName":"deny-external","rules":{"effect":"deny","scope":"external"}}' > "$WORK/policy.json"
stub_binary=$STUBS
if [[ " $BACKENDS " == *" go "* ]]; then
  GO111MODULE=off GOPATH=/usr/share/gocode go build -o "$WORK/go-backend" "$here/backend.go"
fi

# start_backend NAME: the backend of that name (stub | python) on STUB_PORT.
start_backend() {
  case $1 in
    stub) STUBS=$stub_binary ;;
    python) STUBS="python3 $here/backend.py" ;;
    go) STUBS=$WORK/go-backend ;;
    *) echo "unknown backend $1 (stub | python | go)" >&2; exit 2 ;;
  esac
  start_stubs
}

# measure PID COMMAND...: runs the load, prints "requests req/s p99 cpu_us vol invol syscalls".
measure() {
  local pid=$1; shift
  local cpu0 sw0 io0 cpu1 sw1 io1 out
  cpu0=$(cpu_us "$pid"); sw0=$(ctxsw "$pid"); io0=$(syscalls "$pid")
  out=$("$@" 2>&1)
  cpu1=$(cpu_us "$pid"); sw1=$(ctxsw "$pid"); io1=$(syscalls "$pid")
  echo "$out" > "$WORK/last.out"
  python3 - "$cpu0" "$cpu1" "$sw0" "$sw1" "$io0" "$io1" "$WORK/last.out" <<'PY'
import re, sys
cpu0, cpu1, sw0, sw1, io0, io1, path = sys.argv[1:]
text = open(path).read()
m = re.search(r"(\d+) requests in ([\d.]+)s", text)          # wrk
if m:
    done, secs = int(m.group(1)), float(m.group(2))
    p = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", text)
    p99 = float(p.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[p.group(2)] if p else float("nan")
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    bad = int(errors.group(1)) if errors else 0
else:                                                          # h2load
    done = int(re.search(r"requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded", text).group(1))
    secs = float(re.search(r"finished in ([\d.]+)s", text).group(1))
    p99 = float("nan")
    bad = int(re.search(r"status codes: \d+ 2xx, \d+ 3xx, (\d+) 4xx, (\d+) 5xx", text).group(1))
if done == 0 or bad:
    sys.exit(f"failed phase ({bad} errors):\n{text}")
(v0, n0), (v1, n1) = map(int, sw0.split()), map(int, sw1.split())
r0, w0 = map(int, io0.split()); r1, w1 = map(int, io1.split())
print(f"{done / secs:9.0f} req/s  p99 {p99:6.2f} ms  "
      f"CPU {(int(cpu1) - int(cpu0)) / done:6.1f} us/req  "
      f"ctxsw {((v1 - v0) + (n1 - n0)) / done:5.2f}/req  "
      f"read+write syscalls {((r1 - r0) + (w1 - w0)) / done:5.2f}/req")
PY
}

syscalls() {
  awk '/^syscr/ { r = $2 } /^syscw/ { w = $2 } END { print r, w }' "/proc/$1/io"
}

phase() {
  local label=$1 pid=$2; shift 2
  printf '  %-34s ' "$label"
  measure "$pid" "$@"
}

for round in $(seq 1 "$ROUNDS"); do
  echo "round $round ($(date -u +%H:%M:%S) UTC)"
  for backend in $BACKENDS; do
    start_backend "$backend"
    for gateway in $GATEWAYS; do
      start_gateway "$gateway"
      # Warm-up: connections, upstream connection, allocator.
      wrk -t1 -c"$CONNECTIONS" -d1s -s "$here/post.lua" "http://127.0.0.1:$GATEWAY_PORT/v1/policies/propose" >/dev/null
      for p in $PHASES; do
        case $p in
          wrk) phase "$gateway ($backend) wrk h1 c$CONNECTIONS" "$GATEWAY_PID" \
                 wrk -t1 -c"$CONNECTIONS" -d"${SECONDS_PER_PHASE}s" --latency -s "$here/post.lua" \
                 "http://127.0.0.1:$GATEWAY_PORT/v1/policies/propose" ;;
          h2load) phase "$gateway ($backend) h2load h2c c$CONNECTIONS" "$GATEWAY_PID" \
                 h2load -t1 -c"$CONNECTIONS" -m1 -D "$SECONDS_PER_PHASE" -d "$WORK/policy.json" \
                 -H 'content-type: application/json' "http://127.0.0.1:$GATEWAY_PORT/v1/policies/propose" ;;
          paced) phase "$gateway ($backend) h2c at $RATE/s" "$GATEWAY_PID" \
                 h2load -t1 -c"$CONNECTIONS" -m1 --rps=$((RATE / CONNECTIONS)) -D "$SECONDS_PER_PHASE" \
                 -d "$WORK/policy.json" -H 'content-type: application/json' \
                 "http://127.0.0.1:$GATEWAY_PORT/v1/policies/propose" ;;
        esac
      done
      stop "$GATEWAY_PID"
    done
    if [[ " $PHASES " == *" direct "* ]]; then
      phase "direct gRPC to the $backend c$CONNECTIONS" "$STUBS_PID" \
        h2load -t1 -c"$CONNECTIONS" -m1 -D "$SECONDS_PER_PHASE" -d "$WORK/grpc.bin" \
        -H 'content-type: application/grpc' -H 'te: trailers' \
        "http://127.0.0.1:$STUB_PORT/tai.Governor/ProposePolicy"
    fi
    stop "$STUBS_PID"
  done
done
