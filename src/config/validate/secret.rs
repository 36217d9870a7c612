//! A secret's value, resolved once at load: written as is, or read from an environment variable
//! or a file.

use std::path::Path;

use super::checker::{Checker, located_path, place};
use crate::config::edge::Secret;
use crate::config::raw::RawSecret;

/// A secret's value: written as is, from `{ env: NAME }`, or from `{ file: path }` (one
/// trailing newline dropped). A missing variable or unreadable file is a config error.
pub(super) fn secret(
    c: &mut Checker<'_>,
    base: &Path,
    raw: &RawSecret,
    key: &str,
) -> Option<Secret<String>> {
    let source = match raw {
        RawSecret::Text(text) => return Some(Secret::new(text.value.clone())),
        RawSecret::From(source) => source,
    };
    match (&source.env, &source.file) {
        (Some(name), None) => match std::env::var(&name.value) {
            Ok(value) => Some(Secret::new(value)),
            Err(_) => {
                let reason = format!("environment variable `{}` is not set", name.value);
                c.error(place(name), key, reason);
                None
            }
        },
        (None, Some(file)) => {
            let path = located_path(base, file, key.to_owned()).value;
            match std::fs::read_to_string(&path) {
                Ok(text) => Some(Secret::new(
                    text.strip_suffix('\n').unwrap_or(&text).to_owned(),
                )),
                Err(e) => {
                    let reason = format!("cannot read `{}`: {e}", path.display());
                    c.error(place(file), key, reason);
                    None
                }
            }
        }
        _ => {
            let at = source.env.as_ref().or(source.file.as_ref()).map(place);
            c.error(
                at.unwrap_or_default(),
                key,
                "use { env: NAME } or { file: path }",
            );
            None
        }
    }
}
