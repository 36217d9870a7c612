// Command backend is a gRPC backend that is not the Rust stub, for benches/external/run.sh
// (issue 14): grpc-go's server (Debian's golang-google-grpc-dev, built in GOPATH mode, no module
// download) answering tai.Governor/ProposePolicy with a Receipt of the stub's shape and
// grpc.health.v1.Health/Check with SERVING. Messages are handled as raw protobuf bytes, so no
// generated code is needed. It takes the stub binary's arguments, so it can stand in for it:
//
//	apt-get install golang-go golang-google-grpc-dev
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o /tmp/go-backend benches/external/backend.go
//	BACKENDS="stub go" bash benches/external/run.sh
//
// --governor-addr HOST:PORT is served; --coordinator-addr is accepted and ignored.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// rawCodec hands a handler the message bytes as they came and sends the bytes it returns.
type rawCodec struct{}

func (rawCodec) Marshal(v interface{}) ([]byte, error) { return *v.(*[]byte), nil }

func (rawCodec) Unmarshal(data []byte, v interface{}) error {
	*v.(*[]byte) = append([]byte(nil), data...)
	return nil
}

func (rawCodec) String() string { return "proto" }

var receipts uint64

// field is a length-delimited protobuf field (payloads under 128 bytes).
func field(number byte, payload string) []byte {
	return append([]byte{number<<3 | 2, byte(len(payload))}, payload...)
}

// receipt is Receipt{id, status, policy_id}, as the stub answers a Policy.
func receipt() []byte {
	n := atomic.AddUint64(&receipts, 1)
	out := field(1, fmt.Sprintf("rcpt-%06d", n))
	out = append(out, field(2, "pending")...)
	return append(out, field(3, fmt.Sprintf("pol-%06d", n))...)
}

// answer serves every unary method the bench calls; others are UNIMPLEMENTED.
func answer(_ interface{}, stream grpc.ServerStream) error {
	method, _ := grpc.MethodFromServerStream(stream)
	var request []byte
	if err := stream.RecvMsg(&request); err != nil {
		return err
	}
	var reply []byte
	switch method {
	case "/tai.Governor/ProposePolicy":
		reply = receipt()
	case "/grpc.health.v1.Health/Check":
		reply = []byte{0x08, 0x01}
	default:
		return status.Errorf(codes.Unimplemented, "method %s not served", method)
	}
	return stream.SendMsg(&reply)
}

func main() {
	governor := flag.String("governor-addr", "", "HOST:PORT to serve")
	flag.String("coordinator-addr", "", "accepted and ignored")
	flag.Parse()
	listener, err := net.Listen("tcp", *governor)
	if err != nil {
		log.Fatal(err)
	}
	//lint:ignore SA1019 grpc 1.33 (Debian's) has no ForceServerCodec yet.
	server := grpc.NewServer(grpc.CustomCodec(rawCodec{}), grpc.UnknownServiceHandler(answer))
	log.Fatal(server.Serve(listener))
}
