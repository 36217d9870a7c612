//! The test descriptor pool, compiled once: `proto/tai/governor.proto`, the google.rpc protos and
//! `src/transcode/testdata` (messages with `HttpBody` fields).

use std::sync::OnceLock;

use prost_reflect::{DescriptorPool, FieldDescriptor, MessageDescriptor};

/// The shared pool, built from the encoded descriptor set so extensions survive.
pub(crate) fn pool() -> &'static DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(|| {
        let mut compiler =
            protox::Compiler::new(["proto", "src/transcode/testdata"]).expect("include path");
        compiler.include_imports(true);
        compiler
            .open_files([
                "tai/governor.proto",
                "google/rpc/status.proto",
                "google/rpc/error_details.proto",
                "tai_test/upload.proto",
                "tai_test/wire.proto",
                "tai_test/legacy.proto",
            ])
            .expect("protos compile");
        DescriptorPool::decode(compiler.encode_file_descriptor_set().as_slice())
            .expect("pool decodes")
    })
}

/// A message type of the pool by full name.
pub(crate) fn message(name: &str) -> MessageDescriptor {
    pool()
        .get_message_by_name(name)
        .unwrap_or_else(|| panic!("no message {name}"))
}

/// A field of a message type by proto name.
pub(crate) fn field(message_name: &str, field_name: &str) -> FieldDescriptor {
    message(message_name)
        .get_field_by_name(field_name)
        .unwrap_or_else(|| panic!("no field {message_name}.{field_name}"))
}
