//! The committed JSON schema in a real editor's language server: yaml-language-server
//! (npm), driven over LSP on stdio as VS Code's YAML extension drives it. A spec whose
//! modeline names the schema gets its diagnostics (a wrong type, an unknown key, a
//! missing required key, a bad enum value), and completion and hover show the
//! descriptions.
//!
//! `#[ignore]`d by a plain `cargo test` (it needs Node and the npm package); `.ci/run`
//! installs it and runs `--ignored yaml_language_server`.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::cli::common::repo_root;

struct Server {
    child: Child,
    stdin: ChildStdin,
    messages: Receiver<Value>,
    next_id: u64,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start() -> Server {
        let mut child = Command::new("yaml-language-server")
            .arg("--stdio")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("yaml-language-server runs (npm install -g yaml-language-server@1.19.2)");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (send, messages) = channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            loop {
                let mut length = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let line = line.trim_end();
                    if line.is_empty() {
                        break;
                    }
                    if let Some(n) = line.strip_prefix("Content-Length: ") {
                        length = n.parse().unwrap();
                    }
                }
                let mut body = vec![0; length];
                if reader.read_exact(&mut body).is_err() {
                    return;
                }
                if send.send(serde_json::from_slice(&body).unwrap()).is_err() {
                    return;
                }
            }
        });
        Server {
            child,
            stdin,
            messages,
            next_id: 1,
        }
    }

    fn send(&mut self, message: Value) {
        let body = message.to_string();
        write!(self.stdin, "Content-Length: {}\r\n\r\n{body}", body.len()).unwrap();
        self.stdin.flush().unwrap();
    }

    fn notify(&mut self, method: &str, params: Value) {
        self.send(json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    /// Send a request and wait (up to 30 s) for its answer, answering the server's own
    /// requests on the way and handing notifications to `seen`.
    fn request(&mut self, method: &str, params: Value, seen: &mut Vec<Value>) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let message = self
                .messages
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|_| panic!("no answer to {method}"));
            if message["id"] == id && message.get("method").is_none() {
                return message["result"].clone();
            }
            self.answer_or_keep(message, seen);
        }
    }

    /// Wait (up to 30 s) for a notification `method` that `accept` takes.
    fn wait_for(
        &mut self,
        method: &str,
        seen: &mut Vec<Value>,
        accept: impl Fn(&Value) -> bool,
    ) -> Value {
        if let Some(found) = seen.iter().find(|m| m["method"] == method && accept(m)) {
            return found.clone();
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let message = self
                .messages
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|_| panic!("no {method}; seen: {seen:#?}"));
            if message["method"] == method && accept(&message) {
                return message;
            }
            self.answer_or_keep(message, seen);
        }
    }

    fn answer_or_keep(&mut self, message: Value, seen: &mut Vec<Value>) {
        if message.get("id").is_some() && message.get("method").is_some() {
            // A request from the server (configuration, registrations): say yes.
            let result = if message["method"] == "workspace/configuration" {
                let items = message["params"]["items"].as_array().map_or(0, Vec::len);
                Value::Array(vec![settings()["yaml"].clone(); items])
            } else {
                Value::Null
            };
            self.send(json!({"jsonrpc": "2.0", "id": message["id"], "result": result}));
        } else {
            seen.push(message);
        }
    }
}

fn settings() -> Value {
    json!({"yaml": {"validate": true, "hover": true, "completion": true, "schemaStore": {"enable": false}}})
}

/// Line (0-based) and column of the first `needle` in `text`.
fn position(text: &str, needle: &str) -> (usize, usize) {
    for (line, content) in text.lines().enumerate() {
        if let Some(column) = content.find(needle) {
            return (line, column);
        }
    }
    panic!("`{needle}` is not in the text");
}

