//! Blob service: SharedKey (signed here by an independent implementation) and SAS from
//! startPendingUpload, path-style and virtual-host addressing, conditional Put Blob,
//! blocks, metadata, listing, and refused signatures.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{KeyInit, Mac};
use md5::Digest;
use reqwest::Method;
use serde_json::json;

use crate::emulator::support::{Env, explicit, start};

struct Account {
    name: String,
    key: String,
    container: String,
}

async fn datastore_account(env: &Env, ws: &str) -> Account {
    let ds = env
        .get(&format!("{ws}/datastores/workspaceblobstore"))
        .await;
    let secrets = env
        .post(
            &format!("{ws}/datastores/workspaceblobstore/listSecrets"),
            None,
        )
        .await;
    Account {
        name: ds.body["properties"]["accountName"]
            .as_str()
            .unwrap()
            .to_string(),
        container: ds.body["properties"]["containerName"]
            .as_str()
            .unwrap()
            .to_string(),
        key: secrets.body["key"].as_str().unwrap().to_string(),
    }
}

/// SharedKey for Blob (2009-09-19 and later), written from the Storage REST docs.
fn sign(
    method: &str,
    account: &str,
    key: &str,
    path: &str,
    query: &[(&str, &str)],
    headers: &[(String, String)],
) -> String {
    let h = |n: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    };
    let length = match h("content-length") {
        "0" => "",
        v => v,
    };
    let mut ms: Vec<(String, String)> = headers
        .iter()
        .filter(|(k, _)| k.to_ascii_lowercase().starts_with("x-ms-"))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    ms.sort();
    let mut q: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
        .collect();
    q.sort();
    let mut s = format!(
        "{method}\n{}\n{}\n{length}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n",
        h("content-encoding"),
        h("content-language"),
        h("content-md5"),
        h("content-type"),
        h("date"),
        h("if-modified-since"),
        h("if-match"),
        h("if-none-match"),
        h("if-unmodified-since"),
        h("range")
    );
    for (k, v) in ms {
        s.push_str(&format!("{k}:{v}\n"));
    }
    s.push_str(&format!("/{account}{path}"));
    for (k, v) in q {
        s.push_str(&format!("\n{k}:{v}"));
    }
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(&STANDARD.decode(key).unwrap()).unwrap();
    mac.update(s.as_bytes());
    format!(
        "SharedKey {account}:{}",
        STANDARD.encode(mac.finalize().into_bytes())
    )
}

/// Who signs SharedKey requests, and where they go.
struct SharedKey<'a> {
    http: &'a reqwest::Client,
    base: &'a str,
    account: &'a str,
    key: &'a str,
}

impl SharedKey<'_> {
    async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        extra: &[(&str, &str)],
        body: Vec<u8>,
    ) -> reqwest::Response {
        let SharedKey {
            http,
            base,
            account,
            key,
        } = self;
        let mut headers: Vec<(String, String)> = vec![
            ("x-ms-date".into(), "Thu, 01 Jan 2026 00:00:00 GMT".into()),
            ("x-ms-version".into(), "2025-01-05".into()),
        ];
        for (k, v) in extra {
            headers.push((k.to_string(), v.to_string()));
        }
        if method == Method::PUT {
            headers.push(("content-length".into(), body.len().to_string()));
        }
        let auth = sign(method.as_str(), account, key, path, query, &headers);
        let qs: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let url = if qs.is_empty() {
            format!("{base}{path}")
        } else {
            format!("{base}{path}?{}", qs.join("&"))
        };
        let mut req = http.request(method, url).header("authorization", auth);
        for (k, v) in headers.iter().filter(|(k, _)| k != "content-length") {
            req = req.header(k, v);
        }
        req.body(body).send().await.unwrap()
    }
}

