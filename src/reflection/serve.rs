//! The gateway's own reflection answers, from the live descriptor pool and limited to what its
//! routes expose: `list_services` names the routed services only, and a file is given only when
//! it is one of theirs or one they import (directly or not). Files go out as prost-reflect
//! encodes them, options and extensions (`google.api.http`) included.

use std::collections::{BTreeSet, HashSet};

use prost_reflect::{DescriptorPool, FileDescriptor};

use super::wire::{
    Answer, Asked, ErrorResponse, ExtensionNumberResponse, FileDescriptorResponse,
    ListServiceResponse, ReflectionRequest, ReflectionResponse, ServiceResponse,
};

/// gRPC `NOT_FOUND`.
const NOT_FOUND: i32 = 5;
/// gRPC `INVALID_ARGUMENT`.
const INVALID_ARGUMENT: i32 = 3;

/// What one gateway snapshot may show by reflection.
#[derive(Debug, Clone)]
pub struct Exposed {
    pool: DescriptorPool,
    services: BTreeSet<String>,
    /// The files of `services` and everything they import.
    files: HashSet<String>,
}

impl Exposed {
    /// The routed `services` of `pool` (names the pool lacks are left out).
    pub fn new(pool: &DescriptorPool, services: impl IntoIterator<Item = String>) -> Exposed {
        let services: BTreeSet<String> = services
            .into_iter()
            .filter(|s| pool.get_service_by_name(s).is_some())
            .collect();
        let mut files = HashSet::new();
        let mut pending: Vec<FileDescriptor> = services
            .iter()
            .filter_map(|s| pool.get_service_by_name(s))
            .map(|s| s.parent_file())
            .collect();
        while let Some(file) = pending.pop() {
            if files.insert(file.name().to_owned()) {
                pending.extend(file.dependencies());
            }
        }
        Exposed {
            pool: pool.clone(),
            services,
            files,
        }
    }

    /// The answer to one reflection question.
    pub fn answer(&self, request: ReflectionRequest) -> ReflectionResponse {
        let answer = match &request.asked {
            Some(Asked::ListServices(_)) => Answer::Services(ListServiceResponse {
                service: self
                    .services
                    .iter()
                    .map(|name| ServiceResponse { name: name.clone() })
                    .collect(),
            }),
            Some(Asked::FileByFilename(name)) => self.files_or_error(self.file(name), name),
            Some(Asked::FileContainingSymbol(symbol)) => {
                self.files_or_error(self.file_of_symbol(symbol), symbol)
            }
            Some(Asked::FileContainingExtension(e)) => {
                let file = self
                    .extensions_of(&e.containing_type)
                    .find(|x| x.number() == e.extension_number as u32)
                    .map(|x| x.parent_file());
                let what = format!("{}({})", e.containing_type, e.extension_number);
                self.files_or_error(file, &what)
            }
            Some(Asked::AllExtensionNumbersOfType(name)) => {
                match self.exposed(self.pool.get_message_by_name(name).map(|m| m.parent_file())) {
                    Some(_) => Answer::ExtensionNumbers(ExtensionNumberResponse {
                        base_type_name: name.clone(),
                        extension_number: self
                            .extensions_of(name)
                            .map(|x| x.number() as i32)
                            .collect(),
                    }),
                    None => not_found(name),
                }
            }
            None => Answer::Error(ErrorResponse {
                error_code: INVALID_ARGUMENT,
                error_message: "the request asks nothing".to_owned(),
            }),
        };
        ReflectionResponse {
            valid_host: request.host.clone(),
            original_request: Some(request),
            answer: Some(answer),
        }
    }

    /// The file named `name`, if exposed.
    fn file(&self, name: &str) -> Option<FileDescriptor> {
        self.exposed(self.pool.get_file_by_name(name))
    }

    /// The file defining `symbol` (a service, method, message, enum or extension), if exposed.
    fn file_of_symbol(&self, symbol: &str) -> Option<FileDescriptor> {
        let pool = &self.pool;
        let method_service = symbol.rsplit_once('.').map(|(s, _)| s).unwrap_or_default();
        let file = pool
            .get_service_by_name(symbol)
            .map(|s| s.parent_file())
            .or_else(|| pool.get_message_by_name(symbol).map(|m| m.parent_file()))
            .or_else(|| pool.get_enum_by_name(symbol).map(|e| e.parent_file()))
            .or_else(|| pool.get_extension_by_name(symbol).map(|x| x.parent_file()))
            .or_else(|| {
                let service = pool.get_service_by_name(method_service)?;
                let method = &symbol[method_service.len() + 1..];
                service
                    .methods()
                    .any(|m| m.name() == method)
                    .then(|| service.parent_file())
            });
        self.exposed(file)
    }

