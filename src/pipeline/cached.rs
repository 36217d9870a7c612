//! The cache step around transcoded calls: GET bindings of routes with `cache:` are answered from
//! the response cache ([`crate::state::cache`]) or fetched once per key (concurrent misses wait
//! for the one call: request coalescing); every other binding is a write, whose success
//! invalidates what it may have changed before its answer is returned.
//!
//! What may be cached: a 200 whole-body answer without `Set-Cookie` (nor a backend
//! `Cache-Control: no-store` / `private`), to a GET without credentials — or, on a
//! `per_subject` route, with a verified subject, which is then part of the key. A client's
//! `Cache-Control: no-cache` skips the lookup but stores the fresh answer; `no-store` skips both.
//!
//! Answers say what happened in `Cache-Status` (RFC 9211) and, when served from the cache, `Age`:
//!
//! | case | `Cache-Status` | metric `result` |
//! |---|---|---|
//! | fresh entry | `tai-gateway; hit; ttl=N` (+ `Age`) | `hit` |
//! | waited for another request's call | `tai-gateway; fwd=miss; collapsed` | `collapsed` |
//! | no entry | `tai-gateway; fwd=miss[; stored; ttl=N]` | `miss` |
//! | expired entry | `tai-gateway; fwd=stale[; stored; ttl=N]` | `stale` |
//! | client's `no-cache` / `no-store` | `tai-gateway; fwd=request[; stored; ttl=N]` | `bypass` |
//! | credentials on a route without `per_subject` | `tai-gateway; fwd=bypass` | `bypass` |

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode, Uri, header};
use http_body_util::Full;

use super::answer::{Answer, Failure, HttpCall};
use super::outcome::Outcome;
use super::unary;
use crate::body::{RequestBody, ResponseBody};
use crate::config::RouteCacheConfig;
use crate::runtime::Binding;
use crate::state::cache::{
    CachedAnswer, Joined, KeyParts, Leader, Lookup, ResponseCache, Stored, cache_key,
};
use crate::upstream::{ATTEMPTS_HEADER, UpstreamError};

/// `Cache-Status` (RFC 9211).
const CACHE_STATUS: HeaderName = HeaderName::from_static("cache-status");
/// The cache's name in `Cache-Status`.
const CACHE_NAME: &str = "tai-gateway";
/// Lookups a request makes at most when the misses it waits for are abandoned.
const LOOKUPS: usize = 2;

/// A write's invalidation, noted before its call consumes the request.
pub(crate) struct Write<'a> {
    cache: &'a ResponseCache,
    binding: Arc<Binding>,
    uri: Uri,
}

impl<'a> Write<'a> {
    /// The invalidation a call makes if it succeeds: every binding but GET is a write.
    pub(crate) fn of<B>(call: &HttpCall<'a, B>) -> Option<Write<'a>> {
        (call.binding.http_method != "GET").then(|| Write {
            cache: &call.runtime.cache,
            binding: call.binding.clone(),
            uri: call.request.uri().clone(),
        })
    }

    /// Invalidates the write's tags (after a successful answer).
    async fn apply(self) {
        let extra = self.binding.method.options.cache.as_ref();
        let extra = extra.map_or(&[][..], |c| &c.invalidates[..]);
        let tags = self.binding.tags.write_tags(self.uri.path(), extra);
        let dropped = self.cache.invalidate(&tags).await;
        tracing::debug!(?tags, dropped, "write invalidated cached answers");
    }
}

/// `answer`, after invalidating for `write` (streamed calls: once their answer's head is known).
pub(crate) async fn after(
    write: Option<Write<'_>>,
    answer: impl Future<Output = Answer>,
) -> Answer {
    let answer = answer.await;
    // Bodies are not `Sync`: the answer cannot be borrowed across the invalidation's `.await`.
    let success = answer.as_ref().is_ok_and(|r| r.status().is_success());
    if let Some(write) = write.filter(|_| success) {
        write.apply().await;
    }
    answer
}

/// A unary call through the cache step.
pub(crate) async fn unary<B: RequestBody>(
    call: HttpCall<'_, B>,
    write: Option<Write<'_>>,
    outcome: &mut Outcome,
) -> Answer {
    let policy = call.binding.method.options.cache.clone();
    match (write, policy) {
        (None, Some(policy)) => read(call, &policy, outcome).await,
        (write, _) => after(write, unary::call(call, outcome)).await,
    }
}

/// What the client's `Cache-Control` asks of the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Directive {
    Normal,
    /// Skip the lookup, store the fresh answer.
    NoCache,
    /// Skip the lookup, store nothing.
    NoStore,
}

