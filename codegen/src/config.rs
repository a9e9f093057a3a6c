//! `svcgen.toml`: where the protos are and what the service is called.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The parsed `svcgen.toml`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[service]`
    pub service: ServiceConfig,
    /// `[proto]`
    pub proto: ProtoConfig,
    /// `[tables]`: physical DynamoDB table name per logical table (default: the logical name;
    /// `TABLE_NAME_<LOGICAL>` or, with one table, `TABLE_NAME` override it).
    #[serde(default)]
    pub tables: std::collections::BTreeMap<String, String>,
}

/// `[service]`: naming.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    /// Crate, binary and deployment name, e.g. `task-svc`.
    pub name: String,
}

/// `[proto]`: the inputs.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProtoConfig {
    /// Import root, relative to the project directory (default `proto`).
    #[serde(default = "default_root")]
    pub root: PathBuf,
    /// Files to generate from, relative to `root`.
    pub files: Vec<String>,
}

fn default_root() -> PathBuf {
    PathBuf::from("proto")
}

/// File name of the project configuration.
pub const FILE_NAME: &str = "svcgen.toml";

impl Config {
    /// Parses `svcgen.toml` text; errors carry the TOML location.
    pub fn parse(text: &str) -> Result<Self, String> {
        let config: Self = toml::from_str(text).map_err(|e| e.to_string())?;
        let valid_name = !config.service.name.is_empty()
            && config
                .service
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && config
                .service
                .name
                .starts_with(|c: char| c.is_ascii_lowercase());
        if !valid_name {
            return Err(format!(
                "service.name = {:?} must be lower-case letters, digits and '-', starting with a letter (it names the crate, binary and ECS family)",
                config.service.name
            ));
        }
        if config.proto.files.is_empty() {
            return Err("proto.files is empty: list the .proto files to generate from".to_owned());
        }
        Ok(config)
    }

    /// The import root as a path from the project directory.
    pub fn proto_root(&self, project: &Path) -> PathBuf {
        project.join(&self.proto.root)
    }
}
