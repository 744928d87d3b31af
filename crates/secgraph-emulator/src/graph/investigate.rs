//! What an analyst asks after an alert: Defender Threat Intelligence (`/security/threatIntelligence/…`: hosts and
//! their reputation, whois, passive DNS and certificates; articles and their indicators; intel profiles;
//! vulnerabilities), the unified audit log (`/security/auditLog/queries`: an asynchronous search that runs for a few
//! seconds of the emulator's clock, then pages its records) and Defender for Identity (`/security/identities/…`:
//! health issues, sensors, accounts and `invokeAction`).
//!
//! The data agrees with the alerts: TI knows the remote addresses and URL hosts that alerts' evidence names (some
//! malicious, some suspicious, some benign, some unknown — 404 as the service answers for a host it has never
//! seen) and articles that cite them; the audit log holds the seeded stories' cloud activity (the inbox rule, the
//! mass download, the consent grant); identity accounts are the tenant's users. TI knowledge is the same for every
//! tenant (it is Microsoft's, not the tenant's); a tenant without a TI licence gets 403.

use crate::data::graph_time;
use crate::reply::{ErrorReply, authorize, json_response, parse_body};
use crate::state::{AppState, RequestId};
use axum::{
    Extension, Router,
    body::Bytes,
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode},
    response::Response,
    routing::{get, post},
};
use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value, json};
use sha2::Digest;
use std::collections::HashMap;
use std::sync::Arc;

/// The routes of this module.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/{version}/security/threatIntelligence/hosts/{id}", get(ti_host))
        .route("/{version}/security/threatIntelligence/hosts/{id}/{what}", get(ti_host_part))
        .route("/{version}/security/threatIntelligence/articles", get(ti_articles))
        .route("/{version}/security/threatIntelligence/articles/{id}", get(ti_article))
        .route(
            "/{version}/security/threatIntelligence/articles/{id}/indicators",
            get(ti_article_indicators),
        )
        .route("/{version}/security/threatIntelligence/intelProfiles", get(ti_profiles))
        .route("/{version}/security/threatIntelligence/vulnerabilities/{id}", get(ti_vulnerability))
        .route("/{version}/security/auditLog/queries", get(audit_list).post(audit_create))
        .route("/{version}/security/auditLog/queries/{id}", get(audit_get))
        .route("/{version}/security/auditLog/queries/{id}/records", get(audit_records))
        .route("/{version}/security/identities/healthIssues", get(identity_health))
        .route("/{version}/security/identities/sensors", get(identity_sensors))
        .route("/{version}/security/identities/identityAccounts", get(identity_accounts))
        .route("/{version}/security/identities/identityAccounts/{id}", get(identity_account))
        .route(
            "/{version}/security/identities/identityAccounts/{id}/invokeAction",
            post(identity_action),
        )
}

type Reply = Result<Response, ErrorReply>;

fn done(r: Reply, rid: &RequestId) -> Response {
    r.unwrap_or_else(|e| e.respond(rid))
}

fn collection(st: &AppState, version: &str, what: &str, value: Vec<Value>) -> Response {
    json_response(
        StatusCode::OK,
        &json!({"@odata.context": format!("{}/{version}/$metadata#{what}", st.base_url), "value": value}),
    )
}

// ---- threat intelligence ------------------------------------------------------------------------------------

/// A number from 0 to 99 for `text`, the same in every run.
fn pick(text: &str) -> u8 {
    sha2::Sha256::digest(text.as_bytes())[0] % 100
}

fn is_ip(s: &str) -> bool {
    s.parse::<std::net::IpAddr>().is_ok()
}

/// What TI knows of a host: its classification, or `None` for a host it has never seen.
fn classify(host: &str) -> Option<&'static str> {
    let h = host.to_ascii_lowercase();
    if h.contains("example-phish") || h.contains("example-c2") || h == "203.0.113.77" || h == "203.0.113.99" {
        return Some("malicious");
    }
    if h.contains("example-cdn") || h.contains("example-mailbox") {
        return Some("suspicious");
    }
    if h.starts_with("198.51.100.") || h == "bit.example" || h.ends_with("contoso.sharepoint.example") {
        return Some("neutral");
    }
    if let Some(last) = h.strip_prefix("203.0.113.").and_then(|n| n.parse::<u32>().ok()) {
        return match last % 3 {
            0 => Some("malicious"),
            1 => Some("suspicious"),
            _ => None,
        };
    }
    None
}

