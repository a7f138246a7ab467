//! Azure Blob service subset for snapshot and build-context uploads: containers, Put Blob,
//! Put Block, Put Block List, Get/Head Blob, Set Blob Metadata, Delete Blob, List Blobs.
//! Requests are authorized by SharedKey, SAS or an Entra bearer token, all checked for real.

pub(crate) mod sas;

use std::collections::BTreeMap;

use axum::http::{HeaderMap, Method, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use md5::{Digest, Md5};
use time::OffsetDateTime;

use super::config::EmulatorConfig;
use super::model::{BlobRecord, BlockRef, BlocksRecord, ContainerRecord, Record};
use super::reply::{Reply, ReplyBody};
use super::util::{http_date, query_get, rfc3339};
use super::world::World;
use sas::{AuthFailure, Signed};

/// Storage service version the emulator reports.
pub(crate) const SERVICE_VERSION: &str = "2025-01-05";

pub(crate) struct BlobReq {
    pub method: Method,
    pub account: String,
    /// Raw path as sent (for signatures).
    pub raw_path: String,
    pub path_style: bool,
    pub container: String,
    /// Decoded blob name ("" for container or account operations).
    pub blob: String,
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub scheme: &'static str,
    /// The port the emulator listens on (blob endpoints, token audiences).
    pub port: u16,
    /// `scheme://host` the client used, for List Blobs' ServiceEndpoint.
    pub endpoint: String,
}

fn storage_error(
    status: StatusCode,
    code: &str,
    message: &str,
    request_id: &str,
    head: bool,
) -> Reply {
    let now = rfc3339(OffsetDateTime::now_utc());
    let body = if head {
        ReplyBody::Empty
    } else {
        ReplyBody::Xml(format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>{code}</Code><Message>{}\nRequestId:{request_id}\nTime:{now}</Message></Error>",
            quick_xml::escape::escape(message)
        ))
    };
    Reply {
        status,
        headers: Vec::new(),
        body,
    }
    .header("x-ms-error-code", code.to_string())
}

fn etag(now: OffsetDateTime, salt: u64) -> String {
    format!(
        "\"0x8D{:X}\"",
        (now.unix_timestamp_nanos() as u64 / 100).wrapping_add(salt)
    )
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn metadata_from(h: &HeaderMap) -> BTreeMap<String, String> {
    h.iter()
        .filter_map(|(k, v)| {
            let name = k.as_str().strip_prefix("x-ms-meta-")?;
            Some((name.to_string(), v.to_str().unwrap_or("").to_string()))
        })
        .collect()
}

fn blob_key(account: &str, container: &str, blob: &str) -> String {
    format!("blob:{}/{container}/{blob}", account.to_ascii_lowercase())
}

fn container_key(account: &str, container: &str) -> String {
    format!("container:{}/{container}", account.to_ascii_lowercase())
}

fn blocks_key(account: &str, container: &str, blob: &str) -> String {
    format!("blocks:{}/{container}/{blob}", account.to_ascii_lowercase())
}

/// The operation a request performs, and the SAS permission it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    CreateContainer,
    ContainerProperties,
    DeleteContainer,
    ListBlobs,
    PutBlob,
    PutBlock,
    PutBlockList,
    GetBlockList,
    SetMetadata,
    GetBlob,
    DeleteBlob,
}

fn classify(req: &BlobReq) -> Option<Op> {
    let restype = query_get(&req.query, "restype");
    let comp = query_get(&req.query, "comp");
    if req.blob.is_empty() {
        return match (&req.method, restype, comp) {
            (&Method::PUT, Some("container"), None) => Some(Op::CreateContainer),
            (&Method::GET | &Method::HEAD, Some("container"), None) => {
                Some(Op::ContainerProperties)
            }
            (&Method::DELETE, Some("container"), None) => Some(Op::DeleteContainer),
            (&Method::GET, Some("container"), Some("list")) => Some(Op::ListBlobs),
            _ => None,
        };
    }
    match (&req.method, comp) {
        (&Method::PUT, None) => Some(Op::PutBlob),
        (&Method::PUT, Some("block")) => Some(Op::PutBlock),
        (&Method::PUT, Some("blocklist")) => Some(Op::PutBlockList),
        (&Method::GET, Some("blocklist")) => Some(Op::GetBlockList),
        (&Method::PUT, Some("metadata")) => Some(Op::SetMetadata),
        (&Method::GET | &Method::HEAD, None) => Some(Op::GetBlob),
        (&Method::GET | &Method::HEAD, Some("metadata")) => Some(Op::GetBlob),
        (&Method::DELETE, None) => Some(Op::DeleteBlob),
        _ => None,
    }
}

