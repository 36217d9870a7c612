//! Checks of `compression:`: a size, a gzip level from 1 to 9, media types.

use super::checker::{Checker, place};
use crate::config::compression::CompressionConfig;
use crate::config::raw::RawCompression;

/// `compression:`; the defaults when absent, or for a value that is unusable (recorded).
pub(super) fn compression(c: &mut Checker<'_>, raw: Option<&RawCompression>) -> CompressionConfig {
    let mut config = CompressionConfig::default();
    let Some(raw) = raw else { return config };
    if let Some(enabled) = &raw.enabled {
        config.enabled = enabled.value;
    }
    if let Some(size) = raw
        .min_size
        .as_ref()
        .and_then(|s| c.size(s, "compression.min_size"))
    {
        config.min_size = size;
    }
    if let Some(level) = &raw.level {
        if (1..=9).contains(&level.value) {
            config.level = level.value;
        } else {
            let reason = "a gzip level is 1 (fastest) to 9 (smallest)";
            c.error(place(level), "compression.level", reason);
        }
    }
    if let Some(types) = &raw.content_types {
        config.content_types = Vec::new();
        for (i, media) in types.iter().enumerate() {
            let text = media.value.trim().to_ascii_lowercase();
            match text.split_once('/') {
                Some((top, sub)) if !top.is_empty() && !sub.is_empty() && !text.contains(';') => {
                    config.content_types.push(text);
                }
                _ => c.error(
                    place(media),
                    format!("compression.content_types[{i}]"),
                    format!(
                        "`{}` is not a media type (type/subtype, or type/*)",
                        media.value
                    ),
                ),
            }
        }
    }
    config
}