fn ti_gate(st: &AppState, headers: &HeaderMap, version: &str) -> Result<(), ErrorReply> {
    super::check_version(version)?;
    let claims = authorize(st, headers, &["ThreatIntelligence.Read.All"])?;
    let licensed = st.directory.tenant(&claims.tid).is_none_or(|t| t.threat_intel);
    if !licensed {
        return Err(ErrorReply::new(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "The tenant does not have a Microsoft Defender Threat Intelligence license; the threat intelligence APIs require one.",
        ));
    }
    crate::graph::admit(st, &claims)
}

/// First and last seen: a fixed point in the past for the host, and the emulator's now.
fn seen(st: &AppState, host: &str) -> (String, String) {
    let now = st.clock.now();
    (
        graph_time(now - Duration::days(30 + i64::from(pick(host)) * 7)),
        graph_time(now - Duration::hours(i64::from(pick(host) % 48))),
    )
}

fn host_entity(st: &AppState, id: &str) -> Value {
    let (first, last) = seen(st, id);
    let kind = if is_ip(id) { "ipAddress" } else { "hostname" };
    json!({"@odata.type": format!("#microsoft.graph.security.{kind}"), "id": id, "firstSeenDateTime": first, "lastSeenDateTime": last})
}

async fn ti_host(
    State(st): State<Arc<AppState>>,
    Extension(rid): Extension<RequestId>,
    Path((version, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let r = (|| -> Reply {
        ti_gate(&st, &headers, &version)?;
        classify(&id).ok_or_else(|| ErrorReply::not_found(&format!("Host '{id}'")))?;
        Ok(json_response(StatusCode::OK, &host_entity(&st, &id)))
    })();
    done(r, &rid)
}

fn reputation(id: &str, class: &str) -> Value {
    let score = match class {
        "malicious" => 90 + pick(id) % 10,
        "suspicious" => 50 + pick(id) % 30,
        _ => pick(id) % 20,
    };
    let rules: Vec<Value> = match class {
        "malicious" => vec![
            json!({"name": "Known C2 or phishing infrastructure", "description": "Cited by Microsoft threat intelligence reporting.", "severity": "high", "relatedDetailsUrl": null}),
            json!({"name": "Recently registered", "description": "Registered or first seen in the last 90 days.", "severity": "medium", "relatedDetailsUrl": null}),
        ],
        "suspicious" => vec![
            json!({"name": "Hosting with a poor reputation", "description": "Shares hosting with known-bad sites.", "severity": "medium", "relatedDetailsUrl": null}),
        ],
        _ => vec![],
    };
    json!({"id": id, "classification": class, "score": score, "rules": rules})
}

async fn ti_host_part(
    State(st): State<Arc<AppState>>,
    Extension(rid): Extension<RequestId>,
    Path((version, id, what)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let r = (|| -> Reply {
        ti_gate(&st, &headers, &version)?;
        let class = classify(&id).ok_or_else(|| ErrorReply::not_found(&format!("Host '{id}'")))?;
        let (first, last) = seen(&st, &id);
        let body = match what.as_str() {
            "reputation" => reputation(&id, class),
            "whois" => json!({
                "id": format!("whois-{id}"), "domainStatus": "clientTransferProhibited", "firstSeenDateTime": first,
                "lastSeenDateTime": last, "lastUpdateDateTime": last, "expirationDateTime": graph_time(st.clock.now() + Duration::days(200)),
                "registrar": {"name": if class == "malicious" { "Example Bulletproof Registrar" } else { "Example Registrar Inc." }},
                "registrant": {"name": "REDACTED FOR PRIVACY", "organization": null, "countryOrRegion": if class == "malicious" { "RU" } else { "US" }},
                "nameservers": [{"firstSeenDateTime": first, "lastSeenDateTime": last, "host": {"id": format!("ns1.{}", id.split('.').skip(1).collect::<Vec<_>>().join("."))}}],
                "host": {"id": id},
            }),
            "passiveDns" => {
                let value: Vec<Value> = (0..3u8)
                    .map(|k| {
                        let ip = if is_ip(&id) { format!("resolver-{k}.example") } else { format!("203.0.113.{}", 5 + (pick(&id) + k) % 200) };
                        json!({"id": format!("pdns-{id}-{k}"), "collectedDateTime": last, "firstSeenDateTime": first, "lastSeenDateTime": last,
                            "recordType": "A", "artifact": {"@odata.type": if is_ip(&id) { "#microsoft.graph.security.hostname" } else { "#microsoft.graph.security.ipAddress" }, "id": ip},
                            "parentHost": {"id": id}})
                    })
                    .collect();
                return Ok(collection(&st, &version, "security/threatIntelligence/passiveDnsRecords", value));
            }
            "sslCertificates" => {
                let sha1 = hex::encode_short(&sha2::Sha256::digest(format!("cert/{id}").as_bytes())[..20]);
                let value = vec![
                    json!({"id": format!("{id}-{}", &sha1[..8]), "firstSeenDateTime": first, "lastSeenDateTime": last,
                    "sslCertificate": {"id": sha1, "sha1": sha1, "issueDateTime": first, "expirationDateTime": graph_time(st.clock.now() + Duration::days(60)),
                        "issuer": {"commonName": "R3 Example CA"}, "subject": {"commonName": id}},
                    "host": {"id": id}}),
                ];
                return Ok(collection(&st, &version, "security/threatIntelligence/hostSslCertificates", value));
            }
            other => return Err(ErrorReply::not_found(&format!("Relationship '{other}' of host '{id}'"))),
        };
        Ok(json_response(StatusCode::OK, &body))
    })();
    done(r, &rid)
}

/// A tiny hex encoder (sha2 digests only).
mod hex {
    pub fn encode_short(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }
}

/// The articles TI publishes: (id, title, summary, indicators).
fn articles(st: &AppState) -> Vec<(Value, Vec<String>)> {
    let now = st.clock.now();
    let specs: [(&str, &str, &str, &[&str]); 5] = [
        (
            "a1b2c3d4",
            "Phishing kit impersonating Microsoft sign-in pages",
            "A credential phishing campaign hosts look-alike sign-in pages and forwards mail with inbox rules.",
            &["login-microsoftonline.example-phish.net", "203.0.113.99", "example-mailbox.net"],
        ),
        (
            "b2c3d4e5",
            "Commodity loader beaconing over HTTPS",
            "A loader downloads a PowerShell stage and beacons to a command-and-control server every 60 seconds.",
            &["update-check.example-c2.net", "203.0.113.77", "203.0.113.5"],
        ),
        (
            "c3d4e5f6",
            "Password spraying from rotating residential proxies",
            "Low-and-slow password spraying against cloud identities from many addresses.",
            &["203.0.113.16", "203.0.113.27", "203.0.113.38", "203.0.113.49"],
        ),
        (
            "d4e5f6a7",
            "Consent phishing for mail access",
            "Users are lured into granting a mail-reading app broad permissions.",
            &["203.0.113.99"],
        ),
        (
            "e5f6a7b8",
            "Vulnerability roundup: edge devices",
            "Exploited vulnerabilities in VPN and firewall appliances this month.",
            &["CVE-2024-21762", "CVE-2023-46805"],
        ),
    ];
    specs
        .iter()
        .enumerate()
        .map(|(i, (id, title, summary, ind))| {
            let created = graph_time(now - Duration::days(20 + 9 * i as i64));
            (
                json!({"id": id, "title": title, "summary": {"content": summary, "format": "text"}, "body": {"content": format!("<p>{summary}</p>"), "format": "html"},
                    "createdDateTime": created, "lastUpdatedDateTime": created, "isFeatured": i == 0, "tags": ["emulator"], "imageUrl": null}),
                ind.iter().map(|s| s.to_string()).collect(),
            )
        })
        .collect()
}

async fn ti_articles(
    State(st): State<Arc<AppState>>,
    Extension(rid): Extension<RequestId>,
    Path(version): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let r = (|| -> Reply {
        ti_gate(&st, &headers, &version)?;
        // `$search="term"`: articles whose title, summary or indicators hold the term.
        let term = q.get("$search").map(|s| s.trim().trim_matches('"').to_ascii_lowercase());
        let top = q.get("$top").and_then(|t| t.parse::<usize>().ok()).unwrap_or(usize::MAX);
        let value: Vec<Value> = articles(&st)
            .into_iter()
            .filter(|(a, ind)| {
                term.as_deref().is_none_or(|t| {
                    a["title"].as_str().unwrap_or_default().to_ascii_lowercase().contains(t)
                        || a["summary"]["content"]
                            .as_str()
                            .unwrap_or_default()
                            .to_ascii_lowercase()
                            .contains(t)
                        || ind.iter().any(|i| i.eq_ignore_ascii_case(t))
                })
            })
            .map(|(a, _)| a)
            .take(top)
            .collect();
        Ok(collection(&st, &version, "security/threatIntelligence/articles", value))
    })();
    done(r, &rid)
}

async fn ti_article(
    State(st): State<Arc<AppState>>,
    Extension(rid): Extension<RequestId>,
    Path((version, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let r = (|| -> Reply {
        ti_gate(&st, &headers, &version)?;
        let (a, _) = articles(&st)
            .into_iter()
            .find(|(a, _)| a["id"] == id.as_str())
            .ok_or_else(|| ErrorReply::not_found(&format!("Article '{id}'")))?;
        Ok(json_response(StatusCode::OK, &a))
    })();
    done(r, &rid)
}

async fn ti_article_indicators(
    State(st): State<Arc<AppState>>,
    Extension(rid): Extension<RequestId>,
    Path((version, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let r = (|| -> Reply {
        ti_gate(&st, &headers, &version)?;
        let (_, ind) = articles(&st)
            .into_iter()
            .find(|(a, _)| a["id"] == id.as_str())
            .ok_or_else(|| ErrorReply::not_found(&format!("Article '{id}'")))?;
        let value: Vec<Value> = ind
            .iter()
            .map(|i| {
                let kind = if is_ip(i) { "ipAddress" } else if i.starts_with("CVE-") { "vulnerability" } else { "hostname" };
                json!({"id": format!("{id}-{i}"), "source": "microsoft", "artifact": {"@odata.type": format!("#microsoft.graph.security.{kind}"), "id": i}})
            })
            .collect();
        Ok(collection(&st, &version, "security/threatIntelligence/articleIndicators", value))
    })();
    done(r, &rid)
}

async fn ti_profiles(
    State(st): State<Arc<AppState>>,
    Extension(rid): Extension<RequestId>,
    Path(version): Path<String>,
    headers: HeaderMap,
) -> Response {
    let r = (|| -> Reply {
        ti_gate(&st, &headers, &version)?;
        let first = graph_time(st.clock.now() - Duration::days(900));
        let value = vec![
            json!({"id": "9b01de37", "title": "Storm-0999", "kind": "actor", "aliases": ["EXAMPLE SPIDER"], "targets": ["Finance", "Legal"],
                "countriesOrRegionsOfOrigin": [{"label": "Unknown", "code": "XX"}], "firstActiveDateTime": first,
                "summary": {"content": "A financially motivated actor running phishing and consent-phishing campaigns.", "format": "text"},
                "tradecraft": {"content": "Inbox rules, OAuth consent, mass download.", "format": "text"}}),
            json!({"id": "2c7e0f11", "title": "ExampleLoader", "kind": "tool", "aliases": [], "targets": [], "countriesOrRegionsOfOrigin": [],
                "firstActiveDateTime": first, "summary": {"content": "A commodity loader delivering PowerShell stages.", "format": "text"},
                "tradecraft": {"content": "Encoded PowerShell, scheduled tasks.", "format": "text"}}),
        ];
        Ok(collection(&st, &version, "security/threatIntelligence/intelProfiles", value))
    })();
    done(r, &rid)
}

async fn ti_vulnerability(
    State(st): State<Arc<AppState>>,
    Extension(rid): Extension<RequestId>,
    Path((version, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let r = (|| -> Reply {
        ti_gate(&st, &headers, &version)?;
        let known = [
            (
                "CVE-2024-21762",
                9.8,
                "critical",
                "Out-of-bounds write in an SSL VPN appliance allows remote code execution.",
            ),
            (
                "CVE-2023-46805",
                8.2,
                "high",
                "Authentication bypass in a VPN gateway's web component.",
            ),
        ];
        let (cve, score, sev, desc) = known
            .iter()
            .find(|k| k.0.eq_ignore_ascii_case(&id))
            .ok_or_else(|| ErrorReply::not_found(&format!("Vulnerability '{id}'")))?;
        let published = graph_time(st.clock.now() - Duration::days(300));
        Ok(json_response(
            StatusCode::OK,
            &json!({"id": cve, "severity": sev, "cvss3Summary": {"score": score, "severity": sev}, "description": {"content": desc, "format": "text"},
                "publishedDateTime": published, "lastModifiedDateTime": published, "exploitsAvailable": true, "hasChatter": true,
                "activeExploitsObserved": true, "commonWeaknessEnumerationIds": ["CWE-787"], "references": []}),
        ))
    })();
    done(r, &rid)
}

// ---- audit log ------------------------------------------------------------------------------------------------

/// How long a search takes, by the emulator's clock: not started for the first 2 s, running until 5 s.
const AUDIT_STARTS: i64 = 2;
const AUDIT_TAKES: i64 = 5;
const AUDIT_PAGE: usize = 50;

fn audit_status(q: &Value, now: DateTime<Utc>) -> &'static str {
    let created = q["createdDateTime"]
        .as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|d| d.with_timezone(&Utc));
    match created.map(|c| (now - c).num_seconds()) {
        Some(s) if s < AUDIT_STARTS => "notStarted",
        Some(s) if s < AUDIT_TAKES => "running",
        _ => "succeeded",
    }
}

fn audit_view(q: &Value, now: DateTime<Utc>) -> Value {
    let mut v = q.clone();
    v["status"] = json!(audit_status(q, now));
    if let Some(o) = v.as_object_mut() {
        o.remove("createdDateTime");
    }
    v
}

fn audit_gate(st: &AppState, headers: &HeaderMap, version: &str) -> Result<crate::tokens::AccessClaims, ErrorReply> {
    super::check_version(version)?;
    let claims = authorize(st, headers, &["AuditLogsQuery.Read.All"])?;
    crate::graph::admit(st, &claims)?;
    Ok(claims)
}

async fn audit_create(
    State(st): State<Arc<AppState>>,
    Extension(rid): Extension<RequestId>,
    Path(version): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let r = (|| -> Reply {
        let claims = audit_gate(&st, &headers, &version)?;
        let body = parse_body(&body)?;
        let time = |k: &str| -> Result<DateTime<Utc>, ErrorReply> {
            body.get(k)
                .and_then(Value::as_str)
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                .map(|d| d.with_timezone(&Utc))
                .ok_or_else(|| ErrorReply::bad(format!("The property '{k}' is required and must be a date and time.")))
        };
        let (from, to) = (time("filterStartDateTime")?, time("filterEndDateTime")?);
        if from >= to {
            return Err(ErrorReply::bad("filterStartDateTime must be before filterEndDateTime."));
        }
        if to - from > Duration::days(180) {
            return Err(ErrorReply::bad("The search range can be at most 180 days."));
        }
        let mut q = Map::new();
        for k in [
            "displayName",
            "filterStartDateTime",
            "filterEndDateTime",
            "recordTypeFilters",
            "keywordFilter",
            "serviceFilter",
            "operationFilters",
            "userPrincipalNameFilters",
            "ipAddressFilters",
            "objectIdFilters",
            "administrativeUnitIdFilters",
        ] {
            q.insert(k.into(), body.get(k).cloned().unwrap_or(Value::Null));
        }
        q.insert("@odata.type".into(), json!("#microsoft.graph.security.auditLogQuery"));
        q.insert("id".into(), json!(uuid::Uuid::new_v4().to_string()));
        q.insert("createdDateTime".into(), json!(graph_time(st.clock.now())));
        let q = Value::Object(q);
        let data = st.data(&claims.tid);
        let mut inv = data.investigation.lock().map_err(|_| ErrorReply::poisoned("state"))?;
        inv.audit_queries.push(q.clone());
        Ok(json_response(StatusCode::CREATED, &audit_view(&q, st.clock.now())))
    })();
    done(r, &rid)
}

async fn audit_list(
    State(st): State<Arc<AppState>>,
    Extension(rid): Extension<RequestId>,
    Path(version): Path<String>,
    headers: HeaderMap,
) -> Response {
    let r = (|| -> Reply {
        let claims = audit_gate(&st, &headers, &version)?;
        let data = st.data(&claims.tid);
        let inv = data.investigation.lock().map_err(|_| ErrorReply::poisoned("state"))?;
        let now = st.clock.now();
        Ok(collection(
            &st,
            &version,
            "security/auditLog/queries",
            inv.audit_queries.iter().map(|q| audit_view(q, now)).collect(),
        ))
    })();
    done(r, &rid)
}

fn find_query(st: &AppState, tid: &str, id: &str) -> Result<Value, ErrorReply> {
    let data = st.data(tid);
    let inv = data.investigation.lock().map_err(|_| ErrorReply::poisoned("state"))?;
    inv.audit_queries
        .iter()
        .find(|q| q["id"] == id)
        .cloned()
        .ok_or_else(|| ErrorReply::not_found(&format!("Audit log query '{id}'")))
}

async fn audit_get(
    State(st): State<Arc<AppState>>,
    Extension(rid): Extension<RequestId>,
    Path((version, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let r = (|| -> Reply {
        let claims = audit_gate(&st, &headers, &version)?;
        Ok(json_response(
            StatusCode::OK,
            &audit_view(&find_query(&st, &claims.tid, &id)?, st.clock.now()),
        ))
    })();
    done(r, &rid)
}

/// The tenant's audit records: its cloud-app activity (the seeded stories), as `auditLogRecord`s.
fn audit_records_of(st: &AppState, tid: &str) -> Vec<Value> {
    let tables = st.data(tid).hunting_tables(&st.config);
    let Some(t) = tables.get("CloudAppEvents") else { return Vec::new() };
    let col = |name: &str| t.columns.iter().position(|(n, _)| n == name);
    let get = |row: &[crate::hunting::value::KV], name: &str| col(name).map(|i| row[i].to_json()).unwrap_or(Value::Null);
    t.rows
        .iter()
        .map(|row| {
            let app = get(row, "Application").as_str().unwrap_or_default().to_string();
            let (kind, service) = if app.contains("Exchange") {
                ("exchangeAdmin", "Exchange")
            } else if app.contains("Entra") {
                ("azureActiveDirectory", "AzureActiveDirectory")
            } else if app.contains("OneDrive") {
                ("oneDrive", "OneDrive")
            } else {
                ("sharePointFileOperation", "SharePoint")
            };
            let report = get(row, "ReportId").as_str().unwrap_or_default().to_string();
            let id = uuid::Uuid::from_bytes(
                sha2::Sha256::digest(format!("{tid}/{report}").as_bytes())[..16]
                    .try_into()
                    .unwrap_or([0; 16]),
            )
            .to_string();
            let upn = get(row, "AccountId");
            json!({"id": id, "createdDateTime": get(row, "Timestamp"), "auditLogRecordType": kind, "operation": get(row, "ActionType"),
                "organizationId": tid, "userType": if get(row, "IsAdminOperation") == json!(true) { "admin" } else { "regular" },
                "userId": upn, "service": service, "objectId": get(row, "ObjectName"), "userPrincipalName": upn,
                "clientIp": get(row, "IPAddress"), "administrativeUnits": [], "auditData": get(row, "RawEventData")})
        })
        .collect()
}

fn matches(q: &Value, r: &Value) -> bool {
    let list = |k: &str| -> Vec<String> {
        q[k].as_array()
            .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_ascii_lowercase)).collect())
            .unwrap_or_default()
    };
    let field = |k: &str| r[k].as_str().unwrap_or_default().to_ascii_lowercase();
    let time = |v: &Value| {
        v.as_str()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|d| d.with_timezone(&Utc))
    };
    let within = match (
        time(&r["createdDateTime"]),
        time(&q["filterStartDateTime"]),
        time(&q["filterEndDateTime"]),
    ) {
        (Some(at), Some(from), Some(to)) => at >= from && at < to,
        _ => false,
    };
    let any = |k: &str, f: &str| {
        let l = list(k);
        l.is_empty() || l.contains(&field(f))
    };
    let keyword = q["keywordFilter"]
        .as_str()
        .is_none_or(|k| k.is_empty() || r.to_string().to_ascii_lowercase().contains(&k.to_ascii_lowercase()));
    let service = q["serviceFilter"]
        .as_str()
        .is_none_or(|s| s.is_empty() || s.eq_ignore_ascii_case(r["service"].as_str().unwrap_or_default()));
    within
        && keyword
        && service
        && any("recordTypeFilters", "auditLogRecordType")
        && any("operationFilters", "operation")
        && any("userPrincipalNameFilters", "userPrincipalName")
        && any("ipAddressFilters", "clientIp")
        && any("objectIdFilters", "objectId")
}

async fn audit_records(
    State(st): State<Arc<AppState>>,
    Extension(rid): Extension<RequestId>,
    Path((version, id)): Path<(String, String)>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let r = (|| -> Reply {
        let claims = audit_gate(&st, &headers, &version)?;
        let q = find_query(&st, &claims.tid, &id)?;
        let status = audit_status(&q, st.clock.now());
        if status != "succeeded" {
            return Err(ErrorReply::bad(format!(
                "The audit log query '{id}' is {status}: its records can be read once it has succeeded."
            )));
        }
        let mut all: Vec<Value> = audit_records_of(&st, &claims.tid).into_iter().filter(|r| matches(&q, r)).collect();
        all.sort_by(|a, b| {
            a["createdDateTime"]
                .as_str()
                .cmp(&b["createdDateTime"].as_str())
                .then(a["id"].as_str().cmp(&b["id"].as_str()))
        });
        let top = params
            .get("$top")
            .and_then(|t| t.parse::<usize>().ok())
            .unwrap_or(AUDIT_PAGE)
            .clamp(1, 1000);
        let skip = params.get("$skiptoken").and_then(|t| t.parse::<usize>().ok()).unwrap_or(0);
        let page: Vec<Value> = all.iter().skip(skip).take(top).cloned().collect();
        let mut body = json!({"@odata.context": format!("{}/{version}/$metadata#security/auditLog/queries('{id}')/records", st.base_url), "value": page});
        if skip + top < all.len() {
            body["@odata.nextLink"] = json!(format!(
                "{}/{version}/security/auditLog/queries/{id}/records?$top={top}&$skiptoken={}",
                st.base_url,
                skip + top
            ));
        }
        Ok(json_response(StatusCode::OK, &body))
    })();
    done(r, &rid)
}

// ---- identities -----------------------------------------------------------------------------------------------

fn identity_gate(st: &AppState, headers: &HeaderMap, version: &str, role: &str) -> Result<crate::tokens::AccessClaims, ErrorReply> {
    super::check_version(version)?;
    let claims = authorize(st, headers, &[role])?;
    crate::graph::admit(st, &claims)?;
    Ok(claims)
}

/// `items` narrowed by the request's `$filter` (Graph's filter syntax; 400 with the parser's message when it is not).
fn filtered(items: Vec<Value>, q: &HashMap<String, String>) -> Result<Vec<Value>, ErrorReply> {
    let Some(f) = q.get("$filter") else { return Ok(items) };
    let expr = crate::odata::parse_filter(f).map_err(|e| ErrorReply::bad(format!("Invalid filter clause: {e}")))?;
    Ok(items
        .into_iter()
        .filter(|i| crate::odata::matches(&expr, i).unwrap_or(false))
        .collect())
}

async fn identity_health(
    State(st): State<Arc<AppState>>,
    Extension(rid): Extension<RequestId>,
    Path(version): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let r = (|| -> Reply {
        let claims = identity_gate(&st, &headers, &version, "SecurityIdentitiesHealth.Read.All")?;
        let now = st.clock.now();
        let at = |d: i64| graph_time(now - Duration::hours(d));
        let domain = "contoso.local";
        let issue = |n: u8, name: &str, kind: &str, severity: &str, status: &str, sensors: Vec<&str>, hours: i64, rec: &str| {
            json!({"id": format!("{}-hi{n}", &claims.tid[..8.min(claims.tid.len())]), "displayName": name, "healthIssueType": kind, "severity": severity,
                "status": status, "createdDateTime": at(hours), "lastModifiedDateTime": at(hours / 2), "domainNames": [domain],
                "sensorDNSNames": sensors, "issueTypeId": format!("{}", 1000 + u32::from(n)), "description": format!("{name}."),
                "recommendations": [rec], "recommendedActionCommands": [], "additionalInformation": []})
        };
        let value = vec![
            issue(
                1,
                "Sensor stopped communicating",
                "sensor",
                "high",
                "open",
                vec!["dc02.contoso.local"],
                20,
                "Check the sensor service and the network path to the cloud service.",
            ),
            issue(
                2,
                "Directory services user credentials are incorrect",
                "global",
                "medium",
                "open",
                vec![],
                72,
                "Update the directory service account's password.",
            ),
            issue(
                3,
                "Low memory on the sensor's server",
                "sensor",
                "low",
                "open",
                vec!["dc01.contoso.local"],
                10,
                "Add memory to the domain controller.",
            ),
            issue(
                4,
                "Windows events missing from domain controller audit policy",
                "sensor",
                "medium",
                "closed",
                vec!["dc01.contoso.local"],
                300,
                "Configure advanced audit policy.",
            ),
        ];
        Ok(collection(&st, &version, "security/identities/healthIssues", filtered(value, &q)?))
    })();
    done(r, &rid)
}

async fn identity_sensors(
    State(st): State<Arc<AppState>>,
    Extension(rid): Extension<RequestId>,
    Path(version): Path<String>,
    headers: HeaderMap,
) -> Response {
    let r = (|| -> Reply {
        identity_gate(&st, &headers, &version, "SecurityIdentitiesSensors.Read.All")?;
        let created = graph_time(st.clock.now() - Duration::days(400));
        let sensor = |name: &str, kind: &str, health: &str, open: u32| {
            json!({"id": format!("{name}-sensor"), "displayName": name, "sensorType": kind, "deploymentStatus": "upToDate", "healthStatus": health,
                "openHealthIssuesCount": open, "domainName": "contoso.local", "version": "2.240.18000.0", "createdDateTime": created,
                "settings": {"description": null, "domainControllerDnsNames": [name], "isDelayedDeploymentEnabled": true}})
        };
        let value = vec![
            sensor("dc01.contoso.local", "domainControllerIntegrated", "notHealthyLow", 1),
            sensor("dc02.contoso.local", "domainControllerIntegrated", "notHealthyHigh", 1),
            sensor("adfs01.contoso.local", "adfsIntegrated", "healthy", 0),
        ];
        Ok(collection(&st, &version, "security/identities/sensors", value))
    })();
    done(r, &rid)
}

/// The identity accounts: the tenant's users, each with an Entra ID and an Active Directory identity.
fn accounts(st: &AppState, tid: &str) -> Result<Vec<Value>, ErrorReply> {
    let data = st.data(tid);
    let ds = data.dataset.read().map_err(|_| ErrorReply::poisoned("state"))?;
    let inv = data.investigation.lock().map_err(|_| ErrorReply::poisoned("state"))?;
    Ok(ds
        .entities
        .users
        .iter()
        .map(|u| {
            let state = inv.accounts.get(&u.aad_id);
            json!({"id": u.aad_id, "displayName": u.display, "domain": "contoso.local", "onPremisesSecurityIdentifier": u.sid,
                "cloudSecurityIdentifier": u.aad_id, "isEnabled": state.is_none_or(|s| s.enabled),
                "accounts": [
                    {"identifier": u.aad_id, "identityProvider": "entraID", "actions": ["disable", "enable", "revokeAllSessions", "requireUserToSignInAgain", "markUserAsCompromised"]},
                    {"identifier": u.sid, "identityProvider": "activeDirectory", "actions": ["disable", "enable", "forcePasswordReset"]},
                ]})
        })
        .collect())
}

async fn identity_accounts(
    State(st): State<Arc<AppState>>,
    Extension(rid): Extension<RequestId>,
    Path(version): Path<String>,
    headers: HeaderMap,
) -> Response {
    let r = (|| -> Reply {
        let claims = identity_gate(&st, &headers, &version, "SecurityIdentitiesAccount.Read.All")?;
        Ok(collection(
            &st,
            &version,
            "security/identities/identityAccounts",
            accounts(&st, &claims.tid)?,
        ))
    })();
    done(r, &rid)
}

async fn identity_account(
    State(st): State<Arc<AppState>>,
    Extension(rid): Extension<RequestId>,
    Path((version, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let r = (|| -> Reply {
        let claims = identity_gate(&st, &headers, &version, "SecurityIdentitiesAccount.Read.All")?;
        let a = accounts(&st, &claims.tid)?
            .into_iter()
            .find(|a| a["id"] == id.as_str())
            .ok_or_else(|| ErrorReply::not_found(&format!("Identity account '{id}'")))?;
        Ok(json_response(StatusCode::OK, &a))
    })();
    done(r, &rid)
}

async fn identity_action(
    State(st): State<Arc<AppState>>,
    Extension(rid): Extension<RequestId>,
    Path((version, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let r = (|| -> Reply {
        let claims = identity_gate(&st, &headers, &version, "SecurityIdentitiesActions.ReadWrite.All")?;
        let body = parse_body(&body)?;
        let account = accounts(&st, &claims.tid)?
            .into_iter()
            .find(|a| a["id"] == id.as_str())
            .ok_or_else(|| ErrorReply::not_found(&format!("Identity account '{id}'")))?;
        let text = |k: &str| {
            body.get(k)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| ErrorReply::bad(format!("The property '{k}' is required.")))
        };
        let (account_id, action, provider) = (text("accountId")?, text("action")?, text("identityProvider")?);
        let identity = account["accounts"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["identityProvider"].as_str() == Some(provider.as_str()))
            .ok_or_else(|| ErrorReply::bad(format!("The account has no '{provider}' identity.")))?;
        if identity["identifier"].as_str() != Some(account_id.as_str()) {
            return Err(ErrorReply::bad(format!(
                "accountId '{account_id}' is not the account's '{provider}' identity."
            )));
        }
        if !identity["actions"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x.as_str() == Some(action.as_str())))
        {
            return Err(ErrorReply::bad(format!(
                "The action '{action}' is not supported for identity provider '{provider}'."
            )));
        }
        let data = st.data(&claims.tid);
        let mut inv = data.investigation.lock().map_err(|_| ErrorReply::poisoned("state"))?;
        let state = inv.accounts.entry(id.clone()).or_insert(crate::state::AccountState {
            enabled: true,
            ..Default::default()
        });
        match action.as_str() {
            "disable" => state.enabled = false,
            "enable" => state.enabled = true,
            "forcePasswordReset" => state.password_reset_required = true,
            "markUserAsCompromised" => state.compromised = true,
            _ => state.sessions_revoked = Some(graph_time(st.clock.now())),
        }
        Ok(json_response(
            StatusCode::OK,
            &json!({"@odata.type": "#microsoft.graph.security.invokeActionResult", "accountId": account_id, "action": action,
                "identityProvider": provider, "correlationId": uuid::Uuid::new_v4().to_string()}),
        ))
    })();
    done(r, &rid)
}