fn permission(op: Op, blob_exists: bool) -> (char, Option<char>) {
    match op {
        Op::GetBlob | Op::ContainerProperties | Op::GetBlockList => ('r', None),
        Op::ListBlobs => ('l', None),
        Op::DeleteBlob | Op::DeleteContainer => ('d', None),
        Op::CreateContainer => ('c', None),
        Op::PutBlob | Op::PutBlockList if !blob_exists => ('w', Some('c')),
        Op::PutBlock => ('w', Some('c')),
        _ => ('w', None),
    }
}

pub(crate) fn handle(
    world: &mut World,
    config: &EmulatorConfig,
    base: &str,
    req: &BlobReq,
    request_id: &str,
) -> Reply {
    let head = req.method == Method::HEAD;
    let err = |status: StatusCode, code: &str, message: &str| {
        storage_error(status, code, message, request_id, head)
    };
    let Some((key, _)) = super::arm::resources_account(world, &req.account) else {
        return err(
            StatusCode::BAD_REQUEST,
            "InvalidUri",
            &format!(
                "The storage account '{}' does not exist in the emulator.",
                req.account
            ),
        );
    };
    let Some(op) = classify(req) else {
        return err(
            StatusCode::BAD_REQUEST,
            "UnsupportedHttpVerb",
            "The resource doesn't support the specified HTTP verb or operation in this emulator.",
        );
    };
    let bkey = blob_key(&req.account, &req.container, &req.blob);
    let blob_exists = world.store.get(&bkey).is_some();
    let (needs, or_needs) = permission(op, blob_exists);
    let signed = Signed {
        method: req.method.as_str(),
        account: &req.account,
        raw_path: &req.raw_path,
        path_style: req.path_style,
        query: &req.query,
        headers: &req.headers,
        container: &req.container,
        blob: &req.blob,
        scheme: req.scheme,
        now: world.now(),
        needs,
        or_needs,
        container_level: req.blob.is_empty(),
    };
    let auth = header(&req.headers, "authorization");
    let has_sas = req.query.iter().any(|(k, _)| k == "sig");
    let checked = match (auth, has_sas) {
        (_, true) => sas::check_sas(&signed, &key),
        (Some(a), false) if a.starts_with("SharedKey ") => sas::check_shared_key(&signed, a, &key),
        (Some(a), false) if a.starts_with("Bearer ") => {
            let served = super::auth::Served {
                scheme: req.scheme,
                port: req.port,
            };
            let audience = super::auth::Audience::Storage {
                account: &req.account,
            };
            match super::auth::check_bearer(world, config, served, base, Some(a), audience) {
                Ok(_) => Ok(()),
                Err(e) => Err(AuthFailure::Signature(e.message)),
            }
        }
        (Some(_), false) => Err(AuthFailure::Signature(
            "The Authorization header is not SharedKey or Bearer.".into(),
        )),
        (None, false) => {
            return err(
                StatusCode::UNAUTHORIZED,
                "NoAuthenticationInformation",
                "Server failed to authenticate the request. Please refer to the information in the www-authenticate header.",
            );
        }
    };
    if let Err(f) = checked {
        return match f {
            AuthFailure::Signature(detail) | AuthFailure::Expired(detail) => err(
                StatusCode::FORBIDDEN,
                "AuthenticationFailed",
                &format!(
                    "Server failed to authenticate the request. Make sure the value of Authorization header is formed correctly including the signature. {detail}"
                ),
            ),
            AuthFailure::Permission(detail) => err(
                StatusCode::FORBIDDEN,
                "AuthorizationPermissionMismatch",
                &detail,
            ),
            AuthFailure::Protocol => err(
                StatusCode::FORBIDDEN,
                "AuthorizationProtocolMismatch",
                "This request is not authorized to perform this operation using this protocol.",
            ),
        };
    }
    let result = match op {
        Op::CreateContainer => create_container(world, req),
        Op::ContainerProperties => container_properties(world, req),
        Op::DeleteContainer => delete_container(world, req),
        _ if world
            .store
            .get(&container_key(&req.account, &req.container))
            .is_none() =>
        {
            Err(container_not_found())
        }
        Op::ListBlobs => Ok(list_blobs(world, req)),
        Op::PutBlob => put_blob(world, req),
        Op::PutBlock => put_block(world, req),
        Op::PutBlockList => put_block_list(world, req),
        Op::GetBlockList => get_block_list(world, req),
        Op::SetMetadata => set_metadata(world, req),
        Op::GetBlob => get_blob(world, req),
        Op::DeleteBlob => delete_blob(world, req),
    };
    match result {
        Ok(reply) => reply,
        Err((status, code, message)) => err(status, code, &message),
    }
}

