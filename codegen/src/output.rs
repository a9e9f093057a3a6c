//! Writing and checking: the only part of generation that touches the disk.
//!
//! Writes are atomic per file (temp file + rename) and skip files whose bytes are unchanged.
//! A generated path holding a file svcgen did not write (no marker, not in the manifest) is
//! never overwritten; if one is found, nothing at all is written.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::render::{MANIFEST, MARKER, Output, Ownership};

/// How a generated file on disk differs from what svcgen would write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Drift {
    /// Not on disk.
    Missing(PathBuf),
    /// On disk with other bytes.
    Stale(PathBuf),
    /// Generated earlier, no longer generated.
    Extra(PathBuf),
}

impl std::fmt::Display for Drift {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Missing(p) => write!(f, "missing: {}", p.display()),
            Self::Stale(p) => write!(f, "stale:   {}", p.display()),
            Self::Extra(p) => write!(f, "extra:   {}", p.display()),
        }
    }
}

/// What `write` did.
#[derive(Debug, Default)]
pub struct WriteReport {
    /// Files written (new or changed).
    pub written: Vec<PathBuf>,
    /// Files removed because they are no longer generated.
    pub removed: Vec<PathBuf>,
    /// Generated files already up to date.
    pub unchanged: usize,
}

/// Why writing was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// A path svcgen generates holds a file svcgen did not write.
    #[error(
        "refusing to overwrite {0}: svcgen did not generate it (no `{MARKER}` marker, not in {MANIFEST}); move it elsewhere and run again"
    )]
    NotOurs(PathBuf),
    /// I/O failure.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> WriteError + '_ {
    move |source| WriteError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Paths listed in the manifest of the previous generation.
fn previous_manifest(dir: &Path) -> BTreeSet<PathBuf> {
    std::fs::read_to_string(dir.join(MANIFEST))
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(PathBuf::from)
        .collect()
}

fn has_marker(bytes: &[u8]) -> bool {
    let first_line = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
    String::from_utf8_lossy(first_line).contains(MARKER)
}

/// Compares the generated files of `output` with the disk; writes nothing.
pub fn check(dir: &Path, output: &Output) -> Vec<Drift> {
    let mut drift = Vec::new();
    for (path, file) in output
        .iter()
        .filter(|(_, f)| f.ownership == Ownership::Generated)
    {
        match std::fs::read(dir.join(path)) {
            Err(_) => drift.push(Drift::Missing(path.clone())),
            Ok(bytes) if bytes != file.bytes => drift.push(Drift::Stale(path.clone())),
            Ok(_) => {}
        }
    }
    for path in previous_manifest(dir) {
        if !output.contains_key(&path) && dir.join(&path).exists() {
            drift.push(Drift::Extra(path));
        }
    }
    drift
}

/// Brings the disk in line with `output`.
pub fn write(dir: &Path, output: &Output) -> Result<WriteReport, WriteError> {
    let manifest = previous_manifest(dir);
    let mut report = WriteReport::default();
    let mut pending = Vec::new();
    for (path, file) in output {
        let target = dir.join(path);
        let existing = std::fs::read(&target).ok();
        match (file.ownership, existing) {
            (Ownership::Scaffold, Some(_)) => {}
            (Ownership::Generated, Some(bytes)) if bytes == file.bytes => report.unchanged += 1,
            (Ownership::Generated, Some(bytes))
                if !has_marker(&bytes) && !manifest.contains(path) =>
            {
                return Err(WriteError::NotOurs(path.clone()));
            }
            _ => pending.push((path, target, &file.bytes)),
        }
    }
    let extras: Vec<PathBuf> = manifest
        .into_iter()
        .filter(|p| !output.contains_key(p) && dir.join(p).exists())
        .collect();
    for (path, target, bytes) in pending {
        write_atomically(&target, bytes)?;
        report.written.push(path.clone());
    }
    for path in extras {
        let target = dir.join(&path);
        std::fs::remove_file(&target).map_err(io(&target))?;
        report.removed.push(path);
    }
    Ok(report)
}

fn write_atomically(target: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    let parent = target.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(io(parent))?;
    // A rewritten file keeps its mode; a new one gets the usual 0666 less the umask (the
    // temp file's own default, 0600, would leak into the project).
    let mut builder = tempfile::Builder::new();
    match std::fs::metadata(target) {
        Ok(metadata) => {
            builder.permissions(metadata.permissions());
        }
        #[cfg(unix)]
        Err(_) => {
            use std::os::unix::fs::PermissionsExt as _;
            builder.permissions(std::fs::Permissions::from_mode(0o666));
        }
        #[cfg(not(unix))]
        Err(_) => {}
    }
    let mut temp = builder.tempfile_in(parent).map_err(io(parent))?;
    temp.write_all(bytes).map_err(io(target))?;
    temp.as_file().sync_all().map_err(io(target))?;
    temp.persist(target).map_err(|e| WriteError::Io {
        path: target.to_owned(),
        source: e.error,
    })?;
    Ok(())
}

/// Files under `src/rpc/` that no hand-written RPC uses any more; they are the user's, so svcgen
/// only points them out.
pub fn unused_stubs(dir: &Path, output: &Output) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir.join("src/rpc")) else {
        return Vec::new();
    };
    let mut unused: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| name.ends_with(".rs"))
        .map(|name| PathBuf::from("src/rpc").join(name))
        .filter(|path| !output.contains_key(path))
        .collect();
    unused.sort();
    unused
}
