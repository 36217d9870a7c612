//! Asking one backend for the descriptors of the services routed to it: the file containing
//! each service (`file_containing_symbol`), then every import still missing (`file_by_filename`),
//! over `grpc.reflection.v1` — or `v1alpha` when the backend answers UNIMPLEMENTED to v1.
//!
//! Each question is its own call of the bidi method with one request message: the backend
//! answers it and ends the stream, which every reflection server does, and it lets the call go
//! through the upstream's usual path (endpoints, TLS, breakers).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;
use http::uri::PathAndQuery;
use prost::Message;

use super::Fetched;
use super::wire::{
    Answer, Asked, FileHeader, ReflectionRequest, ReflectionResponse, V1_PATH, V1ALPHA_PATH,
};
use crate::upstream::{CallOptions, Caller, Upstream};

/// Bound of one reflection question.
const QUESTION_TIMEOUT: Duration = Duration::from_secs(10);
/// Most files one upstream's services may take (a guard against a backend that never stops).
const MAX_FILES: usize = 2_000;
/// gRPC `UNIMPLEMENTED`.
const UNIMPLEMENTED: i32 = 12;

/// The files describing `services` on `upstream`, or why there are none.
pub async fn fetch(upstream: &Upstream, services: &BTreeSet<String>) -> Fetched {
    let mut asker = Asker {
        upstream,
        path: None,
    };
    match asker.files(services).await {
        Ok(files) => Fetched::Files {
            services: services.clone(),
            files,
        },
        Err(reason) => Fetched::Failed {
            services: services.clone(),
            reason,
        },
    }
}

/// One upstream's questions, with the reflection version it answers (found by the first one).
struct Asker<'a> {
    upstream: &'a Upstream,
    path: Option<&'static str>,
}

impl Asker<'_> {
    /// Every file of `services` and their imports, by name.
    async fn files(
        &mut self,
        services: &BTreeSet<String>,
    ) -> Result<BTreeMap<String, Bytes>, String> {
        let mut files = BTreeMap::new();
        let mut imports = BTreeSet::new();
        for service in services {
            match self
                .ask(Asked::FileContainingSymbol(service.clone()))
                .await?
            {
                Answer::Files(found) => {
                    keep(&mut files, &mut imports, found.file_descriptor_proto)?
                }
                Answer::Error(e) => {
                    return Err(format!(
                        "upstream `{}` does not describe service `{service}` by reflection: {}",
                        self.upstream.name, e.error_message
                    ));
                }
                _ => return Err(self.unexpected()),
            }
        }
        // Imports the backend did not send with the files; one it cannot give is left to the
        // gateway's own files (google/api, google/protobuf) and reported by the pool if absent.
        let mut asked = BTreeSet::new();
        while let Some(name) = imports
            .iter()
            .find(|n| !files.contains_key(*n) && !asked.contains(*n))
            .cloned()
        {
            asked.insert(name.clone());
            if let Answer::Files(found) = self.ask(Asked::FileByFilename(name)).await? {
                keep(&mut files, &mut imports, found.file_descriptor_proto)?;
            }
            if files.len() + asked.len() > MAX_FILES {
                return Err(format!("more than {MAX_FILES} files"));
            }
        }
        Ok(files)
    }

    /// One question and its answer; the first question also settles v1 or v1alpha.
    async fn ask(&mut self, asked: Asked) -> Result<Answer, String> {
        let request = ReflectionRequest {
            host: String::new(),
            asked: Some(asked),
        };
        let message = Bytes::from(request.encode_to_vec());
        let paths: &[&'static str] = match self.path {
            Some(path) => &[path][..],
            None => &[V1_PATH, V1ALPHA_PATH],
        };
        for (i, path) in paths.iter().enumerate() {
            let code = match self.call(path, message.clone()).await? {
                Ok(answer) => {
                    self.path = Some(path);
                    return Ok(answer);
                }
                Err(code) => code,
            };
            if code != UNIMPLEMENTED || i + 1 == paths.len() {
                return Err(format!(
                    "upstream `{}` answered the reflection call {path} with gRPC status {code}",
                    self.upstream.name
                ));
            }
        }
        Err(self.unexpected())
    }

    /// One call: the answer, the gRPC status code the backend refused with, or a transport error.
    async fn call(
        &self,
        path: &'static str,
        message: Bytes,
    ) -> Result<Result<Answer, i32>, String> {
        let options = CallOptions {
            deadline: QUESTION_TIMEOUT,
            per_try_timeout: None,
            retryable: false,
            retry_on: None,
            caller: Caller::UNKNOWN,
            trace: None,
        };
        let grpc_path = PathAndQuery::from_static(path);
        let outcome = self
            .upstream
            .call(&grpc_path, message, HeaderMap::new(), &options)
            .await;
        let reply = outcome.result.map_err(|e| e.to_string())?;
        if !reply.status.is_ok() {
            return Ok(Err(reply.status.code));
        }
        let bytes = reply.message.unwrap_or_default();
        let response = ReflectionResponse::decode(bytes).map_err(|e| {
            format!(
                "upstream `{}` sent an unreadable reflection answer: {e}",
                self.upstream.name
            )
        })?;
        response.answer.map(Ok).ok_or_else(|| self.unexpected())
    }

    fn unexpected(&self) -> String {
        format!(
            "upstream `{}` sent an unexpected reflection answer",
            self.upstream.name
        )
    }
}

/// Keeps each raw file by its name and notes its imports.
fn keep(
    files: &mut BTreeMap<String, Bytes>,
    imports: &mut BTreeSet<String>,
    raw: Vec<Vec<u8>>,
) -> Result<(), String> {
    for bytes in raw {
        let header = FileHeader::decode(bytes.as_slice())
            .map_err(|e| format!("a reflected file is not a FileDescriptorProto: {e}"))?;
        imports.extend(header.dependency);
        files
            .entry(header.name)
            .or_insert_with(|| Bytes::from(bytes));
    }
    Ok(())
}
