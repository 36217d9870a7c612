//! Checks of the `tracing:` section into a [`TracingConfig`]: the collector endpoint must be a
//! plain `http://host[:port]` URL, the protocol `grpc` or `http`, the ratio within 0 to 1.

use super::checker::{Checker, place};
use crate::config::raw::RawTracing;
use crate::config::tracing::{OtlpProtocol, SamplingRatio, TracingConfig};

/// The `tracing:` section; keys left out stay `None` (the environment may fill them at start).
pub(super) fn tracing(c: &mut Checker<'_>, raw: &RawTracing) -> TracingConfig {
    let mut tracing = TracingConfig::default();
    if let Some(otlp) = &raw.otlp {
        if let Some(v) = &otlp.endpoint {
            let text = v.value.trim();
            match text.parse::<http::Uri>() {
                Ok(uri) if uri.scheme_str() == Some("http") && uri.authority().is_some() => {
                    tracing.endpoint = Some(text.to_owned());
                }
                Ok(uri) if uri.scheme_str() == Some("https") => c.error(
                    place(v),
                    "tracing.otlp.endpoint",
                    "https is not supported yet: use http:// (a local collector or agent)",
                ),
                _ => c.error(
                    place(v),
                    "tracing.otlp.endpoint",
                    format!("`{text}`: use http://host:port"),
                ),
            }
        }
        if let Some(v) = &otlp.protocol {
            match v.value.trim() {
                "grpc" => tracing.protocol = Some(OtlpProtocol::Grpc),
                "http" | "http/protobuf" => tracing.protocol = Some(OtlpProtocol::Http),
                other => c.error(
                    place(v),
                    "tracing.otlp.protocol",
                    format!("`{other}`: use grpc or http"),
                ),
            }
        }
    }
    if let Some(v) = &raw.sampling_ratio {
        match SamplingRatio::new(v.value) {
            Some(ratio) => tracing.sampling_ratio = Some(ratio),
            None => c.error(place(v), "tracing.sampling_ratio", "must be from 0 to 1"),
        }
    }
    if let Some(v) = &raw.service_name {
        match v.value.trim() {
            "" => c.error(place(v), "tracing.service_name", "must not be empty"),
            name => tracing.service_name = Some(name.to_owned()),
        }
    }
    tracing
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, OtlpProtocol, TracingConfig};

    const BASE: &str = "listeners:\n  http:\n    address: 127.0.0.1:0\ndescriptors:\n  proto_dirs: [p]\nupstreams:\n  a:\n    address: 127.0.0.1:1\nroutes:\n  - service: s.A\n    upstream: a\n";

    fn parse(extra: &str) -> Result<Config, String> {
        let path = std::path::Path::new("/etc/tai/g.yaml");
        Config::parse(path, &format!("{BASE}{extra}")).map_err(|e| e.to_string())
    }

    #[test]
    fn tracing_is_read_and_defaults_to_nothing_set() {
        assert_eq!(
            parse("").expect("valid").ops.tracing,
            TracingConfig::default()
        );
        let config = parse(
            "tracing:\n  otlp:\n    endpoint: http://127.0.0.1:4318\n    protocol: http\n  sampling_ratio: 0.25\n  service_name: edge\n",
        )
        .expect("valid");
        let tracing = config.ops.tracing;
        assert_eq!(tracing.endpoint.as_deref(), Some("http://127.0.0.1:4318"));
        assert_eq!(tracing.protocol, Some(OtlpProtocol::Http));
        assert_eq!(tracing.sampling_ratio.map(|r| r.get()), Some(0.25));
        assert_eq!(tracing.service_name.as_deref(), Some("edge"));
    }

    #[test]
    fn bad_tracing_keys_are_reported_with_their_place() {
        let error = parse(
            "tracing:\n  otlp:\n    endpoint: https://c:4317\n    protocol: thrift\n  sampling_ratio: 1.5\n",
        )
        .expect_err("invalid");
        assert!(error.contains("tracing.otlp.endpoint"), "{error}");
        assert!(error.contains("https is not supported"), "{error}");
        assert!(error.contains("tracing.otlp.protocol"), "{error}");
        assert!(error.contains("tracing.sampling_ratio"), "{error}");
        assert!(error.contains(":14:"), "{error}");
    }
}
