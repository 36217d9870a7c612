//! OpenAPI 3.1 of the API the gateway serves now, generated from the live route table (never
//! from a file that could drift from it):
//!
//! - [`document`]: the document of a [`Runtime`]: paths, operations, components;
//! - `operation`: one binding → one operation (parameters, body, responses, security);
//! - `parameters`: the OpenAPI path of a template, path and query parameters;
//! - `schema`: protobuf types → JSON Schema 2020-12 along the proto3 JSON mapping;
//! - `security`: the token settings as security schemes and requirements;
//! - `published`: the document as served (`GET /openapi.json` on the public listeners): built
//!   once per runtime snapshot, on first request, so it follows reloads, as JSON and (at the
//!   `.yaml` sibling of a `.json` path) YAML; a strong `ETag` answers `If-None-Match` with 304.
//!   A listener that serves some routes only publishes a document of those (built once per
//!   snapshot and listener);
//! - [`docs`]: the docs page (`GET /docs`) that reads the document and tries its operations.
//!
//! Not done here (issue 16): descriptors from server reflection, reflection served to gRPC
//! clients.

pub mod docs;
mod document;
mod operation;
mod parameters;
pub mod published;
mod schema;
mod security;
#[cfg(test)]
mod tests;

pub use document::{document, document_of};

use std::collections::HashSet;
use std::sync::{Arc, PoisonError};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use http_body_util::Full;

use crate::body::ResponseBody;
use crate::runtime::Runtime;
use published::{Form, Published};

/// The document of `runtime` as served: compact JSON and its `ETag`, built on first use.
pub fn published(runtime: &Runtime) -> &Published {
    runtime
        .openapi
        .get_or_init(|| Published::of(&document(runtime)))
}

/// The routes a listener serves, when it serves only some: its name and their names.
pub type ListenerRoutes<'a> = (&'a str, &'a HashSet<String>);

/// The document as `listener` publishes it: with only its routes, built on first use.
fn published_for(runtime: &Runtime, listener: ListenerRoutes<'_>) -> Arc<Published> {
    let (name, routes) = listener;
    let mut built = runtime
        .listener_openapi
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let published = built
        .entry(name.to_owned())
        .or_insert_with(|| Arc::new(Published::of(&document_of(runtime, Some(routes)))));
    published.clone()
}

/// Which form of the document a request asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `openapi.path`: `application/json`.
    Json,
    /// The `.yaml` sibling of a `.json` path: `application/yaml`.
    Yaml,
}

/// What a `GET` answered before routing asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asked {
    /// The document, in one form.
    Document(Format),
    /// The docs page or one of its assets.
    Docs(docs::Asset),
}

/// The answer to `GET` of the document's path or the docs page's: the bytes, or 304 when
/// `If-None-Match` names their tag.
pub fn answer(
    runtime: &Runtime,
    listener: Option<ListenerRoutes<'_>>,
    headers: &HeaderMap,
    asked: Asked,
) -> Response<ResponseBody> {
    let format = match asked {
        Asked::Document(format) => format,
        Asked::Docs(asset) => {
            let form = asset.form(&runtime.config.openapi);
            let mut response = conditional(&form, headers, asset.content_type());
            let headers = response.headers_mut();
            let policy = HeaderValue::from_static(docs::CONTENT_SECURITY_POLICY);
            headers.insert(header::CONTENT_SECURITY_POLICY, policy);
            let nosniff = HeaderValue::from_static("nosniff");
            headers.insert(header::X_CONTENT_TYPE_OPTIONS, nosniff);
            let referrer = HeaderValue::from_static("no-referrer");
            headers.insert(header::REFERRER_POLICY, referrer);
            return response;
        }
    };
    let own = listener.map(|l| published_for(runtime, l));
    let published = own.as_deref().unwrap_or_else(|| published(runtime));
    let (form, content_type) = match format {
        Format::Json => (published.json(), "application/json"),
        Format::Yaml => match published.yaml() {
            Ok(form) => (form, "application/yaml"),
            Err(e) => {
                tracing::warn!(error = %e, "OpenAPI document not served as YAML");
                let body =
                    r#"{"code":13,"message":"the OpenAPI document has no YAML form","details":[]}"#;
                return crate::pipeline::plain_json(StatusCode::INTERNAL_SERVER_ERROR, body);
            }
        },
    };
    conditional(form, headers, content_type)
}

/// `form` with its `ETag` and `Cache-Control: no-cache`, or an empty 304 when `If-None-Match`
/// names it.
fn conditional(
    form: &Form,
    headers: &HeaderMap,
    content_type: &'static str,
) -> Response<ResponseBody> {
    let etag = HeaderValue::from_str(form.etag()).unwrap_or(HeaderValue::from_static("\"\""));
    let fresh = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|list| form.matches(list));
    let (status, body) = if fresh {
        (StatusCode::NOT_MODIFIED, Bytes::new())
    } else {
        (StatusCode::OK, form.body().clone())
    };
    let mut response = Response::new(Full::new(body).into());
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::ETAG, etag);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if !fresh {
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    }
    response
}
