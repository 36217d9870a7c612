//! Security: the token the gateway reads (`auth.header` with `auth.prefix`, and
//! `auth.query_parameter` when set) as security schemes, and each route's `auth` as the
//! operation's requirements — the scopes it requires listed in each requirement (OpenAPI 3.1
//! allows role names for non-OAuth schemes). An `optional` route also lists the empty
//! requirement `{}`: anonymous calls pass.

use serde_json::{Map, Value, json};

use crate::config::{AuthConfig, AuthMode, RouteAuth};

/// The scheme of a token in the header.
const HEADER_SCHEME: &str = "bearerAuth";
/// The scheme of a token in the query.
const QUERY_SCHEME: &str = "tokenQuery";

/// The security schemes of `auth`, or `None` when no route looks at tokens.
pub(crate) fn schemes(auth: &AuthConfig, used: bool) -> Option<Value> {
    if !used {
        return None;
    }
    let mut out = Map::new();
    let header = if auth.header == "authorization" && auth.prefix.eq_ignore_ascii_case("bearer") {
        json!({
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "a JWT from one of the configured providers",
        })
    } else {
        json!({
            "type": "apiKey",
            "in": "header",
            "name": auth.header,
            "description": format!("a JWT from one of the configured providers, as `{} <token>`", auth.prefix),
        })
    };
    out.insert(HEADER_SCHEME.to_owned(), header);
    if let Some(name) = &auth.query_parameter {
        out.insert(
            QUERY_SCHEME.to_owned(),
            json!({ "type": "apiKey", "in": "query", "name": name, "description": "a JWT in the query" }),
        );
    }
    Some(Value::Object(out))
}

/// The `security` of an operation of a route with `rules`; `None` when the route takes no token.
pub(crate) fn requirements(rules: &RouteAuth, auth: &AuthConfig) -> Option<Value> {
    if rules.mode == AuthMode::None {
        return None;
    }
    let scopes = json!(rules.require_scopes);
    let mut list = vec![json!({ HEADER_SCHEME: scopes })];
    if auth.query_parameter.is_some() {
        list.push(json!({ QUERY_SCHEME: scopes }));
    }
    if rules.mode == AuthMode::Optional {
        list.push(json!({}));
    }
    Some(Value::Array(list))
}
