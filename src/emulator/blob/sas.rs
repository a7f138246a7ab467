//! Storage authorization: SharedKey request signatures and SAS tokens (service SAS for
//! containers and blobs, account SAS), both checked with HMAC-SHA256 over the account key.

use axum::http::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{KeyInit, Mac};
use sha2::Sha256;
use time::OffsetDateTime;
use time::macros::format_description;

use crate::emulator::util::parse_rfc3339;

type HmacSha256 = hmac::Hmac<Sha256>;

/// The SAS version the emulator signs with.
pub(crate) const SAS_VERSION: &str = "2023-11-03";

pub(crate) fn hmac_b64(key_b64: &str, text: &str) -> Option<String> {
    let key = STANDARD.decode(key_b64).ok()?;
    let mut mac = HmacSha256::new_from_slice(&key).ok()?;
    mac.update(text.as_bytes());
    Some(STANDARD.encode(mac.finalize().into_bytes()))
}

pub(crate) fn sas_time(t: OffsetDateTime) -> String {
    t.format(format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
    ))
    .unwrap_or_default()
}

/// A service SAS for a whole container (`sr=c`), as `startPendingUpload` hands out.
pub(crate) fn container_sas(
    account: &str,
    key_b64: &str,
    container: &str,
    permissions: &str,
    start: OffsetDateTime,
    expiry: OffsetDateTime,
) -> String {
    service_sas(
        account,
        key_b64,
        container,
        None,
        permissions,
        start,
        expiry,
    )
}

/// A service SAS for one blob (`sr=b`), as run history hands out for log files.
pub(crate) fn blob_sas(
    account: &str,
    key_b64: &str,
    container: &str,
    blob: &str,
    permissions: &str,
    start: OffsetDateTime,
    expiry: OffsetDateTime,
) -> String {
    service_sas(
        account,
        key_b64,
        container,
        Some(blob),
        permissions,
        start,
        expiry,
    )
}

fn service_sas(
    account: &str,
    key_b64: &str,
    container: &str,
    blob: Option<&str>,
    permissions: &str,
    start: OffsetDateTime,
    expiry: OffsetDateTime,
) -> String {
    let st = sas_time(start);
    let se = sas_time(expiry);
    let (resource, sr) = match blob {
        Some(b) => (format!("/blob/{account}/{container}/{b}"), "b"),
        None => (format!("/blob/{account}/{container}"), "c"),
    };
    let string_to_sign = [
        permissions,
        &st,
        &se,
        &resource,
        "",
        "",
        "https,http",
        SAS_VERSION,
        sr,
        "",
        "",
        "",
        "",
        "",
        "",
        "",
    ]
    .join("\n");
    let sig = hmac_b64(key_b64, &string_to_sign).unwrap_or_default();
    let enc = |s: &str| crate::emulator::util::encode_query_value(s);
    format!(
        "sv={SAS_VERSION}&st={}&se={}&sr={sr}&sp={permissions}&spr=https%2Chttp&sig={}",
        enc(&st),
        enc(&se),
        enc(&sig)
    )
}

/// Why a request was refused; mapped to Storage error codes by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AuthFailure {
    /// Signature mismatch or malformed credentials (403 AuthenticationFailed).
    Signature(String),
    /// SAS outside its validity window (403 AuthenticationFailed).
    Expired(String),
    /// SAS lacks the permission or scope (403 AuthorizationPermissionMismatch /
    /// AuthorizationResourceTypeMismatch).
    Permission(String),
    /// SAS only allows https (403 AuthorizationProtocolMismatch).
    Protocol,
}

