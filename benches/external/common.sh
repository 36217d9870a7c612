# Shared by the external-client benchmarks: start the stub backend and the gateway as their own
# processes on fixed loopback ports, and read a process' CPU time and context switches from /proc.
# Sourced, not run. Needs GATEWAY (the gateway binary, or `grpc-gateway` for the peer), STUBS (the
# stub binary) and WORK (a scratch folder) set, and the repository root as the current folder.

GATEWAY_PORT=${GATEWAY_PORT:-18080}
TLS_PORT=${TLS_PORT:-18443}
ADMIN_PORT=${ADMIN_PORT:-18081}
STUB_PORT=${STUB_PORT:-51051}
STUB_PORT2=${STUB_PORT2:-51052}
CLK_TCK=$(getconf CLK_TCK)
EXTERNAL_BENCHES=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

start_stubs() {
  # Unquoted: STUBS may be a command with its arguments (`python3 backend.py`).
  $STUBS --governor-addr "127.0.0.1:$STUB_PORT" --coordinator-addr "127.0.0.1:$STUB_PORT2" \
    >/dev/null 2>&1 &
  STUBS_PID=$!
  wait_port "$STUB_PORT"
}

# start_gateway BINARY [EXTRA_YAML] [ROUTE_YAML]: default-ish config (access log on, as by
# default), HTTP on GATEWAY_PORT, HTTPS with dev certificates on TLS_PORT; EXTRA_YAML is added at
# the top level, ROUTE_YAML to the governor route.
start_gateway() {
  local binary=$1 extra=${2:-} route=${3:-}
  if [ "$binary" = grpc-gateway ]; then
    start_peer
    return
  fi
  [ -f "$WORK/certs/server.pem" ] || "$binary" certs dev --out "$WORK/certs" >/dev/null
  cat > "$WORK/gateway.yaml" <<YAML
listeners:
  http:
    address: 127.0.0.1:$GATEWAY_PORT
  tls:
    address: 127.0.0.1:$TLS_PORT
    certificates:
      - cert: $WORK/certs/server.pem
        key: $WORK/certs/server-key.pem
admin:
  address: 127.0.0.1:$ADMIN_PORT
descriptors:
  proto_dirs: ["$(pwd)/proto"]
upstreams:
  governor:
    address: 127.0.0.1:$STUB_PORT
routes:
  - service: tai.Governor
    upstream: governor
$route
$extra
YAML
  "$binary" run --config "$WORK/gateway.yaml" >/dev/null 2>"$WORK/gateway.err" &
  GATEWAY_PID=$!
  wait_port "$GATEWAY_PORT"
}

# start_peer: grpc-gateway (benches/external/peer, built once per WORK) in front of STUB_PORT,
# HTTP/1.1 and h2c on GATEWAY_PORT; `grpc-gateway` as a GATEWAY name selects it.
start_peer() {
  [ -x "$WORK/grpc-gateway-peer" ] || bash "$EXTERNAL_BENCHES/peer/build.sh" "$WORK/grpc-gateway-peer"
  "$WORK/grpc-gateway-peer" --listen "127.0.0.1:$GATEWAY_PORT" --backend "127.0.0.1:$STUB_PORT" \
    2>"$WORK/gateway.err" &
  GATEWAY_PID=$!
  wait_port "$GATEWAY_PORT"
}

stop() {
  local pid
  for pid in "$@"; do
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
}

wait_port() {
  local i
  for i in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listens on port $1" >&2
  return 1
}

# CPU time of a process (all its threads) in microseconds: utime + stime from /proc/PID/stat.
cpu_us() {
  awk -v tck="$CLK_TCK" '{ print int(($14 + $15) * 1000000 / tck) }' "/proc/$1/stat"
}

# Voluntary and involuntary context switches of a process, summed over its threads.
ctxsw() {
  cat /proc/"$1"/task/*/status | awk '/^voluntary_ctxt_switches/ { v += $2 } /^nonvoluntary_ctxt_switches/ { n += $2 } END { print v, n }'
}
