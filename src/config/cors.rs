//! The validated `routes[].cors` section: which browser origins may call a route's methods over
//! gRPC-Web.

use std::time::Duration;

/// Cross-origin access to a route's methods from browsers (gRPC-Web).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorsConfig {
    /// Origins allowed (`https://app.example.com`); `*` allows any.
    pub allow_origins: Vec<String>,
    /// Request headers a browser may send (answered to preflights).
    pub allow_headers: Vec<String>,
    /// Response headers a browser script may read.
    pub expose_headers: Vec<String>,
    /// How long a browser may cache a preflight answer.
    pub max_age: Duration,
}

impl CorsConfig {
    /// Whether `origin` may call.
    pub fn allows(&self, origin: &str) -> bool {
        self.allow_origins.iter().any(|o| o == "*" || o == origin)
    }
}
