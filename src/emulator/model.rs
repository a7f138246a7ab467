//! The emulator's stored records: ARM resources, long-running operations, blob containers,
//! blobs and uncommitted blocks. Everything the store persists is one of these.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case")]
pub(crate) enum Record {
    Arm(ArmRecord),
    Operation(OpRecord),
    Container(ContainerRecord),
    Blob(BlobRecord),
    Blocks(BlocksRecord),
    Meta(MetaRecord),
}

/// The resource types the emulator serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Kind {
    ResourceGroup,
    StorageAccount,
    KeyVault,
    AppInsights,
    Workspace,
    Compute,
    Connection,
    Datastore,
    CodeContainer,
    CodeVersion,
    EnvironmentContainer,
    EnvironmentVersion,
    Job,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ArmRecord {
    pub kind: Kind,
    /// Exactly what a GET returns.
    pub body: Value,
    /// Write-only parts (credentials, keys), returned only by list-secrets actions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets: Option<Value>,
    /// Creation order, for `$orderBy=createdtime` and stable listing.
    pub created_seq: u64,
    /// When the current simulated phase (job status, provisioning) began.
    #[serde(with = "time::serde::rfc3339")]
    pub phase_started: OffsetDateTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum OpStatus {
    InProgress,
    Succeeded,
    Failed,
    Canceled,
}

impl OpStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            OpStatus::InProgress => "InProgress",
            OpStatus::Succeeded => "Succeeded",
            OpStatus::Failed => "Failed",
            OpStatus::Canceled => "Canceled",
        }
    }
}

/// What completing an operation does to its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum OpKind {
    /// Target goes from Creating to Succeeded (or Failed).
    Create,
    /// Target was updated in place; the operation only reports completion.
    Update,
    /// Target and everything under it is removed.
    Delete,
    /// Target job goes to Canceled.
    CancelJob,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct OpRecord {
    pub id: String,
    pub kind: OpKind,
    pub status: OpStatus,
    /// Store key of the target resource.
    pub target: String,
    /// The target's ARM id, as the client spelled it at creation.
    pub target_id: String,
    pub namespace: String,
    pub location: String,
    #[serde(with = "time::serde::rfc3339")]
    pub started: OffsetDateTime,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub ended: Option<OffsetDateTime>,
    /// Set when a fault asked this operation to fail.
    pub fail: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ContainerRecord {
    pub etag: String,
    #[serde(with = "time::serde::rfc3339")]
    pub last_modified: OffsetDateTime,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct BlockRef {
    pub id: String,
    pub hash: String,
    pub size: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct BlobRecord {
    pub etag: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub last_modified: OffsetDateTime,
    pub content_length: u64,
    pub content_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_md5: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_encoding: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_language: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_disposition: Option<String>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// sha256 of the content (see `Store::put_data`).
    pub data: String,
    #[serde(default)]
    pub committed_blocks: Vec<BlockRef>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct BlocksRecord {
    pub blocks: BTreeMap<String, BlockRef>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct MetaRecord {
    pub value: Value,
}