impl Directive {
    fn of(headers: &HeaderMap) -> Directive {
        let mut directive = Directive::Normal;
        for value in headers.get_all(header::CACHE_CONTROL) {
            for token in value.to_str().unwrap_or_default().split(',') {
                match token.trim().to_ascii_lowercase().as_str() {
                    "no-store" => return Directive::NoStore,
                    "no-cache" => directive = Directive::NoCache,
                    _ => {}
                }
            }
        }
        directive
    }
}

/// A cacheable GET: from the cache, or fetched once for everyone waiting on its key.
async fn read<B: RequestBody>(
    call: HttpCall<'_, B>,
    policy: &RouteCacheConfig,
    outcome: &mut Outcome,
) -> Answer {
    let cache = &call.runtime.cache;
    let Some(key) = key(&call, policy, outcome) else {
        outcome.cache = Some("bypass");
        return labelled(unary::call(call, outcome).await, "fwd=bypass");
    };
    let tags = call.binding.tags.entry_tags(call.request.uri().path());
    let directive = Directive::of(call.request.headers());
    if directive != Directive::Normal {
        outcome.cache = Some("bypass");
        if directive == Directive::NoStore {
            return labelled(unary::call(call, outcome).await, "fwd=request");
        }
        let leader = cache.refresh(key, &tags);
        return fetch(call, leader, policy, "fwd=request", outcome).await;
    }
    for _ in 0..LOOKUPS {
        let follower = match cache.lookup(key.clone(), &tags) {
            Lookup::Hit(entry) => {
                outcome.cache = Some("hit");
                return Ok(hit(&entry));
            }
            Lookup::Lead(leader) => return lead(call, leader, policy, outcome).await,
            Lookup::Follow(follower) => follower,
        };
        match follower.wait(call.admitted.deadline).await {
            Joined::Answer(entry) => {
                outcome.cache = Some("collapsed");
                return Ok(served(&entry, "fwd=miss; collapsed".to_owned(), None));
            }
            Joined::Alone => break,
            Joined::Again => continue,
            Joined::TimedOut => return Err(timed_out(&call)),
        }
    }
    outcome.cache = Some("miss");
    labelled(unary::call(call, outcome).await, "fwd=miss")
}

/// The key of a cacheable request; `None` when it carries credentials the route does not key on.
fn key<B>(
    call: &HttpCall<'_, B>,
    policy: &RouteCacheConfig,
    outcome: &Outcome,
) -> Option<Arc<str>> {
    let headers = call.request.headers();
    let subject = outcome.admission.subject.as_deref();
    let credentials = headers.contains_key(header::AUTHORIZATION) || subject.is_some();
    // A token the gateway did not verify (no subject) cannot key an answer.
    if credentials && !(policy.per_subject && subject.is_some()) {
        return None;
    }
    Some(cache_key(&KeyParts {
        uri: call.request.uri(),
        headers,
        query: call.admitted.query.as_deref(),
        vary: &policy.vary,
        subject,
    }))
}

/// Leads a miss: the shared tier's answer, or the backend's.
async fn lead<B: RequestBody>(
    call: HttpCall<'_, B>,
    leader: Leader<'_>,
    policy: &RouteCacheConfig,
    outcome: &mut Outcome,
) -> Answer {
    let stale = leader.stale();
    let leader = match leader.shared_hit().await {
        Ok(entry) => {
            outcome.cache = Some("hit");
            return Ok(hit(&entry));
        }
        Err(leader) => leader,
    };
    let (result, forward) = if stale {
        ("stale", "fwd=stale")
    } else {
        ("miss", "fwd=miss")
    };
    outcome.cache = Some(result);
    fetch(call, leader, policy, forward, outcome).await
}

