//! The `svcgen` binary on real project directories: drift checks, ownership rules, and the
//! located diagnostics for invalid input (exit 2, nothing written).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .to_owned()
}

fn svcgen(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_svcgen"))
        .args(args)
        .arg(dir)
        .output()
        .expect("svcgen runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let name = entry.file_name();
        if name == "target" || name == "data" {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            copy_dir(&path, &to.join(&name));
        } else {
            std::fs::copy(&path, to.join(&name)).expect("copy");
        }
    }
}

/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(current) = stack.pop() {
        for entry in std::fs::read_dir(&current).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.insert(
                    path.strip_prefix(dir).expect("prefix").to_owned(),
                    std::fs::read(&path).expect("read"),
                );
            }
        }
    }
    out
}

/// A temporary copy of `proto/` and `generated-example/` side by side, as in the repository.
fn example_copy() -> (tempfile::TempDir, PathBuf) {
    let temp = tempfile::tempdir().expect("tempdir");
    copy_dir(&workspace().join("proto"), &temp.path().join("proto"));
    copy_dir(
        &workspace().join("generated-example"),
        &temp.path().join("generated-example"),
    );
    let project = temp.path().join("generated-example");
    (temp, project)
}

#[test]
fn check_passes_on_the_checked_in_example() {
    let output = svcgen(
        &["generate", "--check"],
        &workspace().join("generated-example"),
    );
    assert!(output.status.success(), "{}", stderr(&output));
}

#[test]
fn generating_an_up_to_date_project_writes_nothing() {
    let (_temp, project) = example_copy();
    let before = snapshot(&project);
    let output = svcgen(&["generate"], &project);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("0 written, 0 removed"),
        "{}",
        stderr(&output)
    );
    assert_eq!(snapshot(&project), before);
}

#[test]
fn a_proto_edit_makes_check_fail_and_generate_keeps_user_files() {
    let (temp, project) = example_copy();
    let proto = temp.path().join("proto/tasks.proto");
    let text = std::fs::read_to_string(&proto).expect("proto");
    let edited = text.replace(
        "  uint64 version = 10;\n",
        "  uint64 version = 10;\n  string priority = 11;\n",
    );
    assert_ne!(text, edited, "the edit applies");
    std::fs::write(&proto, edited).expect("write proto");
    let handler = project.join("src/handler.rs");
    let user_code = format!(
        "{}\n// my own code\n",
        std::fs::read_to_string(&handler).expect("handler")
    );
    std::fs::write(&handler, &user_code).expect("write handler");
    let before = snapshot(&project);

    let check = svcgen(&["generate", "--check"], &project);
    assert_eq!(check.status.code(), Some(1), "{}", stderr(&check));
    let report = stderr(&check);
    for stale in [
        "src/generated/tasks.rs",
        "src/generated/file_descriptor_set.bin",
        "fix: svcgen generate",
    ] {
        assert!(report.contains(stale), "{stale} missing from:\n{report}");
    }
    assert!(
        !report.contains("src/handler.rs"),
        "user files are not generated:\n{report}"
    );
    assert_eq!(snapshot(&project), before, "--check writes nothing");

    let generate = svcgen(&["generate"], &project);
    assert!(generate.status.success(), "{}", stderr(&generate));
    let after = snapshot(&project);
    for user_file in ["src/handler.rs", "src/main.rs", "Cargo.toml", "svcgen.toml"] {
        assert_eq!(
            after[Path::new(user_file)],
            before[Path::new(user_file)],
            "{user_file} untouched"
        );
    }
    let tasks = String::from_utf8_lossy(&after[Path::new("src/generated/tasks.rs")]).into_owned();
    assert!(
        tasks.contains("pub priority:"),
        "the new field is generated"
    );
    let check = svcgen(&["generate", "--check"], &project);
    assert!(check.status.success(), "{}", stderr(&check));
}