/// A Storage error: status, code, message.
type StorageError = (StatusCode, &'static str, String);
type BlobResult = Result<Reply, StorageError>;

fn store_err(e: super::store::StoreError) -> StorageError {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        "InternalError",
        e.to_string(),
    )
}

fn container_not_found() -> StorageError {
    (
        StatusCode::NOT_FOUND,
        "ContainerNotFound",
        "The specified container does not exist.".into(),
    )
}

fn blob_not_found() -> StorageError {
    (
        StatusCode::NOT_FOUND,
        "BlobNotFound",
        "The specified blob does not exist.".into(),
    )
}

fn create_container(world: &mut World, req: &BlobReq) -> BlobResult {
    let key = container_key(&req.account, &req.container);
    if world.store.get(&key).is_some() {
        return Err((
            StatusCode::CONFLICT,
            "ContainerAlreadyExists",
            "The specified container already exists.".into(),
        ));
    }
    let valid = (3..=63).contains(&req.container.len())
        && req
            .container
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !req.container.starts_with('-')
        && !req.container.contains("--");
    if !valid {
        return Err((
            StatusCode::BAD_REQUEST,
            "InvalidResourceName",
            "The specifed resource name contains invalid characters.".into(),
        ));
    }
    let now = world.now();
    let record = ContainerRecord {
        etag: etag(now, 0),
        last_modified: now,
        metadata: metadata_from(&req.headers),
    };
    world
        .store
        .put(&key, Record::Container(record.clone()))
        .map_err(store_err)?;
    Ok(Reply::empty(StatusCode::CREATED)
        .header("etag", record.etag)
        .header("last-modified", http_date(now)))
}

fn container_properties(world: &World, req: &BlobReq) -> BlobResult {
    match world
        .store
        .get(&container_key(&req.account, &req.container))
    {
        Some(Record::Container(c)) => {
            let mut reply = Reply::empty(StatusCode::OK)
                .header("etag", c.etag.clone())
                .header("last-modified", http_date(c.last_modified))
                .header("x-ms-lease-state", "available")
                .header("x-ms-lease-status", "unlocked");
            for (k, v) in &c.metadata {
                reply = with_meta(reply, k, v);
            }
            Ok(reply)
        }
        _ => Err(container_not_found()),
    }
}

fn delete_container(world: &mut World, req: &BlobReq) -> BlobResult {
    let key = container_key(&req.account, &req.container);
    if world.store.get(&key).is_none() {
        return Err(container_not_found());
    }
    let prefix = format!(
        "blob:{}/{}/",
        req.account.to_ascii_lowercase(),
        req.container
    );
    for k in world.store.keys_with_prefix(&prefix) {
        world.store.delete(&k).map_err(store_err)?;
    }
    world.store.delete(&key).map_err(store_err)?;
    Ok(Reply::empty(StatusCode::ACCEPTED))
}