#[tokio::test]
async fn shared_key_put_head_get_list_in_both_addressing_styles() {
    let env = start(explicit()).await;
    let ws = env.workspace("rg", "ws1").await;
    let acct = datastore_account(&env, &ws).await;
    let base = env.emu.endpoint();
    let http = &env.http;
    let path_style = SharedKey {
        http,
        base: &base,
        account: &acct.name,
        key: &acct.key,
    };
    let data = b"FROM fastdotai/fastai2:latest\n".to_vec();
    let md5 = STANDARD.encode(md5::Md5::digest(&data));
    let blob_path = format!(
        "/{}/{}/LocalUpload/abc/ctx/Dockerfile",
        acct.name, acct.container
    );

    let r = path_style
        .send(Method::HEAD, &blob_path, &[], &[], vec![])
        .await;
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["x-ms-error-code"], "BlobNotFound");

    let put_headers = [
        ("x-ms-blob-type", "BlockBlob"),
        ("if-none-match", "*"),
        ("content-md5", md5.as_str()),
        ("content-type", "application/octet-stream"),
    ];
    let r = path_style
        .send(Method::PUT, &blob_path, &[], &put_headers, data.clone())
        .await;
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    let r = path_style
        .send(Method::PUT, &blob_path, &[], &put_headers, data.clone())
        .await;
    assert_eq!(r.status(), 409);
    assert_eq!(r.headers()["x-ms-error-code"], "BlobAlreadyExists");

    let meta = [
        ("x-ms-meta-upload_status", "completed"),
        ("x-ms-meta-name", "fastai2-build"),
        ("x-ms-meta-version", "1"),
    ];
    let r = path_style
        .send(
            Method::PUT,
            &blob_path,
            &[("comp", "metadata")],
            &meta,
            vec![],
        )
        .await;
    assert_eq!(r.status(), 200);
    let r = path_style
        .send(Method::HEAD, &blob_path, &[], &[], vec![])
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-ms-meta-upload_status"], "completed");
    assert_eq!(
        r.headers()["content-length"],
        data.len().to_string().as_str()
    );
    assert_eq!(r.headers()["content-md5"], md5.as_str());

    // Virtual-host addressing: {account}.blob.{suffix}, resolved to the emulator.
    let host = format!("{}.blob.core.localhost", acct.name);
    let vhost = reqwest::Client::builder()
        .no_proxy()
        .resolve(&host, env.emu.addr())
        .build()
        .unwrap();
    let vbase = env
        .emu
        .blob_endpoint(&acct.name)
        .trim_end_matches('/')
        .to_string();
    let vhost_style = SharedKey {
        http: &vhost,
        base: &vbase,
        ..path_style
    };
    let vpath = format!("/{}/LocalUpload/abc/ctx/Dockerfile", acct.container);
    let r = vhost_style
        .send(Method::GET, &vpath, &[], &[], vec![])
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().to_vec(), data);

    let lpath = format!("/{}", acct.container);
    let r = vhost_style
        .send(
            Method::GET,
            &lpath,
            &[
                ("restype", "container"),
                ("comp", "list"),
                ("prefix", "LocalUpload/"),
                ("include", "metadata"),
            ],
            &[],
            vec![],
        )
        .await;
    assert_eq!(r.status(), 200);
    let xml = r.text().await.unwrap();
    assert!(
        xml.contains("<Name>LocalUpload/abc/ctx/Dockerfile</Name>")
            && xml.contains("<upload_status>completed</upload_status>"),
        "{xml}"
    );

    // A signature made with the wrong key is refused.
    let wrong = STANDARD.encode([7u8; 64]);
    let wrong_key = SharedKey {
        key: &wrong,
        ..path_style
    };
    let r = wrong_key
        .send(Method::GET, &blob_path, &[], &[], vec![])
        .await;
    assert_eq!(r.status(), 403);
    assert_eq!(r.headers()["x-ms-error-code"], "AuthenticationFailed");
    // No credentials at all.
    let r = http.get(format!("{base}{blob_path}")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    // A bad Content-MD5.
    let bad_md5 = [
        ("x-ms-blob-type", "BlockBlob"),
        ("content-md5", "AAAAAAAAAAAAAAAAAAAAAA=="),
    ];
    let r = path_style
        .send(Method::PUT, &format!("{blob_path}2"), &[], &bad_md5, data)
        .await;
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["x-ms-error-code"], "Md5Mismatch");
}