    /// The extensions of message `name` defined in exposed files.
    fn extensions_of<'a>(
        &'a self,
        name: &'a str,
    ) -> impl Iterator<Item = prost_reflect::ExtensionDescriptor> + 'a {
        self.pool
            .all_extensions()
            .filter(move |x| x.containing_message().full_name() == name)
            .filter(|x| self.files.contains(x.parent_file().name()))
    }

    fn exposed(&self, file: Option<FileDescriptor>) -> Option<FileDescriptor> {
        file.filter(|f| self.files.contains(f.name()))
    }

    /// `file` and everything it imports, each encoded once (the file first), or NOT_FOUND.
    fn files_or_error(&self, file: Option<FileDescriptor>, asked: &str) -> Answer {
        let Some(file) = file else {
            return not_found(asked);
        };
        let mut seen = HashSet::new();
        let mut encoded = Vec::new();
        let mut pending = vec![file];
        while let Some(file) = pending.pop() {
            if seen.insert(file.name().to_owned()) {
                encoded.push(file.encode_to_vec());
                pending.extend(file.dependencies());
            }
        }
        Answer::Files(FileDescriptorResponse {
            file_descriptor_proto: encoded,
        })
    }
}

fn not_found(asked: &str) -> Answer {
    Answer::Error(ErrorResponse {
        error_code: NOT_FOUND,
        error_message: format!("`{asked}` is not exposed by this gateway"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reflection::wire::ExtensionRequest;

    /// The repository's TAI protos (both services), as the gateway would load them.
    fn tai_pool() -> DescriptorPool {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/proto");
        let mut compiler = protox::Compiler::new([root]).expect("compiler");
        compiler
            .include_imports(true)
            .open_files(["tai/governor.proto", "tai/coordinator.proto"])
            .expect("compiles");
        DescriptorPool::decode(compiler.encode_file_descriptor_set().as_slice()).expect("pool")
    }

    fn ask(exposed: &Exposed, asked: Asked) -> Answer {
        let request = ReflectionRequest {
            host: String::new(),
            asked: Some(asked),
        };
        let response = exposed.answer(request.clone());
        assert_eq!(response.original_request, Some(request));
        response.answer.expect("an answer")
    }

    fn file_names(answer: Answer) -> Vec<String> {
        let Answer::Files(files) = answer else {
            panic!("files expected: {answer:?}")
        };
        files
            .file_descriptor_proto
            .iter()
            .map(|f| {
                <crate::reflection::wire::FileHeader as prost::Message>::decode(f.as_slice())
                    .expect("file")
                    .name
            })
            .collect()
    }

    fn error_code(answer: Answer) -> i32 {
        match answer {
            Answer::Error(e) => e.error_code,
            other => panic!("error expected: {other:?}"),
        }
    }

    #[test]
    fn only_routed_services_and_their_files_are_shown() {
        let exposed = Exposed::new(
            &tai_pool(),
            ["tai.Governor".to_owned(), "no.Such".to_owned()],
        );
        let Answer::Services(list) = ask(&exposed, Asked::ListServices(String::new())) else {
            panic!("services expected")
        };
        let names: Vec<&str> = list.service.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["tai.Governor"]);

        let files = file_names(ask(
            &exposed,
            Asked::FileContainingSymbol("tai.Governor.GetPolicy".into()),
        ));
        assert_eq!(files[0], "tai/governor.proto");
        assert!(
            files.contains(&"google/api/http.proto".to_owned()),
            "{files:?}"
        );
        assert!(
            files.contains(&"google/protobuf/timestamp.proto".to_owned()),
            "{files:?}"
        );
        let message = file_names(ask(
            &exposed,
            Asked::FileContainingSymbol("tai.Policy".into()),
        ));
        assert_eq!(message[0], "tai/governor.proto");
        let imported = file_names(ask(
            &exposed,
            Asked::FileByFilename("google/api/http.proto".into()),
        ));
        assert_eq!(imported[0], "google/api/http.proto");

        for hidden in [
            "tai.Coordinator",
            "tai.Coordinator.RequestAction",
            "no.Such",
        ] {
            let asked = Asked::FileContainingSymbol(hidden.into());
            assert_eq!(error_code(ask(&exposed, asked)), NOT_FOUND, "{hidden}");
        }
        let asked = Asked::FileByFilename("tai/coordinator.proto".into());
        assert_eq!(error_code(ask(&exposed, asked)), NOT_FOUND);
    }

    #[test]
    fn extensions_of_exposed_files_are_found_by_type_and_number() {
        let exposed = Exposed::new(&tai_pool(), ["tai.Governor".to_owned()]);
        let http = Asked::FileContainingExtension(ExtensionRequest {
            containing_type: "google.protobuf.MethodOptions".into(),
            extension_number: 72_295_728,
        });
        assert_eq!(
            file_names(ask(&exposed, http))[0],
            "google/api/annotations.proto"
        );
        let numbers = Asked::AllExtensionNumbersOfType("google.protobuf.MethodOptions".into());
        let Answer::ExtensionNumbers(numbers) = ask(&exposed, numbers) else {
            panic!("numbers expected")
        };
        assert!(
            numbers.extension_number.contains(&72_295_728),
            "{numbers:?}"
        );
        let unknown = Asked::AllExtensionNumbersOfType("no.Such".into());
        assert_eq!(error_code(ask(&exposed, unknown)), NOT_FOUND);
    }

    #[test]
    fn a_request_that_asks_nothing_is_an_invalid_argument() {
        let exposed = Exposed::new(&tai_pool(), ["tai.Governor".to_owned()]);
        let response = exposed.answer(ReflectionRequest::default());
        assert_eq!(
            error_code(response.answer.expect("answer")),
            INVALID_ARGUMENT
        );
    }
}
