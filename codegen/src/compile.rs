//! Proto compilation with protox (no `protoc`): the descriptor pool with svcgen's custom
//! options readable, plus the sources for diagnostics.

use std::path::Path;

use prost_reflect::DescriptorPool;
use protox::file::{
    ChainFileResolver, File, FileResolver, GoogleFileResolver, IncludeFileResolver,
};

use crate::diagnostic::Sources;

/// The annotation schema, compiled into svcgen so that projects need no copy of it.
pub const OPTIONS_PROTO: &str = include_str!("../../proto/svcgen/options.proto");
/// Import path of the annotation schema.
pub const OPTIONS_PROTO_NAME: &str = "svcgen/options.proto";

/// The compiled protos.
pub struct Compiled {
    /// Every file, imports included, custom options intact.
    pub pool: DescriptorPool,
    /// Names of the files the project lists (not their imports).
    pub files: Vec<String>,
    /// Source text of the listed files.
    pub sources: Sources,
}

/// Serves `svcgen/options.proto` when the project does not have its own copy.
struct EmbeddedOptions;

impl FileResolver for EmbeddedOptions {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        if name == OPTIONS_PROTO_NAME {
            File::from_source(name, OPTIONS_PROTO)
        } else {
            Err(protox::Error::file_not_found(name))
        }
    }
}

/// Compiles `files` (relative to `root`); diagnostics show them as `shown_root/<file>`.
pub fn compile(
    root: &Path,
    shown_root: &Path,
    files: &[String],
) -> Result<Compiled, protox::Error> {
    let mut resolver = ChainFileResolver::new();
    resolver.add(IncludeFileResolver::new(root.to_owned()));
    resolver.add(EmbeddedOptions);
    resolver.add(GoogleFileResolver::new());
    let mut compiler = protox::Compiler::with_file_resolver(resolver);
    compiler.include_imports(true).include_source_info(true);
    compiler.open_files(files)?;
    let mut sources = Sources::default();
    for file in files {
        // protox has just read these files; a failure here means they changed under us.
        let text = std::fs::read_to_string(root.join(file)).unwrap_or_default();
        let shown = shown_root.join(file).to_string_lossy().replace('\\', "/");
        sources.add(file, shown, text);
    }
    Ok(Compiled {
        pool: compiler.descriptor_pool(),
        files: files.to_vec(),
        sources,
    })
}
