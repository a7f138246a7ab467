//! Fuzz body: a few HTTP requests, built from the input, to a fresh in-process emulator
//! on 127.0.0.1 (plain HTTP, no state folder), each on its own connection. Every request
//! must get a whole HTTP answer within the time limit: a handler that panics drops the
//! connection (and aborts the fuzzer through its panic hook), one that hangs times out.
//!
//! The requests aim at the emulator's surfaces (ARM resources of every kind, blob
//! storage, container registries, tokens, admin), signed in or not, with valid or
//! hostile api-versions, headers and bodies.

use std::sync::OnceLock;
use std::time::Duration;

use amlspec::emulator::{Emulator, EmulatorConfig, SimMode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::input::Input;

const SUB: &str = "00000000-0000-0000-0000-000000000001";
const WS: &str = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/ws";
const METHODS: [&str; 7] = ["GET", "PUT", "PATCH", "POST", "DELETE", "HEAD", "OPTIONS"];
/// The most of an answer read (the emulator's pages are far smaller).
const MAX_ANSWER: usize = 4 << 20;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime")
    })
}

pub fn run(bytes: &[u8]) {
    runtime().block_on(exchange(bytes));
}

async fn exchange(bytes: &[u8]) {
    let mut input = Input::new(bytes);
    let config = EmulatorConfig {
        sim_mode: if input.byte().is_multiple_of(2) {
            SimMode::Explicit
        } else {
            SimMode::default()
        },
        ..EmulatorConfig::default()
    };
    let emulator = start(config).await;
    let token = token(&emulator).await;
    let count = 1 + input.below(4);
    for _ in 0..count {
        if input.is_empty() {
            break;
        }
        let request = request(&mut input, &emulator, &token);
        send(&emulator, &request).await;
    }
    emulator.shutdown().await;
}

