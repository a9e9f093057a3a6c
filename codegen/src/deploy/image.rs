//! Building and pushing the service image with whichever container engine is installed.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

use super::{AwsError, InputError};

/// A container engine on `PATH`.
#[derive(Clone, Debug)]
pub(super) struct Engine {
    /// `docker`, `podman` or `buildah`.
    pub(super) name: &'static str,
    path: PathBuf,
}

/// The engines svcgen can drive, in order of preference (their build, login and push
/// commands take the same arguments).
const ENGINES: [&str; 3] = ["docker", "podman", "buildah"];

/// The first engine found on `PATH`.
pub(super) fn find_engine() -> Option<Engine> {
    find_engine_in(&std::env::var_os("PATH")?)
}

/// docker needs its daemon, so a docker CLI whose daemon does not answer `docker info` is
/// skipped (podman and buildah run without one).
fn find_engine_in(path: &std::ffi::OsStr) -> Option<Engine> {
    ENGINES.into_iter().find_map(|name| {
        std::env::split_paths(path)
            .map(|dir| dir.join(name))
            .find(|candidate| is_executable(candidate))
            .filter(|candidate| name != "docker" || daemon_answers(candidate))
            .map(|path| Engine { name, path })
    })
}

fn daemon_answers(docker: &Path) -> bool {
    Command::new(docker)
        .arg("info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The image tag for the source in `dir`: the git revision (short), with `-dirty-<time>`
/// when the working tree has uncommitted changes, so every different source gets a different
/// tag and therefore a new task definition revision.
pub(super) fn revision(dir: &Path) -> Result<String, InputError> {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(dir)
            .stderr(Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let head = git(&["rev-parse", "--short=12", "HEAD"]).ok_or_else(|| InputError::NoRevision {
        dir: dir.to_owned(),
    })?;
    let dirty = git(&["status", "--porcelain", "--", "."]).is_some_and(|s| !s.is_empty());
    if dirty {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        Ok(format!("{head}-dirty-{now}"))
    } else {
        Ok(head)
    }
}

/// Why the image did not build or push.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The engine could not be started.
    #[error("cannot run {}: {error}", .path.display())]
    Spawn {
        /// The engine's executable.
        path: PathBuf,
        /// Why it did not start.
        error: std::io::Error,
    },
    /// Talking to the running engine failed.
    #[error("{engine} {command}: {error}")]
    Io {
        /// `docker`, `podman` or `buildah`.
        engine: &'static str,
        /// Its subcommand, e.g. `login`.
        command: String,
        /// The error.
        error: std::io::Error,
    },
    /// The engine exited with a failure.
    #[error("`{engine} {}` failed ({status})", .args.join(" "))]
    Exit {
        /// `docker`, `podman` or `buildah`.
        engine: &'static str,
        /// Its arguments.
        args: Vec<String>,
        /// How it exited.
        status: ExitStatus,
    },
}

impl Engine {
    fn run(&self, args: &[&str], stdin: Option<&str>, dir: &Path) -> Result<(), EngineError> {
        use std::io::Write as _;
        let mut child = Command::new(&self.path)
            .args(args)
            .current_dir(dir)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|error| EngineError::Spawn {
                path: self.path.clone(),
                error,
            })?;
        let io = |error| EngineError::Io {
            engine: self.name,
            command: args.first().copied().unwrap_or_default().to_owned(),
            error,
        };
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(input.as_bytes()).map_err(io)?;
        }
        let status = child.wait().map_err(io)?;
        if status.success() {
            Ok(())
        } else {
            Err(EngineError::Exit {
                engine: self.name,
                args: args.iter().map(|a| (*a).to_owned()).collect(),
                status,
            })
        }
    }

    /// Builds the image from the project's Dockerfile for `platform` (e.g. `linux/arm64`),
    /// tagged `repository:tag` and `repository:latest`; logs in to the registry and pushes both
    /// tags. The engine's own output (each build step as it starts) goes to the terminal.
    pub(super) fn build_and_push(
        &self,
        dir: &Path,
        platform: &str,
        repository: &str,
        tag: &str,
        login: &Login,
    ) -> Result<(), EngineError> {
        let image = format!("{repository}:{tag}");
        let latest = format!("{repository}:latest");
        let build = if self.name == "buildah" {
            "bud"
        } else {
            "build"
        };
        self.run(
            &[
                build,
                "--platform",
                platform,
                "-f",
                "Dockerfile",
                "-t",
                &image,
                "-t",
                &latest,
                ".",
            ],
            None,
            dir,
        )?;
        self.run(
            &[
                "login",
                "--username",
                &login.username,
                "--password-stdin",
                &login.registry,
            ],
            Some(&login.password),
            dir,
        )?;
        self.run(&["push", &image], None, dir)?;
        self.run(&["push", &latest], None, dir)
    }
}

