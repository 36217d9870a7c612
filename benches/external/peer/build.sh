#!/bin/bash
# Builds the grpc-gateway peer (main.go) into OUT (default /tmp/grpc-gateway-peer) from Debian's
# packages only, no module download:
#   apt-get install golang-go golang-google-grpc-dev golang-google-protobuf-dev \
#     golang-goprotobuf-dev golang-github-grpc-ecosystem-grpc-gateway-dev protobuf-compiler
#   bash benches/external/peer/build.sh [OUT]
# protoc-gen-grpc-gateway is built from the package's sources; the Go code for governor.proto is
# generated into a scratch GOPATH next to main.go.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
out=${1:-/tmp/grpc-gateway-peer}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
export GO111MODULE=off GOPATH=$scratch:/usr/share/gocode GOCACHE=${GOCACHE:-$HOME/.cache/go-build}
go build -o "$scratch/bin/protoc-gen-grpc-gateway" github.com/grpc-ecosystem/grpc-gateway/protoc-gen-grpc-gateway
package=$scratch/src/taipeer
mkdir -p "$package/cmd"
cp "$here/governor.proto" "$package/"
cp "$here/main.go" "$package/cmd/"
PATH=$scratch/bin:$PATH protoc -I "$package" -I "$repo/proto" -I /usr/include \
  --go_out=plugins=grpc:"$package" --grpc-gateway_out=logtostderr=true:"$package" "$package/governor.proto"
go build -o "$out" taipeer/cmd
