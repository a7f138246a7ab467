//! The client side of Azure: endpoints, credentials and the ARM client that `observe`
//! (and later `apply`) use. It knows HTTP and the ARM contract, nothing about specs.

pub mod auth;
pub mod blob;
pub mod client;
pub mod endpoints;
pub mod ids;

/// The one pinned, stable api-version of Microsoft.MachineLearningServices used for
/// every Azure ML call (see ../shared/azure-rest-specs: the newest stable version).
pub const ML_API_VERSION: &str = "2026-07-01";
/// Microsoft.Resources resource groups.
pub const RESOURCES_API_VERSION: &str = "2021-04-01";
/// Microsoft.Storage storage accounts.
pub const STORAGE_API_VERSION: &str = "2023-05-01";
/// Microsoft.KeyVault vaults.
pub const KEYVAULT_API_VERSION: &str = "2023-07-01";
/// Microsoft.Insights components.
pub const INSIGHTS_API_VERSION: &str = "2020-02-02";

/// The HTTP client every request goes through: rustls, HTTP/2 when the server offers
/// it, and optionally one more trusted root certificate (the local emulator's).
pub fn http_client(extra_root_pem: Option<&str>) -> Result<reqwest::Client, reqwest::Error> {
    // ring as the process's TLS provider: aws-lc-rs (reqwest's own default) spends about
    // 25 ms initialising on first use, a third of a plan's fixed cost. A provider
    // installed earlier (by whoever embeds this) is kept.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::Client::builder()
        .user_agent(concat!("amlspec/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(std::time::Duration::from_secs(15))
        .pool_idle_timeout(std::time::Duration::from_secs(60));
    if let Some(pem) = extra_root_pem {
        builder = builder.add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes())?);
    }
    builder.build()
}
