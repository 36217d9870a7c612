//! Compiles the TAI, google.api, google.rpc and grpc.health protos into Rust, writes their
//! encoded descriptor set (`descriptors.bin`) for the reflection service, and compiles the stubs'
//! own `proto/otlp_trace.proto` (the OTLP trace collector service the tests export to).
//!
//! There is no `protoc` on the build machines, so protox parses the `.proto` files and the
//! resulting descriptor set is handed to tonic-prost-build for code generation.

use std::path::PathBuf;

/// The files whose types the stubs need; their imports come along.
const PROTOS: &[&str] = &[
    "tai/governor.proto",
    "tai/coordinator.proto",
    "google/api/httpbody.proto",
    "google/rpc/code.proto",
    "google/rpc/status.proto",
    "google/rpc/error_details.proto",
    "grpc/health/v1/health.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../proto");
    let own_root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("proto");
    println!("cargo:rerun-if-changed={}", proto_root.display());
    println!("cargo:rerun-if-changed={}", own_root.display());

    let mut compiler = protox::Compiler::new([&proto_root])?;
    compiler.include_imports(true).open_files(PROTOS)?;
    let mut fds = compiler.file_descriptor_set();
    // The OTLP collector's messages are generated code only: not in the reflected set.
    let otlp = protox::Compiler::new([&own_root])?
        .include_imports(true)
        .open_files(["otlp_trace.proto"])?
        .file_descriptor_set();
    fds.file.extend(otlp.file);
    // The encoded set keeps every option as written (google.api.http included), and the source
    // info (comments, which a gateway documents): the stubs serve it by gRPC server reflection
    // as it is. A second compile, so the generated code is not changed by the comments.
    let mut described = protox::Compiler::new([&proto_root])?;
    described
        .include_imports(true)
        .include_source_info(true)
        .open_files(PROTOS)?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("descriptors.bin"),
        described.encode_file_descriptor_set(),
    )?;

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // The transport feature of tonic-prost-build is off, so clients are built from a
        // `Channel` by the caller instead of a generated `connect`.
        .build_transport(false)
        .include_file("proto.rs")
        .compile_fds(fds)?;
    Ok(())
}
