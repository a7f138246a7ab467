//! TLS material: user-given PEM files, or a fresh CA plus a server certificate it signs.
//! A separate CA keeps both camps happy: rustls refuses a CA certificate used as the server
//! certificate, while Python's `requests` wants a CA in its bundle.

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};

use super::EmulatorError;

pub(crate) struct Material {
    pub cert_chain_pem: String,
    pub key_pem: String,
    /// The CA clients should trust (self-signed mode only).
    pub ca_pem: Option<String>,
}

/// Registry names every self-signed certificate covers: Azure Container Registry's. The
/// CA is made fresh at each start and its key never leaves the process, so only clients
/// that chose to trust this emulator accept these names from it.
const REGISTRY_WILDCARDS: [&str; 1] = ["*.azurecr.io"];

pub(crate) fn self_signed(
    storage_suffix: &str,
    registry_hosts: &[String],
) -> Result<Material, EmulatorError> {
    let err = |e: rcgen::Error| EmulatorError::Tls {
        message: e.to_string(),
    };
    let ca_key = KeyPair::generate().map_err(err)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "amlspec emulator local CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key).map_err(err)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let host = storage_suffix.split(':').next().unwrap_or(storage_suffix);
    let mut names = vec![
        "localhost".to_string(),
        format!("*.blob.{host}"),
        format!("*.dfs.{host}"),
        host.to_string(),
    ];
    names.extend(REGISTRY_WILDCARDS.iter().map(|w| w.to_string()));
    for registry in registry_hosts {
        let name = super::registry::host_key(registry);
        let covered = names.iter().any(|n| {
            *n == name
                || n.strip_prefix("*.").is_some_and(|suffix| {
                    name.split_once('.').is_some_and(|(_, rest)| rest == suffix)
                })
        });
        if !covered {
            names.push(name);
        }
    }
    let mut params = CertificateParams::new(names).map_err(err)?;
    params
        .subject_alt_names
        .push(SanType::IpAddress(std::net::IpAddr::from([127, 0, 0, 1])));
    params
        .subject_alt_names
        .push(SanType::IpAddress(std::net::IpAddr::from(
            std::net::Ipv6Addr::LOCALHOST,
        )));
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let key = KeyPair::generate().map_err(err)?;
    let cert = params.signed_by(&key, &issuer).map_err(err)?;
    Ok(Material {
        cert_chain_pem: format!("{}{}", cert.pem(), ca_cert.pem()),
        key_pem: key.serialize_pem(),
        ca_pem: Some(ca_cert.pem()),
    })
}

pub(crate) fn from_files(cert: &Path, key: &Path) -> Result<Material, EmulatorError> {
    let read = |p: &Path| {
        std::fs::read_to_string(p).map_err(|source| EmulatorError::ReadTls {
            path: p.to_path_buf(),
            source,
        })
    };
    Ok(Material {
        cert_chain_pem: read(cert)?,
        key_pem: read(key)?,
        ca_pem: None,
    })
}