fn with_meta(reply: Reply, k: &str, v: &str) -> Reply {
    let mut reply = reply;
    if let Ok(name) = axum::http::HeaderName::from_bytes(format!("x-ms-meta-{k}").as_bytes()) {
        reply.headers.push((name, v.to_string()));
    }
    reply
}

/// Checks Content-MD5 when the client sent one.
fn check_md5(headers: &HeaderMap, body: &[u8]) -> Result<(), StorageError> {
    let Some(sent) = header(headers, "content-md5") else {
        return Ok(());
    };
    let computed = STANDARD.encode(Md5::digest(body));
    if sent != computed {
        return Err((
            StatusCode::BAD_REQUEST,
            "Md5Mismatch",
            format!(
                "The MD5 value specified in the request did not match with the MD5 value calculated by the server. Specified: {sent}. Calculated: {computed}."
            ),
        ));
    }
    Ok(())
}

fn precondition(req: &BlobReq, existing: Option<&BlobRecord>) -> Result<(), StorageError> {
    if let Some(inm) = header(&req.headers, "if-none-match")
        && let Some(b) = existing
        && (inm.trim() == "*" || inm.trim() == b.etag)
    {
        return Err((
            StatusCode::CONFLICT,
            "BlobAlreadyExists",
            "The specified blob already exists.".into(),
        ));
    }
    if let Some(im) = header(&req.headers, "if-match") {
        match existing {
            Some(b) if im.trim() == "*" || im.trim() == b.etag => {}
            _ => {
                return Err((
                    StatusCode::PRECONDITION_FAILED,
                    "ConditionNotMet",
                    "The condition specified using HTTP conditional header(s) is not met.".into(),
                ));
            }
        }
    }
    Ok(())
}

fn existing_blob(world: &World, req: &BlobReq) -> Option<BlobRecord> {
    match world
        .store
        .get(&blob_key(&req.account, &req.container, &req.blob))
    {
        Some(Record::Blob(b)) => Some(b.clone()),
        _ => None,
    }
}

/// How the blob's content arrived: Put Blob takes content headers from the request itself
/// (overridable by `x-ms-blob-*`), Put Block List only from `x-ms-blob-*`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Upload {
    Single,
    BlockList,
}

fn commit_blob(
    world: &mut World,
    req: &BlobReq,
    data: Bytes,
    upload: Upload,
    blocks: Vec<BlockRef>,
    created: Option<OffsetDateTime>,
) -> BlobResult {
    let now = world.now();
    let h = &req.headers;
    let content_header = |blob_header: &str, plain: &str| {
        header(h, blob_header)
            .or_else(|| {
                (upload == Upload::Single)
                    .then(|| header(h, plain))
                    .flatten()
            })
            .map(str::to_string)
    };
    let content_md5 = match upload {
        Upload::Single => Some(STANDARD.encode(Md5::digest(&data))),
        Upload::BlockList => header(h, "x-ms-blob-content-md5").map(str::to_string),
    };
    let length = data.len() as u64;
    let hash = world.store.put_data(data).map_err(store_err)?;
    let seq = world.seq();
    let record = BlobRecord {
        etag: etag(now, seq),
        created: created.unwrap_or(now),
        last_modified: now,
        content_length: length,
        content_type: content_header("x-ms-blob-content-type", "content-type")
            .unwrap_or_else(|| "application/octet-stream".to_string()),
        content_md5,
        content_encoding: content_header("x-ms-blob-content-encoding", "content-encoding"),
        content_language: content_header("x-ms-blob-content-language", "content-language"),
        cache_control: content_header("x-ms-blob-cache-control", "cache-control"),
        content_disposition: content_header("x-ms-blob-content-disposition", "content-disposition"),
        metadata: metadata_from(h),
        data: hash,
        committed_blocks: blocks,
    };
    let key = blob_key(&req.account, &req.container, &req.blob);
    world
        .store
        .put(&key, Record::Blob(record.clone()))
        .map_err(store_err)?;
    world
        .store
        .delete(&blocks_key(&req.account, &req.container, &req.blob))
        .map_err(store_err)?;
    let mut reply = Reply::empty(StatusCode::CREATED)
        .header("etag", record.etag)
        .header("last-modified", http_date(now))
        .header("x-ms-request-server-encrypted", "true");
    if let Some(m) = record.content_md5 {
        reply = reply.header("content-md5", m);
    }
    Ok(reply)
}