#[tokio::test]
async fn sas_from_start_pending_upload_is_checked_for_real() {
    let env = start(explicit()).await;
    let ws = env.workspace("rg", "ws1").await;
    let sas_uri = env
        .code_upload_sas(
            &ws,
            "c1",
            json!({ "pendingUploadType": "TemporaryBlobReference" }),
        )
        .await;
    let (container_url, sas) = sas_uri.split_once('?').unwrap();
    let http = &env.http;

    let url = format!("{container_url}/src/train.py?{sas}");
    let r = http.head(&url).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let r = http
        .put(&url)
        .header("x-ms-blob-type", "BlockBlob")
        .header("if-none-match", "*")
        .body("print('hello from probe')\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    // Blocks then a block list.
    let big = format!("{container_url}/src/weights.bin");
    let ids: Vec<String> = (0..3)
        .map(|i| STANDARD.encode(format!("block-{i:04}")))
        .collect();
    for (i, id) in ids.iter().enumerate() {
        let enc: String = form_urlencoded::byte_serialize(id.as_bytes()).collect();
        let r = http
            .put(format!("{big}?comp=block&blockid={enc}&{sas}"))
            .body(vec![b'a' + i as u8; 1000])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>{}</BlockList>",
        ids.iter()
            .map(|i| format!("<Latest>{i}</Latest>"))
            .collect::<String>()
    );
    let r = http
        .put(format!("{big}?comp=blocklist&{sas}"))
        .header("if-none-match", "*")
        .body(xml)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let got = http
        .get(format!("{big}?{sas}"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(got.len(), 3000);
    assert!(got[..1000].iter().all(|b| *b == b'a') && got[2000..].iter().all(|b| *b == b'c'));
    let r = http
        .put(format!("{big}?comp=blocklist&{sas}"))
        .body("<BlockList><Latest>bm9wZQ==</Latest></BlockList>")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["x-ms-error-code"], "InvalidBlockList");

    // Tampered signature: refused.
    let tampered = sas.replace("sp=racwdl", "sp=racwdlx");
    let r = http
        .get(format!("{container_url}/src/train.py?{tampered}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(r.headers()["x-ms-error-code"], "AuthenticationFailed");
    // The SAS is for one container only.
    let other = container_url.rsplit_once('/').unwrap().0.to_string() + "/azureml";
    let r = http.get(format!("{other}/x?{sas}")).send().await.unwrap();
    assert_eq!(r.status(), 403);
    // Expired once the clock passes `se`.
    env.emu
        .admin()
        .advance_clock(Duration::from_secs(8 * 24 * 3600))
        .unwrap();
    let r = http
        .get(format!("{container_url}/src/train.py?{sas}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn deleting_a_storage_account_takes_its_blobs_and_frees_the_name() {
    let env = start(explicit()).await;
    let ws = env.workspace("rg", "ws1").await;
    let acct = datastore_account(&env, &ws).await;
    let base = env.emu.endpoint();
    let path = format!("/{}/{}/a.txt", acct.name, acct.container);
    let shared_key = SharedKey {
        http: &env.http,
        base: &base,
        account: &acct.name,
        key: &acct.key,
    };
    let r = shared_key
        .send(
            Method::PUT,
            &path,
            &[],
            &[("x-ms-blob-type", "BlockBlob")],
            b"a".to_vec(),
        )
        .await;
    assert_eq!(r.status(), 201);
    let st = format!(
        "{}/providers/Microsoft.Storage/storageAccounts/{}",
        env.rg("rg"),
        acct.name
    );
    let keys = env
        .post(&format!("{st}/listKeys?api-version=2023-01-01"), None)
        .await;
    assert_eq!(keys.expect(200).body["keys"][0]["value"], acct.key.as_str());
    let ws_keys = env.post(&format!("{ws}/listKeys"), None).await;
    assert_eq!(
        ws_keys.expect(200).body["userStorageKey"],
        acct.key.as_str()
    );
    env.delete(&format!("{st}?api-version=2023-01-01"))
        .await
        .expect(200);
    let r = shared_key.send(Method::GET, &path, &[], &[], vec![]).await;
    assert_eq!(
        r.status(),
        404,
        "the account is gone, so the path names nothing"
    );
    let again = env
        .put(&format!("{st}?api-version=2023-01-01"), json!({ "location": "westeurope", "sku": { "name": "Standard_LRS" }, "kind": "StorageV2" }))
        .await;
    again.expect(202);
    let _ = env.emu.admin().complete(&st);
    let acct2 = Account {
        key: env
            .post(&format!("{st}/listKeys?api-version=2023-01-01"), None)
            .await
            .body["keys"][0]["value"]
            .as_str()
            .unwrap()
            .to_string(),
        ..acct
    };
    let shared_key2 = SharedKey {
        http: &env.http,
        base: &base,
        account: &acct2.name,
        key: &acct2.key,
    };
    let r = shared_key2
        .send(
            Method::GET,
            &format!("/{}/{}", acct2.name, acct2.container),
            &[("restype", "container")],
            &[],
            vec![],
        )
        .await;
    assert_eq!(
        r.status(),
        404,
        "old containers did not survive the account"
    );
}
