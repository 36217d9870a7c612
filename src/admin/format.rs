//! How the admin JSON writes values that have no JSON type of their own: durations (Rust's
//! `Debug` form, `1.5s`), gRPC codes (their names) and file paths.

use std::path::PathBuf;
use std::time::Duration;

use crate::config::Located;

/// A duration as `Debug` prints it (`30s`, `1.5s`, `250ms`).
pub(super) fn duration(d: Duration) -> String {
    format!("{d:?}")
}

/// gRPC codes by name (`UNAVAILABLE`), or as numbers when they have none.
pub(super) fn code_names(codes: &[i32]) -> Vec<String> {
    codes
        .iter()
        .map(|c| crate::config::code_name(*c).map_or_else(|| c.to_string(), str::to_owned))
        .collect()
}

/// Paths as text, in config order.
pub(super) fn paths(list: &[Located<PathBuf>]) -> Vec<String> {
    list.iter().map(|p| p.value.display().to_string()).collect()
}