/// Appends `text` to a block blob the emulator itself writes (a job's log), creating it
/// when absent. Does nothing when the container is not held here (Azurite backend).
pub(crate) fn append_text(
    world: &mut World,
    account: &str,
    container: &str,
    blob: &str,
    text: &str,
    at: OffsetDateTime,
) -> Result<(), super::store::StoreError> {
    if world
        .store
        .get(&container_key(account, container))
        .is_none()
    {
        return Ok(());
    }
    let key = blob_key(account, container, blob);
    let existing = match world.store.get(&key) {
        Some(Record::Blob(b)) => Some(b.clone()),
        _ => None,
    };
    let mut data = match &existing {
        Some(b) => world.store.get_data(&b.data)?.to_vec(),
        None => Vec::new(),
    };
    data.extend_from_slice(text.as_bytes());
    let content_md5 = Some(STANDARD.encode(Md5::digest(&data)));
    let length = data.len() as u64;
    let hash = world.store.put_data(Bytes::from(data))?;
    let seq = world.seq();
    let record = BlobRecord {
        etag: etag(at, seq),
        created: existing.as_ref().map_or(at, |b| b.created),
        last_modified: at,
        content_length: length,
        content_type: "text/plain; charset=utf-8".to_string(),
        content_md5,
        content_encoding: None,
        content_language: None,
        cache_control: None,
        content_disposition: None,
        metadata: BTreeMap::new(),
        data: hash,
        committed_blocks: Vec::new(),
    };
    world.store.put(&key, Record::Blob(record))
}

/// True when the blob exists in the emulator's own store.
pub(crate) fn exists(world: &World, account: &str, container: &str, blob: &str) -> bool {
    matches!(
        world.store.get(&blob_key(account, container, blob)),
        Some(Record::Blob(_))
    )
}

fn put_blob(world: &mut World, req: &BlobReq) -> BlobResult {
    match header(&req.headers, "x-ms-blob-type") {
        Some("BlockBlob") => {}
        Some(other) => {
            return Err((
                StatusCode::BAD_REQUEST,
                "InvalidHeaderValue",
                format!(
                    "x-ms-blob-type '{other}' is not supported by the emulator; use BlockBlob."
                ),
            ));
        }
        None => {
            return Err((StatusCode::BAD_REQUEST, "MissingRequiredHeader", "An HTTP header that's mandatory for this request is not specified: x-ms-blob-type.".into()));
        }
    }
    let existing = existing_blob(world, req);
    precondition(req, existing.as_ref())?;
    check_md5(&req.headers, &req.body)?;
    commit_blob(
        world,
        req,
        req.body.clone(),
        Upload::Single,
        Vec::new(),
        existing.map(|b| b.created),
    )
}

fn put_block(world: &mut World, req: &BlobReq) -> BlobResult {
    let Some(id) = query_get(&req.query, "blockid") else {
        return Err((
            StatusCode::BAD_REQUEST,
            "MissingRequiredQueryParameter",
            "A query parameter that's mandatory for this request is not specified: blockid.".into(),
        ));
    };
    let decoded = STANDARD.decode(id).map_err(|_| (StatusCode::BAD_REQUEST, "InvalidQueryParameterValue", format!("Value for one of the query parameters specified in the request URI is invalid: blockid '{id}'.")))?;
    if decoded.len() > 64 {
        return Err((
            StatusCode::BAD_REQUEST,
            "InvalidQueryParameterValue",
            "The block id is longer than 64 bytes.".into(),
        ));
    }
    check_md5(&req.headers, &req.body)?;
    let size = req.body.len() as u64;
    let hash = world.store.put_data(req.body.clone()).map_err(store_err)?;
    let key = blocks_key(&req.account, &req.container, &req.blob);
    let mut blocks = match world.store.get(&key) {
        Some(Record::Blocks(b)) => b.clone(),
        _ => BlocksRecord::default(),
    };
    if let Some(first) = blocks.blocks.keys().next()
        && STANDARD.decode(first).map(|d| d.len()).unwrap_or(0) != decoded.len()
    {
        return Err((StatusCode::BAD_REQUEST, "InvalidBlobOrBlock", "The specified blob or block content is invalid: block ids of one blob must all have the same length.".into()));
    }
    blocks.blocks.insert(
        id.to_string(),
        BlockRef {
            id: id.to_string(),
            hash,
            size,
        },
    );
    world
        .store
        .put(&key, Record::Blocks(blocks))
        .map_err(store_err)?;
    Ok(Reply::empty(StatusCode::CREATED).header("x-ms-request-server-encrypted", "true"))
}

