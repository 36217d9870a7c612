//! Checks of `rate_limits:` (named limits: rate, burst, what they count by, the bounds on their
//! keys) and of the limits each route applies (`routes[].rate_limits`).

use std::time::Duration;

use super::checker::{Checker, place};
use crate::config::edge::{LimitConfig, LimitKey, LimitScope, OnRedisError, RateLimitConfig};
use crate::config::raw::{At, RawLimit, RawRateLimits};
use crate::config::units::parse_duration;

/// The `rate_limits:` section, defaults filled in; invalid limits are left out.
pub(super) fn rate_limits(
    c: &mut Checker<'_>,
    raw: Option<&RawRateLimits>,
    redis: bool,
) -> RateLimitConfig {
    let mut config = RateLimitConfig::default();
    let Some(raw) = raw else { return config };
    config.trusted_proxy_hops = raw.trusted_proxy_hops;
    config.prune_interval = c.duration_or(
        raw.prune_interval.as_ref(),
        "rate_limits.prune_interval",
        config.prune_interval,
    );
    config.max_keys =
        positive(c, raw.max_keys.as_ref(), "rate_limits.max_keys").unwrap_or(config.max_keys);
    config.max_key_bytes = positive(c, raw.max_key_bytes.as_ref(), "rate_limits.max_key_bytes")
        .unwrap_or(config.max_key_bytes);
    for (name, l) in &raw.limits {
        let shared = sharing(c, name, l, redis);
        if let (Some(mut limit), Some((scope, on_redis_error))) =
            (limit(c, name, l, &config), shared)
        {
            (limit.scope, limit.on_redis_error) = (scope, on_redis_error);
            config.limits.push(limit);
        }
    }
    config
}

/// A limit's `scope` and `on_redis_error`; `scope: global` needs a `redis:` section.
fn sharing(
    c: &mut Checker<'_>,
    name: &str,
    l: &RawLimit,
    redis: bool,
) -> Option<(LimitScope, OnRedisError)> {
    let key = format!("rate_limits.limits.{name}");
    let scope = match l.scope.as_ref().map(|s| (s, s.value.as_str())) {
        None | Some((_, "local")) => Some(LimitScope::Local),
        Some((at, "global")) if !redis => {
            let reason = "scope: global counts in Redis: add a redis: section";
            c.error(place(at), format!("{key}.scope"), reason);
            None
        }
        Some((_, "global")) => Some(LimitScope::Global),
        Some((at, _)) => {
            c.error(place(at), format!("{key}.scope"), "use local or global");
            None
        }
    };
    let on_error = match l.on_redis_error.as_ref().map(|s| (s, s.value.as_str())) {
        None | Some((_, "local")) => Some(OnRedisError::Local),
        Some((_, "open")) => Some(OnRedisError::Open),
        Some((_, "closed")) => Some(OnRedisError::Closed),
        Some((at, _)) => {
            let reason = "use local (a share of the budget), open or closed";
            c.error(place(at), format!("{key}.on_redis_error"), reason);
            None
        }
    };
    Some((scope?, on_error?))
}

/// A count that must be at least 1 (`key` names it in errors); `None` when absent or 0.
fn positive(c: &mut Checker<'_>, value: Option<&At<u32>>, key: &str) -> Option<usize> {
    let value = value?;
    if value.value == 0 {
        c.error(place(value), key, "must be > 0");
        return None;
    }
    usize::try_from(value.value).ok()
}

/// `rate_limits.limits.<name>`, the section's key bounds as defaults; `None` when its rate,
/// burst or key is unusable.
fn limit(
    c: &mut Checker<'_>,
    name: &str,
    l: &RawLimit,
    section: &RateLimitConfig,
) -> Option<LimitConfig> {
    let key = format!("rate_limits.limits.{name}");
    let rate = parse_rate(&l.rate.value);
    if let Err(reason) = &rate {
        c.error(place(&l.rate), format!("{key}.rate"), reason.clone());
    }
    if l.burst.value == 0 {
        c.error(place(&l.burst), format!("{key}.burst"), "must be > 0");
    }
    let limit_key = match l.key.value.split_once(':') {
        None if l.key.value == "ip" => Some(LimitKey::Ip),
        None if l.key.value == "global" => Some(LimitKey::Global),
        Some(("claim", claim)) if !claim.is_empty() => Some(LimitKey::Claim(claim.to_owned())),
        Some(("header", header)) if http::HeaderName::try_from(header).is_ok() => {
            Some(LimitKey::Header(header.to_ascii_lowercase()))
        }
        _ => {
            let reason = "use ip, global, claim:<name> or header:<name>";
            c.error(place(&l.key), format!("{key}.key"), reason);
            None
        }
    };
    let max_keys = positive(c, l.max_keys.as_ref(), &format!("{key}.max_keys"));
    let max_key_bytes = positive(c, l.max_key_bytes.as_ref(), &format!("{key}.max_key_bytes"));
    if let (Some(bytes), Some(LimitKey::Ip | LimitKey::Global)) = (&l.max_key_bytes, &limit_key) {
        let reason = "only header: and claim: keys have a value to bound";
        c.error(place(bytes), format!("{key}.max_key_bytes"), reason);
    }
    let (per_period, period) = rate.ok()?;
    let counted_by = limit_key?;
    (l.burst.value > 0).then(|| LimitConfig {
        name: name.to_owned(),
        per_period,
        period,
        burst: l.burst.value,
        key: counted_by,
        max_keys: max_keys.unwrap_or(section.max_keys),
        max_key_bytes: max_key_bytes.unwrap_or(section.max_key_bytes),
        scope: LimitScope::Local,
        on_redis_error: OnRedisError::Local,
    })
}

/// `routes[i].rate_limits`, checked against the declared limits.
pub(super) fn route_limits(
    c: &mut Checker<'_>,
    key: &str,
    names: &[At<String>],
    limits: Option<&RawRateLimits>,
) -> Vec<String> {
    for (i, n) in names.iter().enumerate() {
        if !limits.is_some_and(|l| l.limits.contains_key(&n.value)) {
            let reason = format!("unknown rate limit `{}`", n.value);
            c.error(place(n), format!("{key}.rate_limits[{i}]"), reason);
        }
    }
    names.iter().map(|n| n.value.clone()).collect()
}

/// `100/s`, `600/m`, `3600/h`, or `5/10s`: requests per period.
fn parse_rate(text: &str) -> Result<(u32, Duration), String> {
    let bad = || format!("`{text}` is not a rate: use N/s, N/m, N/h or N/<duration>");
    let (count, period) = text.split_once('/').ok_or_else(bad)?;
    let count: u32 = count.trim().parse().map_err(|_| bad())?;
    let period = match period.trim() {
        "s" => Duration::from_secs(1),
        "m" => Duration::from_secs(60),
        "h" => Duration::from_secs(3600),
        other => parse_duration(other).map_err(|_| bad())?,
    };
    if count == 0 || period.is_zero() {
        return Err(bad());
    }
    Ok((count, period))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_take_a_count_and_a_period() {
        assert_eq!(parse_rate("10/s"), Ok((10, Duration::from_secs(1))));
        assert_eq!(parse_rate("600/m"), Ok((600, Duration::from_secs(60))));
        assert_eq!(parse_rate("5/10s"), Ok((5, Duration::from_secs(10))));
        assert!(parse_rate("0/s").is_err());
        assert!(parse_rate("ten/s").is_err());
        assert!(parse_rate("10").is_err());
    }
}
