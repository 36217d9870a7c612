//! Protobuf descriptors loaded at run time: `.proto` files compiled in-process (protox, no `protoc`)
//! and binary `FileDescriptorSet` files, merged into one [`DescriptorPool`].
//!
//! The google.api HTTP annotations and the google.rpc error model are built into the binary, so an
//! operator's folder only needs its own service files; a copy in the folder takes precedence.
//!
//! The well-known files under `google/protobuf/` (`descriptor.proto`, `any.proto`, …) are the other
//! way round: protox's built-in copies always win, and a copy found in a folder is skipped with a
//! warning. Newer protobuf releases ship a `descriptor.proto` that protox 0.10 cannot parse
//! (`extensions 536000000 [declaration = {…}]`: options on a single-number extension range), and
//! include roots such as `/usr/include` or a vendored protobuf tree carry one; the gateway reads
//! its descriptors with prost-reflect, which knows the built-in definitions anyway.

use std::path::{Path, PathBuf};

use prost_reflect::DescriptorPool;
use protox::file::{
    ChainFileResolver, File, FileResolver, GoogleFileResolver, IncludeFileResolver,
};

use crate::config::{ConfigError, DescriptorSources, Located, Place};
use crate::reflection::wire::RawFileSet;
use crate::reflection::{Fetched, Reflected};

/// Schemas the gateway itself relies on, compiled into every pool.
const BUILTIN_FILES: &[(&str, &str)] = &[
    (
        "google/api/http.proto",
        include_str!("../proto/google/api/http.proto"),
    ),
    (
        "google/api/annotations.proto",
        include_str!("../proto/google/api/annotations.proto"),
    ),
    (
        "google/api/httpbody.proto",
        include_str!("../proto/google/api/httpbody.proto"),
    ),
    (
        "google/rpc/status.proto",
        include_str!("../proto/google/rpc/status.proto"),
    ),
    (
        "google/rpc/code.proto",
        include_str!("../proto/google/rpc/code.proto"),
    ),
    (
        "google/rpc/error_details.proto",
        include_str!("../proto/google/rpc/error_details.proto"),
    ),
];

/// Files always added so error details and HTTP bodies can be decoded.
const ALWAYS_COMPILED: &[&str] = &[
    "google/api/annotations.proto",
    "google/api/httpbody.proto",
    "google/rpc/status.proto",
    "google/rpc/error_details.proto",
];

/// The `google/protobuf/` files protox builds in (its `GoogleFileResolver`): always used as built in.
const WELL_KNOWN_FILES: &[&str] = &[
    "google/protobuf/any.proto",
    "google/protobuf/api.proto",
    "google/protobuf/descriptor.proto",
    "google/protobuf/duration.proto",
    "google/protobuf/empty.proto",
    "google/protobuf/field_mask.proto",
    "google/protobuf/source_context.proto",
    "google/protobuf/struct.proto",
    "google/protobuf/timestamp.proto",
    "google/protobuf/type.proto",
    "google/protobuf/wrappers.proto",
    "google/protobuf/compiler/plugin.proto",
];

/// Most `.proto` files one folder may hold; a guard against pointing `proto_dirs` at `/`.
const MAX_PROTO_FILES: usize = 10_000;

struct BuiltinResolver;

impl FileResolver for BuiltinResolver {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        match BUILTIN_FILES.iter().find(|(builtin, _)| *builtin == name) {
            Some((_, source)) => File::from_source(name, source),
            None => Err(protox::Error::file_not_found(name)),
        }
    }
}

/// Compiles and loads every descriptor source; reports each problem with the file it is in.
pub fn load(
    sources: &DescriptorSources,
    config_file: &Path,
) -> Result<DescriptorPool, Vec<ConfigError>> {
    match load_with_problems(sources, config_file) {
        (Some(pool), errors) if errors.is_empty() => Ok(pool),
        (_, errors) => Err(errors),
    }
}