#[test]
fn files_no_longer_generated_are_reported_and_removed() {
    let (_temp, project) = example_copy();
    let old = project.join("src/generated/old.rs");
    std::fs::write(
        &old,
        "// @generated by svcgen from old.proto. DO NOT EDIT.\n",
    )
    .expect("write");
    let manifest = project.join(".svcgen-manifest");
    let listed = format!(
        "{}src/generated/old.rs\n",
        std::fs::read_to_string(&manifest).expect("manifest")
    );
    std::fs::write(&manifest, listed).expect("write manifest");

    let check = svcgen(&["generate", "--check"], &project);
    assert_eq!(check.status.code(), Some(1));
    assert!(
        stderr(&check).contains("extra:   src/generated/old.rs"),
        "{}",
        stderr(&check)
    );
    let generate = svcgen(&["generate"], &project);
    assert!(generate.status.success(), "{}", stderr(&generate));
    assert!(!old.exists());
}

#[test]
fn a_file_svcgen_did_not_write_is_never_overwritten() {
    let (_temp, project) = example_copy();
    std::fs::remove_file(project.join(".svcgen-manifest")).expect("rm manifest");
    std::fs::write(
        project.join("src/generated/service.rs"),
        "// my hand-written service\n",
    )
    .expect("write");
    std::fs::remove_file(project.join("src/generated/repository.rs")).expect("rm");
    let before = snapshot(&project);
    let output = svcgen(&["generate"], &project);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("refusing to overwrite src/generated/service.rs"),
        "{}",
        stderr(&output)
    );
    assert_eq!(
        snapshot(&project),
        before,
        "nothing written, not even the missing files"
    );
}

/// Runs svcgen on `codegen/tests/diagnostics/<case>` in a project whose output tree already
/// exists, and checks exit 2, the location and message, and that nothing changed.
fn diagnose(case: &str, location: &str, message: &str) {
    diagnose_with_help(case, location, message, "");
}

/// [`diagnose`], also checking that the report contains `help`.
fn diagnose_with_help(case: &str, location: &str, message: &str, help: &str) {
    let temp = tempfile::tempdir().expect("tempdir");
    let dir = temp.path();
    std::fs::create_dir_all(dir.join("proto")).expect("mkdir");
    std::fs::copy(
        workspace().join("codegen/tests/diagnostics").join(case),
        dir.join("proto").join(case),
    )
    .expect("copy case");
    std::fs::write(
        dir.join("svcgen.toml"),
        format!("[service]\nname = \"bad-svc\"\n[proto]\nfiles = [\"{case}\"]\n"),
    )
    .expect("config");
    std::fs::create_dir_all(dir.join("src/generated")).expect("mkdir");
    std::fs::write(
        dir.join("src/generated/mod.rs"),
        "// @generated by svcgen from proto/x.proto. DO NOT EDIT.\n",
    )
    .expect("old output");
    std::fs::write(dir.join("src/main.rs"), "fn main() {}\n").expect("user file");
    let before = snapshot(dir);

    let output = svcgen(&["generate"], dir);
    let report = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{report}");
    assert!(
        report.contains(location),
        "expected location {location} in:\n{report}"
    );
    assert!(
        report.contains(message),
        "expected `{message}` in:\n{report}"
    );
    assert!(report.contains(help), "expected `{help}` in:\n{report}");
    assert_eq!(snapshot(dir), before, "nothing written");
}

#[test]
fn unknown_field_in_key_template() {
    diagnose(
        "unknown_key_field.proto",
        "[proto/unknown_key_field.proto:6:52]",
        "partition key template names `owner_id`, which is not a field of `Item`",
    );
}

#[test]
fn key_field_of_a_type_that_cannot_be_a_key() {
    diagnose(
        "bad_key_type.proto",
        "[proto/bad_key_type.proto:6:71]",
        "field `value` of type `double` cannot be part of a key",
    );
}

#[test]
fn malformed_template() {
    diagnose(
        "malformed_template.proto",
        "[proto/malformed_template.proto:6:45]",
        "unclosed `{`",
    );
}

#[test]
fn operation_on_unknown_entity() {
    diagnose(
        "unknown_entity.proto",
        "[proto/unknown_entity.proto:7:50]",
        "`GetItem` operates on unknown entity `Itme`",
    );
}