/// Everything about the request that signatures cover.
pub(crate) struct Signed<'a> {
    pub method: &'a str,
    pub account: &'a str,
    /// Raw (encoded) URL path as sent, including the account segment when path-style.
    pub raw_path: &'a str,
    pub path_style: bool,
    pub query: &'a [(String, String)],
    pub headers: &'a HeaderMap,
    pub container: &'a str,
    pub blob: &'a str,
    pub scheme: &'a str,
    pub now: OffsetDateTime,
    /// Permission letter the operation needs (r, w, c, d, l, a).
    pub needs: char,
    /// Alternative letter that also suffices (e.g. c for a new blob), if any.
    pub or_needs: Option<char>,
    /// True for container-level operations (list, container properties).
    pub container_level: bool,
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// Checks `Authorization: SharedKey account:signature`.
pub(crate) fn check_shared_key(
    s: &Signed<'_>,
    auth: &str,
    key_b64: &str,
) -> Result<(), AuthFailure> {
    let Some(rest) = auth.strip_prefix("SharedKey ") else {
        return Err(AuthFailure::Signature(
            "The Authorization header is not SharedKey.".into(),
        ));
    };
    let Some((account, sig)) = rest.split_once(':') else {
        return Err(AuthFailure::Signature(
            "The Authorization header is malformed.".into(),
        ));
    };
    if !account.eq_ignore_ascii_case(s.account) {
        return Err(AuthFailure::Signature(format!(
            "The account '{account}' in the Authorization header does not match the request's account '{}'.",
            s.account
        )));
    }
    let h = |n: &str| header(s.headers, n);
    let content_length = match h("content-length") {
        "0" => "",
        v => v,
    };
    let mut ms: Vec<(String, String)> = s
        .headers
        .iter()
        .filter(|(k, _)| k.as_str().starts_with("x-ms-"))
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                v.to_str().unwrap_or("").trim().to_string(),
            )
        })
        .collect();
    ms.sort();
    let canonical_headers: String = ms.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let mut params: Vec<(String, String)> = s
        .query
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
        .collect();
    params.sort();
    let mut merged: Vec<(String, Vec<String>)> = Vec::new();
    for (k, v) in params {
        match merged.last_mut() {
            Some((lk, vals)) if *lk == k => vals.push(v),
            _ => merged.push((k, vec![v])),
        }
    }
    let canonical_query: String = merged
        .iter()
        .map(|(k, vals)| format!("\n{k}:{}", vals.join(",")))
        .collect();
    let mut candidates = vec![format!("/{}{}", s.account, s.raw_path)];
    if s.path_style {
        // Clients differ on whether the account segment of a path-style URL is signed.
        let without = s
            .raw_path
            .strip_prefix(&format!("/{}", s.account))
            .unwrap_or(s.raw_path);
        let without = if without.is_empty() { "/" } else { without };
        candidates.push(format!("/{}{}", s.account, without));
    }
    let mut tried = String::new();
    for resource in candidates {
        let string_to_sign = format!(
            "{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}{}{}",
            s.method,
            h("content-encoding"),
            h("content-language"),
            content_length,
            h("content-md5"),
            h("content-type"),
            h("date"),
            h("if-modified-since"),
            h("if-match"),
            h("if-none-match"),
            h("if-unmodified-since"),
            h("range"),
            canonical_headers,
            resource,
            canonical_query
        );
        if hmac_b64(key_b64, &string_to_sign).as_deref() == Some(sig) {
            return Ok(());
        }
        if tried.is_empty() {
            tried = string_to_sign;
        }
    }
    Err(AuthFailure::Signature(format!(
        "The MAC signature found in the HTTP request '{sig}' is not the same as any computed signature. Server used following string to sign: '{}'.",
        tried.replace('\n', "\\n")
    )))
}

fn q<'a>(query: &'a [(String, String)], name: &str) -> &'a str {
    query
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

fn parse_sas_time(s: &str) -> Option<OffsetDateTime> {
    parse_rfc3339(s).or_else(|| {
        let d = time::Date::parse(s, format_description!("[year]-[month]-[day]")).ok()?;
        Some(d.midnight().assume_utc())
    })
}

