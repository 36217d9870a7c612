//! The docs page (`GET /docs`): the project's own small page (`index.html`, `app.js`,
//! `style.css` beside this file, embedded in the binary) that reads the document from
//! `openapi.path` on the same origin, lists the operations by service with their parameters and
//! schemas, and sends requests ("try it", deep links `#op=<operationId>&<param>=…&run=1`).
//!
//! Nothing is loaded from elsewhere, and the answers say so: a Content-Security-Policy that
//! allows only this origin's scripts, style sheets and `fetch`es (no inline script, no frames).
//! The page's only variable text is the two paths, HTML-escaped into it; each asset carries a
//! strong `ETag` like the document.

use std::sync::OnceLock;

use crate::config::OpenApiConfig;

use super::published::Form;

/// What the docs page's answers allow a browser to load: this origin only.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

const PAGE: &str = include_str!("index.html");
const SCRIPT: &str = include_str!("app.js");
const STYLE: &str = include_str!("style.css");

/// One of the docs page's paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asset {
    /// `docs_path`: the HTML page.
    Page,
    /// `<docs_path>/app.js`.
    Script,
    /// `<docs_path>/style.css`.
    Style,
}

impl Asset {
    /// The asset `path` names under `config.docs_path`, if any.
    pub fn at(config: &OpenApiConfig, path: &str) -> Option<Asset> {
        match path.strip_prefix(config.docs_path.as_str())? {
            "" => Some(Asset::Page),
            "/app.js" => Some(Asset::Script),
            "/style.css" => Some(Asset::Style),
            _ => None,
        }
    }

    /// Its `Content-Type`.
    pub fn content_type(self) -> &'static str {
        match self {
            Asset::Page => "text/html; charset=utf-8",
            Asset::Script => "text/javascript; charset=utf-8",
            Asset::Style => "text/css; charset=utf-8",
        }
    }

    /// Its bytes and tag (the page's names the configured paths; the others never change).
    pub fn form(self, config: &OpenApiConfig) -> Form {
        static SCRIPT_FORM: OnceLock<Form> = OnceLock::new();
        static STYLE_FORM: OnceLock<Form> = OnceLock::new();
        match self {
            Asset::Page => Form::of(page(config)),
            Asset::Script => SCRIPT_FORM
                .get_or_init(|| Form::of(SCRIPT.to_owned()))
                .clone(),
            Asset::Style => STYLE_FORM
                .get_or_init(|| Form::of(STYLE.to_owned()))
                .clone(),
        }
    }
}

/// The HTML page with the configured paths written into it.
fn page(config: &OpenApiConfig) -> String {
    PAGE.replace("{{DOCS}}", &escape(&config.docs_path))
        .replace("{{OPENAPI}}", &escape(&config.path))
}

/// `text` safe inside an HTML attribute value or text.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(ch),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assets_are_found_under_the_docs_path_only() {
        let config = OpenApiConfig::default();
        assert_eq!(Asset::at(&config, "/docs"), Some(Asset::Page));
        assert_eq!(Asset::at(&config, "/docs/app.js"), Some(Asset::Script));
        assert_eq!(Asset::at(&config, "/docs/style.css"), Some(Asset::Style));
        for other in ["/docs/", "/docsx", "/docs/app.jsx", "/", "/openapi.json"] {
            assert_eq!(Asset::at(&config, other), None, "{other}");
        }
    }

    #[test]
    fn the_page_names_the_configured_paths_escaped() {
        let config = OpenApiConfig {
            docs_path: "/a\"<b>".to_owned(),
            path: "/spec&.json".to_owned(),
            ..OpenApiConfig::default()
        };
        let html = page(&config);
        assert!(html.contains(r#"src="/a&quot;&lt;b&gt;/app.js""#), "{html}");
        assert!(html.contains(r#"data-openapi="/spec&amp;.json""#), "{html}");
        assert!(!html.contains("{{"));
        let default = page(&OpenApiConfig::default());
        assert!(default.contains(r#"href="/docs/style.css""#));
        // No inline script: the policy forbids it.
        assert!(!default.contains("<script>"));
    }
}
