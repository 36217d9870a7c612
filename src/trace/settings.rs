//! The tracing settings in force: the `tracing:` section of `gateway.yaml`, completed by the
//! standard OpenTelemetry environment variables (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`,
//! `OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL`, `OTEL_SERVICE_NAME`,
//! `OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG`, `OTEL_TRACES_EXPORTER=none`,
//! `OTEL_SDK_DISABLED`). A key the file sets wins over its variable.

use http::Uri;

use super::context::TraceId;
use super::export::{Destination, Protocol};
use super::otlp::{GRPC_PATH, HTTP_PATH};
use crate::config::{OtlpProtocol, TracingConfig};

/// The service name spans carry when neither the file nor `OTEL_SERVICE_NAME` names one.
const DEFAULT_SERVICE_NAME: &str = "tai-gateway";

/// Which traces are sampled: parent-based (a caller's decision is followed) or not, and the
/// share of the traces it decides itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sampler {
    /// A caller's `sampled` flag decides, when there is a caller.
    pub parent_based: bool,
    /// New traces are sampled when the low 64 bits of their id are at most this (`None`:
    /// none are).
    threshold: Option<u64>,
}

impl Default for Sampler {
    /// `parentbased_always_on`, OpenTelemetry's default.
    fn default() -> Sampler {
        Sampler::ratio(1.0)
    }
}

impl Sampler {
    /// Parent-based, sampling `ratio` (0 to 1) of new traces by their id.
    pub fn ratio(ratio: f64) -> Sampler {
        let threshold = if ratio >= 1.0 {
            Some(u64::MAX)
        } else if ratio > 0.0 {
            // The float-to-int cast saturates; the ratio is below 1 here.
            Some((ratio * u64::MAX as f64) as u64)
        } else {
            None
        };
        Sampler {
            parent_based: true,
            threshold,
        }
    }

    /// The decision for trace `trace_id`, given the caller's flag when there is a caller.
    pub fn samples(&self, trace_id: TraceId, parent_sampled: Option<bool>) -> bool {
        match parent_sampled {
            Some(sampled) if self.parent_based => sampled,
            _ => self.threshold.is_some_and(|t| trace_id.low_bits() <= t),
        }
    }

    /// The sampler `OTEL_TRACES_SAMPLER` (+ `_ARG`) names.
    fn from_env(name: &str, arg: Option<&str>) -> Result<Sampler, String> {
        let ratio = || -> Result<f64, String> {
            match arg.map(str::trim) {
                None => Ok(1.0),
                Some(text) => text
                    .parse::<f64>()
                    .ok()
                    .filter(|r| (0.0..=1.0).contains(r))
                    .ok_or_else(|| format!("OTEL_TRACES_SAMPLER_ARG `{text}`: use 0 to 1")),
            }
        };
        let (parent_based, ratio) = match name.trim() {
            "always_on" => (false, 1.0),
            "always_off" => (false, 0.0),
            "traceidratio" => (false, ratio()?),
            "parentbased_always_on" => (true, 1.0),
            "parentbased_always_off" => (true, 0.0),
            "parentbased_traceidratio" => (true, ratio()?),
            other => return Err(format!("OTEL_TRACES_SAMPLER `{other}` is not supported")),
        };
        Ok(Sampler {
            parent_based,
            ..Sampler::ratio(ratio)
        })
    }
}

