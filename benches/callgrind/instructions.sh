#!/bin/bash
# Instructions per keep-alive HTTP/1.1 JSON request in the gateway process, by callgrind:
# (Ir after 3000 requests - Ir after 1000 requests) / 2000, so start-up and shutdown cancel out.
# Needs valgrind and python3; run from the repository root after `cargo build --profile dist --workspace --bins`
# (what ships; PROFILE=release measures the everyday build after `cargo build --release --workspace --bins`;
# STUBS_BIN=path takes the stubs from another build: only the gateway process is counted):
#   bash benches/callgrind/instructions.sh
# One client (benches/callgrind/client.py) on one connection; stubs in their own process.
set -euo pipefail
root=$(pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
gateway_port=${GATEWAY_PORT:-18080}
bin=${CARGO_TARGET_DIR:-target}/${PROFILE:-dist}
stubs=${STUBS_BIN:-$bin/tai-stubs}
cat > "$work/gateway.yaml" <<YAML
listeners:
  http:
    address: 127.0.0.1:$gateway_port
descriptors:
  proto_dirs: ["$root/proto"]
upstreams:
  governor:
    address: 127.0.0.1:${STUB_PORT:-51051}
routes:
  - service: tai.Governor
    upstream: governor
access_log:
  enabled: ${ACCESS_LOG:-false}
workers: ${WORKERS:-auto}
YAML

instructions() {
  local requests=$1 out="$work/callgrind.$1"
  "$stubs" --governor-addr "127.0.0.1:${STUB_PORT:-51051}" \
    --coordinator-addr "127.0.0.1:${STUB_PORT2:-51052}" >/dev/null 2>&1 &
  local stubs=$!
  valgrind --tool=callgrind --callgrind-out-file="$out" \
    "$bin/tai-gateway" run --config "$work/gateway.yaml" >/dev/null 2>&1 &
  local gateway=$!
  python3 benches/callgrind/client.py "$gateway_port" "$requests"
  kill -TERM "$gateway"; wait "$gateway" || true
  kill "$stubs"; wait "$stubs" 2>/dev/null || true
  sed -n 's/^summary: //p' "$out"
}

few=$(instructions 1000)
many=$(instructions 3000)
echo "instructions per request: $(( (many - few) / 2000 ))"