/// Parses `<BlockList><Latest|Committed|Uncommitted>id</…></BlockList>`.
fn parse_block_list(body: &[u8]) -> Result<Vec<(String, String)>, StorageError> {
    use quick_xml::events::Event;
    let invalid = || {
        (
            StatusCode::BAD_REQUEST,
            "InvalidXmlDocument",
            "XML specified is not syntactically valid.".to_string(),
        )
    };
    let mut reader = quick_xml::Reader::from_reader(body);
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    let mut saw_root = false;
    loop {
        match reader.read_event().map_err(|_| invalid())? {
            Event::Start(e) => {
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                if name == "BlockList" {
                    saw_root = true;
                } else if matches!(name.as_str(), "Latest" | "Committed" | "Uncommitted") {
                    current = Some(name);
                } else {
                    return Err(invalid());
                }
            }
            Event::Text(t) => {
                if let Some(kind) = &current {
                    let raw = std::str::from_utf8(t.as_ref()).map_err(|_| invalid())?;
                    let text = quick_xml::escape::unescape(raw).map_err(|_| invalid())?;
                    out.push((kind.clone(), text.trim().to_string()));
                }
            }
            Event::End(_) => current = None,
            Event::Eof => break,
            _ => {}
        }
    }
    if !saw_root {
        return Err(invalid());
    }
    Ok(out)
}

fn put_block_list(world: &mut World, req: &BlobReq) -> BlobResult {
    let existing = existing_blob(world, req);
    precondition(req, existing.as_ref())?;
    check_md5(&req.headers, &req.body)?;
    let wanted = parse_block_list(&req.body)?;
    let uncommitted = match world
        .store
        .get(&blocks_key(&req.account, &req.container, &req.blob))
    {
        Some(Record::Blocks(b)) => b.blocks.clone(),
        _ => BTreeMap::new(),
    };
    let committed: BTreeMap<String, BlockRef> = existing
        .as_ref()
        .map(|b| {
            b.committed_blocks
                .iter()
                .map(|r| (r.id.clone(), r.clone()))
                .collect()
        })
        .unwrap_or_default();
    let mut blocks = Vec::new();
    for (kind, id) in wanted {
        let found = match kind.as_str() {
            "Committed" => committed.get(&id),
            "Uncommitted" => uncommitted.get(&id),
            _ => uncommitted.get(&id).or_else(|| committed.get(&id)),
        };
        match found {
            Some(b) => blocks.push(b.clone()),
            None => {
                return Err((
                    StatusCode::BAD_REQUEST,
                    "InvalidBlockList",
                    format!("The specified block list is invalid: block '{id}' was not found."),
                ));
            }
        }
    }
    let mut data = Vec::with_capacity(blocks.iter().map(|b| b.size as usize).sum());
    for b in &blocks {
        data.extend_from_slice(&world.store.get_data(&b.hash).map_err(store_err)?);
    }
    commit_blob(
        world,
        req,
        Bytes::from(data),
        Upload::BlockList,
        blocks,
        existing.map(|b| b.created),
    )
}