#[test]
fn list_on_unknown_index() {
    diagnose(
        "unknown_index.proto",
        "[proto/unknown_index.proto:7:65]",
        "queries index `gsi9`, which `Item` does not declare",
    );
}

#[test]
fn request_lacking_key_fields() {
    diagnose(
        "request_lacks_key.proto",
        "[proto/request_lacks_key.proto:6:15]",
        "`GetItemRequest` lacks `owner`, which `GetItem` needs for the key",
    );
}

#[test]
fn duplicate_entity() {
    diagnose(
        "duplicate_entity.proto",
        "[proto/duplicate_entity.proto:11:11]",
        "duplicate entity `Item`",
    );
}

#[test]
fn unsupported_field_type() {
    diagnose(
        "unsupported_type.proto",
        "[proto/unsupported_type.proto:9:3]",
        "`google.protobuf.Duration`, which svcgen cannot store",
    );
}

#[test]
fn adjacent_placeholders_in_a_key_template() {
    diagnose_with_help(
        "adjacent_placeholders.proto",
        "[proto/adjacent_placeholders.proto:6:71]",
        "sort key template `ITEM#{kind}{id}` is ambiguous: placeholders `{kind}` and `{id}` are adjacent",
        "help: put a separator between placeholders",
    );
}

#[test]
fn placeholders_separated_by_text_values_can_hold() {
    diagnose_with_help(
        "no_separator.proto",
        "[proto/no_separator.proto:6:52]",
        "`-` between `{owner}` and `{region}` holds no separator",
        "help: put a separator between placeholders",
    );
}

#[test]
fn a_sort_key_prefix_that_starts_another_entitys() {
    diagnose_with_help(
        "overlapping_sort_keys.proto",
        "[proto/overlapping_sort_keys.proto:18:77]",
        "`Note` and `Order` can share a partition of table `shop`, and their sort keys overlap: `Note`'s prefix \"ORDER#N#\" starts with `Order`'s \"ORDER#\"",
        "give each entity its own sort-key prefix that does not start the other's, e.g. sk: \"NOTE#{id}\"",
    );
}

#[test]
fn a_sort_key_without_a_prefix_next_to_another_entity() {
    diagnose_with_help(
        "placeholder_sort_key.proto",
        "[proto/placeholder_sort_key.proto:13:77]",
        "`Note`'s starts with a placeholder, so nothing tells it from `Order`'s prefix \"ORDER#\"",
        "give each entity its own sort-key prefix",
    );
}

#[test]
fn equal_sort_key_prefixes_in_a_shared_index() {
    diagnose_with_help(
        "overlapping_index_keys.proto",
        "[proto/overlapping_index_keys.proto:19:16]",
        "`Return` and `Order` can share a partition of index `gsi1` of table `shop`, and their sort keys overlap: both start with \"ITEM#\"",
        "give each entity its own sort-key prefix",
    );
}

#[test]
fn a_field_named_like_the_entity_type_attribute() {
    diagnose_with_help(
        "reserved_field_name.proto",
        "[proto/reserved_field_name.proto:8:10]",
        "field name `svcgen_entity` is reserved for an attribute svcgen stores",
        "svcgen_entity",
    );
}

#[test]
fn proto_syntax_error_from_protox() {
    diagnose(
        "syntax_error.proto",
        "[syntax_error.proto:6:3]",
        "expected ';' or '[', but found 'string'",
    );
}

