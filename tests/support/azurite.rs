//! A real Azurite (the Azure Storage emulator, npm package `azurite`) on a free loopback
//! port, for the tests that check blob code against it. Shared by both test binaries
//! (`#[path]` includes it). Without `azurite-blob` the caller skips, saying so loudly;
//! with `CI` set (`.ci/run` sets it and installs Azurite) a missing Azurite fails.

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

/// Start `azurite-blob` storing into `dir`; `None` (after a `SKIPPED:` line naming
/// `what`) when it is not installed outside CI.
pub fn start(dir: &Path, what: &str) -> Option<Azurite> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
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
    let mut child = match spawned {
        Ok(child) => child,
        Err(error) if std::env::var_os("CI").is_some() => {
            panic!("azurite-blob is required in CI (npm install -g azurite): {error}")
        }
        Err(_) => {
            eprintln!("SKIPPED: {what}: azurite-blob is not installed (npm install -g azurite)");
            return None;
        }
    };
    // Azurite says nothing on a pipe; it is ready when its port accepts connections.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::time::Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some(Azurite { child, port });
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("Azurite exited before listening: {status}");
        }
        std::thread::yield_now();
    }
    panic!("Azurite did not listen within 60 s");
}
