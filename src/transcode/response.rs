//! Turns a gRPC reply or status into the HTTP response body.