/// Checks a SAS in the query string (service SAS with `sr`, or account SAS with `ss`).
pub(crate) fn check_sas(s: &Signed<'_>, key_b64: &str) -> Result<(), AuthFailure> {
    let query = s.query;
    let sv = q(query, "sv");
    let sp = q(query, "sp");
    let st = q(query, "st");
    let se = q(query, "se");
    let sip = q(query, "sip");
    let spr = q(query, "spr");
    let sig = q(query, "sig");
    let account_sas = !q(query, "ss").is_empty();
    let string_to_sign = if account_sas {
        let mut parts = vec![
            s.account.to_string(),
            sp.into(),
            q(query, "ss").into(),
            q(query, "srt").into(),
            st.into(),
            se.into(),
            sip.into(),
            spr.into(),
            sv.into(),
        ];
        if sv >= "2020-12-06" {
            parts.push(q(query, "ses").into());
        }
        parts.join("\n") + "\n"
    } else {
        let sr = q(query, "sr");
        let resource = match sr {
            "c" => format!("/blob/{}/{}", s.account, s.container),
            "b" | "bs" | "bv" => format!("/blob/{}/{}/{}", s.account, s.container, s.blob),
            _ => {
                return Err(AuthFailure::Signature(format!(
                    "Unsupported signed resource '{sr}'."
                )));
            }
        };
        let mut parts: Vec<&str> = vec![sp, st, se, &resource, q(query, "si"), sip, spr, sv];
        if sv >= "2018-11-09" {
            parts.push(sr);
            parts.push(q(query, "snapshot"));
        }
        if sv >= "2020-12-06" {
            parts.push(q(query, "ses"));
        }
        for k in ["rscc", "rscd", "rsce", "rscl", "rsct"] {
            parts.push(q(query, k));
        }
        parts.join("\n")
    };
    if hmac_b64(key_b64, &string_to_sign).as_deref() != Some(sig) {
        return Err(AuthFailure::Signature(format!(
            "Signature did not match. String to sign used was {}",
            string_to_sign.replace('\n', "\\n")
        )));
    }
    let now = s.now;
    match parse_sas_time(se) {
        Some(t) if t > now => {}
        Some(_) => {
            return Err(AuthFailure::Expired(format!(
                "Signed expiry time [{se}] must be after the current time."
            )));
        }
        None => {
            return Err(AuthFailure::Signature(format!(
                "The signed expiry '{se}' is not a valid time."
            )));
        }
    }
    // Azure Storage allows no clock skew: a SAS is valid from `st` on, inclusive.
    if !st.is_empty() {
        match parse_sas_time(st) {
            Some(t) if t <= now => {}
            Some(_) => {
                return Err(AuthFailure::Expired(format!(
                    "Signed start time [{st}] must be before or at the current time."
                )));
            }
            None => {
                return Err(AuthFailure::Signature(format!(
                    "The signed start '{st}' is not a valid time."
                )));
            }
        }
    }
    if spr == "https" && s.scheme != "https" {
        return Err(AuthFailure::Protocol);
    }
    let allowed = sp.contains(s.needs) || s.or_needs.is_some_and(|c| sp.contains(c));
    if !allowed {
        return Err(AuthFailure::Permission(format!(
            "This request is not authorized to perform this operation using this permission (needs '{}', SAS grants '{sp}').",
            s.needs
        )));
    }
    if !account_sas && q(query, "sr").starts_with('b') {
        let signed_blob = s.blob;
        if s.container_level || signed_blob.is_empty() {
            return Err(AuthFailure::Permission(
                "A blob SAS cannot authorize a container-level operation.".into(),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str =
        "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

    fn signed<'a>(
        query: &'a [(String, String)],
        headers: &'a HeaderMap,
        needs: char,
    ) -> Signed<'a> {
        Signed {
            method: "PUT",
            account: "acct",
            raw_path: "/c/b.txt",
            path_style: false,
            query,
            headers,
            container: "c",
            blob: "b.txt",
            scheme: "http",
            now: time::macros::datetime!(2030-01-01 00:00:00 UTC),
            needs,
            or_needs: None,
            container_level: false,
        }
    }

    /// The query string of a SAS for container `c` of `acct`, signed with `KEY`.
    fn sas_query(
        permissions: &str,
        start: OffsetDateTime,
        expiry: OffsetDateTime,
    ) -> Vec<(String, String)> {
        let sas = container_sas("acct", KEY, "c", permissions, start, expiry);
        crate::emulator::util::parse_query(Some(&sas))
    }

    #[test]
    fn generated_container_sas_verifies() {
        let now = time::macros::datetime!(2030-01-01 00:00:00 UTC);
        let query = sas_query(
            "racwdl",
            now - time::Duration::hours(1),
            now + time::Duration::hours(1),
        );
        let headers = HeaderMap::new();
        assert_eq!(check_sas(&signed(&query, &headers, 'w'), KEY), Ok(()));
        // Wrong key: refused.
        let other = "AAAA".repeat(22);
        assert!(matches!(
            check_sas(&signed(&query, &headers, 'w'), &other),
            Err(AuthFailure::Signature(_))
        ));
        // Tampered permissions: refused.
        let tampered: Vec<(String, String)> = query
            .iter()
            .map(|(k, v)| {
                if k == "sp" {
                    (k.clone(), "racwdlx".into())
                } else {
                    (k.clone(), v.clone())
                }
            })
            .collect();
        assert!(check_sas(&signed(&tampered, &headers, 'w'), KEY).is_err());
    }

    #[test]
    fn expired_and_missing_permission() {
        let now = time::macros::datetime!(2030-01-01 00:00:00 UTC);
        let query = sas_query(
            "r",
            now - time::Duration::hours(2),
            now - time::Duration::hours(1),
        );
        let headers = HeaderMap::new();
        assert!(matches!(
            check_sas(&signed(&query, &headers, 'r'), KEY),
            Err(AuthFailure::Expired(_))
        ));
        let query = sas_query(
            "r",
            now - time::Duration::hours(1),
            now + time::Duration::hours(1),
        );
        assert!(matches!(
            check_sas(&signed(&query, &headers, 'w'), KEY),
            Err(AuthFailure::Permission(_))
        ));
    }

    const NOW: OffsetDateTime = time::macros::datetime!(2030-01-01 00:00:00 UTC);

    /// A service SAS query for blob `c/b.txt` (or container `c`) with the times as given
    /// (strings, so malformed and date-only forms can be signed too).
    fn signed_query(sr: &str, sp: &str, st: &str, se: &str, spr: &str) -> Vec<(String, String)> {
        let resource = match sr {
            "c" => "/blob/acct/c".to_string(),
            _ => "/blob/acct/c/b.txt".to_string(),
        };
        let string_to_sign = [
            sp,
            st,
            se,
            &resource,
            "",
            "",
            spr,
            SAS_VERSION,
            sr,
            "",
            "",
            "",
            "",
            "",
            "",
            "",
        ]
        .join("\n");
        let sig = hmac_b64(KEY, &string_to_sign).unwrap();
        let mut q = vec![
            ("sv".to_string(), SAS_VERSION.to_string()),
            ("sr".to_string(), sr.to_string()),
            ("sp".to_string(), sp.to_string()),
            ("sig".to_string(), sig),
        ];
        for (k, v) in [("st", st), ("se", se), ("spr", spr)] {
            if !v.is_empty() {
                q.push((k.to_string(), v.to_string()));
            }
        }
        q
    }

    fn check_at(query: &[(String, String)], needs: char) -> Result<(), AuthFailure> {
        let headers = HeaderMap::new();
        check_sas(&signed(query, &headers, needs), KEY)
    }

    fn t(at: OffsetDateTime) -> String {
        sas_time(at)
    }

    #[test]
    fn start_time_edges() {
        let hour = time::Duration::hours(1);
        let second = time::Duration::seconds(1);
        let se = t(NOW + hour);
        // (st, accepted?)
        let cases = [
            (t(NOW - hour), true),
            (t(NOW - second), true),
            (t(NOW), true),
            ("2030-01-01".to_string(), true),
            (t(NOW + second), false),
            (t(NOW + time::Duration::minutes(10)), false),
            (t(NOW + hour), false),
            ("2030-01-02".to_string(), false),
        ];
        for (st, ok) in cases {
            let got = check_at(&signed_query("c", "r", &st, &se, ""), 'r');
            if ok {
                assert_eq!(got, Ok(()), "st {st}");
            } else {
                assert!(
                    matches!(got, Err(AuthFailure::Expired(_))),
                    "st {st}: {got:?}"
                );
            }
        }
        // No st: valid from the start.
        assert_eq!(check_at(&signed_query("c", "r", "", &se, ""), 'r'), Ok(()));
        // A malformed st is refused, not ignored.
        assert!(matches!(
            check_at(&signed_query("c", "r", "soon", &se, ""), 'r'),
            Err(AuthFailure::Signature(_))
        ));
    }

    #[test]
    fn expiry_edges() {
        let second = time::Duration::seconds(1);
        let st = t(NOW - time::Duration::hours(1));
        let cases = [
            (t(NOW + second), true),
            (t(NOW + time::Duration::days(7)), true),
            ("2030-01-02".to_string(), true),
            (t(NOW), false),
            ("2030-01-01".to_string(), false),
            (t(NOW - second), false),
        ];
        for (se, ok) in cases {
            let got = check_at(&signed_query("c", "r", &st, &se, ""), 'r');
            if ok {
                assert_eq!(got, Ok(()), "se {se}");
            } else {
                assert!(
                    matches!(got, Err(AuthFailure::Expired(_))),
                    "se {se}: {got:?}"
                );
            }
        }
        // Missing or malformed se: refused as a malformed SAS.
        for se in ["", "tomorrow"] {
            assert!(matches!(
                check_at(&signed_query("c", "r", &st, se, ""), 'r'),
                Err(AuthFailure::Signature(_))
            ));
        }
    }

    #[test]
    fn protocol_permissions_and_scope() {
        let st = t(NOW - time::Duration::hours(1));
        let se = t(NOW + time::Duration::hours(1));
        let headers = HeaderMap::new();
        // spr=https over http: refused; over https: accepted; https,http over http: accepted.
        let https_only = signed_query("c", "r", &st, &se, "https");
        assert_eq!(check_at(&https_only, 'r'), Err(AuthFailure::Protocol));
        let mut s = signed(&https_only, &headers, 'r');
        s.scheme = "https";
        assert_eq!(check_sas(&s, KEY), Ok(()));
        assert_eq!(
            check_at(&signed_query("c", "r", &st, &se, "https,http"), 'r'),
            Ok(())
        );
        // The alternative letter suffices (c for a new blob), and only it.
        let create_only = signed_query("c", "c", &st, &se, "");
        let mut s = signed(&create_only, &headers, 'w');
        assert!(matches!(
            check_sas(&s, KEY),
            Err(AuthFailure::Permission(_))
        ));
        s.or_needs = Some('c');
        assert_eq!(check_sas(&s, KEY), Ok(()));
        s.or_needs = Some('d');
        assert!(matches!(
            check_sas(&s, KEY),
            Err(AuthFailure::Permission(_))
        ));
        // A blob SAS authorizes its blob, not a container-level operation or another blob.
        let blob = signed_query("b", "rl", &st, &se, "");
        assert_eq!(check_at(&blob, 'r'), Ok(()));
        let mut s = signed(&blob, &headers, 'l');
        s.container_level = true;
        assert!(matches!(
            check_sas(&s, KEY),
            Err(AuthFailure::Permission(_))
        ));
        let mut s = signed(&blob, &headers, 'r');
        s.blob = "other.txt";
        assert!(matches!(check_sas(&s, KEY), Err(AuthFailure::Signature(_))));
        // A container SAS covers container-level operations.
        let container = signed_query("c", "l", &st, &se, "");
        let mut s = signed(&container, &headers, 'l');
        s.container_level = true;
        assert_eq!(check_sas(&s, KEY), Ok(()));
        // An unknown signed resource is refused.
        assert!(matches!(
            check_at(&signed_query("x", "r", &st, &se, ""), 'r'),
            Err(AuthFailure::Signature(_))
        ));
    }

    #[test]
    fn generated_blob_sas_verifies_for_its_blob_only() {
        let sas = blob_sas(
            "acct",
            KEY,
            "c",
            "b.txt",
            "r",
            NOW - time::Duration::minutes(1),
            NOW + time::Duration::hours(1),
        );
        let query = crate::emulator::util::parse_query(Some(&sas));
        assert_eq!(check_at(&query, 'r'), Ok(()));
        assert!(matches!(
            check_at(&query, 'w'),
            Err(AuthFailure::Permission(_))
        ));
        let headers = HeaderMap::new();
        let mut s = signed(&query, &headers, 'r');
        s.blob = "other.txt";
        assert!(matches!(check_sas(&s, KEY), Err(AuthFailure::Signature(_))));
    }

    /// `Authorization: SharedKey acct:…` over `string_to_sign`, written out independently of
    /// the code under test.
    fn shared_key(string_to_sign: &str) -> String {
        format!("SharedKey acct:{}", hmac_b64(KEY, string_to_sign).unwrap())
    }

    fn put_headers() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("content-type", "text/plain".parse().unwrap());
        h.insert("content-length", "0".parse().unwrap());
        h.insert("x-ms-version", "2025-01-05".parse().unwrap());
        h.insert(
            "x-ms-date",
            "Tue, 01 Jan 2030 00:00:00 GMT".parse().unwrap(),
        );
        h.insert("x-ms-meta-Owner", " team ".parse().unwrap());
        h
    }

    #[test]
    fn shared_key_signature_covers_method_headers_path_and_query() {
        let headers = put_headers();
        let query = vec![
            ("include".to_string(), "snapshots".to_string()),
            ("comp".to_string(), "list".to_string()),
            ("include".to_string(), "metadata".to_string()),
        ];
        let s = signed(&query, &headers, 'w');
        // content-length 0 signs as empty; x-ms-* sorted, lower-cased, values trimmed;
        // repeated query keys joined by commas in order of appearance after sorting.
        let string_to_sign = "PUT\n\n\n\n\ntext/plain\n\n\n\n\n\n\nx-ms-date:Tue, 01 Jan 2030 00:00:00 GMT\nx-ms-meta-owner:team\nx-ms-version:2025-01-05\n/acct/c/b.txt\ncomp:list\ninclude:metadata,snapshots";
        assert_eq!(
            check_shared_key(&s, &shared_key(string_to_sign), KEY),
            Ok(())
        );
        // Any other string to sign is refused.
        for other in [
            string_to_sign.replace("PUT", "GET"),
            string_to_sign.replace("text/plain", ""),
            string_to_sign.replace("include:metadata,snapshots", "include:snapshots,metadata"),
            string_to_sign.replace(
                "\ninclude:metadata,snapshots",
                "\ninclude:metadata\ninclude:snapshots",
            ),
        ] {
            assert!(matches!(
                check_shared_key(&s, &shared_key(&other), KEY),
                Err(AuthFailure::Signature(_))
            ));
        }
        // The account in the header must be the request's (in any case).
        let sig = hmac_b64(KEY, string_to_sign).unwrap();
        assert_eq!(
            check_shared_key(&s, &format!("SharedKey ACCT:{sig}"), KEY),
            Ok(())
        );
        assert!(matches!(
            check_shared_key(&s, &format!("SharedKey other:{sig}"), KEY),
            Err(AuthFailure::Signature(m)) if m.contains("'other'")
        ));
        for malformed in [format!("SharedKey acct{sig}"), format!("Bearer acct:{sig}")] {
            assert!(matches!(
                check_shared_key(&s, &malformed, KEY),
                Err(AuthFailure::Signature(_))
            ));
        }
    }

    #[test]
    fn shared_key_path_style_signs_with_or_without_the_account_segment() {
        let headers = HeaderMap::new();
        let query = Vec::new();
        let mut s = signed(&query, &headers, 'r');
        s.method = "GET";
        s.path_style = true;
        s.raw_path = "/acct/c/b.txt";
        let prefix = "GET\n\n\n\n\n\n\n\n\n\n\n\n";
        for resource in ["/acct/acct/c/b.txt", "/acct/c/b.txt"] {
            let auth = shared_key(&format!("{prefix}{resource}"));
            assert_eq!(check_shared_key(&s, &auth, KEY), Ok(()), "{resource}");
        }
        // Virtual-host style: only the path as sent.
        s.path_style = false;
        s.raw_path = "/c/b.txt";
        let auth = shared_key(&format!("{prefix}/acct/c/b.txt"));
        assert_eq!(check_shared_key(&s, &auth, KEY), Ok(()));
        let auth = shared_key(&format!("{prefix}/acct/b.txt"));
        assert!(check_shared_key(&s, &auth, KEY).is_err());
    }

    /// An account SAS (`ss`), signed as Azure signs it for version `sv`.
    fn account_query(sv: &str, sp: &str, with_ses_field: bool) -> Vec<(String, String)> {
        let st = t(NOW - time::Duration::hours(1));
        let se = t(NOW + time::Duration::hours(1));
        let mut parts = vec!["acct", sp, "b", "sco", &st, &se, "", "", sv];
        if with_ses_field {
            parts.push("");
        }
        let sig = hmac_b64(KEY, &(parts.join("\n") + "\n")).unwrap();
        [
            ("sv", sv),
            ("ss", "b"),
            ("srt", "sco"),
            ("sp", sp),
            ("st", &st),
            ("se", &se),
            ("sig", &sig),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    #[test]
    fn account_sas_string_to_sign_depends_on_version() {
        // From 2020-12-06 on the string to sign has the encryption scope field.
        assert_eq!(
            check_at(&account_query("2023-11-03", "rl", true), 'r'),
            Ok(())
        );
        assert_eq!(
            check_at(&account_query("2020-12-06", "rl", true), 'r'),
            Ok(())
        );
        assert!(matches!(
            check_at(&account_query("2023-11-03", "rl", false), 'r'),
            Err(AuthFailure::Signature(_))
        ));
        assert_eq!(
            check_at(&account_query("2019-12-12", "rl", false), 'r'),
            Ok(())
        );
        assert!(matches!(
            check_at(&account_query("2019-12-12", "rl", true), 'r'),
            Err(AuthFailure::Signature(_))
        ));
        // Its permissions still apply; an account SAS may list a container.
        assert!(matches!(
            check_at(&account_query("2023-11-03", "l", true), 'r'),
            Err(AuthFailure::Permission(_))
        ));
        let query = account_query("2023-11-03", "l", true);
        let headers = HeaderMap::new();
        let mut s = signed(&query, &headers, 'l');
        s.container_level = true;
        assert_eq!(check_sas(&s, KEY), Ok(()));
    }
}
