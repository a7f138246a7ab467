//! A real Azurite (the Azure Storage emulator, npm package `azurite`) on a free loopback
//! port, for the tests that check blob code against it. Shared by the CLI and emulator tests
//! (`#[path]` includes it). Those tests are `#[ignore = "needs azurite-blob ..."]`, so a
//! plain `cargo test` counts them as ignored in its summary; `.ci/run` installs Azurite
//! and runs them with `--ignored azurite` (every such test has `azurite` in its name).

use std::path::Path;
use std::process::{Child, Command, Stdio};

/// The well-known key of Azurite's `devstoreaccount1`.
pub const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// A running Azurite; stopped when dropped.
pub struct Azurite {
    child: Child,
    pub port: u16,
}

impl Azurite {
    /// `http://127.0.0.1:{port}/devstoreaccount1`
    pub fn account_url(&self) -> String {
        format!("http://127.0.0.1:{}/devstoreaccount1", self.port)
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start `azurite-blob` storing into `dir`, for the test named by `what`; a test that
/// asked for Azurite and cannot have it fails rather than passing without running.
pub fn start(dir: &Path, what: &str) -> Azurite {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port();
    let spawned = Command::new("azurite-blob")
        .args([
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            &port.to_string(),
            "--skipApiVersionCheck",
            "--disableTelemetry",
            "--location",
        ])
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let child = spawned.unwrap_or_else(|error| {
        panic!("{what}: cannot start azurite-blob (npm install -g azurite@3.35.0): {error}")
    });
    // Dropped (so killed and waited for) on every way out below.
    let mut azurite = Azurite { child, port };
    // Azurite says nothing on a pipe; it is ready when its port accepts connections.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::time::Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return azurite;
        }
        if let Ok(Some(status)) = azurite.child.try_wait() {
            panic!("Azurite exited before listening: {status}");
        }
        std::thread::yield_now();
    }
    panic!("Azurite did not listen within 60 s");
}
