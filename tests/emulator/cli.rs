//! `amlspec emulator` as a user runs it: HTTPS by default with a fresh CA written where
//! the ready line says, and an admin key in a private file the ready line names.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

struct Running {
    child: Child,
    line: String,
}

impl Running {
    fn start(args: &[&str]) -> Running {
        let mut child = Command::new(env!("CARGO_BIN_EXE_amlspec"))
            .args(["emulator", "--port", "0", "--sim", "explicit"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the binary starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        Running { child, line }
    }

    fn field(&self, name: &str) -> Option<String> {
        self.line
            .split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{name}=")))
            .map(str::to_string)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn trusting(ca: &str) -> reqwest::Client {
    let pem = std::fs::read(ca).unwrap_or_else(|e| panic!("the CA file {ca}: {e}"));
    let cert = reqwest::Certificate::from_pem(&pem).unwrap();
    reqwest::Client::builder()
        .no_proxy()
        .tls_certs_only([cert])
        .build()
        .unwrap()
}

#[tokio::test]
async fn serves_https_by_default_with_the_ca_where_the_ready_line_says() {
    let dir = tempfile::tempdir().unwrap();
    let running = Running::start(&["--state", dir.path().to_str().unwrap()]);
    let arm = running
        .field("arm")
        .unwrap_or_else(|| panic!("{}", running.line));
    assert!(arm.starts_with("https://127.0.0.1:"), "{}", running.line);
    let ca = running
        .field("ca")
        .unwrap_or_else(|| panic!("the ready line names no CA file: {}", running.line));
    assert_eq!(PathBuf::from(&ca), dir.path().join("ca.pem"));
    // The CA verifies the served certificate (and nothing else is trusted).
    let r = trusting(&ca)
        .get(format!("{arm}/metadata/endpoints?api-version=2022-09-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let cloud: Value = r.json().await.unwrap();
    assert_eq!(cloud["resourceManager"], format!("{arm}/"));
    // Without the CA, the certificate is not trusted.
    let plain = reqwest::Client::builder().no_proxy().build().unwrap();
    assert!(
        plain
            .get(format!("{arm}/admin/health"))
            .send()
            .await
            .is_err()
    );
}

#[tokio::test]
async fn in_memory_the_ca_and_admin_key_go_to_a_private_folder() {
    let running = Running::start(&[]);
    let arm = running
        .field("arm")
        .unwrap_or_else(|| panic!("{}", running.line));
    assert!(
        running.field("state") == Some("memory".into()),
        "{}",
        running.line
    );
    let ca = running.field("ca").expect("a CA file");
    let key_file = running
        .field("admin_key_file")
        .unwrap_or_else(|| panic!("the ready line names no admin key file: {}", running.line));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let key = std::fs::read_to_string(&key_file).unwrap();
    assert!(
        !running.line.contains(key.trim()),
        "the key itself is not printed"
    );
    let http = trusting(&ca);
    let url = format!("{arm}/admin/step");
    let r = http.post(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = http
        .post(&url)
        .header("x-amlspec-admin-key", key.trim())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn plain_http_on_request_and_the_old_tls_flag_still_works() {
    let running = Running::start(&["--plain-http"]);
    let arm = running
        .field("arm")
        .unwrap_or_else(|| panic!("{}", running.line));
    assert!(arm.starts_with("http://"), "{}", running.line);
    assert_eq!(running.field("ca"), None, "{}", running.line);

    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("my-ca.pem");
    let running = Running::start(&["--tls-self-signed", ca.to_str().unwrap()]);
    let arm = running
        .field("arm")
        .unwrap_or_else(|| panic!("{}", running.line));
    assert_eq!(running.field("ca"), Some(ca.display().to_string()));
    let r = trusting(ca.to_str().unwrap())
        .get(format!("{arm}/admin/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}
