//! What every kind of call returns: the response, or the failure to answer with — the error plus
//! the headers already earned on the way (allowed backend metadata, the attempt count).

use http::{HeaderMap, Response};

use crate::body::ResponseBody;
use crate::error::GatewayError;

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
