//! Finding the route: what a request's path (and protocol) selects, before any edge rule runs —
//! per-route policies need the route first.

use std::collections::HashSet;
use std::sync::Arc;

use http::uri::PathAndQuery;
use http::{Request, Response, Uri, Version, header};

use super::protocol::Protocol;
use crate::body::ResponseBody;
use crate::edge::cors;
use crate::error::GatewayError;
use crate::listener::refusal::HeadRefused;
use crate::openapi::docs::Asset;
use crate::openapi::{self, Asked, Format};
use crate::reflection::serve::Exposed;
use crate::reflection::wire;
use crate::runtime::{Binding, GrpcMethod, PendingService, RouteOptions, Runtime};
use crate::transcode::normalize::{has_dot_segment, normalize_path};
use crate::transcode::router::RouteMiss;

/// What a request selected.
pub(crate) enum Found<'r> {
    /// A CORS preflight, answered by the gateway itself.
    Preflight(Preflight),
    /// A call to make.
    Call(Target<'r>),
    /// `GET` of the OpenAPI document's path (`openapi.path`, or its `.yaml` sibling) or of the
    /// docs page's (`openapi.docs_path` and its assets), answered here ([`openapi::answer`]):
    /// before any route, with no rate limit or token check.
    Document(Box<Response<ResponseBody>>),
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
    /// A native gRPC call of the gateway's own reflection service, admitted under these options,
    /// showing what the listener's routes expose.
    Reflection(Arc<RouteOptions>, Box<Exposed>),
}

impl Target<'_> {
    /// The policies of the route the request matched.
    pub(crate) fn options(&self) -> &Arc<RouteOptions> {
        match self {
            Target::Grpc(method) => &method.options,
            Target::Http(binding, _) => &binding.method.options,
            Target::Reflection(options, _) => options,
        }
    }
}

/// The routes the listener a request came in on serves, set by that listener in the request's
/// extensions (as `Arc<Served>`); a request without one may reach every route.
#[derive(Debug)]
pub struct Served {
    /// The listener's name.
    listener: Arc<str>,
    /// Route names; `None`: every route.
    routes: Option<HashSet<String>>,
}

impl Served {
    /// Listener `listener` serving `routes` (`None`: every route).
    pub fn new(listener: &str, routes: Option<&[String]>) -> Served {
        Served {
            listener: Arc::from(listener),
            routes: routes.map(|names| names.iter().cloned().collect()),
        }
    }

    /// The listener's name.
    pub fn listener(&self) -> &str {
        &self.listener
    }

    /// The listener's name, shared (a metric label).
    pub fn listener_name(&self) -> Arc<str> {
        self.listener.clone()
    }

    /// The listener's name and routes, when it serves some routes only.
    fn own_routes(&self) -> Option<openapi::ListenerRoutes<'_>> {
        self.routes.as_ref().map(|r| (&*self.listener, r))
    }

    /// `found` when this listener serves its route; a route it does not serve is answered as a
    /// path without any route (404, or gRPC `UNIMPLEMENTED`), so a listener does not reveal the
    /// routes of others. A preflight names only the methods this listener serves at the path.
    fn admit<'r>(
        &self,
        runtime: &Runtime,
        found: Found<'r>,
        path: &str,
        protocol: Protocol,
    ) -> Result<Found<'r>, GatewayError> {
        let Some(routes) = &self.routes else {
            return Ok(found);
        };
        let route = match &found {
            Found::Preflight(preflight) => &preflight.options.name,
            Found::Call(target) => &target.options().name,
            Found::Document(_) => return Ok(found),
        };
        if !routes.contains(route) {
            let path = path.to_owned();
            return Err(if protocol.is_grpc() {
                GatewayError::UnknownGrpcMethod { path }
            } else {
                GatewayError::RouteNotFound { path }
            });
        }
        match found {
            Found::Preflight(mut preflight) => {
                let methods = preflight.methods.split(", ").map(str::to_owned).collect();
                preflight.methods = self.served_methods(runtime, path, methods).join(", ");
                Ok(Found::Preflight(preflight))
            }
            other => Ok(other),
        }
    }

    /// A 405 for a path whose methods may belong to other listeners' routes: the methods this
    /// listener serves there in `Allow`, or a 404 when it serves none of them.
    fn not_allowed(&self, runtime: &Runtime, refused: GatewayError) -> GatewayError {
        let GatewayError::MethodNotAllowed {
            method,
            path,
            allow,
        } = refused
        else {
            return refused;
        };
        let allow = self.served_methods(runtime, &path, allow);
        if allow.is_empty() {
            GatewayError::RouteNotFound { path }
        } else {
            GatewayError::MethodNotAllowed {
                method,
                path,
                allow,
            }
        }
    }

    /// Those of `methods` whose rule at `path` belongs to a route this listener serves.
    fn served_methods(&self, runtime: &Runtime, path: &str, methods: Vec<String>) -> Vec<String> {
        let Some(routes) = &self.routes else {
            return methods;
        };
        let serves = |method: &String| {
            let found = runtime.router.lookup(method, path);
            found.is_ok_and(|f| routes.contains(&f.value.method.options.name))
        };
        methods.into_iter().filter(serves).collect()
    }
}