fn get_block_list(world: &World, req: &BlobReq) -> BlobResult {
    let existing = existing_blob(world, req);
    let mut xml =
        String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList><CommittedBlocks>");
    for b in existing.iter().flat_map(|b| b.committed_blocks.iter()) {
        xml.push_str(&format!(
            "<Block><Name>{}</Name><Size>{}</Size></Block>",
            b.id, b.size
        ));
    }
    xml.push_str("</CommittedBlocks><UncommittedBlocks>");
    if let Some(Record::Blocks(u)) =
        world
            .store
            .get(&blocks_key(&req.account, &req.container, &req.blob))
    {
        for b in u.blocks.values() {
            xml.push_str(&format!(
                "<Block><Name>{}</Name><Size>{}</Size></Block>",
                b.id, b.size
            ));
        }
    }
    xml.push_str("</UncommittedBlocks></BlockList>");
    Ok(Reply {
        status: StatusCode::OK,
        headers: Vec::new(),
        body: ReplyBody::Xml(xml),
    })
}

fn set_metadata(world: &mut World, req: &BlobReq) -> BlobResult {
    let Some(mut b) = existing_blob(world, req) else {
        return Err(blob_not_found());
    };
    precondition(req, Some(&b)).or_else(|e| {
        if e.1 == "BlobAlreadyExists" {
            Ok(())
        } else {
            Err(e)
        }
    })?;
    let now = world.now();
    let seq = world.seq();
    b.metadata = metadata_from(&req.headers);
    b.etag = etag(now, seq);
    b.last_modified = now;
    let etag_value = b.etag.clone();
    world
        .store
        .put(
            &blob_key(&req.account, &req.container, &req.blob),
            Record::Blob(b),
        )
        .map_err(store_err)?;
    Ok(Reply::empty(StatusCode::OK)
        .header("etag", etag_value)
        .header("last-modified", http_date(now))
        .header("x-ms-request-server-encrypted", "true"))
}

fn get_blob(world: &World, req: &BlobReq) -> BlobResult {
    let Some(b) = existing_blob(world, req) else {
        return Err(blob_not_found());
    };
    let mut reply = Reply::empty(StatusCode::OK)
        .header("etag", b.etag.clone())
        .header("last-modified", http_date(b.last_modified))
        .header("x-ms-creation-time", http_date(b.created))
        .header("x-ms-blob-type", "BlockBlob")
        .header("x-ms-lease-state", "available")
        .header("x-ms-lease-status", "unlocked")
        .header("x-ms-server-encrypted", "true")
        .header("accept-ranges", "bytes")
        .header("content-type", b.content_type.clone());
    for (name, v) in [
        ("content-md5", &b.content_md5),
        ("content-encoding", &b.content_encoding),
        ("content-language", &b.content_language),
        ("cache-control", &b.cache_control),
        ("content-disposition", &b.content_disposition),
    ] {
        if let Some(v) = v {
            reply = reply.header(name, v.clone());
        }
    }
    for (k, v) in &b.metadata {
        reply = with_meta(reply, k, v);
    }
    if query_get(&req.query, "comp") == Some("metadata") {
        return Ok(reply);
    }
    if req.method == Method::HEAD {
        return Ok(reply.header("content-length", b.content_length.to_string()));
    }
    let data = world.store.get_data(&b.data).map_err(store_err)?;
    let range = header(&req.headers, "x-ms-range").or_else(|| header(&req.headers, "range"));
    if let Some(r) = range.and_then(|r| r.strip_prefix("bytes=")) {
        let len = data.len() as u64;
        let (start, end) = match r.split_once('-') {
            Some((s, e)) => {
                let s: u64 = s.parse().unwrap_or(0);
                let e: u64 = if e.is_empty() {
                    len.saturating_sub(1)
                } else {
                    e.parse().unwrap_or(len.saturating_sub(1))
                };
                (s, e.min(len.saturating_sub(1)))
            }
            None => (0, len.saturating_sub(1)),
        };
        if start >= len || start > end {
            return Err((
                StatusCode::RANGE_NOT_SATISFIABLE,
                "InvalidRange",
                "The range specified is invalid for the current size of the resource.".into(),
            ));
        }
        reply.status = StatusCode::PARTIAL_CONTENT;
        reply = reply.header("content-range", format!("bytes {start}-{end}/{len}"));
        reply.body = ReplyBody::Bytes(data.slice(start as usize..=end as usize));
        return Ok(reply);
    }
    reply.body = ReplyBody::Bytes(data);
    Ok(reply)
}