/// Start an emulator. Hundreds of thousands of short connections can use up the
/// machine's ephemeral ports for a while (their TIME_WAIT): binding is then retried for
/// up to a minute rather than reported as the emulator's failure.
async fn start(config: EmulatorConfig) -> Emulator {
    let mut last = None;
    for _ in 0..60 {
        match Emulator::start(config.clone()).await {
            Ok(emulator) => return emulator,
            Err(error @ amlspec::emulator::EmulatorError::Bind { .. }) => {
                last = Some(error);
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(error) => panic!("the emulator does not start: {error}"),
        }
    }
    panic!("no port to bind for a minute: {last:?}");
}

async fn token(emulator: &Emulator) -> String {
    let body = format!(
        "grant_type=client_credentials&client_id={}&client_secret={}&scope=https%3A%2F%2Fmanagement.azure.com%2F.default",
        emulator.client_id(),
        emulator.client_secret()
    );
    let path = format!("/{}/oauth2/v2.0/token", emulator.tenant_id());
    let request = raw(
        "POST",
        &path,
        "127.0.0.1",
        &[(
            "content-type".into(),
            "application/x-www-form-urlencoded".into(),
        )],
        body.as_bytes(),
    );
    let answer = send(emulator, &request).await;
    let text = String::from_utf8_lossy(&answer);
    let json = text.split("\r\n\r\n").nth(1).unwrap_or_default();
    let value: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
    value["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn request(input: &mut Input<'_>, emulator: &Emulator, token: &str) -> Vec<u8> {
    let method = METHODS[input.below(METHODS.len())];
    let suffix = input.text(200);
    let (host, path) = match input.below(14) {
        0 => ("127.0.0.1".to_string(), format!("{WS}{suffix}")),
        1 => ("127.0.0.1".into(), format!("{WS}/computes/{suffix}")),
        2 => (
            "127.0.0.1".into(),
            format!("{WS}/environments/env/versions/{suffix}"),
        ),
        3 => (
            "127.0.0.1".into(),
            format!("{WS}/codes/code/versions/{suffix}"),
        ),
        4 => ("127.0.0.1".into(), format!("{WS}/jobs/{suffix}")),
        5 => ("127.0.0.1".into(), format!("{WS}/connections/{suffix}")),
        6 => (
            "127.0.0.1".into(),
            format!("/subscriptions/{SUB}/resourceGroups/rg{suffix}"),
        ),
        7 => (
            "127.0.0.1".into(),
            format!(
                "/subscriptions/{SUB}/providers/Microsoft.MachineLearningServices/locations/{suffix}"
            ),
        ),
        8 => (
            format!("account.blob.{}", emulator.storage_suffix()),
            format!("/container/{suffix}"),
        ),
        9 => ("myregistry.azurecr.io".into(), format!("/v2/{suffix}")),
        10 => ("127.0.0.1".into(), format!("/admin/{suffix}")),
        11 => (
            "127.0.0.1".into(),
            format!("/{}/{suffix}", emulator.tenant_id()),
        ),
        12 => ("127.0.0.1".into(), format!("/history/v1.0{suffix}")),
        _ => ("127.0.0.1".into(), suffix),
    };
    let path = if path.starts_with('/') {
        path
    } else {
        format!("/{path}")
    };
    let query = match input.below(4) {
        0 => "?api-version=2026-07-01".to_string(),
        1 => format!("?api-version={}", input.text(20)),
        2 => format!("?api-version=2026-07-01&{}", input.text(80)),
        _ => String::new(),
    };
    let mut headers: Vec<(String, String)> = Vec::new();
    match input.below(4) {
        0 | 1 => headers.push(("authorization".into(), format!("Bearer {token}"))),
        2 => headers.push(("authorization".into(), input.text(80))),
        _ => {}
    }
    if input.below(4) == 0 {
        headers.push((
            "x-amlspec-admin-key".into(),
            emulator.admin_key().to_string(),
        ));
    }
    for _ in 0..input.below(4) {
        let name = input.text(30);
        let value = input.text(80);
        headers.push((name, value));
    }
    let body = input.bytes(64 * 1024);
    raw(method, &format!("{path}{query}"), &host, &headers, body)
}

/// An HTTP/1.1 request; text that could not be sent (controls, non-ASCII in names) is
/// made percent-escaped or left out, so the request reaches the emulator rather than
/// being refused by the HTTP parser.
fn raw(
    method: &str,
    target: &str,
    host: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Vec<u8> {
    let target: String = target
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() {
                c.to_string()
            } else {
                let mut buf = [0u8; 4];
                c.encode_utf8(&mut buf)
                    .bytes()
                    .map(|b| format!("%{b:02X}"))
                    .collect()
            }
        })
        .collect();
    let mut out = format!("{method} {target} HTTP/1.1\r\nhost: {host}\r\n");
    for (name, value) in headers {
        let name: String = name
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || "-_".contains(*c))
            .collect();
        let value: String = value
            .chars()
            .filter(|c| c.is_ascii_graphic() || *c == ' ')
            .collect();
        let lower = name.to_ascii_lowercase();
        if name.is_empty()
            || matches!(
                lower.as_str(),
                "host" | "connection" | "content-length" | "transfer-encoding"
            )
        {
            continue;
        }
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// Send one request on a new connection; the whole answer. The request asks to keep the
/// connection open; once the answer is whole (its `content-length`, or the last chunk),
/// the connection is reset rather than closed, so that hundreds of thousands of them
/// leave no TIME_WAIT behind to use up the machine's ports.
async fn send(emulator: &Emulator, request: &[u8]) -> Vec<u8> {
    let head_request = request.starts_with(b"HEAD ");
    let work = async {
        let mut stream = tokio::net::TcpStream::connect(emulator.addr())
            .await
            .expect("the emulator accepts a connection");
        stream
            .write_all(request)
            .await
            .expect("the request is sent");
        let mut answer = Vec::new();
        let mut chunk = [0u8; 16 * 1024];
        loop {
            if whole(&answer, head_request) {
                break;
            }
            match stream.read(&mut chunk).await {
                Ok(0) => break,
                Ok(n) => {
                    answer.extend_from_slice(&chunk[..n]);
                    assert!(answer.len() <= MAX_ANSWER, "an answer of over 4 MiB");
                }
                Err(error) => panic!("the connection failed: {error}"),
            }
        }
        let _ = stream.set_zero_linger();
        answer
    };
    let answer = tokio::time::timeout(Duration::from_secs(10), work)
        .await
        .expect("the emulator answered within 10 s");
    assert!(
        answer.starts_with(b"HTTP/1.1 "),
        "no HTTP answer (the handler panicked?): {:?}",
        String::from_utf8_lossy(&answer[..answer.len().min(200)])
    );
    answer
}

/// Whether `answer` is a whole HTTP/1.1 answer: its head, then as many bytes as its
/// `content-length` says (none for a HEAD request, a 204 or a 304), or chunks up to the
/// last.
fn whole(answer: &[u8], head_request: bool) -> bool {
    let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&answer[..end]).to_ascii_lowercase();
    let body = &answer[end + 4..];
    let status = head.split(' ').nth(1).unwrap_or_default();
    if head_request || matches!(status, "204" | "304") || status.starts_with('1') {
        return true;
    }
    let header = |name: &str| {
        head.lines()
            .find_map(|line| line.strip_prefix(name).map(|v| v.trim().to_string()))
    };
    if let Some(length) = header("content-length:").and_then(|v| v.parse::<usize>().ok()) {
        return body.len() >= length;
    }
    if header("transfer-encoding:").is_some_and(|v| v.contains("chunked")) {
        return body.ends_with(b"0\r\n\r\n");
    }
    // Neither: the answer ends when the connection does.
    false
}
