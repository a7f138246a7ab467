//! A small builder that runs the real binary: `Test::new().args([..]).env(..).run()`.

use std::path::{Path, PathBuf};

use amlspec::spec::interpolate::EnvVars;

pub const SUBSCRIPTION: &str = "00000000-0000-0000-0000-000000000001";
/// Never expected in any output: the test suite's registry password.
pub const PASSWORD: &str = "s3cret-Pa55word-never-printed";

/// The variables the example specs and the corpus use.
pub fn test_env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("AZURE_SUBSCRIPTION_ID", SUBSCRIPTION),
        ("ACR_PASSWORD", PASSWORD),
        ("ACR_USERNAME", "acr-user"),
        ("NOT_A_GUID", "not-a-guid"),
    ]
}

pub fn env_vars() -> EnvVars {
    test_env().into_iter().collect()
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `path` relative to the repository root, with `/` separators, as tests print it.
pub fn relative(path: &Path) -> PathBuf {
    path.strip_prefix(repo_root()).unwrap_or(path).to_path_buf()
}

pub struct Test {
    command: std::process::Command,
    /// Where the run writes its trace-level log, under the secret canary.
    log_file: Option<PathBuf>,
    /// Values that must not reach stdout or stderr in any form.
    secrets: Vec<String>,
}

/// Does `text` show `secret`: as is, escaped for JSON or Rust's debug quoting, escaped
/// for a GitHub workflow command, or the start of it cut short?
pub fn leaks(text: &str, secret: &str) -> bool {
    let json = serde_json::to_string(secret).unwrap();
    let debug = format!("{secret:?}");
    let github = secret
        .replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A");
    let start: String = secret.chars().take(12).collect();
    [
        secret,
        &json[1..json.len() - 1],
        &debug[1..debug.len() - 1],
        &github,
        &start,
    ]
    .iter()
    .any(|form| text.contains(form))
}

/// Panic when `text` (named `what`) shows `secret` in any form [`leaks`] knows.
pub fn assert_no_leak(what: &str, text: &str, secret: &str) {
    assert!(!leaks(text, secret), "a secret reached {what}:\n{text}");
}

pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Test {
    pub fn new() -> Self {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_amlspec"));
        command.current_dir(repo_root());
        for (name, _) in test_env() {
            command.env_remove(name);
        }
        // Nothing from the developer's own environment may steer a test.
        for name in [
            "RUST_LOG",
            "NO_COLOR",
            "CLICOLOR_FORCE",
            "GITHUB_STEP_SUMMARY",
            "AMLSPEC_CLOUD",
            "AMLSPEC_ARM_ENDPOINT",
            "AMLSPEC_AUTHORITY_HOST",
            "AMLSPEC_STORAGE_SUFFIX",
            "AMLSPEC_CA_CERT",
            "AMLSPEC_AUTH",
            "AZURE_CLIENT_ID",
            "AZURE_TENANT_ID",
            "AZURE_CLIENT_SECRET",
            "AZURE_FEDERATED_TOKEN_FILE",
            "ACTIONS_ID_TOKEN_REQUEST_URL",
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
            "IDENTITY_ENDPOINT",
            "MSI_ENDPOINT",
            "AMLSPEC_LOG_FILE",
        ] {
            command.env_remove(name);
        }
        for (name, value) in test_env() {
            command.env(name, value);
        }
        // The secret canary (`AMLSPEC_CANARY_DIR`, .ci/run): every run also writes its
        // whole log at trace level to a file of its own, checked like stdout and stderr.
        let log_file = canary_log_file();
        if let Some(path) = &log_file {
            command.env("AMLSPEC_LOG_FILE", path);
        }
        Test {
            command,
            secrets: vec![PASSWORD.to_string()],
            log_file,
        }
    }

    pub fn args<I: IntoIterator<Item = S>, S: AsRef<std::ffi::OsStr>>(mut self, args: I) -> Self {
        self.command.args(args);
        self
    }

    pub fn arg_path(mut self, path: &Path) -> Self {
        self.command.arg(path);
        self
    }

    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.command.env(name, value);
        self
    }

    /// Also check that `value` reaches neither stdout nor stderr.
    pub fn secret(mut self, value: &str) -> Self {
        self.secrets.push(value.to_string());
        self
    }

    pub fn env_remove(mut self, name: &str) -> Self {
        self.command.env_remove(name);
        self
    }

    pub fn current_dir(mut self, dir: &Path) -> Self {
        self.command.current_dir(dir);
        self
    }

    /// Start it with stdout and stderr piped; [`Running::finish`] waits and checks.
    pub fn spawn(mut self) -> Running {
        use std::process::Stdio;
        let child = self
            .command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("amlspec starts");
        Running {
            child,
            secrets: self.secrets,
            log_file: self.log_file,
        }
    }

    pub fn run(mut self) -> Output {
        let output = self.command.output().expect("amlspec runs");
        let out = Output {
            code: output.status.code().expect("amlspec exits normally"),
            stdout: String::from_utf8(output.stdout).expect("stdout is UTF-8"),
            stderr: String::from_utf8(output.stderr).expect("stderr is UTF-8"),
        };
        check_log(self.log_file.as_deref(), &self.secrets);
        for secret in &self.secrets {
            assert_no_leak("stdout", &out.stdout, secret);
            assert_no_leak("stderr", &out.stderr, secret);
        }
        out
    }
}

/// A fresh log file under `AMLSPEC_CANARY_DIR`, when the secret canary is on.
fn canary_log_file() -> Option<PathBuf> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static RUNS: AtomicU64 = AtomicU64::new(0);
    let dir = PathBuf::from(std::env::var_os("AMLSPEC_CANARY_DIR")?);
    std::fs::create_dir_all(&dir).expect("the canary folder");
    let run = RUNS.fetch_add(1, Ordering::Relaxed);
    Some(dir.join(format!("run-{}-{run}.log", std::process::id())))
}

/// The trace-level log of a run holds none of `secrets`.
fn check_log(path: Option<&Path>, secrets: &[String]) {
    let Some(path) = path else {
        return;
    };
    // A run that failed before logging anything writes no file.
    let log = std::fs::read_to_string(path).unwrap_or_default();
    for secret in secrets {
        assert_no_leak(&format!("the log {}", path.display()), &log, secret);
    }
}

/// A started `amlspec`.
pub struct Running {
    pub child: std::process::Child,
    secrets: Vec<String>,
    log_file: Option<PathBuf>,
}

impl Running {
    /// Send `signal` (`libc::SIGTERM`, ...).
    #[cfg(unix)]
    pub fn signal(&self, signal: i32) {
        let pid = i32::try_from(self.child.id()).unwrap();
        // SAFETY: kill(2) on our own child's pid.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
    }

    /// Wait for the end; `code` is -1 when a signal ended the process.
    pub fn finish(self) -> Output {
        let output = self.child.wait_with_output().expect("amlspec runs");
        let out = Output {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8(output.stdout).expect("stdout is UTF-8"),
            stderr: String::from_utf8(output.stderr).expect("stderr is UTF-8"),
        };
        check_log(self.log_file.as_deref(), &self.secrets);
        for secret in &self.secrets {
            assert_no_leak("stdout", &out.stdout, secret);
            assert_no_leak("stderr", &out.stderr, secret);
        }
        out
    }
}

/// A copy of specs/ in a fresh folder, to edit for a test.
pub fn specs_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&repo_root().join("specs"), dir.path());
    dir
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Replace `from` with `to` in a file; the text must be there.
pub fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{} has no `{from}`", path.display());
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
}
