//! Golden tests: every golden project (and `generated-example/`) is exactly what svcgen
//! generates from its inputs, byte for byte, scaffold files included. The projects are workspace
//! members, so `cargo build` compiles the goldens.
//!
//! Re-bless after an intended change with `SVCGEN_BLESS=1 cargo test -p svcgen --test golden`
//! (never on CI).

use std::path::{Path, PathBuf};

use svcgen::render::Output;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("codegen/ is in the workspace")
        .to_owned()
}

fn golden_projects() -> Vec<PathBuf> {
    let mut projects = vec![workspace().join("generated-example")];
    let golden = workspace().join("codegen/tests/golden");
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&golden)
        .expect("golden directory")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.join("svcgen.toml").exists())
        .collect();
    entries.sort();
    projects.extend(entries);
    projects
}

fn bless(dir: &Path, output: &Output) {
    for (path, file) in output {
        let target = dir.join(path);
        std::fs::create_dir_all(target.parent().expect("parent")).expect("mkdir");
        std::fs::write(&target, &file.bytes).expect("write");
    }
}

#[test]
fn golden_projects_match_their_generated_output() {
    let blessing = std::env::var_os("SVCGEN_BLESS").is_some();
    assert!(
        !(blessing && std::env::var_os("CI").is_some()),
        "never re-bless on CI"
    );
    let mut mismatches = Vec::new();
    for dir in golden_projects() {
        let output =
            svcgen::generate(&dir, None).unwrap_or_else(|e| panic!("{}: {e:?}", dir.display()));
        if blessing {
            bless(&dir, &output);
            continue;
        }
        for (path, file) in &output {
            match std::fs::read(dir.join(path)) {
                Ok(bytes) if bytes == file.bytes => {}
                Ok(_) => mismatches.push(format!("differs: {}", dir.join(path).display())),
                Err(_) => mismatches.push(format!("missing: {}", dir.join(path).display())),
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "golden files differ from the generator's output (re-bless with SVCGEN_BLESS=1 if intended):\n{}",
        mismatches.join("\n")
    );
}

#[test]
fn generation_is_deterministic() {
    for dir in golden_projects() {
        let first = svcgen::generate(&dir, None).expect("generates");
        let second = svcgen::generate(&dir, None).expect("generates");
        assert_eq!(first, second, "{}", dir.display());
    }
}

#[test]
fn generated_rust_names_only_the_runtime_facade() {
    for dir in golden_projects() {
        let output = svcgen::generate(&dir, None).expect("generates");
        for (path, file) in output
            .iter()
            .filter(|(p, _)| p.starts_with("src") && p.extension().is_some_and(|e| e == "rs"))
        {
            let text = String::from_utf8_lossy(&file.bytes);
            let code = text.lines().filter(|l| !l.trim_start().starts_with("//"));
            for line in code.filter(|l| l.contains("svcgen_runtime::")) {
                assert!(
                    line.contains("::svcgen_runtime::codegen")
                        || line.contains("::svcgen_runtime::Entity")
                        || line.contains("::svcgen_runtime::Attributes"),
                    "{}: {line}",
                    path.display()
                );
            }
        }
    }
}