/// What `request`, speaking `protocol`, selected on the listener it came in on ([`Served`]).
pub(crate) fn find<'r, B>(
    runtime: &'r Runtime,
    request: &mut Request<B>,
    protocol: Protocol,
) -> Result<Found<'r>, GatewayError> {
    let found = select(runtime, request, protocol);
    let Some(served) = request.extensions().get::<Arc<Served>>() else {
        return found;
    };
    match found {
        Ok(found) => served.admit(runtime, found, request.uri().path(), protocol),
        Err(refused) => Err(served.not_allowed(runtime, refused)),
    }
}

/// What `request`, speaking `protocol`, selected among all routes. The head is checked first
/// ([`check_head`]: exactly one `Host`, the header-size limit), and the path normalised in place
/// ([`normalize`]), so every later step (routing, cache keys, pass-through) sees the same path.
fn select<'r, B>(
    runtime: &'r Runtime,
    request: &mut Request<B>,
    protocol: Protocol,
) -> Result<Found<'r>, GatewayError> {
    check_head(request, runtime.config.limits.max_header_bytes)?;
    normalize(request)?;
    let (method, path) = (request.method(), request.uri().path());
    if cors::is_preflight(method, request.headers()) {
        return preflight(runtime, request.headers(), path).map(Found::Preflight);
    }
    if let Some(asked) = document_asked(runtime, request, protocol) {
        let served = request.extensions().get::<Arc<Served>>();
        let listener = served.and_then(|s| s.own_routes());
        let document = openapi::answer(runtime, listener, request.headers(), asked);
        return Ok(Found::Document(Box::new(document)));
    }
    if protocol.is_grpc() {
        return match runtime.grpc_methods.get(path) {
            Some(grpc) => Ok(Found::Call(Target::Grpc(grpc.clone()))),
            None => reflection_call(runtime, request, protocol)
                .map(Found::Call)
                .ok_or_else(|| unknown_grpc_method(runtime, path)),
        };
    }
    match runtime.router.lookup(method.as_str(), path) {
        Ok(found) => {
            let climbing = found.bindings.iter().find(|(_, v)| has_dot_segment(v));
            if let Some((field, _)) = climbing {
                let field = (*field).to_owned();
                return Err(GatewayError::DotSegment { field });
            }
            Ok(Found::Call(Target::Http(
                found.value.clone(),
                found.bindings,
            )))
        }
        Err(RouteMiss::NotFound) => Err(route_not_found(runtime, path)),
        Err(RouteMiss::MethodNotAllowed { allow }) => Err(GatewayError::MethodNotAllowed {
            method: method.to_string(),
            path: path.to_owned(),
            allow,
        }),
        Err(RouteMiss::MalformedPath(reason)) => Err(GatewayError::MalformedPath(reason)),
    }
}

/// A native gRPC call of `grpc.reflection.v1` (or `v1alpha`) `ServerReflectionInfo`, answered
/// by the gateway itself with what the routes of the listener it came in on expose, under the
/// first of those routes' policies; `None` for any other path, for gRPC-Web, and when the
/// listener serves no route.
fn reflection_call<'r, B>(
    runtime: &Runtime,
    request: &Request<B>,
    protocol: Protocol,
) -> Option<Target<'r>> {
    let path = request.uri().path();
    let asked = path == wire::V1_PATH || path == wire::V1ALPHA_PATH;
    if !asked || protocol != Protocol::Grpc {
        return None;
    }
    let served = request.extensions().get::<Arc<Served>>();
    let routes = served.and_then(|s| s.routes.as_ref());
    let (options, exposed) = runtime.reflection_on(routes)?;
    Some(Target::Reflection(options, Box::new(exposed)))
}

