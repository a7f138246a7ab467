//! The external-Azurite blob backend: containers the emulator would create in its own
//! blob service (workspace datastore, pending uploads) are created in Azurite instead,
//! over HTTP with SharedKey, before the ARM answer that names them is sent.

use std::sync::OnceLock;

use super::blob::sas::hmac_b64;
use super::util::http_date;

/// Work a handler asks the server to do (outside the state lock) before answering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Effect {
    CreateContainer {
        /// Account URL, e.g. `http://127.0.0.1:10000/devstoreaccount1`.
        endpoint: String,
        account: String,
        key: String,
        container: String,
    },
}

fn client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap_or_default()
    })
}

/// Performs an effect; a container that already exists is fine.
pub(crate) async fn apply(effect: &Effect) -> Result<(), String> {
    match effect {
        Effect::CreateContainer {
            endpoint,
            account,
            key,
            container,
        } => {
            let url = format!(
                "{}/{container}?restype=container",
                endpoint.trim_end_matches('/')
            );
            let path = url
                .split("://")
                .nth(1)
                .and_then(|rest| rest.find('/').map(|i| &rest[i..]))
                .unwrap_or("/")
                .split('?')
                .next()
                .unwrap_or("/")
                .to_string();
            let date = http_date(time::OffsetDateTime::now_utc());
            let version = "2021-08-06";
            let string_to_sign = format!(
                "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n/{account}{path}\nrestype:container"
            );
            let sig = hmac_b64(key, &string_to_sign).ok_or("the Azurite key is not base64")?;
            let resp = client()
                .put(&url)
                .header("x-ms-date", &date)
                .header("x-ms-version", version)
                .header("authorization", format!("SharedKey {account}:{sig}"))
                .header("content-length", "0")
                .send()
                .await
                .map_err(|e| format!("Azurite at {endpoint} did not answer: {e}"))?;
            let status = resp.status();
            if status.is_success() || status.as_u16() == 409 {
                Ok(())
            } else {
                let body = resp.text().await.unwrap_or_default();
                Err(format!(
                    "Azurite refused to create container {container}: {status} {body}"
                ))
            }
        }
    }
}