/// Calls the backend for `leader`'s key and lands the answer (stored when cacheable).
async fn fetch<B: RequestBody>(
    call: HttpCall<'_, B>,
    leader: Leader<'_>,
    policy: &RouteCacheConfig,
    forward: &str,
    outcome: &mut Outcome,
) -> Answer {
    let answer = unary::call(call, outcome).await;
    let (answer, cacheable) = cacheable(answer);
    match leader.land(cacheable, policy.ttl).await {
        Some(entry) => {
            let ttl = entry.ttl_left(entry.stored_at).as_secs();
            labelled(answer, &format!("{forward}; stored; ttl={ttl}"))
        }
        None => labelled(answer, forward),
    }
}

/// The answer, and what the cache may keep of it (a 200 whole body without per-user state).
fn cacheable(answer: Answer) -> (Answer, Option<CachedAnswer>) {
    let response = match answer {
        Ok(r)
            if r.status() == StatusCode::OK && !r.body().is_stream() && shareable(r.headers()) =>
        {
            r
        }
        other => return (other, None),
    };
    let (parts, body) = response.into_parts();
    let body = body.into_whole().unwrap_or_default();
    let mut headers = parts.headers.clone();
    headers.remove(ATTEMPTS_HEADER);
    let kept = CachedAnswer {
        headers,
        body: body.clone(),
    };
    (
        Ok(Response::from_parts(parts, Full::new(body).into())),
        Some(kept),
    )
}

/// False for answers that set cookies or that the backend marked private or not to be stored.
fn shareable(headers: &HeaderMap) -> bool {
    let refused = headers.get_all(header::CACHE_CONTROL).iter().any(|v| {
        let text = v.to_str().unwrap_or_default().to_ascii_lowercase();
        text.contains("no-store") || text.contains("private")
    });
    !refused && !headers.contains_key(header::SET_COOKIE)
}

/// A fresh entry as a hit: `Cache-Status` with its remaining lifetime, and its `Age`.
fn hit(entry: &Stored) -> Response<ResponseBody> {
    let now = tokio::time::Instant::now();
    let ttl = entry.ttl_left(now).as_secs();
    served(
        entry,
        format!("hit; ttl={ttl}"),
        Some(entry.age(now).as_secs()),
    )
}

/// A response built from a stored entry.
fn served(entry: &Stored, status: String, age: Option<u64>) -> Response<ResponseBody> {
    let body = Full::new(Bytes::clone(&entry.answer.body));
    let mut response = Response::new(body.into());
    let headers = response.headers_mut();
    headers.clone_from(&entry.answer.headers);
    set_status(headers, &status);
    if let Some(age) = age {
        headers.insert(header::AGE, HeaderValue::from(age));
    }
    response
}

/// `answer` (response or failure) with `Cache-Status: tai-gateway; {status}`.
#[allow(clippy::result_large_err)] // the error path is cold; `Failure` is the pipeline's one shape
fn labelled(mut answer: Answer, status: &str) -> Answer {
    match &mut answer {
        Ok(response) => set_status(response.headers_mut(), status),
        Err(Failure { headers, .. }) => set_status(headers, status),
    }
    answer
}

fn set_status(headers: &mut HeaderMap, status: &str) {
    if let Ok(value) = HeaderValue::from_str(&format!("{CACHE_NAME}; {status}")) {
        headers.insert(CACHE_STATUS, value);
    }
}

/// The failure of a request whose deadline passed while it waited for another's call.
fn timed_out<B>(call: &HttpCall<'_, B>) -> Failure {
    let mut failure = Failure::from(UpstreamError::DeadlineExceeded {
        upstream: call.binding.method.upstream.name.clone(),
        timeout: call.admitted.deadline,
    });
    set_status(&mut failure.headers, "fwd=miss; collapsed");
    failure
}
