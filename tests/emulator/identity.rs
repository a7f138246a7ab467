//! Azure's own Rust credential (azure_identity 1.0 ClientSecretCredential) gets a token
//! from the emulator over HTTPS (self-signed CA), and the token works on ARM.

use std::sync::Arc;

use amlspec::emulator::{Emulator, EmulatorConfig, SimMode, TlsConfig};
use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
use azure_core::credentials::{Secret, TokenCredential};
use azure_core::http::{ClientOptions, Transport};
use azure_identity::{ClientSecretCredential, ClientSecretCredentialOptions};

#[tokio::test]
async fn azure_identity_client_secret_credential_gets_a_working_token() {
    let dir = tempfile::tempdir().unwrap();
    let ca_path = dir.path().join("ca.pem");
    let emu = Emulator::start(EmulatorConfig {
        tls: TlsConfig::SelfSigned {
            write_ca_to: Some(ca_path.clone()),
        },
        sim_mode: SimMode::Explicit,
        ..EmulatorConfig::default()
    })
    .await
    .unwrap();
    assert!(emu.endpoint().starts_with("https://127.0.0.1:"));
    let pem = std::fs::read(&ca_path).unwrap();
    assert_eq!(pem, emu.ca_cert_pem().unwrap().as_bytes());
    let ca = reqwest::Certificate::from_pem(&pem).unwrap();
    let http = reqwest::Client::builder()
        .tls_certs_only([ca])
        .no_proxy()
        .resolve("acct.blob.core.localhost", emu.addr())
        .build()
        .unwrap();

    let mut cloud = CustomConfiguration::default();
    cloud.authority_host = emu.authority_host();
    let options = ClientSecretCredentialOptions {
        client_options: ClientOptions {
            transport: Some(Transport::new(Arc::new(http.clone()))),
            cloud: Some(Arc::new(CloudConfiguration::from(cloud))),
            ..ClientOptions::default()
        },
    };
    let credential = ClientSecretCredential::new(
        emu.tenant_id(),
        emu.client_id().to_string(),
        Secret::new(emu.client_secret().to_string()),
        Some(options),
    )
    .unwrap();
    let token = credential
        .get_token(&["https://management.azure.com/.default"], None)
        .await
        .expect("token from the emulator");
    let resp = http
        .get(format!(
            "{}/subscriptions?api-version=2022-12-01",
            emu.arm_endpoint()
        ))
        .bearer_auth(token.token.secret())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    // The certificate also covers virtual-host blob names.
    let resp = http
        .get(format!("{}c?restype=container", emu.blob_endpoint("acct")))
        .send()
        .await
        .unwrap();
    assert!(
        resp.status().is_client_error(),
        "TLS handshake worked, answer {}",
        resp.status()
    );

    // The emulator's own client builder: CA trusted, every account name resolved.
    let own = emu.reqwest_client_builder().build().unwrap();
    let r = own
        .get(format!(
            "{}c?restype=container",
            emu.blob_endpoint("anyaccount")
        ))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error());
    assert!(
        own.get("https://example.com/").send().await.is_err(),
        "other names must not resolve"
    );

    // A wrong secret is an authentication error from the credential.
    let mut cloud = CustomConfiguration::default();
    cloud.authority_host = emu.authority_host();
    let bad = ClientSecretCredential::new(
        emu.tenant_id(),
        emu.client_id().to_string(),
        Secret::new("wrong".to_string()),
        Some(ClientSecretCredentialOptions {
            client_options: ClientOptions {
                transport: Some(Transport::new(Arc::new(http.clone()))),
                cloud: Some(Arc::new(CloudConfiguration::from(cloud))),
                ..ClientOptions::default()
            },
        }),
    )
    .unwrap();
    let err = bad
        .get_token(&["https://management.azure.com/.default"], None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("AADSTS7000215"), "{err}");
    emu.shutdown().await;
}

#[tokio::test]
async fn tls_from_user_pem_files() {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let dir = tempfile::tempdir().unwrap();
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params
        .subject_alt_names
        .push(rcgen::SanType::IpAddress([127, 0, 0, 1].into()));
    let cert = params.signed_by(&key, &issuer).unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();

    let emu = Emulator::start(EmulatorConfig {
        tls: TlsConfig::Files {
            cert: cert_path,
            key: key_path,
        },
        ..EmulatorConfig::default()
    })
    .await
    .unwrap();
    assert!(emu.ca_cert_pem().is_none());
    let http = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca.pem().as_bytes()).unwrap()])
        .no_proxy()
        .build()
        .unwrap();
    let r = http.get(emu.metadata_url()).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // Plain HTTP to the TLS port does not get an answer.
    let plain = reqwest::Client::builder().no_proxy().build().unwrap();
    assert!(
        plain
            .get(emu.metadata_url().replace("https://", "http://"))
            .send()
            .await
            .is_err()
    );
    emu.shutdown().await;
}
