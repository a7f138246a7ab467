//! The emulator's mutable state (store, virtual clock, signing key) and the simulation
//! that moves long-running operations and jobs forward, either on the virtual clock
//! (SimMode::Auto) or one explicit step at a time (SimMode::Explicit).

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::sync::Mutex;

use serde_json::{Value, json};
use time::OffsetDateTime;

use super::auth::Claims;
use super::config::{EmulatorConfig, SimMode};
use super::faults::FaultState;
use super::model::{Kind, MetaRecord, OpKind, OpRecord, OpStatus, Record};
use super::store::{Store, StoreError};
use super::util::rfc3339;

/// State shared by every request handler.
pub(crate) struct Shared {
    pub config: EmulatorConfig,
    /// What `/admin/...` HTTP requests must send as `x-amlspec-admin-key`.
    pub admin_key: String,
    pub world: Mutex<World>,
    pub faults: Mutex<FaultState>,
    /// `http://127.0.0.1:PORT` or `https://…`: used when a request names no usable Host.
    pub base_url: String,
    pub scheme: &'static str,
    pub port: u16,
    /// What clients sent, for tests that count writes.
    pub traffic: Mutex<Traffic>,
}

/// Requests answered by the ARM and blob surfaces, by method, and the request-body bytes
/// the blob surface received.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Traffic {
    pub arm: std::collections::BTreeMap<String, u64>,
    pub blob: std::collections::BTreeMap<String, u64>,
    pub blob_bytes_in: u64,
    /// Requests answered by the container registries, by method.
    pub registry: std::collections::BTreeMap<String, u64>,
}

impl Traffic {
    /// ARM requests of `method` (`PUT`, `PATCH`, ...).
    pub fn arm(&self, method: &str) -> u64 {
        self.arm.get(method).copied().unwrap_or(0)
    }

    /// ARM requests that write (anything but GET and HEAD; POSTs included, since
    /// `listsecrets` is not told apart here).
    pub fn arm_writes(&self) -> u64 {
        ["PUT", "PATCH", "DELETE"].iter().map(|m| self.arm(m)).sum()
    }

    pub fn blob_writes(&self) -> u64 {
        self.blob.get("PUT").copied().unwrap_or(0)
    }
}

/// Waits until every write made so far is durable (no-op in memory). Call it after the
/// state lock is released, before acknowledging a mutation.
pub(crate) fn make_durable(
    journal: Option<(std::sync::Arc<super::store::Journal>, u64)>,
) -> Result<(), StoreError> {
    match journal {
        Some((j, seq)) => j.sync_to(seq),
        None => Ok(()),
    }
}

pub(crate) struct World {
    pub store: Store,
    /// Added to the wall clock; `Admin::advance_clock` moves it.
    pub clock_offset: time::Duration,
    pub next_seq: u64,
    pub signing_key: Vec<u8>,
    /// Tokens carry the epoch they were issued in; older epochs count as expired.
    pub token_epoch: u64,
    /// When each epoch ended (`revocations[e]`: the end of epoch `e`).
    pub revocations: Vec<OffsetDateTime>,
    /// Keys of operations and jobs that are not terminal yet (add with
    /// [`World::activate`]).
    pub active: BTreeSet<String>,
    /// Whether [`World::advance`] has looked at every active item since the last step,
    /// and the earliest deadline it found then (`None`: nothing has one). Until that
    /// deadline nothing it looked at is due, so only what was activated since (`fresh`)
    /// is looked at: a request would otherwise cost one look per running job.
    scanned: bool,
    next_due: Option<OffsetDateTime>,
    /// Keys activated since the last full look.
    fresh: Vec<String>,
    /// The last token whose signature checked out, and its claims: a client sends the
    /// same token with every request, and decoding and verifying it is most of the work
    /// of checking it. Expiry, revocation, tenant and audience are still checked on
    /// every request.
    verified_token: RefCell<Option<(String, Claims)>>,
    /// VM sizes and quotas per region (settings, not durable state).
    pub capacity: super::capacity::Capacity,
    /// Container registries by host (settings, not durable state).
    pub registries: super::registry::Registries,
}

