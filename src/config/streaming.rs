//! Streaming options of a route: how a server stream is written to an HTTP client.

use std::fmt;

/// The HTTP shape of a server-streaming response (`transcoding.stream_format`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StreamFormat {
    /// One JSON array, `[{…},{…}]`, its elements written as the messages arrive.
    #[default]
    JsonArray,
    /// Newline-delimited JSON: one message per line (`application/x-ndjson`).
    Ndjson,
    /// Server-Sent Events: `data: {…}\n\n` per message (`text/event-stream`).
    Sse,
}

impl StreamFormat {
    /// Parses the config spelling (`json_array`, `ndjson`, `sse`).
    pub fn parse(text: &str) -> Option<StreamFormat> {
        match text {
            "json_array" => Some(StreamFormat::JsonArray),
            "ndjson" => Some(StreamFormat::Ndjson),
            "sse" => Some(StreamFormat::Sse),
            _ => None,
        }
    }

    /// The format an `Accept` header asks for, if it names one of the three media types
    /// exactly (`*/*` and other types leave the route's format in place).
    pub fn from_accept(accept: &str) -> Option<StreamFormat> {
        accept
            .split(',')
            .filter_map(|item| {
                let essence = item.split(';').next()?.trim().to_ascii_lowercase();
                match essence.as_str() {
                    "application/json" => Some(StreamFormat::JsonArray),
                    "application/x-ndjson" | "application/jsonl" => Some(StreamFormat::Ndjson),
                    "text/event-stream" => Some(StreamFormat::Sse),
                    _ => None,
                }
            })
            .next()
    }

    /// The response content type.
    pub fn content_type(self) -> &'static str {
        match self {
            StreamFormat::JsonArray => "application/json",
            StreamFormat::Ndjson => "application/x-ndjson",
            StreamFormat::Sse => "text/event-stream",
        }
    }
}

impl fmt::Display for StreamFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StreamFormat::JsonArray => "json_array",
            StreamFormat::Ndjson => "ndjson",
            StreamFormat::Sse => "sse",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_header_picks_the_first_known_stream_type() {
        let cases = [
            ("text/event-stream", Some(StreamFormat::Sse)),
            ("application/x-ndjson; q=0.9", Some(StreamFormat::Ndjson)),
            ("text/html, application/json", Some(StreamFormat::JsonArray)),
            ("*/*", None),
            ("", None),
        ];
        for (accept, want) in cases {
            assert_eq!(StreamFormat::from_accept(accept), want, "{accept}");
        }
    }

    #[test]
    fn parses_config_spellings() {
        for format in [
            StreamFormat::JsonArray,
            StreamFormat::Ndjson,
            StreamFormat::Sse,
        ] {
            assert_eq!(StreamFormat::parse(&format.to_string()), Some(format));
        }
        assert_eq!(StreamFormat::parse("xml"), None);
    }
}
