//! Checks of `descriptors:`: where protobuf schemas come from. Only the paths are resolved here;
//! the files are read when the runtime is built.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::checker::{Checker, located_path, place};
use crate::config::error::{Located, Place};
use crate::config::gateway::DescriptorSources;
use crate::config::raw::{At, RawDescriptors};

/// `descriptors.refresh_interval` when absent.
const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(60);

/// `descriptors:`, paths resolved against the config's folder `base` (proto files stay relative
/// to an import root); at least one source is required unless some upstream (`reflecting`, or
/// `descriptors.reflection`) serves its descriptors by server reflection.
pub(super) fn descriptors(
    c: &mut Checker<'_>,
    base: &Path,
    d: &RawDescriptors,
    reflecting: bool,
) -> DescriptorSources {
    let list = |items: &[At<String>], name: &str| -> Vec<Located<PathBuf>> {
        items
            .iter()
            .enumerate()
            .map(|(i, v)| located_path(base, v, format!("descriptors.{name}[{i}]")))
            .collect()
    };
    let descriptors = DescriptorSources {
        proto_dirs: list(&d.proto_dirs, "proto_dirs"),
        proto_files: d
            .proto_files
            .iter()
            .enumerate()
            .map(|(i, v)| Located {
                value: PathBuf::from(&v.value),
                place: place(v),
                key: format!("descriptors.proto_files[{i}]"),
            })
            .collect(),
        include_paths: list(&d.include_paths, "include_paths"),
        descriptor_sets: list(&d.descriptor_sets, "descriptor_sets"),
        refresh_interval: d
            .refresh_interval
            .as_ref()
            .and_then(|v| c.duration(v, "descriptors.refresh_interval"))
            .unwrap_or(DEFAULT_REFRESH_INTERVAL),
    };
    let reflecting = reflecting || d.reflection.as_ref().is_some_and(|r| r.value);
    if !reflecting
        && descriptors.proto_dirs.is_empty()
        && descriptors.proto_files.is_empty()
        && descriptors.descriptor_sets.is_empty()
    {
        c.error(
            Place::default(),
            "descriptors",
            "names no proto_dirs, proto_files or descriptor_sets (and no upstream has reflection: true)",
        );
    }
    descriptors
}
