//! The emulator's stored records: ARM resources, long-running operations, blob containers,
//! blobs and uncommitted blocks. Everything the store persists is one of these.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;

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
    /// Exactly what a GET returns; change it through [`ArmRecord::body_mut`].
    pub body: JsonBody,
    /// Write-only parts (credentials, keys), returned only by list-secrets actions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets: Option<Value>,
    /// Creation order, for `$orderBy=createdtime` and stable listing.
    pub created_seq: u64,
    /// When the current simulated phase (job status, provisioning) began.
    #[serde(with = "time::serde::rfc3339")]
    pub phase_started: OffsetDateTime,
}

impl ArmRecord {
    /// The body, to change (copied first if a reply still holds it).
    pub(crate) fn body_mut(&mut self) -> &mut Value {
        self.body.value_mut()
    }
}

/// A JSON document shared between the store and the answers that return it, with its
/// text made once, on the first read: a GET copies and serializes nothing. Reads see the
/// value through `Deref`; [`JsonBody::value_mut`] copies it if it is shared and forgets
/// the text.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(from = "Value", into = "Value")]
pub(crate) struct JsonBody {
    value: Arc<Value>,
    text: Arc<OnceLock<Bytes>>,
}

impl JsonBody {
    pub(crate) fn value_mut(&mut self) -> &mut Value {
        self.text = Arc::default();
        Arc::make_mut(&mut self.value)
    }

    /// The JSON text, serialized on first use.
    pub(crate) fn text(&self) -> Bytes {
        self.text
            .get_or_init(|| Bytes::from(serde_json::to_vec(&*self.value).unwrap_or_default()))
            .clone()
    }

    pub(crate) fn into_value(self) -> Value {
        Arc::unwrap_or_clone(self.value)
    }
}

impl From<Value> for JsonBody {
    fn from(value: Value) -> Self {
        JsonBody {
            value: Arc::new(value),
            text: Arc::default(),
        }
    }
}

impl From<JsonBody> for Value {
    fn from(body: JsonBody) -> Self {
        body.into_value()
    }
}

impl std::ops::Deref for JsonBody {
    type Target = Value;

    fn deref(&self) -> &Value {
        &self.value
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_json_body_is_serialized_once_and_forgets_its_text_when_changed() {
        let stored = JsonBody::from(json!({ "name": "a", "properties": { "n": 1 } }));
        let read = stored.clone();
        assert_eq!(&read.text()[..], br#"{"name":"a","properties":{"n":1}}"#);
        // The store's copy shares the text the read made.
        assert!(stored.text.get().is_some());

        let mut changed = stored.clone();
        changed.value_mut()["properties"]["n"] = json!(2);
        assert_eq!(&changed.text()[..], br#"{"name":"a","properties":{"n":2}}"#);
        assert_eq!(stored["properties"]["n"], 1, "the stored copy is unchanged");
        assert_eq!(&stored.text()[..], br#"{"name":"a","properties":{"n":1}}"#);
    }

    #[test]
    fn a_json_body_persists_as_plain_json() {
        let body = JsonBody::from(json!({ "id": "/x", "tags": {} }));
        let text = serde_json::to_string(&body).unwrap();
        assert_eq!(text, r#"{"id":"/x","tags":{}}"#);
        let back: JsonBody = serde_json::from_str(&text).unwrap();
        assert_eq!(*back, json!({ "id": "/x", "tags": {} }));
    }
}
