//! Builds the gRPC request message from path bindings, query string and body.