/// Registry credentials from ECR's `GetAuthorizationToken`.
pub(super) struct Login {
    pub(super) registry: String,
    pub(super) username: String,
    pub(super) password: String,
}

impl Login {
    /// Decodes ECR's base64 `user:password` token.
    pub(super) fn from_token(registry: &str, token: &str) -> Result<Self, AwsError> {
        use base64::Engine as _;
        let unexpected = |returned| AwsError::Unexpected {
            operation: "ecr:GetAuthorizationToken",
            returned,
        };
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(token)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or(unexpected("a token that is not base64 text"))?;
        let (username, password) = decoded
            .split_once(':')
            .ok_or(unexpected("a token without a user name"))?;
        Ok(Self {
            registry: registry
                .trim_start_matches("https://")
                .trim_end_matches('/')
                .to_owned(),
            username: username.to_owned(),
            password: password.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecr_tokens_decode_to_registry_credentials() {
        use base64::Engine as _;
        let token = base64::engine::general_purpose::STANDARD.encode("AWS:secret:with:colons");
        let login = Login::from_token(
            "https://123456789012.dkr.ecr.eu-west-1.amazonaws.com",
            &token,
        )
        .expect("decodes");
        assert_eq!(
            login.registry,
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
        );
        assert_eq!(login.username, "AWS");
        assert_eq!(login.password, "secret:with:colons");
        assert!(Login::from_token("r", "not base64!").is_err());
        let no_user = base64::engine::general_purpose::STANDARD.encode("password");
        assert!(Login::from_token("r", &no_user).is_err());
    }

    #[test]
    fn the_tag_is_the_revision_and_marks_uncommitted_changes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let git = |args: &[&str]| {
            let ok = Command::new("git")
                .args(["-c", "user.name=t", "-c", "user.email=t@t"])
                .args(args)
                .current_dir(dir.path())
                .output()
                .is_ok_and(|o| o.status.success());
            assert!(ok, "git {args:?}");
        };
        assert!(revision(dir.path()).is_err_and(|e| e.to_string().contains("--image")));
        git(&["init", "-q"]);
        std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").expect("write");
        git(&["add", "."]);
        git(&["commit", "-q", "-m", "one"]);
        let clean = revision(dir.path()).expect("revision");
        assert_eq!(clean.len(), 12);
        assert!(clean.chars().all(|c| c.is_ascii_hexdigit()));
        std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\nUSER 1\n").expect("write");
        let dirty = revision(dir.path()).expect("revision");
        assert!(dirty.starts_with(&format!("{clean}-dirty-")), "{dirty}");
    }

    #[test]
    fn engines_are_found_on_path_in_order_of_preference() {
        // Engines are links to `true`/`false`: executing a file this process just wrote can
        // fail with ETXTBSY while another test thread forks.
        let dir = tempfile::tempdir().expect("tempdir");
        let link = |name: &str, target: &str| {
            let path = dir.path().join(name);
            let _ = std::fs::remove_file(&path);
            std::os::unix::fs::symlink(target, &path).expect("symlink");
        };
        let on = |path: &Path| find_engine_in(path.as_os_str()).map(|e| e.name);
        assert_eq!(on(dir.path()), None);
        std::fs::write(dir.path().join("docker"), "not executable").expect("write");
        assert_eq!(on(dir.path()), None);
        link("buildah", "/bin/true");
        assert_eq!(on(dir.path()), Some("buildah"));
        link("podman", "/bin/true");
        assert_eq!(on(dir.path()), Some("podman"));
        link("docker", "/bin/false");
        assert_eq!(on(dir.path()), Some("podman"), "a docker without a daemon");
        link("docker", "/bin/true");
        assert_eq!(on(dir.path()), Some("docker"));
    }
}
