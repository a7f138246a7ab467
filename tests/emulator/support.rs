//! Test harness: an in-process emulator, an authenticated HTTP client, and a contract
//! check that validates every Azure ML response against the vendored OpenAPI.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use amlspec::emulator::{Emulator, EmulatorConfig, SimMode};
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

pub const API: &str = "2026-07-01";

pub struct Env {
    pub emu: Emulator,
    pub http: reqwest::Client,
    pub token: String,
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    #[track_caller]
    pub fn expect(&self, status: u16) -> &Resp {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.text
        );
        self
    }

    pub fn error_code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or_default()
    }
}

pub fn explicit() -> EmulatorConfig {
    EmulatorConfig {
        sim_mode: SimMode::Explicit,
        ..EmulatorConfig::default()
    }
}

pub async fn token_for(http: &reqwest::Client, emu: &Emulator, scope: &str) -> String {
    let resp = http
        .post(emu.token_url())
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", emu.client_id()),
            ("client_secret", emu.client_secret()),
            ("scope", scope),
        ])
        .send()
        .await
        .expect("token request");
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.expect("token json");
    body["access_token"]
        .as_str()
        .expect("access_token")
        .to_string()
}

pub async fn start(config: EmulatorConfig) -> Env {
    let emu = start_emulator(config).await;
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let token = token_for(&http, &emu, "https://management.azure.com/.default").await;
    Env { emu, http, token }
}

impl Env {
    pub fn sub(&self) -> String {
        format!("/subscriptions/{}", self.emu.subscription_id())
    }

    pub fn rg(&self, rg: &str) -> String {
        format!("{}/resourceGroups/{rg}", self.sub())
    }

    pub fn ws(&self, rg: &str, ws: &str) -> String {
        format!(
            "{}/providers/Microsoft.MachineLearningServices/workspaces/{ws}",
            self.rg(rg)
        )
    }