#[test]
fn missing_config_is_a_usage_error() {
    let temp = tempfile::tempdir().expect("tempdir");
    let output = svcgen(&["generate"], temp.path());
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("svcgen.toml"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn streaming_rpc_with_a_generated_operation() {
    diagnose(
        "streaming.proto",
        "[proto/streaming.proto:7:5]",
        "`WatchItem` streams, but its operation is a generated one",
    );
}

#[test]
fn field_rule_pattern_that_does_not_compile() {
    diagnose(
        "bad_pattern.proto",
        "[proto/bad_pattern.proto:10:20]",
        "field `name`: pattern \"^[a-z\" does not compile",
    );
}

#[test]
fn field_rule_on_the_wrong_type() {
    diagnose(
        "wrong_rule_type.proto",
        "[proto/wrong_rule_type.proto:11:20]",
        "field `count`: min_len, max_len, pattern, email and uuid apply to singular string fields",
    );
}

#[test]
fn field_rule_bounds_that_exclude_every_value_in_a_nested_message() {
    diagnose(
        "empty_range.proto",
        "[proto/empty_range.proto:14:21]",
        "field `count`: min 5 is greater than max 2: no value can pass",
    );
}

#[test]
fn hand_written_rpcs_with_the_same_name() {
    diagnose(
        "custom_name_twice.proto",
        "[proto/custom_name_twice.proto:9:3]",
        "hand-written RPC `Ping` of `bad.Public` has the same name as one in `bad.Admin`",
    );
}

#[test]
fn declared_store_access_is_checked_against_the_model() {
    let case = "undeclarable_use.proto";
    let location = "[proto/undeclarable_use.proto:11:5]";
    diagnose_with_help(
        case,
        location,
        "`Item.ListItem` in `uses` of `Archive`: `Item` has no operation `ListItem`",
        "use one of: create, get, update, delete, check, batch_get, ListItems",
    );
    diagnose_with_help(
        case,
        location,
        "`Itme.get` in `uses` of `Archive`: no entity `Itme`",
        "entities: Item",
    );
    diagnose(
        case,
        location,
        "`Item` in `uses` of `Archive` names no operation",
    );
}

/// `(action, resource)` pairs the generated task-role policy grants.
fn task_role_grants(project: &Path) -> std::collections::BTreeSet<(String, String)> {
    let text =
        std::fs::read_to_string(project.join("deploy/iam/task-role-policy.json")).expect("policy");
    let policy: serde_json::Value = serde_json::from_str(&text).expect("json");
    let mut grants = std::collections::BTreeSet::new();
    for statement in policy["Statement"].as_array().expect("statements") {
        for action in statement["Action"].as_array().expect("actions") {
            for resource in statement["Resource"].as_array().expect("resources") {
                let (action, resource) = (
                    action.as_str().expect("str"),
                    resource.as_str().expect("str"),
                );
                assert!(
                    !action.contains('*') && !resource.contains('*'),
                    "no wildcards: {action} {resource}"
                );
                grants.insert((action.to_owned(), resource.to_owned()));
            }
        }
    }
    grants
}

#[test]
fn iam_follows_the_operations() {
    let (temp, project) = example_copy();
    let proto = temp.path().join("proto/tasks.proto");
    let original = std::fs::read_to_string(&proto).expect("proto");
    let before = task_role_grants(&project);
    let table =
        "arn:${AWS_PARTITION}:dynamodb:${AWS_REGION}:${AWS_ACCOUNT_ID}:table/tasks".to_owned();

    let with_delete = original
        .replace(
            "  // Lists the tasks of a project, oldest first.",
            "  rpc DeleteTask(DeleteTaskRequest) returns (google.protobuf.Empty) {\n    option (svcgen.operation) = { delete: { entity: \"Task\" } };\n  }\n  // Lists the tasks of a project, oldest first.",
        )
        .replace("import \"google/protobuf/field_mask.proto\";", "import \"google/protobuf/empty.proto\";\nimport \"google/protobuf/field_mask.proto\";")
        + "\nmessage DeleteTaskRequest {\n  string project_id = 1;\n  string id = 2;\n}\n";
    std::fs::write(&proto, &with_delete).expect("write");
    let generate = svcgen(&["generate"], &project);
    assert!(generate.status.success(), "{}", stderr(&generate));
    let after = task_role_grants(&project);
    let added: Vec<_> = after.difference(&before).cloned().collect();
    assert_eq!(
        added,
        [("dynamodb:DeleteItem".to_owned(), table.clone())],
        "exactly DeleteItem is added"
    );
    assert!(before.is_subset(&after));

    let start = original
        .find("  // Lists the tasks assigned to one person")
        .expect("rpc");
    let end = start + original[start..].find("  }\n").expect("end") + 4;
    let without_index_query = format!("{}{}", &original[..start], &original[end..]);
    std::fs::write(&proto, without_index_query).expect("write");
    let generate = svcgen(&["generate"], &project);
    assert!(generate.status.success(), "{}", stderr(&generate));
    let after = task_role_grants(&project);
    let removed: Vec<_> = before.difference(&after).cloned().collect();
    assert_eq!(
        removed,
        [("dynamodb:Query".to_owned(), format!("{table}/index/gsi1"))],
        "the index ARN goes"
    );
    assert!(after.is_subset(&before));
}

#[test]
fn iam_follows_the_declared_store_access_of_hand_written_rpcs() {
    let (temp, project) = example_copy();
    let proto = temp.path().join("proto/tasks.proto");
    let original = std::fs::read_to_string(&proto).expect("proto");
    let before = task_role_grants(&project);
    let table =
        "arn:${AWS_PARTITION}:dynamodb:${AWS_REGION}:${AWS_ACCOUNT_ID}:table/tasks".to_owned();
    let with_rpc = |uses: &str| {
        original.replace(
            "  // Lists the tasks of a project, oldest first.",
            &format!("  rpc PurgeTask(GetTaskRequest) returns (Task) {{\n    option (svcgen.operation) = {{ custom: {{ uses: [{uses}] }} }};\n  }}\n  // Lists the tasks of a project, oldest first."),
        )
    };
    std::fs::write(&proto, with_rpc("\"Task.get\", \"Task.delete\"")).expect("write");
    let generate = svcgen(&["generate"], &project);
    assert!(generate.status.success(), "{}", stderr(&generate));
    let after = task_role_grants(&project);
    let added: Vec<_> = after.difference(&before).cloned().collect();
    assert_eq!(
        added,
        [("dynamodb:DeleteItem".to_owned(), table)],
        "the declared delete is allowed; the declared get was already"
    );
    let repository =
        std::fs::read_to_string(project.join("src/generated/repository.rs")).expect("repository");
    assert!(
        repository.contains("pub struct PurgeTaskStore"),
        "{repository}"
    );

    std::fs::write(&proto, with_rpc("")).expect("write");
    let generate = svcgen(&["generate"], &project);
    assert!(generate.status.success(), "{}", stderr(&generate));
    assert_eq!(
        task_role_grants(&project),
        before,
        "nothing declared, nothing added"
    );
}

fn svcgen_args(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_svcgen"))
        .args(args)
        .output()
        .expect("svcgen runs")
}

#[test]
fn exported_templates_render_the_same_project() {
    let (temp, project) = example_copy();
    let templates = temp.path().join("templates");
    let exported = svcgen_args(&["templates", "export", &templates.to_string_lossy()]);
    assert!(exported.status.success(), "{}", stderr(&exported));
    assert!(templates.join("Dockerfile.hbs").is_file());
    assert!(templates.join("new/service.proto.hbs").is_file());
    let output = svcgen(
        &[
            "generate",
            "--check",
            "--templates",
            &templates.to_string_lossy(),
        ],
        &project,
    );
    assert!(output.status.success(), "{}", stderr(&output));
    // A second export refuses to overwrite.
    let again = svcgen_args(&["templates", "export", &templates.to_string_lossy()]);
    assert_eq!(again.status.code(), Some(2));
    assert!(
        stderr(&again).contains("already exists"),
        "{}",
        stderr(&again)
    );
}

#[test]
fn a_template_override_changes_the_output() {
    let (temp, project) = example_copy();
    let templates = temp.path().join("templates");
    std::fs::create_dir_all(&templates).expect("mkdir");
    std::fs::write(
        templates.join("dockerignore.hbs"),
        "# {{marker}} from {{sources}}. DO NOT EDIT.\n*\n!src\n!Cargo.*\n!vendor\n",
    )
    .expect("write");
    let templates_arg = templates.to_string_lossy().into_owned();
    let check = svcgen(
        &["generate", "--check", "--templates", &templates_arg],
        &project,
    );
    assert_eq!(check.status.code(), Some(1), "{}", stderr(&check));
    assert!(
        stderr(&check).contains(".dockerignore"),
        "{}",
        stderr(&check)
    );
    let generated = svcgen(&["generate", "--templates", &templates_arg], &project);
    assert!(generated.status.success(), "{}", stderr(&generated));
    let dockerignore = std::fs::read_to_string(project.join(".dockerignore")).expect("read");
    assert!(dockerignore.ends_with("!vendor\n"), "{dockerignore}");
    // The override configured in svcgen.toml is used without the flag.
    let config = project.join("svcgen.toml");
    let text = std::fs::read_to_string(&config).expect("read");
    std::fs::write(
        &config,
        format!("{text}\n[generate]\ntemplates = {templates_arg:?}\n"),
    )
    .expect("write");
    let check = svcgen(&["generate", "--check"], &project);
    assert!(check.status.success(), "{}", stderr(&check));
}

#[test]
fn a_template_with_an_unknown_variable_fails_with_its_name_and_line() {
    let (temp, project) = example_copy();
    let templates = temp.path().join("templates");
    std::fs::create_dir_all(&templates).expect("mkdir");
    std::fs::write(
        templates.join("Dockerfile.hbs"),
        "# {{marker}}\nFROM scratch\nEXPOSE {{prot}}\n",
    )
    .expect("write");
    let before = snapshot(&project);
    let output = svcgen(
        &["generate", "--templates", &templates.to_string_lossy()],
        &project,
    );
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(message.contains("Dockerfile.hbs:3:"), "{message}");
    assert!(message.contains("unknown variable `prot`"), "{message}");
    assert_eq!(snapshot(&project), before, "nothing written");

    // A file that names no template is refused rather than silently ignored.
    std::fs::remove_file(templates.join("Dockerfile.hbs")).expect("rm");
    std::fs::write(templates.join("Dockerfile.hsb"), "x").expect("write");
    let output = svcgen(
        &["generate", "--templates", &templates.to_string_lossy()],
        &project,
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("Dockerfile.hsb: not a svcgen template"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn completions_and_examples_in_every_help() {
    let bash = svcgen_args(&["completions", "bash"]);
    assert!(bash.status.success());
    let script = String::from_utf8_lossy(&bash.stdout);
    assert!(
        script.contains("svcgen") && script.contains("generate") && script.contains("breaking")
    );
    for command in [
        &["new"][..],
        &["generate"],
        &["breaking"],
        &["templates", "export"],
        &["table", "create"],
        &["completions"],
    ] {
        let mut args = command.to_vec();
        args.push("--help");
        let help = svcgen_args(&args);
        assert!(help.status.success(), "{args:?}");
        let text = String::from_utf8_lossy(&help.stdout);
        let example = text.lines().find(|l| l.starts_with("Example: "));
        assert!(
            example.is_some_and(|l| l.contains("svcgen ")),
            "{args:?} has no example:\n{text}"
        );
    }
}

#[test]
fn each_architecture_sets_the_task_platform_and_the_image_target_alike() {
    use svcgen::config::Architecture;
    for (setting, architecture) in [
        ("x86_64", Architecture::X86_64),
        ("arm64", Architecture::Arm64),
    ] {
        let (_temp, project) = example_copy();
        let config = project.join("svcgen.toml");
        let text = std::fs::read_to_string(&config).expect("read");
        assert!(text.contains("architecture = \"x86_64\""));
        let text = text.replace(
            "architecture = \"x86_64\"",
            &format!("architecture = \"{setting}\""),
        );
        std::fs::write(&config, text).expect("write");
        let output = svcgen::generate(&project, None).expect("generates");
        let file =
            |path: &str| String::from_utf8(output[Path::new(path)].bytes.clone()).expect("UTF-8");

        let task: serde_json::Value =
            serde_json::from_str(&file("deploy/task-definition.json")).expect("JSON");
        assert_eq!(
            task["runtimePlatform"]["cpuArchitecture"],
            architecture.ecs()
        );
        assert!(
            file("deploy/cloudformation.yaml")
                .contains(&format!("CpuArchitecture: {}", architecture.ecs()))
        );
        let dockerfile = file("Dockerfile");
        let triple = architecture.rust_target();
        assert_eq!(dockerfile.matches(&format!("--target {triple}")).count(), 2);
        assert!(dockerfile.contains(&format!("rustup target add {triple}\n")));
        assert!(dockerfile.contains(&format!("/src/target/{triple}/release/task-svc /task-svc")));
        let other = [Architecture::X86_64, Architecture::Arm64]
            .into_iter()
            .find(|a| *a != architecture)
            .expect("two architectures");
        assert!(!dockerfile.contains(other.rust_target()), "{dockerfile}");
    }
}

/// Every AWS operation `svcgen deploy` makes (`AwsError::call("service:Operation", …)` in
/// `codegen/src/deploy/`), found in the README's policy for the deploying identity.
#[test]
fn the_readme_policy_allows_every_operation_svcgen_deploy_makes() {
    let readme = std::fs::read_to_string(workspace().join("README.md")).expect("README");
    let start = readme
        .find("<!-- deploy-policy -->\n```json\n")
        .expect("policy marker")
        + "<!-- deploy-policy -->\n```json\n".len();
    let end = start + readme[start..].find("```").expect("end of the policy");
    let policy: serde_json::Value = serde_json::from_str(&readme[start..end]).expect("JSON");
    let allowed: Vec<&str> = policy["Statement"]
        .as_array()
        .expect("statements")
        .iter()
        .flat_map(|s| s["Action"].as_array().expect("actions"))
        .filter_map(|a| a.as_str())
        .collect();
    let mut operations = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(workspace().join("codegen/src/deploy")).expect("deploy/") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(path).expect("source");
        for (at, _) in text.match_indices("AwsError::call(") {
            let rest = text[at + "AwsError::call(".len()..].trim_start();
            if let Some(quoted) = rest.strip_prefix('"') {
                operations.insert(quoted.split('"').next().expect("quoted").to_owned());
            }
        }
    }
    assert!(operations.len() > 40, "{operations:?}");
    let missing: Vec<&String> = operations
        .iter()
        .filter(|op| !allowed.contains(&op.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "the README's deploy policy lacks {missing:?}"
    );
}

/// The example's lockfile (which `svcgen new` also writes, renamed) still resolves the
/// example outside the workspace, as its image builds it (`--locked`): a dependency added to
/// the runtime without `scripts/example-lock.sh` fails here, not in the container build.
#[test]
fn the_example_lockfile_matches_the_runtime_it_vendors() {
    let temp = tempfile::tempdir().expect("tempdir");
    let example = temp.path().join("example");
    copy_dir(&workspace().join("generated-example"), &example);
    let output = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
        // Not `--offline`: on a fresh machine the example's lockfile names crates that the
        // workspace's build never downloaded.
        .args(["metadata", "--locked", "--format-version", "1"])
        .current_dir(&example)
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "generated-example/Cargo.lock is stale: run scripts/example-lock.sh\n{}",
        stderr(&output)
    );
}

/// An ALB rule condition matches at most three paths: three services and a domain (which
/// routes the health service too) are refused at generate, naming the setting, writing nothing.
#[test]
fn a_listener_rule_with_more_paths_than_alb_matches_is_refused() {
    let (temp, project) = example_copy();
    let proto = temp.path().join("proto/tasks.proto");
    let mut text = std::fs::read_to_string(&proto).expect("proto");
    for service in ["AuditService", "AdminService"] {
        text.push_str(&format!(
            "\nservice {service} {{\n  rpc Ping{service}(GetTaskRequest) returns (Task);\n}}\n"
        ));
    }
    std::fs::write(&proto, text).expect("write");
    let config = project.join("svcgen.toml");
    let settings = std::fs::read_to_string(&config).expect("config");
    std::fs::write(
        &config,
        settings.replace("[deploy]\n", "[deploy]\ndomain = \"tasks.example.com\"\n"),
    )
    .expect("write");
    let before = snapshot(&project);
    let output = svcgen(&["generate"], &project);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains(
            "deploy.domain = \"tasks.example.com\": the listener rule would route 4 paths"
        ),
        "{}",
        stderr(&output)
    );
    assert_eq!(snapshot(&project), before, "nothing is written");
}
