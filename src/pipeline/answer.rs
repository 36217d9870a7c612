//! The interface of the call kinds: what a transcoded call starts from ([`HttpCall`]), and what
//! every kind of call returns — the response, or the failure to answer with: the error plus the
//! headers already earned on the way (allowed backend metadata, the attempt count).

use std::sync::Arc;

use http::{HeaderMap, Request, Response};

use crate::body::ResponseBody;
use crate::edge::Admitted;
use crate::error::GatewayError;
use crate::runtime::{Binding, Runtime};
use crate::trace::RequestTrace;
use crate::upstream::ClientId;

/// An admitted HTTP/JSON call: what every transcoded call kind works from.
pub(crate) struct HttpCall<'r, B> {
    /// The snapshot the request is served with.
    pub(crate) runtime: &'r Runtime,
    /// The HTTP rule the path selected.
    pub(crate) binding: Arc<Binding>,
    /// The path variables' values.
    pub(crate) vars: Vec<(&'r str, String)>,
    /// The request, body unread.
    pub(crate) request: Request<B>,
    /// What the edge let through: deadline, metadata, query.
    pub(crate) admitted: Admitted,
    /// Who the call is for, as the upstream's breakers tell clients apart.
    pub(crate) client: ClientId,
    /// The request's trace, which each upstream attempt continues.
    pub(crate) trace: &'r RequestTrace,
}

/// The result of a call: a response, or a failure the error table turns into one.
pub(crate) type Answer = Result<Response<ResponseBody>, Failure>;

/// A failed request plus the response headers it already earned, if any.
#[derive(Debug)]
pub(crate) struct Failure {
    /// What went wrong.
    pub(crate) error: GatewayError,
    /// Headers the error response carries besides the error's own.
    pub(crate) headers: HeaderMap,
}

impl Failure {
    /// `error`, answered with `headers`.
    pub(crate) fn with(error: impl Into<GatewayError>, headers: &HeaderMap) -> Failure {
        Failure {
            error: error.into(),
            headers: headers.clone(),
        }
    }
}

impl<E: Into<GatewayError>> From<E> for Failure {
    fn from(error: E) -> Failure {
        Failure {
            error: error.into(),
            headers: HeaderMap::new(),
        }
    }
}
