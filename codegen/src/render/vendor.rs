//! The svcgen runtime a project builds against, written into the project: the sources of
//! svcgen-runtime, svcgen-macros and svcgen-contract as this svcgen binary was built with them
//! (`vendor/svcgen-*`, each with a manifest that no longer inherits from svcgen's workspace),
//! `.cargo/config.toml` resolving the `svcgen-runtime = "0.1"` dependency to them, and a new
//! project's `Cargo.lock`. A project directory alone thus builds anywhere cargo reaches crates.io.

use std::path::PathBuf;

use toml::{Table, Value};

use super::RenderError;

/// `(crate directory, path in the crate, bytes)` of every embedded file (see build.rs).
const SOURCES: &[(&str, &str, &[u8])] = include!(concat!(env!("OUT_DIR"), "/runtime_sources.rs"));

/// svcgen's workspace manifest, whose `[workspace.package]` and `[workspace.dependencies]` the
/// crates' manifests inherit.
const WORKSPACE_MANIFEST: &str = include!(concat!(env!("OUT_DIR"), "/workspace_manifest.rs"));

/// The lockfile of `generated-example`, whose dependencies are exactly a new project's.
const EXAMPLE_LOCK: &str = include_str!("../../../generated-example/Cargo.lock");
const EXAMPLE_PACKAGE: &str = "task-svc";

/// Where the vendored crates go in a project.
pub(crate) const VENDOR_DIR: &str = "vendor";

fn vendored_name(crate_dir: &str) -> String {
    format!("svcgen-{crate_dir}")
}

fn invalid(file: &str, reason: impl Into<String>) -> RenderError {
    RenderError::Vendored {
        file: file.to_owned(),
        reason: reason.into(),
    }
}

/// Every file under `vendor/` and `.cargo/config.toml`, by path in the project.
pub(super) fn files(header: &str) -> Result<Vec<(PathBuf, Vec<u8>)>, RenderError> {
    let workspace: Table = WORKSPACE_MANIFEST
        .parse()
        .map_err(|e: toml::de::Error| invalid("Cargo.toml", e.to_string()))?;
    let mut files = Vec::new();
    for (crate_dir, path, bytes) in SOURCES {
        let target = PathBuf::from(VENDOR_DIR)
            .join(vendored_name(crate_dir))
            .join(path);
        let bytes = if *path == "Cargo.toml" {
            let text = std::str::from_utf8(bytes)
                .map_err(|_| invalid(&format!("{crate_dir}/Cargo.toml"), "not UTF-8"))?;
            let manifest = standalone_manifest(crate_dir, text, &workspace)?;
            format!("{header}{manifest}").into_bytes()
        } else {
            bytes.to_vec()
        };
        files.push((target, bytes));
    }
    let config = format!(
        "{header}# `svcgen-runtime = \"0.1\"` in Cargo.toml resolves to the runtime svcgen wrote under vendor/:\n\
         # exactly the one the generated code was generated against. To use the published crate instead,\n\
         # set `[runtime] source = \"crates-io\"` in svcgen.toml and run `svcgen generate`.\n\
         [patch.crates-io]\n\
         svcgen-runtime = {{ path = \"{VENDOR_DIR}/svcgen-runtime\" }}\n"
    );
    files.push((PathBuf::from(".cargo/config.toml"), config.into_bytes()));
    Ok(files)
}

