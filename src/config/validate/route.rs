//! Checks of `routes[]`: what each route exposes, through which upstream, its HttpRules, and the
//! per-route overrides of the top-level `transcoding:` and `headers:` sections.

use std::time::Duration;

use super::checker::{Checker, place};
use super::transcoding::{header_rules, transcoding};
use super::{auth, cache, cors, events, rate_limit, resilience};
use crate::config::cache::RouteCacheConfig;
use crate::config::cors::CorsConfig;
use crate::config::error::{Located, Place};
use crate::config::events::RouteEventsConfig;
use crate::config::raw::{At, RawConfig, RawHttpRule, RawRoute};
use crate::config::route::{
    ConfigHttpRule, HeaderRules, MethodSelector, RouteConfig, TranscodingOptions,
};
use crate::config::upstream::UpstreamConfig;

/// `routes[].timeout` when absent.
pub(super) const DEFAULT_ROUTE_TIMEOUT: Duration = Duration::from_secs(10);

/// What every route is checked against: the whole file, the valid upstreams, and the top-level
/// options each route starts from.
struct Context<'a> {
    raw: &'a RawConfig,
    upstreams: &'a [UpstreamConfig],
    transcoding: TranscodingOptions,
    headers: HeaderRules,
}

/// Every valid route, in file order; at least one is required and names must be unique.
pub(super) fn routes(
    c: &mut Checker<'_>,
    raw: &RawConfig,
    upstreams: &[UpstreamConfig],
) -> Vec<RouteConfig> {
    let context = Context {
        raw,
        upstreams,
        transcoding: transcoding(
            c,
            &TranscodingOptions::default(),
            &raw.transcoding,
            "transcoding",
        ),
        headers: header_rules(c, &HeaderRules::default(), &raw.headers, "headers"),
    };
    let routes = raw
        .routes
        .iter()
        .enumerate()
        .filter_map(|(i, r)| route(c, &context, i, r))
        .collect::<Vec<_>>();
    if raw.routes.is_empty() {
        c.error(Place::default(), "routes", "at least one route is required");
    }
    let mut names: Vec<&str> = routes.iter().map(|r| r.name.as_str()).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        c.error(
            Place::default(),
            "routes",
            format!("route name `{}` is used twice", w[0]),
        );
    }
    routes
}

/// `routes[index]`; `None` when its upstream or what it exposes is unusable.
fn route(
    c: &mut Checker<'_>,
    context: &Context<'_>,
    index: usize,
    r: &RawRoute,
) -> Option<RouteConfig> {
    let key = format!("routes[{index}]");
    let at = place(&r.upstream);
    let upstream = route_upstream(c, context, r, &key);
    let selector = selector(c, r, &key);
    let timeout = r
        .timeout
        .as_ref()
        .and_then(|t| c.duration(t, &format!("{key}.timeout")))
        .unwrap_or(DEFAULT_ROUTE_TIMEOUT);
    let http_rules = http_rules(c, r, &key);
    let transcoding = transcoding(
        c,
        &context.transcoding,
        &r.transcoding,
        &format!("{key}.transcoding"),
    );
    let headers = route_headers(c, context, r, &key);
    let retry = resilience::route_retry(c, r, &key);
    let auth = auth::route_auth(c, &key, r.auth.as_ref(), context.raw.auth.as_ref());
    let rate_limits =
        rate_limit::route_limits(c, &key, &r.rate_limits, context.raw.rate_limits.as_ref());
    let (cors, cache, events) = cors_cache_events(c, r, &key);
    Some(RouteConfig {
        name: route_name(index, r),
        key,
        // Descriptor errors about the route (unknown service, collisions) point at its service.
        place: r.service.as_ref().map_or(at, place),
        selector: selector?,
        upstream: upstream?,
        timeout,
        auto_mapping: r.auto_mapping.unwrap_or(false),
        http_rules,
        transcoding,
        headers,
        retry,
        auth,
        rate_limits,
        cors,
        cache,
        events,
    })
}

/// `routes[i].cors`, `routes[i].cache` and `routes[i].events`, when present and valid.
fn cors_cache_events(
    c: &mut Checker<'_>,
    r: &RawRoute,
    key: &str,
) -> (
    Option<CorsConfig>,
    Option<RouteCacheConfig>,
    Option<RouteEventsConfig>,
) {
    let cors = r
        .cors
        .as_ref()
        .and_then(|raw| cors::cors(c, raw, &format!("{key}.cors")));
    let cache = r
        .cache
        .as_ref()
        .and_then(|raw| cache::route_cache(c, raw, &format!("{key}.cache")));
    let service = r.service.as_ref().map(|s| s.value.as_str());
    let events = r
        .events
        .as_ref()
        .and_then(|raw| events::route_events(c, raw, service, &format!("{key}.events")));
    (cors, cache, events)
}

