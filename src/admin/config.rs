//! `GET /config`: the effective config. Built field by field (not by serialising `Config`), so a
//! field is only shown once someone decides it is safe to: secrets added later stay out by
//! default. One function per section; the edge sections come from `edge.rs`.

use std::path::PathBuf;

use serde_json::{Value, json};

use super::edge;
use super::format::{code_names, duration, paths};
use crate::config::{
    AccessLogTarget, Config, DescriptorSources, Located, MethodSelector, OtlpProtocol, RetryConfig,
    RouteConfig, TracingConfig, TranscodingOptions, UpstreamConfig, redact_url,
};

/// The effective config (see the module doc).
pub fn config_json(config: &Config) -> Value {
    let ops = &config.ops;
    let mut value = json!({
        "source": config.source.display().to_string(),
        "listeners": config.listeners.iter().map(edge::listener_json).collect::<Vec<_>>(),
        "admin": config.admin.map(|a| a.to_string()),
        "descriptors": descriptors_json(&config.descriptors),
        "upstreams": config.upstreams.iter().map(upstream_json).collect::<Vec<_>>(),
        "routes": config.routes.iter().map(|r| route_json(config, r)).collect::<Vec<_>>(),
        "limits": {
            "max_header_bytes": config.limits.max_header_bytes,
            "header_read_timeout": duration(config.limits.header_read_timeout),
        },
        "workers": config.workers.threads(crate::workers::available()),
        "path_unescape": format!("{:?}", config.path_unescape),
        "reload": { "watch": ops.watch, "poll_interval": duration(ops.poll_interval) },
        "access_log": access_log_json(ops.access_log.as_ref()),
        "log_level": ops.log_level,
        "shutdown": { "drain_timeout": duration(ops.drain_timeout) },
        "tracing": tracing_json(&ops.tracing),
        "cache": {
            "max_entries": config.cache.max_entries,
            "max_bytes": config.cache.max_bytes,
            "max_entry_bytes": config.cache.max_entry_bytes,
        },
    });
    edge::extend_config(&mut value, config);
    value
}

fn descriptors_json(d: &DescriptorSources) -> Value {
    json!({
        "proto_dirs": paths(&d.proto_dirs),
        "proto_files": paths(&d.proto_files),
        "include_paths": paths(&d.include_paths),
        "descriptor_sets": paths(&d.descriptor_sets),
        "refresh_interval": duration(d.refresh_interval),
    })
}

fn access_log_json(target: Option<&AccessLogTarget>) -> Value {
    match target {
        None => json!({ "enabled": false }),
        Some(AccessLogTarget::Stdout) => json!({ "enabled": true, "path": "stdout" }),
        Some(AccessLogTarget::File(p)) => {
            json!({ "enabled": true, "path": p.display().to_string() })
        }
    }
}

/// The file's `tracing:` keys (the `OTEL_*` variables may complete them at start); the
/// endpoint without any credentials in it.
fn tracing_json(t: &TracingConfig) -> Value {
    json!({
        "otlp": {
            "endpoint": t.endpoint.as_deref().map(redact_url),
            "protocol": t.protocol.map(|p| match p {
                OtlpProtocol::Grpc => "grpc",
                OtlpProtocol::Http => "http",
            }),
        },
        "sampling_ratio": t.sampling_ratio.map(|r| r.get()),
        "service_name": t.service_name,
    })
}

fn upstream_json(u: &UpstreamConfig) -> Value {
    json!({
        "name": u.name,
        "address": u.authority,
        "connect_timeout": duration(u.connect_timeout),
        "max_response_bytes": u.max_response_bytes,
        "endpoints": u.endpoints,
        "resolve_interval": duration(u.resolve_interval),
        "reflection": u.reflection,
        "send_compressed": if u.send_gzip_from.is_some() { "gzip" } else { "identity" },
        "send_compressed_min_size": u.send_gzip_from,
        "retry": retry_json(&u.retry),
        "circuit_breaker": {
            "consecutive_failures": u.circuit_breaker.consecutive_failures,
            "open_for": duration(u.circuit_breaker.open_for),
            "half_open_successes": u.circuit_breaker.half_open_successes,
            "failure_codes": code_names(&u.circuit_breaker.failure_codes),
            "distinct_client_codes": code_names(&u.circuit_breaker.distinct_client_codes),
            "distinct_clients": u.circuit_breaker.distinct_clients,
        },
        "health_check": u.health_check.as_ref().map(|h| json!({
            "interval": duration(h.interval),
            "timeout": duration(h.timeout),
            "unhealthy_threshold": h.unhealthy_threshold,
            "healthy_threshold": h.healthy_threshold,
            "service": h.service,
        })),
        "tls": u.tls.as_ref().map(|t| {
            let path = |p: &Option<Located<PathBuf>>| p.as_ref().map(|p| p.value.display().to_string());
            json!({
                "ca": path(&t.ca),
                "client_cert": path(&t.client_cert),
                "client_key": path(&t.client_key),
                "server_name": t.server_name,
                "reload_interval": duration(t.reload_interval),
            })
        }),
    })
}

fn retry_json(r: &RetryConfig) -> Value {
    json!({
        "max_retries": r.max_retries,
        "base_backoff": duration(r.base_backoff),
        "max_backoff": duration(r.max_backoff),
        "jitter": r.jitter.0,
        "budget_ratio": r.budget_ratio.0,
        "budget_min_retries": r.budget_min_retries,
        "retryable_codes": code_names(&r.retryable_codes),
    })
}

fn route_json(config: &Config, r: &RouteConfig) -> Value {
    let (service, methods) = match &r.selector {
        MethodSelector::Service(s) => (Some(s.clone()), None),
        MethodSelector::Methods(m) => (
            None,
            Some(m.iter().map(|m| m.value.clone()).collect::<Vec<_>>()),
        ),
    };
    json!({
        "name": r.name,
        "service": service,
        "methods": methods,
        "upstream": config.upstreams.get(r.upstream).map(|u| u.name.as_str()),
        "timeout": duration(r.timeout),
        "retry": {
            "retryable": r.retry.retryable,
            "retry_on": r.retry.retry_on.as_deref().map(code_names),
            "per_try_timeout": r.retry.per_try_timeout.map(duration),
        },
        "auto_mapping": r.auto_mapping,
        "http_rules": r.http_rules.iter().map(|h| json!({
            "method": h.method.value,
            "http_method": h.http_method,
            "template": h.template.value,
            "body": h.body,
            "response_body": h.response_body,
        })).collect::<Vec<_>>(),
        "transcoding": transcoding_json(&r.transcoding),
        "headers": {
            "request_to_metadata": r.headers.request_to_metadata,
            "metadata_to_response": r.headers.metadata_to_response,
        },
        "cache": r.cache.as_ref().map(|c| json!({
            "ttl": duration(c.ttl),
            "per_subject": c.per_subject,
            "vary": c.vary,
            "invalidates": c.invalidates,
        })),
    })
}

fn transcoding_json(t: &TranscodingOptions) -> Value {
    json!({
        "ignore_unknown_fields": t.ignore_unknown_fields,
        "ignore_unknown_query_parameters": t.ignore_unknown_query_parameters,
        "ignored_query_parameters": t.ignored_query_parameters,
        "query_unescape_plus": t.query_unescape_plus,
        "emit_defaults": t.emit_defaults,
        "proto_field_names": t.proto_field_names,
        "enums_as_ints": t.enums_as_ints,
        "max_json_depth": t.max_json_depth,
        "max_request_bytes": t.max_request_bytes,
    })
}
