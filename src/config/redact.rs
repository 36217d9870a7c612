//! The one way a URL from the config is shown anywhere: `/config`, log lines and config errors.
//! User info (`user:password@`) and the query (`?api_key=…`) may carry credentials, so both are
//! replaced by `<redacted>`; the scheme, host, port and path stay, so an operator can still tell
//! which endpoint is meant.

/// `url` without its user info and query: `https://user:pw@idp.example/jwks?key=k` is
/// `https://<redacted>@idp.example/jwks?<redacted>`. Any text is accepted (a URL that does not
/// parse is still redacted the same way); a fragment is dropped.
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, url),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let path_end = tail.find(['?', '#']).unwrap_or(tail.len());
    let (path, after) = tail.split_at(path_end);
    let mut out = String::with_capacity(url.len());
    if let Some(scheme) = scheme {
        out.push_str(scheme);
        out.push_str("://");
    }
    match authority.rsplit_once('@') {
        Some((_, host)) => {
            out.push_str("<redacted>@");
            out.push_str(host);
        }
        None => out.push_str(authority),
    }
    out.push_str(path);
    if after.starts_with('?') {
        out.push_str("?<redacted>");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_info_and_query_are_redacted_and_the_endpoint_kept() {
        let cases = [
            (
                "https://user:pw@idp.example:8443/keys.json?token=abc",
                "https://<redacted>@idp.example:8443/keys.json?<redacted>",
            ),
            ("http://127.0.0.1:9/jwks", "http://127.0.0.1:9/jwks"),
            (
                "https://idp.example?api_key=k#frag",
                "https://idp.example?<redacted>",
            ),
            ("https://idp.example/a#frag", "https://idp.example/a"),
            (
                "redis://:s3cret@redis.internal:6379/0",
                "redis://<redacted>@redis.internal:6379/0",
            ),
            ("user:pw@host/x?k=v", "<redacted>@host/x?<redacted>"),
            ("not a url", "not a url"),
        ];
        for (url, shown) in cases {
            assert_eq!(redact_url(url), shown, "{url}");
        }
    }
}