    /// Sends an ARM request with the test's token; ML responses are contract-checked.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Resp {
        self.call_with(method, path, body, Some(&self.token)).await
    }

    pub async fn call_with(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> Resp {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            let sep = if path.contains('?') { '&' } else { '?' };
            if path.contains("api-version=") {
                format!("{}{path}", self.emu.endpoint())
            } else {
                format!("{}{path}{sep}api-version={API}", self.emu.endpoint())
            }
        };
        let mut req = self.http.request(method.clone(), &url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request sent");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap_or_default();
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        assert!(
            headers.contains_key("x-ms-request-id")
                && headers.contains_key("x-ms-correlation-request-id"),
            "request ids missing on {method} {url}"
        );
        let path_only = url
            .split("://")
            .nth(1)
            .and_then(|s| s.find('/').map(|i| &s[i..]))
            .unwrap_or("/")
            .split('?')
            .next()
            .unwrap_or("/")
            .to_string();
        if let Err(e) = contract_check(&method, &path_only, status, &body, &text) {
            panic!("contract violation: {method} {url} -> {status}: {e}\nbody: {text}");
        }
        Resp {
            status,
            headers,
            body,
            text,
        }
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.call(Method::GET, path, None).await
    }
    pub async fn put(&self, path: &str, body: Value) -> Resp {
        self.call(Method::PUT, path, Some(body)).await
    }
    pub async fn patch(&self, path: &str, body: Value) -> Resp {
        self.call(Method::PATCH, path, Some(body)).await
    }
    pub async fn post(&self, path: &str, body: Option<Value>) -> Resp {
        self.call(Method::POST, path, body).await
    }
    pub async fn delete(&self, path: &str) -> Resp {
        self.call(Method::DELETE, path, None).await
    }

    /// The SAS URL (`sasUri`) that `startPendingUpload` hands out for version 1 of a code.
    pub async fn code_upload_sas(&self, ws: &str, code: &str, request: Value) -> String {
        let up = self
            .post(
                &format!("{ws}/codes/{code}/versions/1/startPendingUpload"),
                Some(request),
            )
            .await;
        up.body["blobReferenceForConsumption"]["credential"]["sasUri"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Resource group, storage account, key vault, app insights and workspace, with the
    /// creation operations completed.
    pub async fn workspace(&self, rg: &str, ws: &str) -> String {
        let storage = format!("st{}", ws.replace(['-', '_'], "").to_ascii_lowercase());
        let storage = &storage[..storage.len().min(24)];
        self.put(
            &format!("{}?api-version=2021-04-01", self.rg(rg)),
            json!({ "location": "westeurope" }),
        )
        .await;
        let st_id = format!(
            "{}/providers/Microsoft.Storage/storageAccounts/{storage}",
            self.rg(rg)
        );
        let r = self
            .put(
                &format!("{st_id}?api-version=2023-01-01"),
                json!({ "location": "westeurope", "sku": { "name": "Standard_LRS" }, "kind": "StorageV2" }),
            )
            .await;
        assert!(r.status == 202 || r.status == 200, "{}", r.text);
        let _ = self.emu.admin().complete(&st_id);
        let kv_id = format!(
            "{}/providers/Microsoft.KeyVault/vaults/kv-{}",
            self.rg(rg),
            &storage[2..]
        );
        self.put(
            &format!("{kv_id}?api-version=2023-07-01"),
            json!({ "location": "westeurope", "properties": { "tenantId": self.emu.tenant_id(), "sku": { "family": "A", "name": "standard" } } }),
        )
        .await;
        let ai_id = format!(
            "{}/providers/Microsoft.Insights/components/ai-{storage}",
            self.rg(rg)
        );
        self.put(
            &format!("{ai_id}?api-version=2020-02-02"),
            json!({ "location": "westeurope", "kind": "web", "properties": { "Application_Type": "web" } }),
        )
        .await
        .expect(200);
        let ws_id = self.ws(rg, ws);
        let r = self
            .put(
                &ws_id,
                json!({ "location": "westeurope", "properties": {
                    "storageAccount": st_id, "keyVault": kv_id, "applicationInsights": ai_id,
                    "description": "test workspace"
                }}),
            )
            .await;
        assert!(r.status == 202 || r.status == 200, "{}", r.text);
        let _ = self.emu.admin().complete(&ws_id);
        ws_id
    }
}

// ----------------------------------------------------------------------- contract check

fn spec() -> &'static Value {
    amlspec::emulator::openapi::openapi()
}

type ValidatorCache = Mutex<HashMap<String, Arc<jsonschema::Validator>>>;

fn compiled(reference: &str) -> Arc<jsonschema::Validator> {
    static CACHE: OnceLock<ValidatorCache> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(v) = cache.lock().unwrap().get(reference) {
        return v.clone();
    }
    let defs = amlspec::emulator::openapi::json_schema_definitions();
    let target = amlspec::emulator::openapi::definition_name(reference);
    assert!(defs.get(&target).is_some(), "no definition {target}");
    let schema = json!({ "$ref": format!("#/definitions/{target}"), "definitions": defs });
    let v = Arc::new(
        jsonschema::options()
            .with_draft(jsonschema::Draft::Draft7)
            .should_validate_formats(true)
            .build(&schema)
            .expect("schema compiles"),
    );
    cache
        .lock()
        .unwrap()
        .insert(reference.to_string(), v.clone());
    v
}

/// The OpenAPI operation serving `path` (segment match, case-insensitive), if any.
pub fn find_operation(method: &Method, path: &str) -> Option<(String, &'static Value)> {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let m = method.as_str().to_ascii_lowercase();
    for (template, item) in spec()["paths"].as_object()? {
        let t: Vec<&str> = template.split('/').filter(|s| !s.is_empty()).collect();
        if t.len() != segs.len() {
            continue;
        }
        let ok = t
            .iter()
            .zip(&segs)
            .all(|(a, b)| a.starts_with('{') || a.eq_ignore_ascii_case(b));
        if ok && let Some(op) = item.get(&m) {
            return Some((template.clone(), op));
        }
    }
    None
}

/// Checks a response against its operation: the status must be declared (errors may use
/// `default`), and the body must validate against the declared schema.
pub fn contract_check(
    method: &Method,
    path: &str,
    status: u16,
    body: &Value,
    text: &str,
) -> Result<(), String> {
    if !path
        .to_ascii_lowercase()
        .contains("/providers/microsoft.machinelearningservices/")
    {
        return Ok(());
    }
    let Some((template, op)) = find_operation(method, path) else {
        // Operation-status URLs are ARM's, not the RP's.
        if path.to_ascii_lowercase().contains("/locations/") {
            return Ok(());
        }
        return Err(format!("no OpenAPI operation for {method} {path}"));
    };
    let responses = &op["responses"];
    let declared = responses.get(status.to_string());
    let entry = match declared {
        Some(e) => e,
        None if status >= 400 => responses.get("default").ok_or("no default response")?,
        None => {
            return Err(format!(
                "status {status} is not declared for {} ({template}); declared: {:?}",
                op["operationId"],
                responses.as_object().map(|o| o.keys().collect::<Vec<_>>())
            ));
        }
    };
    match entry.get("schema") {
        Some(schema) => {
            let reference = schema["$ref"].as_str().ok_or("inline response schema")?;
            let v = compiled(reference);
            let errors: Vec<String> = v
                .iter_errors(body)
                .take(5)
                .map(|e| format!("{} at {}", e, e.instance_path()))
                .collect();
            if errors.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "{} response does not match {reference}: {}",
                    op["operationId"],
                    errors.join("; ")
                ))
            }
        }
        None if text.is_empty() => Ok(()),
        None => Err(format!(
            "{} declares no body for {status} but one was sent",
            op["operationId"]
        )),
    }
}

/// Start an emulator. A state folder may look locked for a moment after its last user
/// stopped: another test of this binary forking a child between `fork` and `exec`
/// shares the lock's open file for that moment. Only then is it tried again, for up to
/// 5 s.
pub async fn start_emulator(config: EmulatorConfig) -> Emulator {
    for _ in 0..100 {
        match Emulator::start(config.clone()).await {
            Err(amlspec::emulator::EmulatorError::Store(
                amlspec::emulator::StoreError::Locked { .. },
            )) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
            started => return started.expect("emulator starts"),
        }
    }
    panic!("the state folder stayed locked for 5 s");
}
