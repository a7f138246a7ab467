//! Test and operator controls: faults, explicit stepping of operations and jobs, the
//! virtual clock, failing jobs, expiring tokens, regional capacity (VM sizes, quotas,
//! a cluster's current nodes) and container registries. Served as `/admin/...` (JSON) on
//! the emulator's port and as the [`Admin`] handle in Rust.
//!
//! Over HTTP every endpoint but `GET /admin/health` needs the emulator's admin key in the
//! `x-amlspec-admin-key` header: anything that can reach the port could otherwise revoke
//! every token or inject faults. The key is fresh at each start and written to a file
//! only its owner can read (`admin_key_file=` on the ready line).

use std::sync::Arc;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::capacity::{Capacity, VmSize};
use super::faults::{Fault, FaultRule};
use super::model::Kind;
use super::model::{OpKind, Record};
use super::registry::{RegistryInfo, RegistrySeed, RegistryUser};
use super::reply::{ArmError, Reply};
use super::world::{Shared, World, job_is_terminal};

/// Errors from admin actions.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AdminError {
    #[error("nothing in progress matches `{target}`")]
    NothingToStep { target: String },
    #[error("no job `{id}`")]
    NoSuchJob { id: String },
    #[error("the emulator could not persist its state: {message}")]
    Store { message: String },
    #[error("no compute `{id}`")]
    NoSuchCompute { id: String },
    #[error("the catalogue has no VM size `{name}`; add it first")]
    NoSuchVmSize { name: String },
    #[error("no registry `{host}`")]
    NoSuchRegistry { host: String },
    #[error("invalid registry seed: {message}")]
    InvalidRegistry { message: String },
}

impl From<super::registry::SeedError> for AdminError {
    fn from(e: super::registry::SeedError) -> Self {
        match e {
            super::registry::SeedError::NoSuchRegistry(host) => AdminError::NoSuchRegistry { host },
            super::registry::SeedError::Invalid(message) => AdminError::InvalidRegistry { message },
        }
    }
}

impl From<super::store::StoreError> for AdminError {
    fn from(e: super::store::StoreError) -> Self {
        AdminError::Store {
            message: e.to_string(),
        }
    }
}

/// Controls a running emulator. Cheap to clone.
#[derive(Clone)]
pub struct Admin {
    pub(crate) shared: Arc<Shared>,
}

impl Admin {
    /// What clients sent since the start (or the last [`Admin::reset_traffic`]).
    pub fn traffic(&self) -> super::Traffic {
        self.shared
            .traffic
            .lock()
            .map(|t| t.clone())
            .unwrap_or_default()
    }

    pub fn reset_traffic(&self) {
        if let Ok(mut traffic) = self.shared.traffic.lock() {
            *traffic = super::Traffic::default();
        }
    }

    /// Replaces the fault rules; `seed` restarts the fault dice when given.
    pub fn set_faults(&self, rules: Vec<FaultRule>, seed: Option<u64>) {
        if let Ok(mut f) = self.shared.faults.lock() {
            f.set(rules, seed);
        }
    }

    /// Adds one fault rule to the current ones.
    pub fn add_fault(&self, rule: FaultRule) {
        if let Ok(mut f) = self.shared.faults.lock() {
            f.rules.push(rule);
        }
    }

