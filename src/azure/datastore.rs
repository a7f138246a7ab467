//! The workspace's default datastore: where build contexts go (as Azure ML's clients put
//! them), its blob container's URL and a key to read and write it (`listSecrets`).

use reqwest::Method;
use serde_json::json;

use crate::azure::blob::{BlobAuth, Container};
use crate::azure::client::{ArmClient, ArmError, Operation};
use crate::ids::ResourceId;
use crate::secret::Secret;

/// The datastore every workspace has, where build contexts go (as Azure ML's clients
/// put them).
pub const DEFAULT_DATASTORE: &str = "workspaceblobstore";

#[derive(Debug, thiserror::Error)]
pub enum DatastoreError {
    #[error(transparent)]
    Arm(#[from] ArmError),
    /// Azure answered, but not with what a blob datastore has.
    #[error("{0}")]
    Answer(String),
}

/// The default datastore's container and a key to write to it (`listSecrets`).
pub async fn default_datastore(
    client: &ArmClient,
    workspace: &ResourceId,
) -> Result<Container, DatastoreError> {
    let id = workspace.child("datastores", DEFAULT_DATASTORE);
    let operation = Operation::new("read datastore", id.to_string());
    let response = client
        .send(&operation, Method::GET, client.url_of(&id), None, true)
        .await?;
    #[derive(serde::Deserialize)]
    struct Datastore {
        properties: DatastoreProperties,
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct DatastoreProperties {
        account_name: Option<String>,
        container_name: Option<String>,
        endpoint: Option<String>,
        protocol: Option<String>,
    }
    let datastore: Datastore = response.decode(&operation)?;
    let properties = datastore.properties;
    let (Some(account), Some(container)) = (properties.account_name, properties.container_name)
    else {
        return Err(DatastoreError::Answer(format!(
            "the datastore `{id}` names no storage account or container: is it a blob datastore?"
        )));
    };
    let url = container_url(
        &account,
        &container,
        properties.endpoint.as_deref(),
        properties.protocol.as_deref(),
        &client.endpoints().storage_suffix,
    );
    let url = url::Url::parse(&url).map_err(|error| {
        DatastoreError::Answer(format!(
            "the datastore `{id}` gives the container URL `{url}`, which is not valid: {error}"
        ))
    })?;
    let secrets_id = id.collection("listSecrets");
    let operation = Operation::new("read datastore secrets", id.to_string());
    let response = client
        .send(
            &operation,
            Method::POST,
            client.url_of(&secrets_id),
            Some(json!({"expirableSecret": true, "expireAfterHours": 1})),
            true,
        )
        .await?;
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Secrets {
        secrets_type: Option<String>,
        key: Option<String>,
        sas_token: Option<String>,
    }
    let secrets: Secrets = response.decode(&operation)?;
    let auth = match (
        secrets.secrets_type.as_deref(),
        secrets.key,
        secrets.sas_token,
    ) {
        (Some("AccountKey"), Some(key), _) => BlobAuth::SharedKey {
            account,
            key: Secret::new(key),
        },
        (Some("Sas"), _, Some(token)) => {
            BlobAuth::Sas(Secret::new(token.trim_start_matches('?').to_string()))
        }
        (kind, _, _) => {
            return Err(DatastoreError::Answer(format!(
                "the datastore `{id}` gives no account key or SAS token (secrets type {}): amlspec uploads build contexts with one",
                kind.unwrap_or("none")
            )));
        }
    };
    Ok(Container { url, auth })
}

/// A datastore's container URL: `{protocol}://{account}.blob.{storage suffix}/{container}`
/// as Azure ML's clients make it, or, when the datastore's endpoint is itself a URL (a
/// local storage emulator's account URL), `{endpoint}/{container}`.
fn container_url(
    account: &str,
    container: &str,
    endpoint: Option<&str>,
    protocol: Option<&str>,
    storage_suffix: &str,
) -> String {
    match endpoint {
        Some(endpoint) if endpoint.contains("://") => {
            format!("{}/{container}", endpoint.trim_end_matches('/'))
        }
        _ => format!(
            "{}://{account}.blob.{storage_suffix}/{container}",
            protocol.filter(|p| !p.is_empty()).unwrap_or("https")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_datastore_container_is_virtual_host_style_unless_its_endpoint_is_a_url() {
        assert_eq!(
            container_url(
                "acct",
                "c",
                Some("core.windows.net"),
                Some("https"),
                "core.windows.net"
            ),
            "https://acct.blob.core.windows.net/c"
        );
        // The cloud's suffix, not the datastore's endpoint (as Azure ML's clients).
        assert_eq!(
            container_url(
                "acct",
                "c",
                Some("core.windows.net"),
                Some("https"),
                "core.localhost:8443"
            ),
            "https://acct.blob.core.localhost:8443/c"
        );
        assert_eq!(
            container_url("acct", "c", None, None, "core.windows.net"),
            "https://acct.blob.core.windows.net/c"
        );
        assert_eq!(
            container_url(
                "devstoreaccount1",
                "c",
                Some("http://127.0.0.1:10000/devstoreaccount1/"),
                Some("http"),
                "core.windows.net"
            ),
            "http://127.0.0.1:10000/devstoreaccount1/c"
        );
    }
}
