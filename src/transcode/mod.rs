//! Pure HTTP/JSON <-> gRPC transcoding: no sockets, no tokio, no config structs.
//!
//! - [`json`]: strict proto3 JSON decoding into `DynamicMessage` and JSON encoding back.
//! - [`request`]: builds the gRPC request message from path bindings, query string and body.
//! - [`response`]: turns a gRPC reply (or a gRPC status) into the HTTP response body.

pub mod json;
pub mod request;
pub mod response;
