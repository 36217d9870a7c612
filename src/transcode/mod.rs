//! Pure HTTP/JSON <-> gRPC transcoding pieces: no sockets, no tokio, no config structs.
//!
//! - [`template`]: the `google.api.http` path-template grammar, parsed and validated.
//! - [`normalize`]: dot segments out of a request path before routing (Envoy's `normalize_path`).
//! - [`router`]: a per-segment trie that maps a method and a raw request path to a rule and its
//!   decoded variable bindings.
//! - [`json`]: strict proto3 JSON ⇄ `DynamicMessage` (ranges, duplicates, depth, unknown fields).
//! - [`request`]: builds the request message from path bindings, query parameters and the body.
//! - [`response`]: turns the response message (or a gRPC error status) into the HTTP body.
//! - [`split`]: splits a streamed NDJSON / JSON-array request body into elements as it arrives.
//! - `wire`: a zero-copy reader of the protobuf wire format (and the request encoder).

pub mod json;
pub mod normalize;
pub mod request;
pub mod response;
pub mod router;
pub mod split;
pub mod template;
mod wire;