pub(crate) const JOB_TERMINAL: [&str; 3] = ["Completed", "Failed", "Canceled"];

impl World {
    pub(crate) fn new(mut store: Store) -> Result<World, StoreError> {
        let signing_key = match store.get("meta:signing-key") {
            Some(Record::Meta(m)) => m.value.as_str().map(|s| s.as_bytes().to_vec()),
            _ => None,
        };
        let signing_key = match signing_key {
            Some(k) => k,
            None => {
                let k = format!(
                    "{}{}",
                    uuid::Uuid::new_v4().simple(),
                    uuid::Uuid::new_v4().simple()
                );
                store.put(
                    "meta:signing-key",
                    Record::Meta(MetaRecord { value: json!(k) }),
                )?;
                k.into_bytes()
            }
        };
        let mut next_seq = 0;
        let mut active = BTreeSet::new();
        for (key, record) in store.scan("") {
            match record {
                Record::Arm(r) => {
                    next_seq = next_seq.max(r.created_seq + 1);
                    if r.kind == Kind::Job && !job_is_terminal(&r.body) {
                        active.insert(key.clone());
                    }
                }
                Record::Operation(op) if op.status == OpStatus::InProgress => {
                    active.insert(key.clone());
                }
                _ => {}
            }
        }
        Ok(World {
            store,
            clock_offset: time::Duration::ZERO,
            next_seq,
            signing_key,
            token_epoch: 0,
            revocations: Vec::new(),
            active,
            scanned: false,
            next_due: None,
            fresh: Vec::new(),
            verified_token: RefCell::new(None),
            capacity: Default::default(),
            registries: Default::default(),
        })
    }

    /// Every token issued so far counts as expired from now on.
    pub(crate) fn revoke_tokens(&mut self) {
        let now = self.now();
        self.revocations.push(now);
        self.token_epoch += 1;
    }

    /// The claims of `token` if it is the token last verified.
    pub(crate) fn verified_claims(&self, token: &str) -> Option<Claims> {
        match &*self.verified_token.borrow() {
            Some((verified, claims)) if verified == token => Some(claims.clone()),
            _ => None,
        }
    }

    pub(crate) fn remember_verified(&self, token: &str, claims: &Claims) {
        *self.verified_token.borrow_mut() = Some((token.to_string(), claims.clone()));
    }

    /// The journal and the sequence number to wait for, to make this world's writes durable.
    pub(crate) fn durability_point(&self) -> Option<(std::sync::Arc<super::store::Journal>, u64)> {
        self.store.journal().map(|j| {
            let seq = j.last_seq();
            (j, seq)
        })
    }

