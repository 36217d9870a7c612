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
    /// A CORS preflight for a gRPC method's path, answered by the gateway itself.
    Preflight(Arc<GrpcMethod>),
    /// A call to make.
    Call(Target<'r>),
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
    // gRPC method paths are looked up directly; their CORS preflights bypass the HTTP rules.
    if cors::is_preflight(method, request.headers())
        && let Some(grpc) = runtime.grpc_methods.get(path)
    {
        return Ok(Found::Preflight(grpc.clone()));
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