/// `routes[i].headers` over the top-level `headers:` section.
fn route_headers(
    c: &mut Checker<'_>,
    context: &Context<'_>,
    r: &RawRoute,
    key: &str,
) -> HeaderRules {
    match &r.headers {
        Some(h) => header_rules(c, &context.headers, h, &format!("{key}.headers")),
        None => context.headers.clone(),
    }
}

/// `routes[i].name`, or the service it exposes, or `route-<i>`.
pub(super) fn route_name(index: usize, r: &RawRoute) -> String {
    match &r.name {
        Some(n) => n.value.clone(),
        None => match &r.service {
            Some(s) => s.value.clone(),
            None => format!("route-{index}"),
        },
    }
}

/// `routes[i].upstream`: the index of a valid upstream of that name.
fn route_upstream(
    c: &mut Checker<'_>,
    context: &Context<'_>,
    r: &RawRoute,
    key: &str,
) -> Option<usize> {
    let name = &r.upstream.value;
    if let Some(i) = context.upstreams.iter().position(|u| &u.name == name) {
        return Some(i);
    }
    let reason = if context.raw.upstreams.contains_key(name) {
        "upstream is invalid (see its own error)".to_owned()
    } else {
        let known: Vec<&str> = context.raw.upstreams.keys().map(String::as_str).collect();
        format!("unknown upstream `{name}` (known: {})", known.join(", "))
    };
    c.error(place(&r.upstream), format!("{key}.upstream"), reason);
    None
}

/// `routes[i].service` and/or `routes[i].methods`: what the route exposes.
fn selector(c: &mut Checker<'_>, r: &RawRoute, key: &str) -> Option<MethodSelector> {
    match (&r.service, &r.methods) {
        (Some(service), None) => Some(MethodSelector::Service(service.value.clone())),
        (service, Some(methods)) if !methods.is_empty() => Some(MethodSelector::Methods(
            methods
                .iter()
                .enumerate()
                .map(|(i, m)| Located {
                    value: qualified(service.as_ref(), &m.value),
                    place: place(m),
                    key: format!("{key}.methods[{i}]"),
                })
                .collect(),
        )),
        _ => {
            c.error(
                place(&r.upstream),
                key,
                "needs `service` or a non-empty `methods` list",
            );
            None
        }
    }
}

/// A method name as `pkg.Service/Method`: a bare name is qualified by the route's service.
fn qualified(service: Option<&At<String>>, method: &str) -> String {
    match service {
        Some(s) if !method.contains('/') => format!("{}/{}", s.value, method),
        _ => method.to_owned(),
    }
}

/// `routes[i].http_rules`: the valid ones, in file order.
fn http_rules(c: &mut Checker<'_>, r: &RawRoute, key: &str) -> Vec<ConfigHttpRule> {
    r.http_rules
        .iter()
        .enumerate()
        .filter_map(|(i, rule)| {
            let rule_key = format!("{key}.http_rules[{i}]");
            http_rule(c, rule, r.service.as_ref(), &rule_key)
        })
        .collect()
}

/// `routes[i].http_rules[j]`: exactly one HTTP method with its path template.
fn http_rule(
    c: &mut Checker<'_>,
    rule: &RawHttpRule,
    service: Option<&At<String>>,
    key: &str,
) -> Option<ConfigHttpRule> {
    let patterns = [
        ("GET", &rule.get),
        ("PUT", &rule.put),
        ("POST", &rule.post),
        ("DELETE", &rule.delete),
        ("PATCH", &rule.patch),
    ];
    let mut found: Vec<(String, &At<String>)> = patterns
        .iter()
        .filter_map(|(m, v)| v.as_ref().map(|v| ((*m).to_owned(), v)))
        .collect();
    if let Some(custom) = &rule.custom {
        found.push((custom.kind.value.to_ascii_uppercase(), &custom.path));
    }
    let [(http_method, template)] = found.as_slice() else {
        c.error(
            place(&rule.method),
            key,
            "needs exactly one of get, put, post, delete, patch, custom",
        );
        return None;
    };
    let text =
        |value: &Option<At<String>>| value.as_ref().map(|b| b.value.clone()).unwrap_or_default();
    Some(ConfigHttpRule {
        method: Located {
            value: qualified(service, &rule.method.value),
            place: place(&rule.method),
            key: format!("{key}.method"),
        },
        http_method: http_method.clone(),
        template: Located {
            value: template.value.clone(),
            place: place(template),
            key: key.to_owned(),
        },
        body: text(&rule.body),
        response_body: text(&rule.response_body),
    })
}