    pub(crate) fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + self.clock_offset
    }

    pub(crate) fn seq(&mut self) -> u64 {
        let s = self.next_seq;
        self.next_seq += 1;
        s
    }

    /// Moves every active operation and job as far as the clock allows (Auto mode).
    pub(crate) fn advance(&mut self, config: &EmulatorConfig) -> Result<(), StoreError> {
        if config.sim_mode != SimMode::Auto || self.active.is_empty() {
            self.fresh.clear();
            return Ok(());
        }
        let now = self.now();
        if self.scanned {
            let fresh = std::mem::take(&mut self.fresh);
            let due = fresh
                .iter()
                .filter_map(|key| self.deadline(key, config))
                .chain(self.next_due)
                .min();
            self.next_due = due;
            if due.is_none_or(|due| now < due) {
                return Ok(());
            }
        }
        self.fresh.clear();
        let keys: Vec<String> = self.active.iter().cloned().collect();
        for key in keys {
            while let Some(deadline) = self.deadline(&key, config) {
                if deadline > now {
                    break;
                }
                if !self.step_key(&key, deadline)? {
                    break;
                }
            }
        }
        self.next_due = self
            .active
            .iter()
            .filter_map(|key| self.deadline(key, config))
            .min();
        self.scanned = true;
        Ok(())
    }

    /// Make `key` (an operation or a job) active: [`World::advance`] moves it on.
    pub(crate) fn activate(&mut self, key: String) {
        self.active.insert(key.clone());
        self.fresh.push(key);
    }

    fn deadline(&self, key: &str, config: &EmulatorConfig) -> Option<OffsetDateTime> {
        match self.store.get(key)? {
            Record::Operation(op) if op.status == OpStatus::InProgress => {
                Some(op.started + config.timings.lro)
            }
            Record::Arm(r) if r.kind == Kind::Job => {
                let status = r.body["properties"]["status"]
                    .as_str()
                    .unwrap_or("NotStarted");
                let d = match status {
                    "Running" => config.timings.job_running,
                    s if JOB_TERMINAL.contains(&s) => return None,
                    // A cancel request moves on through its operation, not by itself.
                    "CancelRequested" => return None,
                    _ => config.timings.job_phase,
                };
                Some(r.phase_started + d)
            }
            _ => None,
        }
    }

    /// Advances one active item by one phase; `at` is when that phase change happened.
    /// Returns false when the item is no longer active.
    pub(crate) fn step_key(&mut self, key: &str, at: OffsetDateTime) -> Result<bool, StoreError> {
        // A step may start a phase that ends sooner than anything looked at before.
        self.scanned = false;
        match self.store.get(key).cloned() {
            Some(Record::Operation(op)) => {
                if op.status == OpStatus::InProgress {
                    self.complete_op(op, at)?;
                }
                self.active.remove(key);
                Ok(false)
            }
            Some(Record::Arm(mut r)) if r.kind == Kind::Job => {
                let status = r.body["properties"]["status"]
                    .as_str()
                    .unwrap_or("NotStarted")
                    .to_string();
                let next = match status.as_str() {
                    "NotStarted" | "Starting" | "Provisioning" => "Queued",
                    "Queued" => "Preparing",
                    "Preparing" => "Running",
                    "Running" | "Finalizing" => "Completed",
                    "CancelRequested" => "Canceled",
                    _ => {
                        self.active.remove(key);
                        return Ok(false);
                    }
                };
                set_job_status(r.body_mut(), next, at);
                r.phase_started = at;
                super::runs::on_status(self, key, &r, next, at)?;
                let terminal = JOB_TERMINAL.contains(&next);
                self.store.put(key, Record::Arm(r))?;
                if terminal {
                    self.active.remove(key);
                }
                Ok(!terminal)
            }
            _ => {
                self.active.remove(key);
                Ok(false)
            }
        }
    }

    /// Finishes an operation and applies its effect to the target.
    pub(crate) fn complete_op(
        &mut self,
        mut op: OpRecord,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        // Completing an operation may start a job's next phase.
        self.scanned = false;
        op.status = if op.fail {
            OpStatus::Failed
        } else {
            OpStatus::Succeeded
        };
        op.ended = Some(at);
        if op.fail {
            op.error = Some(json!({
                "code": "ResourceOperationFailure",
                "message": format!(
                    "The resource operation completed with terminal provisioning state 'Failed'. (emulated failure of '{}')",
                    op.target_id
                ),
            }));
        }
        match (op.kind, op.fail) {
            (OpKind::Create, fail) => {
                if let Some(Record::Arm(mut r)) = self.store.get(&op.target).cloned() {
                    let state = if fail { "Failed" } else { "Succeeded" };
                    let kind = r.kind;
                    set_provisioning_state(r.body_mut(), kind, state);
                    if fail && r.kind == Kind::Compute {
                        r.body_mut()["properties"]["provisioningErrors"] =
                            json!([{ "error": op.error }]);
                    }
                    self.store.put(&op.target, Record::Arm(r))?;
                }
            }
            (OpKind::Update, _) => {}
            (OpKind::Delete, false) => {
                self.delete_tree(&op.target)?;
            }
            (OpKind::Delete, true) => {
                if let Some(Record::Arm(mut r)) = self.store.get(&op.target).cloned() {
                    let kind = r.kind;
                    set_provisioning_state(r.body_mut(), kind, "Failed");
                    self.store.put(&op.target, Record::Arm(r))?;
                }
            }
            (OpKind::CancelJob, _) => {
                if let Some(Record::Arm(mut r)) = self.store.get(&op.target).cloned()
                    && !job_is_terminal(&r.body)
                {
                    set_job_status(r.body_mut(), "Canceled", at);
                    r.phase_started = at;
                    super::runs::on_status(self, &op.target, &r, "Canceled", at)?;
                    self.store.put(&op.target, Record::Arm(r))?;
                    self.active.remove(&op.target);
                }
            }
        }
        let key = format!("op:{}", op.id);
        self.store.put(&key, Record::Operation(op))?;
        Ok(())
    }

    /// Removes a resource and every resource below it; a storage account takes its
    /// containers and blobs with it.
    pub(crate) fn delete_tree(&mut self, key: &str) -> Result<(), StoreError> {
        let below = self.store.keys_with_prefix(&format!("{key}/"));
        for k in below.into_iter().chain(std::iter::once(key.to_string())) {
            if let Some(Record::Arm(r)) = self.store.get(&k)
                && r.kind == Kind::StorageAccount
                && let Some(name) = r.body["name"].as_str().map(str::to_ascii_lowercase)
            {
                for prefix in ["container", "blob", "blocks"] {
                    for data_key in self.store.keys_with_prefix(&format!("{prefix}:{name}/")) {
                        self.store.delete(&data_key)?;
                    }
                }
                self.store.delete(&account_index_key(&name))?;
            }
            self.store.delete(&k)?;
            super::runs::forget(self, &k)?;
            self.active.remove(&k);
        }
        Ok(())
    }

    /// Starts a long-running operation on `target_key`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn start_op(
        &mut self,
        kind: OpKind,
        target_key: &str,
        target_id: &str,
        namespace: &str,
        location: &str,
        fail: bool,
    ) -> Result<OpRecord, StoreError> {
        let op = OpRecord {
            id: uuid::Uuid::new_v4().to_string(),
            kind,
            status: OpStatus::InProgress,
            target: target_key.to_string(),
            target_id: target_id.to_string(),
            namespace: namespace.to_string(),
            location: location.to_string(),
            started: self.now(),
            ended: None,
            fail,
            error: None,
        };
        let key = format!("op:{}", op.id);
        self.store.put(&key, Record::Operation(op.clone()))?;
        self.activate(key);
        Ok(op)
    }

    /// The active operation on a target, if any.
    pub(crate) fn active_op_for(&self, target_key: &str) -> Option<OpRecord> {
        self.active.iter().find_map(|k| match self.store.get(k) {
            Some(Record::Operation(op)) if op.target == target_key => Some(op.clone()),
            _ => None,
        })
    }
}

/// Index of storage account names (global in Azure) to their store key.
pub(crate) fn account_index_key(name: &str) -> String {
    format!("acct:{}", name.to_ascii_lowercase())
}

pub(crate) fn job_is_terminal(body: &Value) -> bool {
    body["properties"]["status"]
        .as_str()
        .is_some_and(|s| JOB_TERMINAL.contains(&s))
}

fn set_job_status(body: &mut Value, status: &str, at: OffsetDateTime) {
    body["properties"]["status"] = json!(status);
    if let Some(sd) = body.get_mut("systemData") {
        sd["lastModifiedAt"] = json!(rfc3339(at));
    }
}

pub(crate) fn set_provisioning_state(body: &mut Value, kind: Kind, state: &str) {
    body["properties"]["provisioningState"] = json!(state);
    if kind == Kind::Compute && state == "Succeeded" {
        body["properties"]["properties"]["allocationState"] = json!("Steady");
    }
}
