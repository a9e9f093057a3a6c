//! Embeds the sources of the crates a generated project links against (svcgen-contract,
//! svcgen-macros, svcgen-runtime) and the workspace manifest their manifests inherit from, so
//! `svcgen generate` can write the exact runtime it was built with into each project.

use std::path::{Path, PathBuf};

const CRATES: [&str; 3] = ["contract", "macros", "runtime"];

fn sources(dir: &Path, files: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            sources(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

fn main() {
    let manifest_dir =
        PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let workspace = manifest_dir.parent().expect("codegen/ is in the workspace");
    let mut out = String::from("&[\n");
    for name in CRATES {
        let dir = workspace.join(name);
        let manifest = dir.join("Cargo.toml");
        println!("cargo:rerun-if-changed={}", manifest.display());
        println!("cargo:rerun-if-changed={}", dir.join("src").display());
        let mut files = vec![manifest];
        sources(&dir.join("src"), &mut files);
        for file in files {
            let relative = file.strip_prefix(&dir).expect("under the crate");
            out.push_str(&format!(
                "    ({name:?}, {:?}, include_bytes!({:?})),\n",
                relative.to_str().expect("UTF-8 path").replace('\\', "/"),
                file.to_str().expect("UTF-8 path"),
            ));
        }
    }
    out.push_str("]\n");
    let workspace_manifest = workspace.join("Cargo.toml");
    println!("cargo:rerun-if-changed={}", workspace_manifest.display());
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets it"));
    std::fs::write(out_dir.join("runtime_sources.rs"), out).expect("write OUT_DIR file");
    std::fs::write(
        out_dir.join("workspace_manifest.rs"),
        format!(
            "include_str!({:?})",
            workspace_manifest.to_str().expect("UTF-8 path")
        ),
    )
    .expect("write OUT_DIR file");
}
