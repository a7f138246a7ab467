//! Which Azure to talk to: the resource manager, the Entra ID authority and the storage
//! suffix of a cloud, with explicit overrides so the same code runs against the local
//! emulator. Plain http is refused for anything but loopback addresses.

use std::net::IpAddr;

use url::{Host, Url};

/// The sovereign clouds amlspec knows by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Cloud {
    Public,
    China,
    Usgov,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// Azure Resource Manager, e.g. `https://management.azure.com/`.
    pub resource_manager: Url,
    /// Entra ID authority host, e.g. `https://login.microsoftonline.com/`.
    pub authority_host: Url,
    /// Blob endpoint suffix: `{account}.blob.{suffix}`.
    pub storage_suffix: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EndpointError {
    #[error("`{url}` is not a valid URL: {reason}")]
    Invalid { url: String, reason: String },
    #[error(
        "`{url}` uses plain http; only loopback addresses (127.0.0.1, ::1, localhost) may be reached without TLS"
    )]
    InsecureRemote { url: String },
    #[error("`{url}` must use http or https")]
    Scheme { url: String },
}

impl Endpoints {
    pub fn for_cloud(cloud: Cloud) -> Self {
        let (arm, authority, storage) = match cloud {
            Cloud::Public => (
                "https://management.azure.com/",
                "https://login.microsoftonline.com/",
                "core.windows.net",
            ),
            Cloud::China => (
                "https://management.chinacloudapi.cn/",
                "https://login.chinacloudapi.cn/",
                "core.chinacloudapi.cn",
            ),
            Cloud::Usgov => (
                "https://management.usgovcloudapi.net/",
                "https://login.microsoftonline.us/",
                "core.usgovcloudapi.net",
            ),
        };
        Endpoints {
            resource_manager: Url::parse(arm).expect("a valid built-in URL"),
            authority_host: Url::parse(authority).expect("a valid built-in URL"),
            storage_suffix: storage.to_string(),
        }
    }

    /// A cloud's endpoints with any of them overridden; every URL is checked.
    pub fn with_overrides(
        cloud: Cloud,
        resource_manager: Option<&str>,
        authority_host: Option<&str>,
        storage_suffix: Option<&str>,
    ) -> Result<Self, EndpointError> {
        let mut endpoints = Self::for_cloud(cloud);
        if let Some(url) = resource_manager {
            endpoints.resource_manager = checked_url(url)?;
        }
        if let Some(url) = authority_host {
            endpoints.authority_host = checked_url(url)?;
        }
        if let Some(suffix) = storage_suffix {
            endpoints.storage_suffix = suffix.trim_matches('.').to_string();
        }
        Ok(endpoints)
    }

    /// Every endpoint is on this machine (ARM, authority, blob storage): a local emulator.
    pub fn all_loopback(&self) -> bool {
        let storage_host = self
            .storage_suffix
            .rsplit_once(':')
            .map_or(self.storage_suffix.as_str(), |(host, _)| host);
        let storage_local = storage_host == "localhost"
            || storage_host.ends_with(".localhost")
            || storage_host
                .parse::<IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        is_loopback(&self.resource_manager) && is_loopback(&self.authority_host) && storage_local
    }

    /// The token scope of this resource manager: `https://management.azure.com/.default`.
    pub fn arm_scope(&self) -> String {
        let mut base = self.resource_manager.clone();
        base.set_path("/");
        base.set_query(None);
        format!("{}.default", base)
    }
}

/// Parse a URL and refuse plain http to anything but loopback.
pub fn checked_url(text: &str) -> Result<Url, EndpointError> {
    let mut url = Url::parse(text).map_err(|e| EndpointError::Invalid {
        url: text.to_string(),
        reason: e.to_string(),
    })?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => {
            return Err(EndpointError::InsecureRemote {
                url: text.to_string(),
            });
        }
        _ => {
            return Err(EndpointError::Scheme {
                url: text.to_string(),
            });
        }
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        Some(Host::Domain(domain)) => domain == "localhost" || domain.ends_with(".localhost"),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_on_loopback() {
        assert!(checked_url("http://127.0.0.1:8443").is_ok());
        assert!(checked_url("http://[::1]:8443/").is_ok());
        assert!(checked_url("http://localhost:1/").is_ok());
        assert_eq!(
            checked_url("http://management.azure.com/"),
            Err(EndpointError::InsecureRemote {
                url: "http://management.azure.com/".into()
            })
        );
        assert!(checked_url("http://10.0.0.1/").is_err());
        assert!(checked_url("ftp://127.0.0.1/").is_err());
        assert!(checked_url("https://management.azure.com").is_ok());
    }

    #[test]
    fn local_emulators_are_all_loopback() {
        let local = |storage: &str| {
            Endpoints::with_overrides(
                Cloud::Public,
                Some("https://127.0.0.1:8443"),
                Some("https://localhost:8443"),
                Some(storage),
            )
            .unwrap()
            .all_loopback()
        };
        assert!(local("core.localhost:8443"));
        assert!(local("127.0.0.1:10000"));
        assert!(!local("core.windows.net"));
        assert!(!Endpoints::for_cloud(Cloud::Public).all_loopback());
    }

    #[test]
    fn scopes_follow_the_resource_manager() {
        assert_eq!(
            Endpoints::for_cloud(Cloud::Public).arm_scope(),
            "https://management.azure.com/.default"
        );
        let local =
            Endpoints::with_overrides(Cloud::Public, Some("https://127.0.0.1:8443/"), None, None)
                .unwrap();
        assert_eq!(local.arm_scope(), "https://127.0.0.1:8443/.default");
    }
}
