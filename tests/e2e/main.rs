//! End-to-end tests: real stub backends, a real gateway, real sockets on 127.0.0.1.
//! One test binary with modules keeps link time down.

mod backend;
mod errors;
#[allow(dead_code)] // shared helpers; not every module uses every one
mod harness;
mod operations;
mod responses;
mod tai_api;
