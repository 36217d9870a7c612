//! A secret as written: text, `{ env: NAME }` or `{ file: path }` (JWT shared secrets, the Redis
//! password).

use serde::Deserialize;

use super::At;

/// A secret written in the file, or read from an environment variable or a file.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum RawSecret {
    /// Written as is (kept out of logs and `/config`, but better not written at all).
    Text(At<String>),
    /// `{ env: NAME }` or `{ file: path }`.
    From(RawSecretSource),
}

/// Where a secret is read from.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSecretSource {
    #[serde(default)]
    pub(crate) env: Option<At<String>>,
    #[serde(default)]
    pub(crate) file: Option<At<String>>,
}

impl RawSecret {
    /// Where the secret is written, for errors about its value.
    pub(crate) fn at(&self) -> Option<&At<String>> {
        match self {
            RawSecret::Text(text) => Some(text),
            RawSecret::From(source) => source.env.as_ref().or(source.file.as_ref()),
        }
    }
}