/// The crate's manifest with everything it inherits from the workspace written out, the sibling
/// crates as path dependencies under `vendor/`, and what only svcgen's own development uses
/// (dev-dependencies, benches, lints) left out.
fn standalone_manifest(
    crate_dir: &str,
    text: &str,
    workspace: &Table,
) -> Result<String, RenderError> {
    let file = format!("{crate_dir}/Cargo.toml");
    let mut manifest: Table = text
        .parse()
        .map_err(|e: toml::de::Error| invalid(&file, e.to_string()))?;
    let section = |name: &str| {
        workspace
            .get("workspace")
            .and_then(|w| w.get(name))
            .and_then(Value::as_table)
            .ok_or_else(|| invalid("Cargo.toml", format!("no [workspace.{name}]")))
    };
    let (package_defaults, dependency_defaults) = (section("package")?, section("dependencies")?);
    for key in ["dev-dependencies", "bench", "lints"] {
        manifest.remove(key);
    }
    if let Some(package) = manifest.get_mut("package").and_then(Value::as_table_mut) {
        for (key, value) in package.iter_mut() {
            if inherits(value) {
                *value = package_defaults.get(key).cloned().ok_or_else(|| {
                    invalid(&file, format!("package.{key} is not in the workspace"))
                })?;
            }
        }
    }
    if let Some(dependencies) = manifest
        .get_mut("dependencies")
        .and_then(Value::as_table_mut)
    {
        for (name, value) in dependencies.iter_mut() {
            if !inherits(value) {
                continue;
            }
            let inherited = dependency_defaults.get(name).ok_or_else(|| {
                invalid(&file, format!("dependency {name} is not in the workspace"))
            })?;
            let resolved = resolve_dependency(name, inherited, value)?;
            *value = match resolved.get("version") {
                Some(version) if resolved.len() == 1 => version.clone(),
                _ => Value::Table(resolved),
            };
        }
    }
    Ok(manifest_text(&manifest))
}

/// A manifest in the shape people write them: its sections in their original order, each
/// dependency on one line.
fn manifest_text(manifest: &Table) -> String {
    let mut text = String::new();
    for (name, section) in manifest {
        let sections: Vec<&Table> = match section {
            Value::Table(table) => vec![table],
            Value::Array(tables) => tables.iter().filter_map(Value::as_table).collect(),
            _ => continue,
        };
        for table in sections {
            let header = if section.is_array() {
                format!("[[{name}]]")
            } else {
                format!("[{name}]")
            };
            text.push_str(&format!("\n{header}\n"));
            for (key, value) in table {
                text.push_str(&format!("{key} = {}\n", inline(value)));
            }
        }
    }
    text.trim_start().to_owned()
}

fn inline(value: &Value) -> String {
    match value {
        Value::Table(table) => {
            let entries: Vec<String> = table
                .iter()
                .map(|(key, value)| format!("{key} = {}", inline(value)))
                .collect();
            format!("{{ {} }}", entries.join(", "))
        }
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(inline).collect();
            format!("[{}]", items.join(", "))
        }
        other => other.to_string(),
    }
}

/// `key.workspace = true` (or `key = { workspace = true, … }`).
fn inherits(value: &Value) -> bool {
    value.get("workspace").and_then(Value::as_bool) == Some(true)
}

/// A workspace dependency with the crate's own keys (`optional`, added `features`) merged in.
fn resolve_dependency(name: &str, inherited: &Value, local: &Value) -> Result<Table, RenderError> {
    let mut resolved = match inherited {
        Value::String(version) => {
            Table::from_iter([("version".to_owned(), version.clone().into())])
        }
        Value::Table(table) => table.clone(),
        _ => {
            return Err(invalid(
                "Cargo.toml",
                format!("workspace dependency {name}"),
            ));
        }
    };
    if resolved.contains_key("path") {
        let sibling = name.strip_prefix("svcgen-").ok_or_else(|| {
            invalid(
                "Cargo.toml",
                format!("path dependency {name} is not an svcgen crate"),
            )
        })?;
        resolved.insert(
            "path".into(),
            format!("../{}", vendored_name(sibling)).into(),
        );
    }
    for (key, value) in local.as_table().into_iter().flatten() {
        match (key.as_str(), resolved.get_mut(key)) {
            ("workspace", _) => {}
            ("features", Some(Value::Array(features))) => {
                features.extend(value.as_array().into_iter().flatten().cloned());
            }
            _ => {
                resolved.insert(key.clone(), value.clone());
            }
        }
    }
    Ok(resolved)
}

