//! Pure HTTP/JSON <-> gRPC transcoding pieces: no sockets, no config structs.
//!
//! - [`template`]: the `google.api.http` path-template grammar, parsed and validated.
//! - [`router`]: a per-segment trie that maps a method and a raw request path to a rule and its
//!   decoded variable bindings.

pub mod router;
pub mod template;
