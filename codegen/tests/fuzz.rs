//! The generator on arbitrary well-formed protos with arbitrary annotation values: seeded
//! random messages (every field kind), entity options whose templates, tables, indexes and
//! field names are sometimes valid and sometimes not, and RPCs with random operations. Every
//! case must either generate or fail with a clean error — never panic. A sample of the accepted
//! cases is then written out as one cargo workspace and type-checked (`cargo check`), so a valid
//! model whose generated Rust does not compile fails here. `SVCGEN_FUZZ_CASES` sets the number of
//! cases (default 300), `SVCGEN_FUZZ_COMPILED` the sample (default 10).

use std::fmt::Write as _;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n.max(1) as u64).unwrap_or(0)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

const FIELD_NAMES: &[&str] = &[
    "id",
    "org_id",
    "owner",
    "title",
    "state",
    "count",
    "version",
    "expire_time",
    "page_size",
    "page_token",
    "next_page_token",
    "items",
    "update_mask",
    "labels",
    "pk",
    "sk",
    "ttl",
    "gsi1pk",
];
const TYPES: &[&str] = &[
    "string",
    "int32",
    "int64",
    "uint32",
    "uint64",
    "bool",
    "double",
    "bytes",
    "Kind",
    "Inner",
    "repeated string",
    "repeated Inner",
    "map<string, int64>",
    "optional string",
    "google.protobuf.Timestamp",
    "google.protobuf.FieldMask",
    "google.protobuf.Duration",
];
const TEMPLATE_PARTS: &[&str] = &[
    "A#",
    "B#",
    "{id}",
    "{org_id}",
    "{owner}",
    "{state}",
    "{count}",
    "{missing}",
    "{Bad}",
    "{",
    "}",
    "#",
    "X",
    "{title}",
    "{version}",
];
const OPERATIONS: &[&str] = &["create", "get", "update", "delete", "list", "custom"];

fn template(rng: &mut Rng) -> String {
    let parts = 1 + rng.below(3);
    (0..parts).map(|_| *rng.pick(TEMPLATE_PARTS)).collect()
}

const HEADER: &str = "import \"google/protobuf/timestamp.proto\";\nimport \"google/protobuf/field_mask.proto\";\nimport \"google/protobuf/duration.proto\";\nimport \"google/protobuf/empty.proto\";\nimport \"svcgen/options.proto\";\n\nenum Kind { KIND_UNSPECIFIED = 0; KIND_A = 1; }\nmessage Inner { string note = 1; Kind kind = 2; map<string, Inner> children = 3; }\n";

/// A project whose RPCs fit their entity (so most cases generate), with random optional
/// options, random extra fields of every kind and a random subset of operations.
fn coherent(rng: &mut Rng, case: u64) -> String {
    let mut options = format!(
        "table: \"t\" pk: \"ORG#{{org_id}}\" sk: \"{}#{{id}}\" generated_id_field: \"id\"",
        rng.pick(&["E", "ITEM", "x_y"])
    );
    let index = rng.chance(50);
    if index {
        options.push_str(" indexes: { name: \"gsi1\" pk: \"OWNER#{owner}\" sk: \"E#{id}\" }");
    }
    if rng.chance(50) {
        options.push_str(" version_field: \"version\"");
    }
    if rng.chance(30) {
        options.push_str(" ttl_field: \"expire_time\"");
    }
    let mut out = format!(
        "syntax = \"proto3\";\npackage fz{case}.v1;\n\n{HEADER}\nmessage E {{\n  option (svcgen.entity) = {{ {options} }};\n  string org_id = 1;\n  string id = 2;\n  string owner = 3;\n  uint64 version = 4;\n  google.protobuf.Timestamp expire_time = 5;\n"
    );
    for number in 6..6 + rng.below(10) {
        let field_type = *rng.pick(&TYPES[..TYPES.len() - 2]);
        let _ = writeln!(out, "  {field_type} f{number} = {number};");
    }
    if rng.chance(30) {
        out.push_str("  oneof choice { string text = 40; Inner inner = 41; }\n");
    }
    out.push_str("}\nmessage CreateReq { E e = 1; }\nmessage KeyReq { string org_id = 1; string id = 2; uint64 version = 3; }\nmessage UpdateReq { E e = 1; google.protobuf.FieldMask update_mask = 2; }\nmessage ListReq { string org_id = 1; string owner = 2; int32 page_size = 3; string page_token = 4; }\nmessage ListResp { repeated E items = 1; string next_page_token = 2; }\n\nservice Fuzz {\n");
    let rpcs = [
        "rpc Create(CreateReq) returns (E) { option (svcgen.operation) = { create: { entity: \"E\" } }; }",
        "rpc Get(KeyReq) returns (E) { option (svcgen.operation) = { get: { entity: \"E\" } }; }",
        "rpc Update(UpdateReq) returns (E) { option (svcgen.operation) = { update: { entity: \"E\" } }; }",
        "rpc Delete(KeyReq) returns (google.protobuf.Empty) { option (svcgen.operation) = { delete: { entity: \"E\" } }; }",
        "rpc List(ListReq) returns (ListResp) { option (svcgen.operation) = { list: { entity: \"E\" descending: true } }; }",
        "rpc Custom(KeyReq) returns (google.protobuf.Empty);",
    ];
    let mut operations = vec!["create", "get", "update", "delete"];
    for rpc in rpcs {
        if rng.chance(60) {
            let _ = writeln!(out, "  {rpc}");
            if rpc.starts_with("rpc List(") {
                operations.push("List");
            }
        }
    }
    if rng.chance(50) {
        // A hand-written RPC declaring some of the entity's store operations (a list RPC's
        // query among them when there is one).
        let uses: Vec<String> = operations
            .iter()
            .filter(|_| rng.chance(50))
            .map(|op| format!("\"E.{op}\""))
            .collect();
        let _ = writeln!(
            out,
            "  rpc Declared(KeyReq) returns (E) {{ option (svcgen.operation) = {{ custom: {{ uses: [{}] }} }}; }}",
            uses.join(", ")
        );
    }
    if index && rng.chance(60) {
        out.push_str("  rpc ByOwner(ListReq) returns (ListResp) { option (svcgen.operation) = { list: { entity: \"E\" index: \"gsi1\" } }; }\n");
    }
    out.push_str("}\n");
    out
}

