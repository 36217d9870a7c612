//! The messages of gRPC server reflection (`grpc.reflection.v1` and `v1alpha`, the same on the
//! wire), written out with prost's derive: the gateway both asks backends (`fetch`) and answers
//! clients (`serve`), and a generated client would bring tonic into the production build.
//!
//! Files travel as raw `FileDescriptorProto` bytes and stay raw here (`Vec<u8>`), so options
//! the gateway knows as extensions (`google.api.http`) are never dropped by a decode/encode.

/// The v1 reflection method.
pub const V1_PATH: &str = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo";
/// The v1alpha reflection method (older servers).
pub const V1ALPHA_PATH: &str = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo";

/// One question on the reflection stream.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ReflectionRequest {
    /// The host the question is about (unused by most servers).
    #[prost(string, tag = "1")]
    pub host: String,
    /// What is asked.
    #[prost(oneof = "Asked", tags = "3, 4, 5, 6, 7")]
    pub asked: Option<Asked>,
}

/// The kinds of question.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Asked {
    /// The file of this name.
    #[prost(string, tag = "3")]
    FileByFilename(String),
    /// The file defining this fully-qualified symbol.
    #[prost(string, tag = "4")]
    FileContainingSymbol(String),
    /// The file defining an extension.
    #[prost(message, tag = "5")]
    FileContainingExtension(ExtensionRequest),
    /// Every extension number of a message type.
    #[prost(string, tag = "6")]
    AllExtensionNumbersOfType(String),
    /// The services served (the value is ignored).
    #[prost(string, tag = "7")]
    ListServices(String),
}

/// An extension, by the type it extends and its number.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ExtensionRequest {
    /// Fully-qualified name of the extended message.
    #[prost(string, tag = "1")]
    pub containing_type: String,
    /// The extension's field number.
    #[prost(int32, tag = "2")]
    pub extension_number: i32,
}

/// One answer on the reflection stream.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ReflectionResponse {
    /// The host the answer is for.
    #[prost(string, tag = "1")]
    pub valid_host: String,
    /// The question answered.
    #[prost(message, optional, tag = "2")]
    pub original_request: Option<ReflectionRequest>,
    /// The answer.
    #[prost(oneof = "Answer", tags = "4, 5, 6, 7")]
    pub answer: Option<Answer>,
}

/// The kinds of answer.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Answer {
    /// Files (raw `FileDescriptorProto` bytes).
    #[prost(message, tag = "4")]
    Files(FileDescriptorResponse),
    /// Extension numbers of a type.
    #[prost(message, tag = "5")]
    ExtensionNumbers(ExtensionNumberResponse),
    /// The services served.
    #[prost(message, tag = "6")]
    Services(ListServiceResponse),
    /// The question could not be answered.
    #[prost(message, tag = "7")]
    Error(ErrorResponse),
}

/// Files, each the serialized bytes of one `FileDescriptorProto`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct FileDescriptorResponse {
    /// The files.
    #[prost(bytes = "vec", repeated, tag = "1")]
    pub file_descriptor_proto: Vec<Vec<u8>>,
}

/// Extension numbers of one type.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ExtensionNumberResponse {
    /// The extended type.
    #[prost(string, tag = "1")]
    pub base_type_name: String,
    /// The numbers.
    #[prost(int32, repeated, tag = "2")]
    pub extension_number: Vec<i32>,
}

/// The services served.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ListServiceResponse {
    /// One entry per service.
    #[prost(message, repeated, tag = "1")]
    pub service: Vec<ServiceResponse>,
}

/// One service, by its fully-qualified name.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ServiceResponse {
    /// `pkg.Service`.
    #[prost(string, tag = "1")]
    pub name: String,
}

/// Why a question was not answered.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ErrorResponse {
    /// A gRPC status code (`NOT_FOUND` for an unknown symbol).
    #[prost(int32, tag = "1")]
    pub error_code: i32,
    /// What went wrong.
    #[prost(string, tag = "2")]
    pub error_message: String,
}

/// The two fields of a `FileDescriptorProto` the fetch needs (name and imports); prost skips the
/// others when decoding, and the file is kept as the bytes it came in.
#[derive(Clone, PartialEq, prost::Message)]
pub struct FileHeader {
    /// The file's import name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// The files it imports.
    #[prost(string, repeated, tag = "3")]
    pub dependency: Vec<String>,
}

/// A `FileDescriptorSet` of raw files: field 1, repeated, each file's bytes as they are.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RawFileSet {
    /// The files.
    #[prost(bytes = "bytes", repeated, tag = "1")]
    pub file: Vec<bytes::Bytes>,
}
