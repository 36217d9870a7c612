//! Which protocol a request speaks, read from its method and content type before anything else:
//! it decides how the request is routed (HTTP rule or gRPC method path) and how a failure is
//! answered (a JSON `google.rpc.Status`, or a trailers-only gRPC status).

use http::{HeaderMap, Method, header};

/// The protocol of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP/JSON, transcoded by the route's HTTP rule.
    Json,
    /// Native gRPC (`application/grpc`, `+proto`, ...), passed through.
    Grpc,
    /// gRPC-Web (`application/grpc-web`, `+proto`), passed through as gRPC.
    GrpcWeb {
        /// `application/grpc-web-text`: bodies are base64 text both ways.
        text: bool,
    },
}

impl Protocol {
    /// A `POST` with one of the gRPC content types is gRPC or gRPC-Web; anything else is JSON.
    pub fn of(method: &Method, headers: &HeaderMap) -> Protocol {
        if method != Method::POST {
            return Protocol::Json;
        }
        let Some(value) = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
        else {
            return Protocol::Json;
        };
        let essence = value
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        let Some(subtype) = essence.strip_prefix("application/grpc") else {
            return Protocol::Json;
        };
        let plain = |rest: &str| rest.is_empty() || rest.starts_with('+');
        let grpc = if let Some(rest) = subtype.strip_prefix("-web-text") {
            plain(rest).then_some(Protocol::GrpcWeb { text: true })
        } else if let Some(rest) = subtype.strip_prefix("-web") {
            plain(rest).then_some(Protocol::GrpcWeb { text: false })
        } else {
            plain(subtype).then_some(Protocol::Grpc)
        };
        grpc.unwrap_or(Protocol::Json)
    }

    /// True for native gRPC and gRPC-Web.
    pub fn is_grpc(self) -> bool {
        self != Protocol::Json
    }

    /// The content type of the gateway's answers in this protocol.
    pub fn content_type(self) -> &'static str {
        match self {
            Protocol::Json => "application/json",
            Protocol::Grpc => "application/grpc",
            Protocol::GrpcWeb { text: false } => "application/grpc-web+proto",
            Protocol::GrpcWeb { text: true } => "application/grpc-web-text+proto",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn recognises_grpc_content_types() {
        let of = |ct: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_str(ct).expect("ct"));
            Protocol::of(&Method::POST, &headers)
        };
        assert_eq!(of("application/grpc"), Protocol::Grpc);
        assert_eq!(of("application/grpc+proto"), Protocol::Grpc);
        assert_eq!(
            of("application/grpc-web"),
            Protocol::GrpcWeb { text: false }
        );
        assert_eq!(
            of("application/grpc-web+proto"),
            Protocol::GrpcWeb { text: false }
        );
        assert_eq!(
            of("application/grpc-web-text"),
            Protocol::GrpcWeb { text: true }
        );
        assert_eq!(of("application/grpcx"), Protocol::Json);
        assert_eq!(of("application/json"), Protocol::Json);
    }

    #[test]
    fn only_a_post_can_be_grpc() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/grpc"),
        );
        assert_eq!(Protocol::of(&Method::GET, &headers), Protocol::Json);
    }
}
