//! The client side of Azure: endpoints, credentials and the ARM client that `observe`
//! (and later `apply`) use. It knows HTTP and the ARM contract, nothing about specs.

pub mod auth;
pub mod blob;
pub mod client;
pub mod datastore;
pub mod endpoints;
pub mod lro;
pub mod registry;
pub mod retry;

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

/// The request catalogue's one rule: the api-version of a resource's requests, by its
/// provider namespace. Every read and write of a resource goes through
/// [`client::ArmClient::url_of`], so observe and apply always speak the same version.
pub fn api_version_of(id: &crate::ids::ResourceId) -> &'static str {
    let namespace = id
        .as_str()
        .split('/')
        .skip_while(|segment| !segment.eq_ignore_ascii_case("providers"))
        .nth(1)
        .unwrap_or_default()
        .to_ascii_lowercase();
    match namespace.as_str() {
        "microsoft.machinelearningservices" => ML_API_VERSION,
        "microsoft.storage" => STORAGE_API_VERSION,
        "microsoft.keyvault" => KEYVAULT_API_VERSION,
        "microsoft.insights" => INSIGHTS_API_VERSION,
        // Subscriptions and resource groups.
        _ => RESOURCES_API_VERSION,
    }
}

/// Which certificate authorities a client trusts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust<'a> {
    /// The system's roots.
    System,
    /// The system's roots and one more (PEM).
    SystemAnd(&'a str),
    /// Only this one (PEM): for endpoints that are all on loopback, where no public CA
    /// can vouch for anything, and loading the system's roots is wasted time.
    Only(&'a str),
}

/// The HTTP client every request goes through: rustls, HTTP/2 when the server offers it,
/// connections given up after `settings.connect_timeout` (each request sets its own
/// overall timeout).
pub fn http_client(
    trust: Trust<'_>,
    settings: &client::ClientSettings,
) -> Result<reqwest::Client, reqwest::Error> {
    http_builder(trust, settings)?.build()
}

pub(crate) fn http_builder(
    trust: Trust<'_>,
    settings: &client::ClientSettings,
) -> Result<reqwest::ClientBuilder, reqwest::Error> {
    // ring as the process's TLS provider: aws-lc-rs (reqwest's own default) spends about
    // 25 ms initialising on first use, a third of a plan's fixed cost. A provider
    // installed earlier (by whoever embeds this) is kept.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let builder = reqwest::Client::builder()
        .dns_resolver(std::sync::Arc::new(LocalhostResolver))
        .user_agent(concat!("amlspec/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(settings.connect_timeout)
        .pool_idle_timeout(std::time::Duration::from_secs(60));
    Ok(match trust {
        Trust::System => builder,
        Trust::SystemAnd(pem) => {
            builder.tls_certs_merge([reqwest::Certificate::from_pem(pem.as_bytes())?])
        }
        Trust::Only(pem) => {
            builder.tls_certs_only([reqwest::Certificate::from_pem(pem.as_bytes())?])
        }
    })
}

/// The system's resolver, except that `localhost` and every `*.localhost` name are the
/// loopback address without asking anyone (RFC 6761, as browsers do). A local emulator's
/// storage accounts are `{account}.blob.core.localhost:{port}`, which most systems'
/// resolvers do not know.
struct LocalhostResolver;

impl reqwest::dns::Resolve for LocalhostResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().trim_end_matches('.').to_ascii_lowercase();
        Box::pin(async move {
            let addrs: reqwest::dns::Addrs = if is_localhost_name(&host) {
                Box::new(
                    [
                        std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
                        std::net::SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, 0)),
                    ]
                    .into_iter(),
                )
            } else {
                let found: Vec<std::net::SocketAddr> =
                    tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
                Box::new(found.into_iter())
            };
            Ok(addrs)
        })
    }
}

/// `localhost` or a name under it.
fn is_localhost_name(host: &str) -> bool {
    host == "localhost" || host.ends_with(".localhost")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::ResourceId;

    #[test]
    fn localhost_names_are_loopback_and_nothing_else_is() {
        assert!(is_localhost_name("localhost"));
        assert!(is_localhost_name("acct.blob.core.localhost"));
        assert!(!is_localhost_name("localhost.example.com"));
        assert!(!is_localhost_name("notlocalhost"));
        assert!(!is_localhost_name("acct.blob.core.windows.net"));
    }

    #[test]
    fn each_provider_has_its_api_version() {
        let ws = ResourceId::workspace("s", "rg", "ws");
        for (id, version) in [
            (ResourceId::resource_group("s", "rg"), RESOURCES_API_VERSION),
            (ws.clone(), ML_API_VERSION),
            (ws.child("computes", "c"), ML_API_VERSION),
            (
                ResourceId::provider("s", "rg", "Microsoft.Storage/storageAccounts", "a"),
                STORAGE_API_VERSION,
            ),
            (
                ResourceId::provider("s", "rg", "Microsoft.KeyVault/vaults", "v"),
                KEYVAULT_API_VERSION,
            ),
            (
                ResourceId::provider("s", "rg", "microsoft.insights/components", "i"),
                INSIGHTS_API_VERSION,
            ),
        ] {
            assert_eq!(api_version_of(&id), version, "{id}");
        }
    }
}
