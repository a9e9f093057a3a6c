//! `svcgen breaking` on pairs of versions of the golden `projects` project: each edit below
//! breaks clients, stored data or infrastructure and must be reported with its rule and
//! location; compatible edits pass.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const PROTO: &str = "proto/acme/projects/v1/projects.proto";

fn golden() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/projects")
}

fn copy_inputs(to: &Path) {
    std::fs::create_dir_all(to.join("proto/acme/projects/v1")).expect("mkdir");
    for file in ["svcgen.toml", PROTO] {
        std::fs::copy(golden().join(file), to.join(file)).expect("copy");
    }
}

/// Runs `svcgen breaking` with the golden project as the old version and an edited copy as
/// the new one.
fn breaking_after(edit: impl FnOnce(&Path), extra: &[&str]) -> (Option<i32>, String) {
    let temp = tempfile::tempdir().expect("tempdir");
    let (old, new) = (temp.path().join("old"), temp.path().join("new"));
    copy_inputs(&old);
    copy_inputs(&new);
    edit(&new);
    let output = Command::new(env!("CARGO_BIN_EXE_svcgen"))
        .args(["breaking", "--against"])
        .arg(&old)
        .args(extra)
        .arg(&new)
        .output()
        .expect("svcgen runs");
    (output.status.code(), stderr(&output))
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn replace_in(file: &str, from: &str, to: &str) -> impl FnOnce(&Path) {
    let (file, from, to) = (file.to_owned(), from.to_owned(), to.to_owned());
    move |dir: &Path| {
        let path = dir.join(file);
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(text.contains(&from), "{from:?} not in {}", path.display());
        std::fs::write(&path, text.replacen(&from, &to, 1)).expect("write");
    }
}

fn append_to(file: &str, text: &str) -> impl FnOnce(&Path) {
    let (file, text) = (file.to_owned(), text.to_owned());
    move |dir: &Path| {
        let path = dir.join(file);
        let old = std::fs::read_to_string(&path).expect("read");
        std::fs::write(&path, format!("{old}{text}")).expect("write");
    }
}

/// Asserts exit 1 and a report line `<location>: <category> [<rule>] <subject>`.
fn assert_breaks(edit: impl FnOnce(&Path), expected: &[(&str, &str, &str, &str)]) {
    let (code, report) = breaking_after(edit, &[]);
    assert_eq!(code, Some(1), "{report}");
    for (location, category, rule, subject) in expected {
        let line = format!("{location}: {category} [{rule}] {subject}");
        assert!(report.contains(&line), "expected `{line}` in:\n{report}");
    }
    let count = report
        .lines()
        .filter(|l| {
            l.contains(": client [")
                || l.contains(": stored data [")
                || l.contains(": infrastructure [")
        })
        .count();
    assert_eq!(count, expected.len(), "unexpected findings:\n{report}");
}

fn at(line_col: &str) -> String {
    format!("{PROTO}:{line_col}")
}

#[test]
fn removed_field_without_reserved() {
    assert_breaks(
        replace_in(PROTO, "  double budget = 7;\n", ""),
        &[(
            &at("76:1"),
            "client",
            "field-removed",
            "acme.projects.v1.Project.budget",
        )],
    );
}

#[test]
fn removed_field_with_reserved_number_passes() {
    let (code, report) = breaking_after(
        replace_in(PROTO, "  double budget = 7;\n", "  reserved 7;\n"),
        &[],
    );
    assert_eq!(code, Some(0), "{report}");
    assert!(report.contains("no breaking changes"), "{report}");
}

#[test]
fn field_type_changed() {
    assert_breaks(
        replace_in(PROTO, "  int64 quota = 8;", "  string quota = 8;"),
        &[
            (
                &at("92:3"),
                "client",
                "field-type-changed",
                "acme.projects.v1.Project.quota",
            ),
            (
                &at("92:3"),
                "stored data",
                "stored-field-type-changed",
                "acme.projects.v1.Project.quota",
            ),
        ],
    );
}

#[test]
fn field_number_reused() {
    assert_breaks(
        replace_in(PROTO, "  double budget = 7;", "  string cost_center = 7;"),
        &[
            (
                &at("91:3"),
                "client",
                "field-number-reused",
                "acme.projects.v1.Project.budget",
            ),
            (
                &at("91:3"),
                "stored data",
                "stored-field-type-changed",
                "acme.projects.v1.Project.budget",
            ),
        ],
    );
}

#[test]
fn reserved_number_reused() {
    let temp = tempfile::tempdir().expect("tempdir");
    let (old, new) = (temp.path().join("old"), temp.path().join("new"));
    copy_inputs(&old);
    copy_inputs(&new);
    replace_in(PROTO, "  double budget = 7;\n", "  reserved 7;\n")(&old);
    replace_in(PROTO, "  double budget = 7;\n", "  int32 seats = 7;\n")(&new);
    let output = Command::new(env!("CARGO_BIN_EXE_svcgen"))
        .args(["breaking", "--against"])
        .args([&old, &new])
        .output()
        .expect("svcgen runs");
    let report = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{report}");
    assert!(
        report.contains(&format!(
            "{}: client [reserved-number-reused] acme.projects.v1.Project.seats",
            at("91:3")
        )),
        "{report}"
    );
}

#[test]
fn removed_rpc() {
    assert_breaks(
        replace_in(
            PROTO,
            "  rpc GetProject(GetProjectRequest) returns (Project) {\n    option (svcgen.operation) = { get: { entity: \"Project\" } };\n  }\n",
            "",
        ),
        &[(
            &at("11:1"),
            "client",
            "rpc-removed",
            "acme.projects.v1.ProjectService.GetProject",
        )],
    );
}

#[test]
fn changed_rpc_signature() {
    assert_breaks(
        replace_in(
            PROTO,
            "rpc ArchiveProject(ArchiveProjectRequest) returns (Project)",
            "rpc ArchiveProject(ArchiveProjectRequest) returns (google.protobuf.Empty)",
        ),
        &[(
            &at("43:3"),
            "client",
            "rpc-signature-changed",
            "acme.projects.v1.ProjectService.ArchiveProject",
        )],
    );
}

#[test]
fn removed_enum_value() {
    assert_breaks(
        replace_in(PROTO, "  TIER_TEAM = 2;\n", ""),
        &[(
            &at("64:1"),
            "client",
            "enum-value-removed",
            "acme.projects.v1.TIER_TEAM",
        )],
    );
}

#[test]
fn renamed_stored_enum_value() {
    // Tier is stored by name in Project.tier and Settings.allowed_tiers.
    assert_breaks(
        replace_in(PROTO, "  TIER_TEAM = 2;", "  TIER_TEAMS = 2;"),
        &[
            (
                &at("67:3"),
                "client",
                "enum-value-renamed",
                "acme.projects.v1.TIER_TEAM",
            ),
            (
                &at("67:3"),
                "stored data",
                "stored-enum-value-renamed",
                "acme.projects.v1.TIER_TEAM",
            ),
        ],
    );
}

#[test]
fn removed_message() {
    assert_breaks(
        |dir: &Path| {
            let proto = std::fs::read_to_string(dir.join(PROTO)).expect("read");
            let start = proto
                .find("message ArchiveProjectRequest {")
                .expect("request");
            let end = start + proto[start..].find("\n}\n").expect("its end") + 3;
            replace_in(PROTO, &proto[start..end], "")(dir);
            replace_in(
                PROTO,
                "rpc ArchiveProject(ArchiveProjectRequest)",
                "rpc ArchiveProject(GetProjectRequest)",
            )(dir);
        },
        &[
            (
                &at("178:1"),
                "client",
                "message-removed",
                "acme.projects.v1.ArchiveProjectRequest",
            ),
            (
                &at("187:3"),
                "client",
                "enum-removed",
                "acme.projects.v1.ArchiveProjectRequest.Urgency",
            ),
            (
                &at("43:3"),
                "client",
                "rpc-signature-changed",
                "acme.projects.v1.ProjectService.ArchiveProject",
            ),
        ],
    );
}

#[test]
fn removed_enum() {
    assert_breaks(
        |dir: &Path| {
            let tier =
                "enum Tier {\n  TIER_UNSPECIFIED = 0;\n  TIER_FREE = 1;\n  TIER_TEAM = 2;\n}\n";
            replace_in(PROTO, tier, "enum Plan {\n  PLAN_UNSPECIFIED = 0;\n}\n")(dir);
            replace_in(
                PROTO,
                "  repeated Tier allowed_tiers = 3;",
                "  repeated Plan allowed_tiers = 3;",
            )(dir);
            replace_in(PROTO, "  Tier tier = 5;", "  Plan tier = 5;")(dir);
        },
        &[
            (
                &at("64:1"),
                "client",
                "enum-removed",
                "acme.projects.v1.Tier",
            ),
            (
                &at("71:3"),
                "client",
                "field-type-changed",
                "acme.projects.v1.Settings.allowed_tiers",
            ),
            (
                &at("87:3"),
                "client",
                "field-type-changed",
                "acme.projects.v1.Project.tier",
            ),
            (
                &at("71:3"),
                "stored data",
                "stored-field-type-changed",
                "acme.projects.v1.Settings.allowed_tiers",
            ),
            (
                &at("87:3"),
                "stored data",
                "stored-field-type-changed",
                "acme.projects.v1.Project.tier",
            ),
        ],
    );
}

#[test]
fn removed_service() {
    assert_breaks(
        replace_in(
            PROTO,
            "service ProjectService {",
            "service ProjectsService {",
        ),
        &[(
            &at("11:1"),
            "client",
            "service-removed",
            "acme.projects.v1.ProjectService",
        )],
    );
}

#[test]
fn removed_entity() {
    assert_breaks(
        |dir: &Path| {
            let annotation = "  option (svcgen.entity) = {\n    table: \"main\"\n    pk: \"PROJECT#{project_id}\"\n    sk: \"MEMBER#{user_id}\"\n    indexes: { name: \"gsi1\" pk: \"OWNER#{user_id}\" sk: \"MEMBER#{project_id}\" }\n    ttl_field: \"expire_time\"\n  };\n";
            replace_in(PROTO, annotation, "")(dir);
            for operation in [
                "{ create: { entity: \"Member\" } }",
                "{ list: { entity: \"Member\" default_page_size: 10 max_page_size: 100 } }",
                "{ list: { entity: \"Member\" index: \"gsi1\" } }",
            ] {
                replace_in(PROTO, operation, "{ custom: {} }")(dir);
            }
            replace_in(PROTO, ", \"Member.ListMembers\"", "")(dir);
            replace_in(PROTO, ", \"Member.create\"", "")(dir);
        },
        &[(&at("105:1"), "stored data", "entity-removed", "Member")],
    );
}

#[test]
fn added_index_needs_a_backfill() {
    assert_breaks(
        replace_in(
            PROTO,
            "    ttl_field: \"expire_time\"",
            "    ttl_field: \"expire_time\"\n    indexes: { name: \"gsi2\" pk: \"ROLE#{role}\" sk: \"MEMBER#{user_id}\" }",
        ),
        &[(&at("105:1"), "stored data", "index-added", "Member.gsi2")],
    );
}

#[test]
fn renamed_service() {
    assert_breaks(
        replace_in(
            "svcgen.toml",
            "name = \"projects-svc\"",
            "name = \"projects-api\"",
        ),
        &[
            (
                "svcgen.toml:5",
                "infrastructure",
                "service-renamed",
                "service.name",
            ),
            (
                "svcgen.toml (deploy.cloud_map.namespace, default)",
                "infrastructure",
                "cloud-map-namespace-replaced",
                "deploy.cloud_map.namespace",
            ),
        ],
    );
}

#[test]
fn renamed_stored_fields_top_level_and_nested() {
    assert_breaks(
        |dir: &Path| {
            replace_in(PROTO, "  string role = 3;", "  string member_role = 3;")(dir);
            replace_in(PROTO, "  bool archived = 1;", "  bool is_archived = 1;")(dir);
        },
        &[
            (
                &at("71:3"),
                "client",
                "field-renamed",
                "acme.projects.v1.Settings.archived",
            ),
            (
                &at("71:3"),
                "stored data",
                "stored-field-renamed",
                "acme.projects.v1.Settings.archived",
            ),
            (
                &at("115:3"),
                "client",
                "field-renamed",
                "acme.projects.v1.Member.role",
            ),
            (
                &at("115:3"),
                "stored data",
                "stored-field-renamed",
                "acme.projects.v1.Member.role",
            ),
        ],
    );
}

#[test]
fn changed_key_template() {
    assert_breaks(
        replace_in(PROTO, "sk: \"PROJECT#{id}\"", "sk: \"P#{id}\""),
        &[(&at("76:1"), "stored data", "key-changed", "Project")],
    );
}

#[test]
fn changed_index_keys() {
    assert_breaks(
        replace_in(
            PROTO,
            "pk: \"OWNER#{user_id}\" sk: \"MEMBER#{project_id}\"",
            "pk: \"USER#{user_id}\" sk: \"MEMBER#{project_id}\"",
        ),
        &[(
            &at("105:1"),
            "stored data",
            "index-key-changed",
            "Member.gsi1",
        )],
    );
}

#[test]
fn entity_moved_to_another_table() {
    assert_breaks(
        replace_in(
            PROTO,
            "    table: \"main\"\n    pk: \"PROJECT#{project_id}\"",
            "    table: \"members\"\n    pk: \"PROJECT#{project_id}\"",
        ),
        &[(&at("105:1"), "stored data", "entity-moved", "Member")],
    );
}

#[test]
fn changed_ttl_and_version_fields() {
    assert_breaks(
        |dir: &Path| {
            replace_in(PROTO, "    ttl_field: \"expire_time\"\n", "")(dir);
            replace_in(PROTO, "    version_field: \"version\"\n", "")(dir);
        },
        &[
            (
                &at("76:1"),
                "stored data",
                "version-field-changed",
                "Project",
            ),
            (&at("104:1"), "stored data", "ttl-field-changed", "Member"),
        ],
    );
}

#[test]
fn renamed_physical_table() {
    assert_breaks(
        append_to("svcgen.toml", "\n[tables]\nmain = \"main-v2\"\n"),
        &[("svcgen.toml:16", "stored data", "table-renamed", "main")],
    );
}

#[test]
fn infrastructure_replacements() {
    assert_breaks(
        append_to(
            "svcgen.toml",
            "\n[deploy]\nport = 8080\n\n[deploy.cloud_map]\nnamespace = \"acme.internal\"\nservice = \"projects-api\"\nrecord_type = \"SRV\"\n",
        ),
        &[
            (
                "svcgen.toml:16",
                "infrastructure",
                "target-group-replaced",
                "deploy.port",
            ),
            (
                "svcgen.toml:19",
                "infrastructure",
                "cloud-map-namespace-replaced",
                "deploy.cloud_map.namespace",
            ),
            (
                "svcgen.toml:20",
                "infrastructure",
                "cloud-map-service-replaced",
                "deploy.cloud_map.service",
            ),
            (
                "svcgen.toml:21",
                "infrastructure",
                "cloud-map-record-type-changed",
                "deploy.cloud_map.record_type",
            ),
        ],
    );
}

#[test]
fn compatible_changes_pass() {
    let (code, report) = breaking_after(
        |dir: &Path| {
            replace_in(
                PROTO,
                "  uint64 version = 16;\n",
                "  uint64 version = 16;\n  optional string note = 17;\n",
            )(dir);
            replace_in(
                PROTO,
                "service ProjectService {\n",
                "service ProjectService {\n  // Answers when the service is up.\n  rpc Ping(google.protobuf.Empty) returns (google.protobuf.Empty);\n",
            )(dir);
            replace_in(
                PROTO,
                "  TIER_TEAM = 2;\n",
                "  TIER_TEAM = 2;\n  TIER_ENTERPRISE = 3;\n",
            )(dir);
        },
        &[],
    );
    assert_eq!(code, Some(0), "{report}");
    assert!(report.contains("no breaking changes"), "{report}");
}

#[test]
fn allowed_changes_do_not_fail() {
    let edit = |dir: &Path| {
        replace_in(PROTO, "sk: \"PROJECT#{id}\"", "sk: \"P#{id}\"")(dir);
        replace_in(PROTO, "  TIER_TEAM = 2;\n", "")(dir);
    };
    let (code, report) = breaking_after(
        edit,
        &[
            "--allow",
            "key-changed:Project",
            "--allow",
            "enum-value-removed",
        ],
    );
    assert_eq!(code, Some(0), "{report}");
    assert!(
        report.contains("allowed: ") && report.contains("(2 allowed)"),
        "{report}"
    );
    // An allowance for another subject does not cover it.
    let (code, report) = breaking_after(edit, &["--allow", "key-changed:Member"]);
    assert_eq!(code, Some(1), "{report}");
}

#[test]
fn against_a_git_revision() {
    let temp = tempfile::tempdir().expect("tempdir");
    let repo = temp.path();
    let project = repo.join("services/projects");
    copy_inputs(&project);
    let git = |args: &[&str]| {
        let output = Command::new("git")
            .current_dir(repo)
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .output()
            .expect("git runs");
        assert!(output.status.success(), "git {args:?}: {}", stderr(&output));
    };
    git(&["init", "-q"]);
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "v1"]);
    replace_in(PROTO, "  double budget = 7;\n", "")(&project);
    let output = Command::new(env!("CARGO_BIN_EXE_svcgen"))
        .args(["breaking", "--against", "HEAD"])
        .arg(&project)
        .output()
        .expect("svcgen runs");
    let report = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{report}");
    assert!(
        report.contains(&format!(
            "{}: client [field-removed] acme.projects.v1.Project.budget",
            at("76:1")
        )),
        "{report}"
    );
    // A revision that does not exist is a usage error.
    let output = Command::new(env!("CARGO_BIN_EXE_svcgen"))
        .args(["breaking", "--against", "no-such-branch"])
        .arg(&project)
        .output()
        .expect("svcgen runs");
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("neither a directory nor a git revision"),
        "{}",
        stderr(&output)
    );
}