/// Like [`load`], but keeps going past sources that are missing or unreadable: the pool holds what
/// did load, so routes can still be checked against it. The pool is `None` only when a `.proto`
/// failed to compile (its services would otherwise look unknown and bury the real error).
pub fn load_with_problems(
    sources: &DescriptorSources,
    config_file: &Path,
) -> (Option<DescriptorPool>, Vec<ConfigError>) {
    let mut errors = Vec::new();
    let (mut compiler, roots) = compiler(sources, config_file, &mut errors);
    let names = files_to_compile(sources, &roots, config_file, &mut errors);
    let mut compiled = true;
    for (name, origin) in &names {
        if let Err(e) = compiler.open_file(name) {
            errors.push(protox_error(config_file, &roots, *origin, &e));
            compiled = false;
        }
    }
    if !compiled {
        return (None, errors);
    }
    let mut pool = match DescriptorPool::decode(compiler.encode_file_descriptor_set().as_slice()) {
        Ok(pool) => pool,
        Err(e) => {
            let reason = format!("descriptors do not form a valid pool: {e}");
            errors.push(plain_error(config_file, reason));
            return (None, errors);
        }
    };
    for set in &sources.descriptor_sets {
        if let Err(reason) = add_descriptor_set(&mut pool, &set.value) {
            errors.push(config_error(config_file, set, reason));
        }
    }
    (Some(pool), errors)
}

/// Adds the files server reflection gave (`reflected`) to `pool`, which holds the local ones
/// already: a file name the pool has is not added again, so a local file wins over a reflected
/// one. The raw bytes go in as they came (a `FileDescriptorSet` made of them), so options such as
/// `google.api.http` survive. Returns the upstreams whose files could not be added, with why (the
/// pool is unchanged by a failed set).
pub fn add_reflected(pool: &mut DescriptorPool, reflected: &Reflected) -> Vec<(String, String)> {
    let mut failed = Vec::new();
    for (upstream, fetched) in &reflected.upstreams {
        let Fetched::Files { files, .. } = fetched else {
            continue;
        };
        let set = RawFileSet {
            file: files
                .iter()
                .filter(|(name, _)| pool.get_file_by_name(name).is_none())
                .map(|(_, bytes)| bytes.clone())
                .collect(),
        };
        let encoded = prost::Message::encode_to_vec(&set);
        if let Err(e) = pool.decode_file_descriptor_set(encoded.as_slice()) {
            let reason =
                format!("the descriptors reflected by upstream `{upstream}` are not usable: {e}");
            failed.push((upstream.clone(), reason));
        }
    }
    failed
}

/// A compiler that resolves imports in the `proto_dirs` and `include_paths` folders that exist
/// (returned as the roots), then the built-in files; a missing folder is an error.
fn compiler(
    sources: &DescriptorSources,
    config_file: &Path,
    errors: &mut Vec<ConfigError>,
) -> (protox::Compiler, Vec<PathBuf>) {
    let mut resolver = ChainFileResolver::new();
    // First: a folder's copy of a well-known file must not replace the built-in one (module docs).
    resolver.add(GoogleFileResolver::new());
    let mut roots: Vec<PathBuf> = Vec::new();
    for root in sources.proto_dirs.iter().chain(&sources.include_paths) {
        if root.value.is_dir() {
            roots.push(root.value.clone());
            resolver.add(IncludeFileResolver::new(root.value.clone()));
        } else {
            let reason = format!("`{}` is not a folder", root.value.display());
            errors.push(config_error(config_file, root, reason));
        }
    }
    resolver.add(BuiltinResolver);
    for skipped in shadowed_well_known_files(&roots) {
        tracing::warn!(
            file = %skipped.display(),
            "skipping this copy of a well-known protobuf file: the gateway uses its built-in \
             google/protobuf definitions (newer descriptor.proto releases do not parse with protox 0.10)"
        );
    }
    let mut compiler = protox::Compiler::with_file_resolver(resolver);
    // Source info lets config errors point at the `rpc` line of a proto rule (route collisions).
    compiler.include_imports(true).include_source_info(true);
    (compiler, roots)
}

/// The copies of well-known files in `roots`, which [`compiler`] skips for the built-in ones.
fn shadowed_well_known_files(roots: &[PathBuf]) -> Vec<PathBuf> {
    roots
        .iter()
        .flat_map(|root| WELL_KNOWN_FILES.iter().map(move |name| root.join(name)))
        .filter(|path| path.is_file())
        .collect()
}

