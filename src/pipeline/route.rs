//! Finding the route: what a request's path (and protocol) selects, before any edge rule runs —
//! per-route policies need the route first.

use std::sync::Arc;

use http::Request;

use super::protocol::Protocol;
use crate::edge::cors;
use crate::error::GatewayError;
use crate::runtime::{Binding, GrpcMethod, RouteOptions, Runtime};
use crate::transcode::router::RouteMiss;

/// What a request selected.
pub(crate) enum Found<'r> {
    /// A CORS preflight, answered by the gateway itself.
    Preflight(Preflight),
    /// A call to make.
    Call(Target<'r>),
    /// `GET` of the OpenAPI document's path (`openapi.path`): answered before any route, with
    /// no rate limit or token check.
    OpenApi,
}

/// A CORS preflight: the policies of the route the browser asks to call, and the methods that
/// exist at the path (`GET, POST`).
pub(crate) struct Preflight {
    /// The route of the method asked for (of the path's first method when that one is absent).
    pub(crate) options: Arc<RouteOptions>,
    /// Comma-separated methods with a rule at the path.
    pub(crate) methods: String,
}

/// The call a request selected.
pub(crate) enum Target<'r> {
    /// A native gRPC or gRPC-Web call of a routed method, passed through.
    Grpc(Arc<GrpcMethod>),
    /// An HTTP/JSON call, transcoded by the binding, with its path-variable values.
    Http(Arc<Binding>, Vec<(&'r str, String)>),
}

impl Target<'_> {
    /// The policies of the route the request matched.
    pub(crate) fn options(&self) -> &Arc<RouteOptions> {
        match self {
            Target::Grpc(method) => &method.options,
            Target::Http(binding, _) => &binding.method.options,
        }
    }
}

/// What `request`, speaking `protocol`, selected.
pub(crate) fn find<'r, B>(
    runtime: &'r Runtime,
    request: &Request<B>,
    protocol: Protocol,
) -> Result<Found<'r>, GatewayError> {
    let (method, path) = (request.method(), request.uri().path());
    if cors::is_preflight(method, request.headers()) {
        return preflight(runtime, request.headers(), path).map(Found::Preflight);
    }
    let openapi = &runtime.config.openapi;
    if openapi.enabled && method == http::Method::GET && path == openapi.path && !protocol.is_grpc()
    {
        return Ok(Found::OpenApi);
    }
    if protocol.is_grpc() {
        return match runtime.grpc_methods.get(path) {
            Some(grpc) => Ok(Found::Call(Target::Grpc(grpc.clone()))),
            None => Err(GatewayError::UnknownGrpcMethod {
                path: path.to_owned(),
            }),
        };
    }
    match runtime.router.lookup(method.as_str(), path) {
        Ok(found) => Ok(Found::Call(Target::Http(
            found.value.clone(),
            found.bindings,
        ))),
        Err(RouteMiss::NotFound) => Err(GatewayError::RouteNotFound {
            path: path.to_owned(),
        }),
        Err(RouteMiss::MethodNotAllowed { allow }) => Err(GatewayError::MethodNotAllowed {
            method: method.to_string(),
            path: path.to_owned(),
            allow,
        }),
        Err(RouteMiss::MalformedPath(reason)) => Err(GatewayError::MalformedPath(reason)),
    }
}

/// The preflight for `path`: a gRPC method's path directly (its only method is `POST`), else the
/// HTTP rules at the path; a path without any is a 404.
fn preflight(
    runtime: &Runtime,
    headers: &http::HeaderMap,
    path: &str,
) -> Result<Preflight, GatewayError> {
    if let Some(grpc) = runtime.grpc_methods.get(path) {
        return Ok(Preflight {
            options: grpc.options.clone(),
            methods: "POST".to_owned(),
        });
    }
    let miss = |miss| match miss {
        RouteMiss::MalformedPath(reason) => GatewayError::MalformedPath(reason),
        _ => GatewayError::RouteNotFound {
            path: path.to_owned(),
        },
    };
    let methods = runtime.router.methods_at(path).map_err(miss)?;
    let asked = headers
        .get(http::header::ACCESS_CONTROL_REQUEST_METHOD)
        .and_then(|m| m.to_str().ok())
        .filter(|m| methods.iter().any(|have| have == m))
        .unwrap_or(&methods[0]);
    let found = runtime.router.lookup(asked, path).map_err(miss)?;
    Ok(Preflight {
        options: found.value.method.options.clone(),
        methods: methods.join(", "),
    })
}