/// A gRPC path no route exposes: a 503 while its service waits for descriptors by reflection.
fn unknown_grpc_method(runtime: &Runtime, path: &str) -> GatewayError {
    let service = path[1..].split_once('/').map_or("", |(s, _)| s);
    match runtime.pending.get(service) {
        Some(pending) => GatewayError::SchemaPending {
            services: format!("service `{service}`"),
            reason: pending.reason.clone(),
        },
        None => GatewayError::UnknownGrpcMethod {
            path: path.to_owned(),
        },
    }
}

/// A path no HTTP rule matches: a 503 naming the services still waiting for descriptors by
/// reflection (their rules are not known yet, so the path may be one of theirs), else a 404.
fn route_not_found(runtime: &Runtime, path: &str) -> GatewayError {
    let mut pending: Vec<(&String, &PendingService)> = runtime.pending.iter().collect();
    pending.sort_by_key(|(name, _)| *name);
    let Some((_, first)) = pending.first() else {
        return GatewayError::RouteNotFound {
            path: path.to_owned(),
        };
    };
    let names: Vec<String> = pending.iter().map(|(n, _)| format!("`{n}`")).collect();
    let noun = if names.len() == 1 {
        "service"
    } else {
        "services"
    };
    GatewayError::SchemaPending {
        services: format!("{noun} {}", names.join(", ")),
        reason: first.reason.clone(),
    }
}

/// The form of the OpenAPI document a `GET` of its path (or its `.yaml` sibling) asks for, or
/// the part of the docs page.
fn document_asked<B>(runtime: &Runtime, request: &Request<B>, protocol: Protocol) -> Option<Asked> {
    let openapi = &runtime.config.openapi;
    let path = request.uri().path();
    if !openapi.enabled || request.method() != http::Method::GET || protocol.is_grpc() {
        None
    } else if path == openapi.path {
        Some(Asked::Document(Format::Json))
    } else if openapi.yaml_path.as_deref() == Some(path) {
        Some(Asked::Document(Format::Yaml))
    } else {
        Asset::at(openapi, path).map(Asked::Docs)
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

/// The head's own rules. RFC 9112 §3.2: an HTTP/1.1 request without `Host`, or any request with
/// more than one, is a 400; HTTP/2 names the authority in `:authority` (hyper puts it in the
/// URI), so an HTTP/2 request without `Host` is fine. An HTTP/2 header list larger than
/// `max_header_bytes` is a 431 answered here, with the JSON body: the HTTP/2 codec decodes up to
/// twice the limit (`listener::serve::HttpServer`) so that the gateway, not h2's empty 431, answers.
/// (HTTP/1.1 heads over the limit never get here: see `listener::refusal`.)
fn check_head<B>(request: &Request<B>, max_header_bytes: usize) -> Result<(), GatewayError> {
    let count = request.headers().get_all(header::HOST).iter().count();
    let missing = count == 0 && request.version() == Version::HTTP_11;
    if missing || count > 1 {
        return Err(GatewayError::HostHeader { count });
    }
    if request.version() == Version::HTTP_2 && header_list_size(request) > max_header_bytes {
        return Err(GatewayError::HeadRefused(HeadRefused::TooLarge));
    }
    Ok(())
}

/// The size of an HTTP/2 header list as SETTINGS_MAX_HEADER_LIST_SIZE counts it (RFC 9113
/// §6.5.2): name + value + 32 per field, the pseudo-header fields included.
fn header_list_size<B>(request: &Request<B>) -> usize {
    const FIELD: usize = 32;
    let uri = request.uri();
    let pseudo = request.method().as_str().len()
        + uri.path_and_query().map_or(0, |p| p.as_str().len())
        + uri.scheme_str().map_or(0, str::len)
        + uri.authority().map_or(0, |a| a.as_str().len())
        + 4 * (FIELD + 8);
    let fields = request.headers().iter();
    pseudo
        + fields
            .map(|(n, v)| n.as_str().len() + v.len() + FIELD)
            .sum::<usize>()
}

/// Rewrites the request's path with its dot segments removed (`transcode::normalize`), keeping
/// the query; a path that needs nothing is left alone.
fn normalize<B>(request: &mut Request<B>) -> Result<(), GatewayError> {
    let uri = request.uri();
    let path = match normalize_path(uri.path()) {
        std::borrow::Cow::Borrowed(_) => return Ok(()),
        std::borrow::Cow::Owned(path) => path,
    };
    let target = match uri.query() {
        Some(query) => format!("{path}?{query}"),
        None => path,
    };
    let malformed = |e: &dyn std::fmt::Display| GatewayError::MalformedPath(e.to_string());
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(PathAndQuery::try_from(target).map_err(|e| malformed(&e))?);
    *request.uri_mut() = Uri::from_parts(parts).map_err(|e| malformed(&e))?;
    Ok(())
}
