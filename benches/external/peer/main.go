// Command grpc-gateway-peer is grpc-gateway in front of the bench's backend, for
// benches/external/run.sh (issue 14): the peer the issue compares against, built from Debian's
// packages (grpc-gateway 1.6, grpc-go 1.33, Go 1.19) by build.sh. It serves HTTP/1.1 and h2c on one
// port, as the gateway's plain listener does, and marshals JSON as grpc-gateway 2 does by default
// (lowerCamelCase names, unpopulated fields written).
package main

import (
	"context"
	"flag"
	"log"
	"net/http"

	"github.com/grpc-ecosystem/grpc-gateway/runtime"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"
	"google.golang.org/grpc"

	"taipeer"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:18080", "address to serve HTTP/1.1 and h2c on")
	backend := flag.String("backend", "127.0.0.1:51051", "the gRPC backend's address")
	flag.Parse()
	marshaler := &runtime.JSONPb{OrigName: false, EmitDefaults: true}
	mux := runtime.NewServeMux(runtime.WithMarshalerOption(runtime.MIMEWildcard, marshaler))
	dial := []grpc.DialOption{grpc.WithInsecure()}
	if err := taipeer.RegisterGovernorHandlerFromEndpoint(context.Background(), mux, *backend, dial); err != nil {
		log.Fatal(err)
	}
	log.Fatal(http.ListenAndServe(*listen, h2c.NewHandler(mux, &http2.Server{})))
}
