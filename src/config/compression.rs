//! The validated `compression:` section: which answers are gzip-compressed for clients that
//! accept it.

/// `compression:` of JSON answers (unary and streamed) for clients whose `Accept-Encoding` allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompressionConfig {
    /// Off: answers go out as the backend's bytes printed, never compressed.
    pub enabled: bool,
    /// Whole answers smaller than this are sent as they are (streams are always compressed).
    pub min_size: usize,
    /// gzip level, 1 (fastest) to 9 (smallest).
    pub level: u32,
    /// Media types compressed (lower case, without parameters; `text/*` covers every text type).
    pub content_types: Vec<String>,
}

impl Default for CompressionConfig {
    fn default() -> Self {
        CompressionConfig {
            enabled: true,
            min_size: 1024,
            level: 1,
            content_types: [
                "application/json",
                "application/x-ndjson",
                "text/event-stream",
                "text/*",
            ]
            .map(str::to_owned)
            .to_vec(),
        }
    }
}

impl CompressionConfig {
    /// Whether answers of `content_type` (a header value, parameters allowed) are compressed:
    /// listed, or `+json`, and never a type that is compressed already.
    pub fn compresses(&self, content_type: &str) -> bool {
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        self.content_types
            .iter()
            .any(|listed| match listed.strip_suffix("/*") {
                Some(family) => essence
                    .split_once('/')
                    .is_some_and(|(top, _)| top == family),
                None => *listed == essence,
            })
            || (essence.starts_with("application/") && essence.ends_with("+json"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_text_and_streams_are_compressed_binary_types_are_not() {
        let config = CompressionConfig::default();
        for yes in [
            "application/json",
            "application/json; charset=utf-8",
            "application/problem+json",
            "application/x-ndjson",
            "text/event-stream",
            "text/plain; charset=utf-8",
        ] {
            assert!(config.compresses(yes), "{yes}");
        }
        for no in [
            "image/png",
            "application/gzip",
            "application/octet-stream",
            "application/grpc",
        ] {
            assert!(!config.compresses(no), "{no}");
        }
    }
}
