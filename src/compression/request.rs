//! A request body's `Content-Encoding`: identity or gzip (inflated by [`super::gzip::inflate`]
//! under the route's body limit, so a small bomb is a 413, never an allocation the size of what it
//! claims).

use http::{HeaderMap, header};

use super::gzip::InflateError;

/// How a request body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentEncoding {
    /// As is.
    Identity,
    /// gzip (or `x-gzip`).
    Gzip,
}

/// A request body the gateway cannot take as encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestEncodingError {
    /// A coding other than gzip and identity (415).
    #[error("unsupported Content-Encoding `{0}`: send the body as is or gzip-compressed")]
    Unsupported(String),
    /// A stream body (client streaming) that is compressed (415).
    #[error(
        "Content-Encoding `gzip` is not supported on streamed request bodies: send them as they are"
    )]
    Streamed,
    /// The gzip data is damaged or cut short (400).
    #[error("the request body is not valid gzip: {0}")]
    Corrupt(String),
    /// Inflated, the body passes the limit (413).
    #[error("request body exceeds the limit of {limit} bytes once decompressed")]
    TooLarge {
        /// The route's `max_request_bytes`.
        limit: usize,
    },
}

/// The request's `Content-Encoding` (several codings, or an unknown one, are refused).
pub fn content_encoding(headers: &HeaderMap) -> Result<ContentEncoding, RequestEncodingError> {
    let mut codings = Vec::new();
    for value in headers.get_all(header::CONTENT_ENCODING) {
        let text = value.to_str().map_err(|_| {
            RequestEncodingError::Unsupported(
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })?;
        codings.extend(
            text.split(',')
                .map(|c| c.trim().to_ascii_lowercase())
                .filter(|c| !c.is_empty()),
        );
    }
    codings.retain(|c| c != "identity");
    match codings.as_slice() {
        [] => Ok(ContentEncoding::Identity),
        [one] if one == "gzip" || one == "x-gzip" => Ok(ContentEncoding::Gzip),
        _ => Err(RequestEncodingError::Unsupported(codings.join(", "))),
    }
}

impl From<InflateError> for RequestEncodingError {
    fn from(error: InflateError) -> RequestEncodingError {
        match error {
            InflateError::Corrupt(reason) => RequestEncodingError::Corrupt(reason),
            InflateError::TooLarge { limit } => RequestEncodingError::TooLarge { limit },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_ENCODING, value.parse().expect("value"));
        headers
    }

    #[test]
    fn only_gzip_and_identity_are_taken() {
        assert_eq!(
            content_encoding(&HeaderMap::new()),
            Ok(ContentEncoding::Identity)
        );
        assert_eq!(
            content_encoding(&headers("identity")),
            Ok(ContentEncoding::Identity)
        );
        assert_eq!(
            content_encoding(&headers("GZIP")),
            Ok(ContentEncoding::Gzip)
        );
        assert_eq!(
            content_encoding(&headers("br")),
            Err(RequestEncodingError::Unsupported("br".into()))
        );
        assert_eq!(
            content_encoding(&headers("gzip, gzip")),
            Err(RequestEncodingError::Unsupported("gzip, gzip".into()))
        );
    }
}