/// One random project's proto: half fit together, half are chaotic.
fn proto(rng: &mut Rng, case: u64) -> String {
    if rng.chance(50) {
        coherent(rng, case)
    } else {
        chaotic(rng, case)
    }
}

/// Messages and annotations thrown together: mostly invalid annotations.
fn chaotic(rng: &mut Rng, case: u64) -> String {
    let mut out = format!("syntax = \"proto3\";\npackage fz{case};\n\n{HEADER}");
    let messages: Vec<String> = (0..1 + rng.below(4)).map(|i| format!("M{i}")).collect();
    for name in &messages {
        let _ = writeln!(out, "\nmessage {name} {{");
        if rng.chance(70) {
            let mut options = format!(
                "table: \"{}\" pk: \"{}\" sk: \"{}\"",
                rng.pick(&["t", "t", "other", "", "bad name"]),
                template(rng),
                template(rng)
            );
            if rng.chance(40) {
                let _ = write!(
                    options,
                    " indexes: {{ name: \"{}\" pk: \"{}\" sk: \"{}\" }}",
                    rng.pick(&["gsi1", "gsi1", "gsi2", "", "1bad"]),
                    template(rng),
                    template(rng)
                );
            }
            for (option, values) in [
                ("version_field", &["version", "count", "title", "nope"][..]),
                ("ttl_field", &["expire_time", "count", "title"][..]),
                ("generated_id_field", &["id", "count", "nope"][..]),
            ] {
                if rng.chance(30) {
                    let _ = write!(options, " {option}: \"{}\"", rng.pick(values));
                }
            }
            let _ = writeln!(out, "  option (svcgen.entity) = {{ {options} }};");
        }
        let mut used = Vec::new();
        for number in 1..=1 + rng.below(8) {
            let field = *rng.pick(FIELD_NAMES);
            if used.contains(&field) {
                continue;
            }
            used.push(field);
            let field_type = *rng.pick(TYPES);
            let _ = writeln!(out, "  {field_type} {field} = {number};");
        }
        out.push_str("}\n");
    }
    out.push_str("\nservice Fuzz {\n");
    for rpc in 0..rng.below(6) {
        let input = rng.pick(&messages).clone();
        let output = if rng.chance(20) {
            "google.protobuf.Empty".to_owned()
        } else {
            rng.pick(&messages).clone()
        };
        let _ = write!(out, "  rpc Call{rpc}({input}) returns ({output})");
        if rng.chance(80) {
            let operation = *rng.pick(OPERATIONS);
            let entity = rng.pick(&messages).clone();
            let details = match operation {
                "custom" => String::new(),
                "list" => format!(
                    "entity: \"{entity}\" index: \"{}\" default_page_size: {} max_page_size: {}",
                    rng.pick(&["", "gsi1", "nope"]),
                    rng.pick(&[0, 1, 20, 5000]),
                    rng.pick(&[0, 10, 1000])
                ),
                _ => format!("entity: \"{entity}\""),
            };
            let _ = writeln!(
                out,
                " {{ option (svcgen.operation) = {{ {operation}: {{ {details} }} }}; }}"
            );
        } else {
            out.push_str(";\n");
        }
    }
    out.push_str("}\n");
    out
}