    /// The faults injected since the emulator started, by kind ([`Fault::kind`]).
    pub fn injected_faults(&self) -> std::collections::BTreeMap<&'static str, u64> {
        self.shared
            .faults
            .lock()
            .map(|f| f.injected.clone())
            .unwrap_or_default()
    }

    pub fn clear_faults(&self) {
        self.set_faults(Vec::new(), None);
    }

    pub fn faults(&self) -> Vec<FaultRule> {
        self.shared
            .faults
            .lock()
            .map(|f| f.rules.clone())
            .unwrap_or_default()
    }

    /// The next `count` long-running operations end Failed.
    pub fn fail_next_lros(&self, count: u32) {
        self.add_fault(FaultRule::always(Fault::FailLro).times(count));
    }

    /// Moves one thing forward by one phase: `target` is an operation id, or the ARM id
    /// of a resource with an operation in progress, or a job's ARM id.
    pub fn step(&self, target: &str) -> Result<(), AdminError> {
        self.with_world(|w| step(w, target))?
    }

    /// Moves every operation and job in progress forward by one phase; returns how many.
    pub fn step_all(&self) -> Result<usize, AdminError> {
        self.with_world(step_all)?
    }

    /// Steps `target` until it is finished (operation done, job terminal).
    pub fn complete(&self, target: &str) -> Result<(), AdminError> {
        self.with_world(|w| {
            step(w, target)?;
            while step(w, target).is_ok() {}
            Ok(())
        })?
    }

    /// Moves the virtual clock forward (Auto mode deadlines, token expiry, SAS expiry).
    pub fn advance_clock(&self, by: Duration) -> Result<(), AdminError> {
        self.with_world(|w| {
            w.clock_offset += time::Duration::try_from(by).unwrap_or(time::Duration::ZERO);
            w.advance(&self.shared.config).map_err(AdminError::from)
        })?
    }

    /// Ends a job with status Failed.
    pub fn fail_job(&self, job_id: &str) -> Result<(), AdminError> {
        self.with_world(|w| fail_job(w, job_id))?
    }

    /// Every token issued so far is treated as expired.
    pub fn expire_tokens(&self) {
        let mut w = self.shared.world.lock().unwrap_or_else(|p| p.into_inner());
        w.revoke_tokens();
    }

    /// The regional capacity as it stands (catalogue, limits, overrides).
    pub fn capacity(&self) -> Capacity {
        self.lock().capacity.clone()
    }

    /// Replaces the whole regional capacity.
    pub fn set_capacity(&self, capacity: Capacity) {
        self.lock().capacity = capacity;
    }

    /// Offers (`true`) or withdraws (`false`) a VM size in a region (`West Europe` and
    /// `westeurope` alike; size names in any case). Offering a size the catalogue does
    /// not know fails: add it with [`Admin::add_vm_size`] first.
    pub fn set_vm_size_available(
        &self,
        location: &str,
        size: &str,
        available: bool,
    ) -> Result<(), AdminError> {
        if self
            .lock()
            .capacity
            .set_available(location, size, available)
        {
            Ok(())
        } else {
            Err(AdminError::NoSuchVmSize {
                name: size.to_string(),
            })
        }
    }

    /// Adds a VM size to the catalogue (or replaces the one of that name).
    pub fn add_vm_size(&self, size: VmSize) {
        self.lock().capacity.add_size(size);
    }

    /// Sets a VM family's dedicated-vCPU limit in a region (family as Azure spells it,
    /// e.g. `standardNCASv3_T4Family`; compared case-insensitively).
    pub fn set_family_quota(&self, location: &str, family: &str, limit: u64) {
        self.lock()
            .capacity
            .set_family_limit(location, family, limit);
    }

    /// Sets a region's total dedicated-vCPU limit for clusters.
    pub fn set_total_cores_quota(&self, location: &str, limit: u64) {
        self.lock().capacity.set_total_cores_limit(location, limit);
    }

    /// Sets an AmlCompute cluster's current node count (idle nodes), as if it had scaled:
    /// its cores count in `usages` from then on. `compute_id` is the cluster's ARM id.
    pub fn set_current_nodes(&self, compute_id: &str, nodes: u32) -> Result<(), AdminError> {
        self.with_world(|w| set_current_nodes(w, compute_id, nodes))?
    }

    /// Creates (or replaces) a container registry served under `seed.host`, with its users
    /// and a generated image per tag. Returns what it holds (digests per tag).
    pub fn add_registry(&self, seed: RegistrySeed) -> Result<RegistryInfo, AdminError> {
        Ok(self.lock().registries.seed(seed)?)
    }

    /// Removes a registry; false when there was none.
    pub fn remove_registry(&self, host: &str) -> bool {
        self.lock().registries.remove(host)
    }

    /// What a registry holds (no secrets).
    pub fn registry(&self, host: &str) -> Option<RegistryInfo> {
        self.lock().registries.info(host)
    }

    /// Generates a new image and tags it `repository:tag` (a moved tag gets a new
    /// digest); creates the repository if needed. Returns the manifest digest.
    pub fn push_image(
        &self,
        host: &str,
        repository: &str,
        tag: &str,
    ) -> Result<String, AdminError> {
        Ok(self.lock().registries.push(host, repository, tag)?)
    }

    /// Removes a tag; false when it did not exist.
    pub fn remove_tag(&self, host: &str, repository: &str, tag: &str) -> Result<bool, AdminError> {
        Ok(self.lock().registries.untag(host, repository, tag)?)
    }

    /// Adds a user or changes a user's password and repositories.
    pub fn set_registry_user(&self, host: &str, user: RegistryUser) -> Result<(), AdminError> {
        Ok(self.lock().registries.set_user(host, user)?)
    }

    /// The manifest digest `repository:tag` points at, if any.
    pub fn image_digest(&self, host: &str, repository: &str, tag: &str) -> Option<String> {
        self.registry(host)?
            .repositories
            .get(&repository.to_ascii_lowercase())?
            .get(tag)
            .cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, World> {
        self.shared.world.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on the locked state, then waits (lock released) for its writes to be durable.
    fn with_world<R>(&self, f: impl FnOnce(&mut World) -> R) -> Result<R, AdminError> {
        let mut w = self.shared.world.lock().unwrap_or_else(|p| p.into_inner());
        let out = f(&mut w);
        let durability = w.durability_point();
        drop(w);
        super::world::make_durable(durability)?;
        Ok(out)
    }
}

fn step(w: &mut World, target: &str) -> Result<(), AdminError> {
    let t = target.to_ascii_lowercase();
    let key = w
        .active
        .iter()
        .find(|k| {
            **k == format!("op:{t}")
                || **k == t
                || matches!(w.store.get(k), Some(Record::Operation(op)) if op.target == t || op.id.eq_ignore_ascii_case(&t))
        })
        .cloned()
        .ok_or_else(|| AdminError::NothingToStep { target: target.to_string() })?;
    let now = w.now();
    w.step_key(&key, now)?;
    Ok(())
}

fn step_all(w: &mut World) -> Result<usize, AdminError> {
    let keys: Vec<String> = w.active.iter().cloned().collect();
    let now = w.now();
    for k in &keys {
        w.step_key(k, now)?;
    }
    Ok(keys.len())
}

fn fail_job(w: &mut World, job_id: &str) -> Result<(), AdminError> {
    let key = job_id.to_ascii_lowercase();
    let Some(Record::Arm(mut r)) = w.store.get(&key).cloned() else {
        return Err(AdminError::NoSuchJob {
            id: job_id.to_string(),
        });
    };
    if job_is_terminal(&r.body) {
        return Ok(());
    }
    let now = w.now();
    r.body_mut()["properties"]["status"] = json!("Failed");
    r.phase_started = now;
    super::runs::on_status(w, &key, &r, "Failed", now)?;
    w.store.put(&key, Record::Arm(r))?;
    w.active.remove(&key);
    Ok(())
}

fn set_current_nodes(w: &mut World, compute_id: &str, nodes: u32) -> Result<(), AdminError> {
    let key = compute_id.to_ascii_lowercase();
    let no_such = || AdminError::NoSuchCompute {
        id: compute_id.to_string(),
    };
    let Some(Record::Arm(mut r)) = w.store.get(&key).cloned() else {
        return Err(no_such());
    };
    if r.kind != Kind::Compute {
        return Err(no_such());
    }
    let props = &mut r.body_mut()["properties"]["properties"];
    props["currentNodeCount"] = json!(nodes);
    props["targetNodeCount"] = json!(nodes);
    props["nodeStateCounts"] = json!({
        "idleNodeCount": nodes, "runningNodeCount": 0, "preparingNodeCount": 0,
        "unusableNodeCount": 0, "leavingNodeCount": 0, "preemptedNodeCount": 0,
    });
    w.store.put(&key, Record::Arm(r))?;
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AvailableBody {
    available: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitBody {
    limit: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NodesBody {
    id: String,
    nodes: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegistryBody {
    #[serde(default)]
    users: Vec<RegistryUser>,
    #[serde(default)]
    repositories: Vec<super::registry::RepositorySeed>,
    #[serde(default)]
    anonymous_pull: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ImageBody {
    repository: String,
    tag: String,
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Reply> {
    serde_json::from_slice(body).map_err(|e| bad(format!("invalid JSON: {e}")))
}

fn to_json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

fn not_found(message: String) -> Reply {
    ArmError::new(StatusCode::NOT_FOUND, "NotFound", message).into_reply()
}

/// `/admin/capacity/...` and `/admin/computes/nodes`.
fn capacity_http(
    w: &mut World,
    method: &Method,
    path: &[&str],
    body: &[u8],
) -> Option<Result<Value, Reply>> {
    Some(match (method, path) {
        (&Method::GET, ["capacity"]) => Ok(to_json(&w.capacity)),
        (&Method::PUT, ["capacity"]) => parse::<Capacity>(body).map(|c| {
            w.capacity = c;
            to_json(&w.capacity)
        }),
        (&Method::POST, ["capacity", "vm-sizes"]) => parse::<VmSize>(body).map(|s| {
            w.capacity.add_size(s);
            json!({ "status": "ok" })
        }),
        (&Method::PUT, ["capacity", "locations", location, "vm-sizes", size]) => {
            parse::<AvailableBody>(body).and_then(|b| {
                if w.capacity.set_available(location, size, b.available) {
                    Ok(json!({ "status": "ok" }))
                } else {
                    Err(bad(format!(
                        "the catalogue has no VM size `{size}`; add it first"
                    )))
                }
            })
        }
        (&Method::PUT, ["capacity", "locations", location, "quotas", family]) => {
            parse::<LimitBody>(body).map(|b| {
                w.capacity.set_family_limit(location, family, b.limit);
                json!({ "status": "ok" })
            })
        }
        (&Method::PUT, ["capacity", "locations", location, "total-cores"]) => {
            parse::<LimitBody>(body).map(|b| {
                w.capacity.set_total_cores_limit(location, b.limit);
                json!({ "status": "ok" })
            })
        }
        (&Method::PUT, ["computes", "nodes"]) => parse::<NodesBody>(body).and_then(|b| {
            set_current_nodes(w, &b.id, b.nodes)
                .map(|_| json!({ "status": "ok" }))
                .map_err(|e| match e {
                    AdminError::NoSuchCompute { .. } => not_found(e.to_string()),
                    _ => bad(e.to_string()),
                })
        }),
        _ => return None,
    })
}

/// `/admin/registries/...`.
fn registry_http(
    w: &mut World,
    method: &Method,
    path: &[&str],
    body: &[u8],
) -> Option<Result<Value, Reply>> {
    let seed_error = |e: super::registry::SeedError| match e {
        super::registry::SeedError::NoSuchRegistry(_) => not_found(e.to_string()),
        super::registry::SeedError::Invalid(_) => bad(e.to_string()),
    };
    Some(match (method, path) {
        (&Method::GET, ["registries"]) => {
            Ok(json!({ "registries": to_json(&w.registries.list()) }))
        }
        (&Method::PUT, ["registries", host]) => parse::<RegistryBody>(body).and_then(|b| {
            w.registries
                .seed(RegistrySeed {
                    host: host.to_string(),
                    users: b.users,
                    repositories: b.repositories,
                    anonymous_pull: b.anonymous_pull,
                })
                .map(|info| to_json(&info))
                .map_err(seed_error)
        }),
        (&Method::GET, ["registries", host]) => w
            .registries
            .info(host)
            .map(|i| to_json(&i))
            .ok_or_else(|| not_found(format!("no registry `{host}`"))),
        (&Method::DELETE, ["registries", host]) => {
            if w.registries.remove(host) {
                Ok(json!({ "status": "ok" }))
            } else {
                Err(not_found(format!("no registry `{host}`")))
            }
        }
        (&Method::POST, ["registries", host, "images"]) => parse::<ImageBody>(body).and_then(|b| {
            w.registries
                .push(host, &b.repository, &b.tag)
                .map(|digest| json!({ "digest": digest }))
                .map_err(seed_error)
        }),
        (&Method::DELETE, ["registries", host, "images"]) => {
            parse::<ImageBody>(body).and_then(|b| {
                w.registries
                    .untag(host, &b.repository, &b.tag)
                    .map(|removed| json!({ "removed": removed }))
                    .map_err(seed_error)
            })
        }
        (&Method::PUT, ["registries", host, "users"]) => {
            parse::<RegistryUser>(body).and_then(|u| {
                w.registries
                    .set_user(host, u)
                    .map(|_| json!({ "status": "ok" }))
                    .map_err(seed_error)
            })
        }
        _ => return None,
    })
}

#[derive(Deserialize)]
struct FaultsBody {
    #[serde(default)]
    rules: Vec<FaultRule>,
    #[serde(default)]
    seed: Option<u64>,
}

#[derive(Deserialize, Default)]
struct TargetBody {
    #[serde(default)]
    target: Option<String>,
    #[serde(default)]
    seconds: Option<u64>,
    #[serde(default)]
    count: Option<u32>,
    #[serde(default)]
    id: Option<String>,
}

fn bad(message: impl Into<String>) -> Reply {
    ArmError::bad_request("BadRequest", message).into_reply()
}

/// The header `/admin/...` HTTP requests carry the admin key in.
pub const ADMIN_KEY_HEADER: &str = "x-amlspec-admin-key";

/// Checks the admin key of an `/admin/...` request (`GET /admin/health` needs none).
pub(crate) fn authorize(
    shared: &Shared,
    segs: &[String],
    headers: &axum::http::HeaderMap,
) -> Result<(), ArmError> {
    if segs.len() == 2 && segs[1].eq_ignore_ascii_case("health") {
        return Ok(());
    }
    let given = headers
        .get(ADMIN_KEY_HEADER)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    let expected = shared.admin_key.as_bytes();
    // Constant time: the answer must not tell how much of a guessed key was right.
    let same = given.len() == expected.len()
        && given
            .iter()
            .zip(expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if same {
        Ok(())
    } else {
        Err(ArmError::new(
            StatusCode::UNAUTHORIZED,
            "AdminKeyRequired",
            format!(
                "The emulator's admin endpoints need the admin key in the '{ADMIN_KEY_HEADER}' header: it is in the file named by admin_key_file= on the emulator's ready line (in Rust, Emulator::admin_key)."
            ),
        ))
    }
}

/// `/admin/...` endpoints. The world is locked by the caller.
pub(crate) fn http(
    shared: &Shared,
    w: &mut World,
    method: &Method,
    segs: &[String],
    body: &[u8],
) -> Reply {
    let parse_target = || -> Result<TargetBody, Reply> {
        if body.is_empty() {
            return Ok(TargetBody::default());
        }
        serde_json::from_slice(body).map_err(|e| bad(format!("invalid JSON: {e}")))
    };
    let path: Vec<&str> = segs.iter().skip(1).map(String::as_str).collect();
    if let Some(result) =
        capacity_http(w, method, &path, body).or_else(|| registry_http(w, method, &path, body))
    {
        return match result {
            Ok(v) => Reply::json(StatusCode::OK, v),
            Err(r) => r,
        };
    }
    let result: Result<Value, Reply> = match (method, path.as_slice()) {
        (&Method::GET, ["health"]) => Ok(json!({ "status": "ok" })),
        (&Method::GET, ["faults"]) => Ok(
            json!({ "rules": shared.faults.lock().map(|f| f.rules.clone()).unwrap_or_default() }),
        ),
        (&Method::PUT, ["faults"]) => match serde_json::from_slice::<FaultsBody>(body) {
            Ok(b) => {
                if let Ok(mut f) = shared.faults.lock() {
                    f.set(b.rules, b.seed);
                }
                Ok(json!({ "status": "ok" }))
            }
            Err(e) => Err(bad(format!("invalid fault rules: {e}"))),
        },
        (&Method::DELETE, ["faults"]) => {
            if let Ok(mut f) = shared.faults.lock() {
                f.set(Vec::new(), None);
            }
            Ok(json!({ "status": "ok" }))
        }
        (&Method::POST, ["step"]) => parse_target().and_then(|b| match b.target {
            Some(t) => step(w, &t)
                .map(|_| json!({ "stepped": 1 }))
                .map_err(|e| bad(e.to_string())),
            None => step_all(w)
                .map(|n| json!({ "stepped": n }))
                .map_err(|e| bad(e.to_string())),
        }),
        (&Method::POST, ["advance"]) => parse_target().map(|b| {
            w.clock_offset += time::Duration::seconds(b.seconds.unwrap_or(0) as i64);
            let _ = w.advance(&shared.config);
            json!({ "now": super::util::rfc3339(w.now()) })
        }),
        (&Method::POST, ["fail-next-lro"]) => parse_target().map(|b| {
            if let Ok(mut f) = shared.faults.lock() {
                f.rules
                    .push(FaultRule::always(Fault::FailLro).times(b.count.unwrap_or(1)));
            }
            json!({ "status": "ok" })
        }),
        (&Method::POST, ["jobs", "fail"]) => parse_target().and_then(|b| {
            let id = b.id.or(b.target).unwrap_or_default();
            fail_job(w, &id)
                .map(|_| json!({ "status": "ok" }))
                .map_err(|e| bad(e.to_string()))
        }),
        (&Method::POST, ["expire-tokens"]) => {
            w.revoke_tokens();
            Ok(json!({ "status": "ok" }))
        }
        (&Method::GET, ["operations"]) => {
            let ops: Vec<Value> = w
                .active
                .iter()
                .filter_map(|k| match w.store.get(k) {
                    Some(Record::Operation(op)) => Some(json!({
                        "id": op.id, "target": op.target_id, "kind": match op.kind {
                            OpKind::Create => "create", OpKind::Update => "update",
                            OpKind::Delete => "delete", OpKind::CancelJob => "cancel",
                        }, "status": op.status.as_str(),
                    })),
                    Some(Record::Arm(r)) => Some(
                        json!({ "id": r.body["id"], "status": r.body["properties"]["status"] }),
                    ),
                    _ => None,
                })
                .collect();
            Ok(json!({ "active": ops }))
        }
        _ => Err(
            ArmError::new(StatusCode::NOT_FOUND, "NotFound", "Unknown admin endpoint.")
                .into_reply(),
        ),
    };
    match result {
        Ok(v) => Reply::json(StatusCode::OK, v),
        Err(r) => r,
    }
}