/// The import names of every file to compile, with the setting that named it: each `.proto`
/// under `proto_dirs`, each of `proto_files`, and the files the gateway always needs.
fn files_to_compile<'s>(
    sources: &'s DescriptorSources,
    roots: &[PathBuf],
    config_file: &Path,
    errors: &mut Vec<ConfigError>,
) -> Vec<(String, Option<&'s Located<PathBuf>>)> {
    let mut names = Vec::new();
    for dir in &sources.proto_dirs {
        if !dir.value.is_dir() {
            continue;
        }
        match proto_files_under(&dir.value) {
            Ok(found) => names.extend(found.into_iter().map(|n| (n, Some(dir)))),
            Err(reason) => errors.push(config_error(config_file, dir, reason)),
        }
    }
    for file in &sources.proto_files {
        match file_name_under_roots(&file.value, roots) {
            Some(name) => names.push((name, Some(file))),
            None => {
                let shown = file.value.display();
                let reason =
                    format!("`{shown}` is not under any proto_dirs or include_paths folder");
                errors.push(config_error(config_file, file, reason));
            }
        }
    }
    names.extend(ALWAYS_COMPILED.iter().map(|n| ((*n).to_owned(), None)));
    names
}

/// Adds the files of a binary `FileDescriptorSet` to `pool`.
fn add_descriptor_set(pool: &mut DescriptorPool, path: &Path) -> Result<(), String> {
    let bytes =
        std::fs::read(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    pool.decode_file_descriptor_set(bytes.as_slice())
        .map_err(|e| {
            format!(
                "`{}` is not a usable FileDescriptorSet: {e}",
                path.display()
            )
        })
}

/// Every `*.proto` below `dir`, as import names relative to it, sorted for a stable build.
fn proto_files_under(dir: &Path) -> Result<Vec<String>, String> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(current) = pending.pop() {
        let entries = std::fs::read_dir(&current)
            .map_err(|e| format!("cannot read folder `{}`: {e}", current.display()))?;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "proto") {
                if let Some(name) =
                    file_name_under_roots(&path, std::slice::from_ref(&dir.to_owned()))
                {
                    found.push(name);
                }
                if found.len() > MAX_PROTO_FILES {
                    return Err(format!(
                        "more than {MAX_PROTO_FILES} .proto files under `{}`",
                        dir.display()
                    ));
                }
            }
        }
    }
    found.sort();
    Ok(found)
}

/// The import name of `path`: itself when relative and not on disk as given, else relative to a root.
fn file_name_under_roots(path: &Path, roots: &[PathBuf]) -> Option<String> {
    for root in roots {
        if let Ok(relative) = path.strip_prefix(root) {
            return Some(slash_name(relative));
        }
    }
    if path.is_relative() && roots.iter().any(|r| r.join(path).is_file()) {
        return Some(slash_name(path));
    }
    None
}

fn slash_name(path: &Path) -> String {
    path.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

fn config_error(config_file: &Path, at: &Located<PathBuf>, reason: String) -> ConfigError {
    ConfigError {
        file: config_file.to_owned(),
        place: at.place,
        key: at.key.clone(),
        reason,
    }
}

fn plain_error(config_file: &Path, reason: String) -> ConfigError {
    ConfigError {
        file: config_file.to_owned(),
        place: Place::default(),
        key: "descriptors".to_owned(),
        reason,
    }
}

/// protox's Debug form is `file.proto:line:col: message`; split it so the error points at the proto
/// file itself (found under `roots`) with its line, and falls back to the config entry otherwise.
fn protox_error(
    config_file: &Path,
    roots: &[PathBuf],
    origin: Option<&Located<PathBuf>>,
    e: &protox::Error,
) -> ConfigError {
    let text = format!("{e:?}");
    if let Some(proto) = e.file() {
        let rest = text.strip_prefix(proto).and_then(|r| r.strip_prefix(':'));
        let parsed = rest.and_then(|r| {
            let mut parts = r.splitn(3, ':');
            let line = parts.next()?.trim().parse().ok()?;
            let column = parts.next()?.trim().parse().ok()?;
            Some((Place { line, column }, parts.next()?.trim().to_owned()))
        });
        let file = roots
            .iter()
            .map(|r| r.join(proto))
            .find(|p| p.is_file())
            .unwrap_or_else(|| PathBuf::from(proto));
        let (place, reason) = parsed.unwrap_or((Place::default(), text.clone()));
        return ConfigError {
            file,
            place,
            key: String::new(),
            reason,
        };
    }
    match origin {
        Some(at) => ConfigError {
            file: config_file.to_owned(),
            place: at.place,
            key: at.key.clone(),
            reason: text,
        },
        None => plain_error(config_file, text),
    }
}