#[test]
#[ignore = "needs yaml-language-server (npm install -g yaml-language-server@1.19.2); .ci/run runs it with `--ignored yaml_language_server`"]
fn yaml_language_server_shows_the_schemas_diagnostics_completion_and_hover() {
    let schema = repo_root().join("schemas/amlspec.schema.json");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spec.yaml");
    let uri = format!("file://{}", path.display());
    let text = format!(
        "# yaml-language-server: $schema=file://{}\nworkspace:\n  name: pets-ws\n  subscription_id: 00000000-0000-0000-0000-000000000001\n  resource_group: ml-rg\n\nclusters:\n  - name: gpu-cluster\n    vm_size: STANDARD_NC6\n    vm_priority: fast\n    max_nodes: four\n    colour: blue\n  - name: cpu-cluster\n    max_nodes: 2\n    \n",
        schema.display()
    );
    std::fs::write(&path, &text).unwrap();

    let mut server = Server::start();
    let mut seen = Vec::new();
    let root = format!("file://{}", dir.path().display());
    server.request(
        "initialize",
        json!({
            "processId": std::process::id(),
            "rootUri": root,
            "capabilities": {
                "workspace": {"configuration": true},
                "textDocument": {
                    "publishDiagnostics": {},
                    "completion": {"completionItem": {"documentationFormat": ["markdown", "plaintext"]}},
                    "hover": {"contentFormat": ["markdown", "plaintext"]},
                },
            },
        }),
        &mut seen,
    );
    server.notify("initialized", json!({}));
    server.notify(
        "workspace/didChangeConfiguration",
        json!({"settings": settings()}),
    );
    server.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": uri, "languageId": "yaml", "version": 1, "text": text}}),
    );
    let published = server.wait_for("textDocument/publishDiagnostics", &mut seen, |m| {
        m["params"]["uri"] == uri
            && m["params"]["diagnostics"]
                .as_array()
                .is_some_and(|d| !d.is_empty())
    });
    let diagnostics: Vec<(usize, String)> = published["params"]["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["range"]["start"]["line"].as_u64().unwrap() as usize,
                d["message"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let at = |needle: &str| position(&text, needle).0;
    let says = |line: usize, words: &[&str]| {
        diagnostics.iter().any(|(l, message)| {
            *l == line
                && words
                    .iter()
                    .all(|w| message.to_lowercase().contains(&w.to_lowercase()))
        })
    };
    assert!(
        says(at("max_nodes: four"), &["type", "integer"]),
        "wrong type: {diagnostics:#?}"
    );
    assert!(
        says(at("colour: blue"), &["colour", "not allowed"]),
        "unknown key: {diagnostics:#?}"
    );
    assert!(
        says(at("vm_priority: fast"), &["dedicated", "low_priority"]),
        "bad enum: {diagnostics:#?}"
    );
    assert!(
        diagnostics
            .iter()
            .any(|(l, m)| *l == at("name: cpu-cluster") && m.contains("vm_size")),
        "missing required key: {diagnostics:#?}"
    );

    // Hover on a key shows its description from the schema.
    let (line, character) = position(&text, "vm_size: STANDARD_NC6");
    let hover = server.request(
        "textDocument/hover",
        json!({"textDocument": {"uri": uri}, "position": {"line": line, "character": character + 2}}),
        &mut seen,
    );
    let shown = hover["contents"].to_string();
    assert!(shown.contains("Azure VM size of the nodes"), "{hover:#}");

    // Completion in a cluster offers the keys not written yet, with their descriptions.
    let (line, _) = position(&text, "max_nodes: 2");
    let completion = server.request(
        "textDocument/completion",
        json!({"textDocument": {"uri": uri}, "position": {"line": line + 1, "character": 4}}),
        &mut seen,
    );
    let items = completion["items"]
        .as_array()
        .or_else(|| completion.as_array())
        .cloned()
        .unwrap_or_default();
    let labels: Vec<&str> = items.iter().filter_map(|i| i["label"].as_str()).collect();
    for key in ["vm_size", "min_nodes", "idle_seconds_before_scale_down"] {
        assert!(labels.contains(&key), "{key} not offered: {labels:?}");
    }
    let vm_size = items.iter().find(|i| i["label"] == "vm_size").unwrap();
    assert!(
        vm_size.to_string().contains("Azure VM size of the nodes"),
        "{vm_size:#}"
    );
}