/// The sampler, and where spans are exported (`None`: not exported), from the `tracing:`
/// section and the environment (`env` looks a variable up).
pub fn resolve(
    config: &TracingConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(Sampler, Option<Destination>), String> {
    let sampler = match (config.sampling_ratio, env("OTEL_TRACES_SAMPLER")) {
        (Some(ratio), _) => Sampler::ratio(ratio.get()),
        (None, Some(name)) => Sampler::from_env(&name, env("OTEL_TRACES_SAMPLER_ARG").as_deref())?,
        (None, None) => Sampler::default(),
    };
    let disabled = env("OTEL_SDK_DISABLED").is_some_and(|v| v.trim() == "true")
        || env("OTEL_TRACES_EXPORTER").is_some_and(|v| v.trim() == "none");
    if disabled && config.endpoint.is_none() {
        return Ok((sampler, None));
    }
    let protocol = match config.protocol {
        Some(OtlpProtocol::Grpc) => Protocol::Grpc,
        Some(OtlpProtocol::Http) => Protocol::HttpProtobuf,
        None => env_protocol(env)?,
    };
    // The file's endpoint and the signal-specific variable are full URLs (a bare
    // `http://host:port` gets the signal's path); the general variable is a base.
    let (endpoint, base) = match (&config.endpoint, env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")) {
        (Some(endpoint), _) => (endpoint.clone(), false),
        (None, Some(endpoint)) => (endpoint, false),
        (None, None) => match env("OTEL_EXPORTER_OTLP_ENDPOINT") {
            Some(endpoint) => (endpoint, true),
            None => return Ok((sampler, None)),
        },
    };
    let uri = export_uri(endpoint.trim(), protocol, base)?;
    let service_name = config
        .service_name
        .clone()
        .or_else(|| env("OTEL_SERVICE_NAME").filter(|n| !n.trim().is_empty()))
        .unwrap_or_else(|| DEFAULT_SERVICE_NAME.to_owned());
    let destination = Destination {
        uri,
        protocol,
        service_name,
    };
    Ok((sampler, Some(destination)))
}

/// `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`, else `OTEL_EXPORTER_OTLP_PROTOCOL`, else gRPC.
fn env_protocol(env: &dyn Fn(&str) -> Option<String>) -> Result<Protocol, String> {
    let named =
        env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL").or_else(|| env("OTEL_EXPORTER_OTLP_PROTOCOL"));
    match named.as_deref().map(str::trim) {
        None | Some("grpc") => Ok(Protocol::Grpc),
        Some("http/protobuf") => Ok(Protocol::HttpProtobuf),
        Some(other) => Err(format!(
            "OTLP protocol `{other}` is not supported: use grpc or http/protobuf"
        )),
    }
}

/// The URI export requests go to: gRPC always posts to the service's method path; HTTP to the
/// endpoint's own path, or `/v1/traces` appended to a base (or to a bare `http://host:port`).
pub fn export_uri(endpoint: &str, protocol: Protocol, base: bool) -> Result<Uri, String> {
    let uri: Uri = endpoint
        .parse()
        .map_err(|e| format!("OTLP endpoint `{endpoint}`: {e}"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err(format!(
                "OTLP endpoint `{endpoint}`: https is not supported yet; use http:// (a local collector or agent)"
            ));
        }
        _ => {
            return Err(format!(
                "OTLP endpoint `{endpoint}`: must start with http://"
            ));
        }
    }
    let authority = uri
        .authority()
        .ok_or_else(|| format!("OTLP endpoint `{endpoint}`: no host"))?;
    let path = uri.path().trim_end_matches('/');
    let path = match protocol {
        Protocol::Grpc => GRPC_PATH.to_owned(),
        Protocol::HttpProtobuf if base || path.is_empty() => format!("{path}{HTTP_PATH}"),
        Protocol::HttpProtobuf => path.to_owned(),
    };
    format!("http://{authority}{path}")
        .parse()
        .map_err(|e| format!("OTLP endpoint `{endpoint}`: {e}"))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::config::SamplingRatio;

    fn with_env(
        config: &TracingConfig,
        vars: &[(&str, &str)],
    ) -> Result<(Sampler, Option<Destination>), String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        resolve(config, &|name| vars.get(name).cloned())
    }

    #[test]
    fn nothing_is_exported_without_an_endpoint() {
        let (sampler, destination) = with_env(&TracingConfig::default(), &[]).expect("valid");
        assert_eq!(sampler, Sampler::default());
        assert_eq!(destination, None);
    }

    #[test]
    fn the_environment_names_the_collector_when_the_file_does_not() {
        let (_, d) = with_env(
            &TracingConfig::default(),
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/base/"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
                ("OTEL_SERVICE_NAME", "edge"),
            ],
        )
        .expect("valid");
        let d = d.expect("exported");
        assert_eq!(d.uri, "http://collector:4318/base/v1/traces");
        assert_eq!(d.protocol, Protocol::HttpProtobuf);
        assert_eq!(d.service_name, "edge");
        let (_, d) = with_env(
            &TracingConfig::default(),
            &[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c:4317")],
        )
        .expect("valid");
        let d = d.expect("exported");
        assert_eq!(d.uri.path(), GRPC_PATH);
        assert_eq!(d.service_name, "tai-gateway");
    }

    #[test]
    fn the_files_keys_win_over_the_environment() {
        let config = TracingConfig {
            endpoint: Some("http://127.0.0.1:9000/custom".to_owned()),
            protocol: Some(OtlpProtocol::Http),
            sampling_ratio: Some(SamplingRatio::new(0.0).expect("ratio")),
            service_name: Some("gw".to_owned()),
        };
        let (sampler, d) = with_env(
            &config,
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://other:4317"),
                ("OTEL_TRACES_SAMPLER", "always_on"),
                ("OTEL_SERVICE_NAME", "edge"),
            ],
        )
        .expect("valid");
        assert_eq!(sampler, Sampler::ratio(0.0));
        let d = d.expect("exported");
        assert_eq!(d.uri, "http://127.0.0.1:9000/custom");
        assert_eq!(d.service_name, "gw");
    }

    #[test]
    fn samplers_are_read_from_the_environment() {
        let read = |name: &str, arg: Option<&str>| {
            let mut vars = vec![("OTEL_TRACES_SAMPLER", name)];
            vars.extend(arg.map(|a| ("OTEL_TRACES_SAMPLER_ARG", a)));
            with_env(&TracingConfig::default(), &vars).map(|(s, _)| s)
        };
        let id = TraceId([0xff; 16]);
        let off = read("always_off", None).expect("valid");
        assert!(!off.samples(id, Some(true)));
        let parent_off = read("parentbased_always_off", None).expect("valid");
        assert!(parent_off.samples(id, Some(true)));
        assert!(!parent_off.samples(id, None));
        let half = read("traceidratio", Some("0.5")).expect("valid");
        assert!(!half.samples(id, Some(true)));
        assert!(half.samples(TraceId([0; 16]), None));
        assert!(read("traceidratio", Some("2")).is_err());
        assert!(read("jaeger_remote", None).is_err());
    }

    #[test]
    fn only_plain_http_endpoints_are_taken() {
        assert!(export_uri("https://c:4317", Protocol::Grpc, false).is_err());
        assert!(export_uri("c:4317", Protocol::Grpc, false).is_err());
        let bare = export_uri("http://c:4318", Protocol::HttpProtobuf, false).expect("valid");
        assert_eq!(bare, "http://c:4318/v1/traces");
    }

    #[test]
    fn export_can_be_switched_off_by_the_environment() {
        let vars = [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
            ("OTEL_SDK_DISABLED", "true"),
        ];
        let (_, d) = with_env(&TracingConfig::default(), &vars).expect("valid");
        assert_eq!(d, None);
    }
}
