//! test
/// Generated code.
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/proto.rs"));
}