/// `Cargo.lock` for a new project named `name`: the example's lockfile with its own package
/// renamed, in the order cargo writes packages (by name), so `cargo build --locked` accepts it.
pub(super) fn lockfile(name: &str) -> String {
    let mut blocks: Vec<String> = EXAMPLE_LOCK
        .split("\n\n")
        .map(|block| block.trim_end_matches('\n').to_owned())
        .collect();
    let example = format!("[[package]]\nname = \"{EXAMPLE_PACKAGE}\"\n");
    let renamed = format!("[[package]]\nname = \"{name}\"\n");
    for block in blocks.iter_mut().filter(|b| b.starts_with(&example)) {
        *block = block.replacen(&example, &renamed, 1);
    }
    // The header stays first; packages sort by name, a stable sort keeps versions in order.
    let package_name = |block: &String| {
        block
            .strip_prefix("[[package]]\nname = \"")
            .and_then(|rest| rest.split('"').next())
            .map(str::to_owned)
    };
    blocks[1..].sort_by_key(package_name);
    let mut text = blocks.join("\n\n");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_crate_gets_a_manifest_without_workspace_inheritance() {
        let files = files("# header\n").expect("renders");
        for name in ["svcgen-contract", "svcgen-macros", "svcgen-runtime"] {
            let path = PathBuf::from(VENDOR_DIR).join(name).join("Cargo.toml");
            let (_, bytes) = files.iter().find(|(p, _)| *p == path).expect("manifest");
            let text = String::from_utf8(bytes.clone()).expect("UTF-8");
            assert!(text.starts_with("# header\n"), "{text}");
            assert!(!text.contains("workspace"), "{text}");
            assert!(!text.contains("dev-dependencies"), "{text}");
            let manifest: Table = text.parse().expect("TOML");
            assert_eq!(manifest["package"]["name"].as_str(), Some(name));
            assert_eq!(
                manifest["package"]["version"].as_str(),
                Some(env!("CARGO_PKG_VERSION"))
            );
        }
        let runtime: Table = String::from_utf8(
            files
                .iter()
                .find(|(p, _)| p.ends_with("svcgen-runtime/Cargo.toml"))
                .expect("runtime manifest")
                .1
                .clone(),
        )
        .expect("UTF-8")
        .parse()
        .expect("TOML");
        let dependencies = &runtime["dependencies"];
        assert_eq!(
            dependencies["svcgen-macros"]["path"].as_str(),
            Some("../svcgen-macros")
        );
        assert_eq!(
            dependencies["aws-sdk-dynamodb"]["optional"].as_bool(),
            Some(true)
        );
        assert_eq!(
            dependencies["aws-sdk-dynamodb"]["default-features"].as_bool(),
            Some(false)
        );
        // The runtime brings its own HTTP client (rustls with ring); the SDK's default one
        // would compile aws-lc into every service.
        for sdk in ["aws-config", "aws-sdk-dynamodb"] {
            let features = dependencies[sdk]["features"].as_array().expect("features");
            assert!(
                !features
                    .iter()
                    .any(|f| f.as_str() == Some("default-https-client")),
                "{sdk}: {features:?}"
            );
        }
        assert!(!lockfile("aaa-svc").contains("name = \"aws-lc-sys\""));
        assert!(
            files
                .iter()
                .any(|(p, _)| p.ends_with("svcgen-runtime/src/lib.rs"))
        );
    }

    #[test]
    fn a_new_lockfile_names_the_project_in_cargo_order() {
        let lock = lockfile("aaa-svc");
        assert!(lock.starts_with("# This file is automatically @generated by Cargo."));
        assert!(!lock.contains("\"task-svc\""));
        let names: Vec<&str> = lock
            .split("\n\n")
            .skip(1)
            .filter_map(|b| b.strip_prefix("[[package]]\nname = \""))
            .filter_map(|rest| rest.split('"').next())
            .collect();
        assert_eq!(names.first(), Some(&"aaa-svc"));
        assert!(names.is_sorted(), "{names:?}");
        assert_eq!(lockfile(EXAMPLE_PACKAGE), EXAMPLE_LOCK);
    }
}