#[test]
fn arbitrary_annotated_protos_generate_or_fail_cleanly() {
    let cases: u64 = std::env::var("SVCGEN_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(300);
    let mut rng = Rng(0x5EED_F022);
    let sample_size: usize = std::env::var("SVCGEN_FUZZ_COMPILED")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10);
    let mut sample = Vec::new();
    // Sampled cases without and with declared store access.
    let mut sampled = [0; 2];
    let (mut generated, mut rejected) = (0, 0);
    let temp = tempfile::tempdir().expect("tempdir");
    for case in 0..cases {
        let dir = temp.path().join(format!("case{case}"));
        std::fs::create_dir_all(dir.join("proto")).expect("mkdir");
        let text = proto(&mut rng, case);
        std::fs::write(dir.join("proto/fuzz.proto"), &text).expect("write proto");
        std::fs::write(
            dir.join("svcgen.toml"),
            format!("[service]\nname = \"fuzz{case}-svc\"\n[proto]\nfiles = [\"fuzz.proto\"]\n[runtime]\nsource = \"crates-io\"\n"),
        )
        .expect("write config");
        // A panic here fails the test with the case's proto in the output.
        let result = std::panic::catch_unwind(|| svcgen::generate(&dir, None));
        match result {
            Ok(Ok(output)) => {
                generated += 1;
                assert!(
                    output.contains_key(std::path::Path::new("src/generated/service.rs")),
                    "{text}"
                );
                // Half the sample declares store access of a hand-written RPC (its store handle).
                let declares = usize::from(text.contains("rpc Declared"));
                if sampled[declares] < sample_size.div_ceil(2) {
                    sampled[declares] += 1;
                    sample.push((case, text.clone(), output));
                }
            }
            Ok(Err(svcgen::GenerateError::Render(message))) => {
                panic!("internal generator error on a valid model: {message}\n{text}")
            }
            Ok(Err(error)) => {
                rejected += 1;
                assert!(!error.to_string().is_empty(), "{text}");
            }
            Err(_) => panic!("the generator panicked on:\n{text}"),
        }
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
    eprintln!("{cases} cases: {generated} generated, {rejected} rejected with diagnostics");
    assert!(generated > 0 && rejected > 0, "both outcomes are exercised");
    assert!(
        sample
            .iter()
            .any(|(_, text, _)| text.contains("rpc Declared")),
        "the compiled sample holds declared store access"
    );
    compiles(&sample);
}

/// Writes the sampled projects as members of one workspace whose `svcgen-runtime` is this
/// repository's, with this repository's lockfile, and type-checks them all in one `cargo check`.
fn compiles(sample: &[(u64, String, svcgen::render::Output)]) {
    if sample.is_empty() {
        return;
    }
    let repository = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("codegen/ is in the repository");
    let workspace = tempfile::tempdir().expect("tempdir");
    for (case, _, output) in sample {
        for (path, file) in output {
            let target = workspace.path().join(format!("case{case}")).join(path);
            std::fs::create_dir_all(target.parent().expect("parent")).expect("mkdir");
            std::fs::write(&target, &file.bytes).expect("write");
        }
    }
    let runtime = repository.join("runtime");
    std::fs::write(
        workspace.path().join("Cargo.toml"),
        format!(
            "[workspace]\nresolver = \"3\"\nmembers = [\"case*\"]\n\n[patch.crates-io]\nsvcgen-runtime = {{ path = {:?} }}\n",
            runtime.to_str().expect("UTF-8 path")
        ),
    )
    .expect("write workspace manifest");
    std::fs::copy(
        repository.join("Cargo.lock"),
        workspace.path().join("Cargo.lock"),
    )
    .expect("copy Cargo.lock");
    // A target directory of its own (the test's own cargo holds the workspace's), kept between
    // runs so that only the first one compiles the dependencies.
    let checked = std::process::Command::new(env!("CARGO"))
        .args(["check", "--quiet", "--workspace"])
        .current_dir(workspace.path())
        .env("CARGO_TARGET_DIR", repository.join("target/fuzz-check"))
        .output()
        .expect("run cargo check");
    let cases: Vec<String> = sample
        .iter()
        .map(|(case, text, _)| format!("--- case{case}\n{text}"))
        .collect();
    assert!(
        checked.status.success(),
        "generated code does not compile:\n{}\n{}",
        String::from_utf8_lossy(&checked.stderr),
        cases.join("\n")
    );
}