fn delete_blob(world: &mut World, req: &BlobReq) -> BlobResult {
    let key = blob_key(&req.account, &req.container, &req.blob);
    if world.store.get(&key).is_none() {
        return Err(blob_not_found());
    }
    world.store.delete(&key).map_err(store_err)?;
    world
        .store
        .delete(&blocks_key(&req.account, &req.container, &req.blob))
        .map_err(store_err)?;
    Ok(Reply::empty(StatusCode::ACCEPTED))
}

fn list_blobs(world: &World, req: &BlobReq) -> Reply {
    use quick_xml::escape::escape;
    let prefix = query_get(&req.query, "prefix").unwrap_or("");
    let delimiter = query_get(&req.query, "delimiter").unwrap_or("");
    let marker = query_get(&req.query, "marker").unwrap_or("");
    let max: usize = query_get(&req.query, "maxresults")
        .and_then(|m| m.parse().ok())
        .unwrap_or(5000)
        .clamp(1, 5000);
    let include_meta =
        query_get(&req.query, "include").is_some_and(|i| i.split(',').any(|x| x == "metadata"));
    let key_prefix = format!(
        "blob:{}/{}/",
        req.account.to_ascii_lowercase(),
        req.container
    );
    let mut entries: Vec<String> = Vec::new();
    let mut seen_prefixes = std::collections::BTreeSet::new();
    let mut next_marker = String::new();
    for (k, r) in world.store.scan(&key_prefix) {
        let name = &k[key_prefix.len()..];
        if !name.starts_with(prefix) || name < marker {
            continue;
        }
        let Record::Blob(b) = r else { continue };
        if entries.len() >= max {
            next_marker = name.to_string();
            break;
        }
        if !delimiter.is_empty()
            && let Some(pos) = name[prefix.len()..].find(delimiter)
        {
            let p = &name[..prefix.len() + pos + delimiter.len()];
            if seen_prefixes.insert(p.to_string()) {
                entries.push(format!(
                    "<BlobPrefix><Name>{}</Name></BlobPrefix>",
                    escape(p)
                ));
            }
            continue;
        }
        let mut e = format!(
            "<Blob><Name>{}</Name><Properties><Creation-Time>{}</Creation-Time><Last-Modified>{}</Last-Modified><Etag>{}</Etag><Content-Length>{}</Content-Length><Content-Type>{}</Content-Type>",
            escape(name),
            http_date(b.created),
            http_date(b.last_modified),
            escape(&b.etag),
            b.content_length,
            escape(&b.content_type)
        );
        if let Some(m) = &b.content_md5 {
            e.push_str(&format!("<Content-MD5>{m}</Content-MD5>"));
        }
        e.push_str("<BlobType>BlockBlob</BlobType><AccessTier>Hot</AccessTier><AccessTierInferred>true</AccessTierInferred><LeaseStatus>unlocked</LeaseStatus><LeaseState>available</LeaseState><ServerEncrypted>true</ServerEncrypted></Properties>");
        if include_meta {
            e.push_str("<Metadata>");
            for (k, v) in &b.metadata {
                e.push_str(&format!("<{k}>{}</{k}>", escape(v)));
            }
            e.push_str("</Metadata>");
        }
        e.push_str("</Blob>");
        entries.push(e);
    }
    let endpoint = if req.path_style {
        format!("{}/{}/", req.endpoint, req.account)
    } else {
        format!("{}/", req.endpoint)
    };
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><EnumerationResults ServiceEndpoint=\"{}\" ContainerName=\"{}\"><Prefix>{}</Prefix><Marker>{}</Marker><MaxResults>{max}</MaxResults><Delimiter>{}</Delimiter><Blobs>{}</Blobs><NextMarker>{}</NextMarker></EnumerationResults>",
        escape(&endpoint),
        escape(&req.container),
        escape(prefix),
        escape(marker),
        escape(delimiter),
        entries.join(""),
        escape(&next_marker)
    );
    Reply {
        status: StatusCode::OK,
        headers: Vec::new(),
        body: ReplyBody::Xml(xml),
    }
}
