//! The seeded dataset: alerts (v2), incidents grouping them, and the same alerts in the legacy
//! `microsoft.graph.alert` shape, all derived from one seed so that every view is consistent.
//!
//! Timestamps are spread over the 30 days before `now`; everything else depends only on the seed.

use crate::directory::DEMO_TENANT_ID;
use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

/// SplitMix64: small, fast and reproducible, which is all seeded demo data needs.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
    pub fn hex(&mut self, len: usize) -> String {
        let mut s = String::with_capacity(len);
        while s.len() < len {
            s.push_str(&format!("{:016x}", self.next_u64()));
        }
        s.truncate(len);
        s
    }
    pub fn guid(&mut self) -> String {
        let h = self.hex(32);
        format!("{}-{}-4{}-a{}-{}", &h[0..8], &h[8..12], &h[13..16], &h[17..20], &h[20..32])
    }
}

/// Formats a timestamp the way Graph does: UTC with seven fractional digits.
pub fn graph_time(t: DateTime<Utc>) -> String {
    format!("{}.{:07}Z", t.format("%Y-%m-%dT%H:%M:%S"), t.timestamp_subsec_nanos() / 100)
}

#[derive(Debug, Clone)]
pub struct Device {
    pub name: String,
    pub fqdn: String,
    pub mde_id: String,
    pub aad_id: String,
    pub private_ip: String,
    pub public_ip: String,
    pub os: &'static str,
}

#[derive(Debug, Clone)]
pub struct User {
    pub account: String,
    pub domain: &'static str,
    pub upn: String,
    pub display: String,
    pub sid: String,
    pub aad_id: String,
}

#[derive(Debug, Clone)]
pub struct RemoteIp {
    pub address: String,
    pub country: &'static str,
}

#[derive(Debug, Clone)]
pub struct FileInfo {
    pub name: &'static str,
    pub path: String,
    pub sha1: String,
    pub sha256: String,
    pub size: u64,
}

/// The entities alerts refer to; the same pools feed the hunting tables.
#[derive(Debug, Clone)]
pub struct Entities {
    pub devices: Vec<Device>,
    pub users: Vec<User>,
    pub ips: Vec<RemoteIp>,
    pub files: Vec<FileInfo>,
    pub urls: Vec<String>,
}

const FIRST: &[&str] = &[
    "alex", "bianca", "chen", "dmitri", "emma", "farah", "gustavo", "hana", "ivan", "julia", "kofi", "lena", "marco", "nadia", "omar",
    "priya",
];
const LAST: &[&str] = &[
    "walker", "rossi", "li", "petrov", "schmidt", "haddad", "silva", "sato", "novak", "garcia", "mensah", "berg", "conti", "karimi",
    "aziz", "rao",
];
const DEPTS: &[&str] = &["fin", "hr", "eng", "ops", "sales", "it"];
const COUNTRIES: &[&str] = &["NL", "RU", "CN", "BR", "US", "KP", "IR", "RO", "NG", "VN"];
const FILES: &[(&str, &str)] = &[
    ("mimikatz.exe", "C:\\Users\\Public\\Downloads"),
    ("invoice_0423.docm", "C:\\Users\\{user}\\Downloads"),
    ("svchost32.exe", "C:\\ProgramData\\Microsoft\\Crypto"),
    ("payload.ps1", "C:\\Windows\\Temp"),
    ("rclone.exe", "C:\\Users\\{user}\\AppData\\Local\\Temp"),
    ("procdump64.exe", "C:\\Tools"),
    ("update_helper.dll", "C:\\ProgramData\\Updater"),
    ("locker.exe", "C:\\Users\\{user}\\AppData\\Roaming"),
    ("beacon.bin", "C:\\Windows\\Tasks"),
    ("AnyDesk.exe", "C:\\Users\\{user}\\Downloads"),
    ("psexesvc.exe", "C:\\Windows"),
    ("archive_2024.zip.exe", "C:\\Users\\{user}\\Desktop"),
];
const URLS: &[&str] = &[
    "http://login-microsoftonline.example-phish.net/owa",
    "https://docs-share.example-cdn.org/invoice.html",
    "http://203.0.113.77/stage2.ps1",
    "https://update-check.example-c2.net/api/v2/beacon",
    "https://bit.example/3xYz9",
];

impl Entities {
    fn generate(rng: &mut Rng) -> Entities {
        let mut devices = Vec::new();
        for i in 0..24 {
            let dept = DEPTS[i % DEPTS.len()];
            let (name, os) = if i % 8 == 7 {
                (format!("srv-{dept}-{:02}", i), "WindowsServer2022")
            } else {
                (format!("ws-{dept}-{:03}", 100 + i), "Windows11")
            };
            devices.push(Device {
                fqdn: format!("{name}.contoso.local"),
                mde_id: rng.hex(40),
                aad_id: rng.guid(),
                private_ip: format!("10.1.{}.{}", 10 + i / 8, 20 + i),
                public_ip: format!("198.51.100.{}", 10 + i),
                name,
                os,
            });
        }
        let mut users = Vec::new();
        for i in 0..FIRST.len() {
            let account = format!("{}.{}", FIRST[i], LAST[i]);
            users.push(User {
                upn: format!("{account}@contoso-demo.onmicrosoft.com"),
                display: format!("{} {}", capital(FIRST[i]), capital(LAST[i])),
                sid: format!("S-1-5-21-1004336348-1177238915-682003330-{}", 1100 + i),
                aad_id: rng.guid(),
                domain: "CONTOSO",
                account,
            });
        }
        let ips = (0..20)
            .map(|i| RemoteIp {
                address: format!("203.0.113.{}", 5 + i * 11),
                country: COUNTRIES[i % COUNTRIES.len()],
            })
            .collect();
        let files = FILES
            .iter()
            .enumerate()
            .map(|(i, (name, dir))| FileInfo {
                name,
                path: dir.replace("{user}", FIRST[i % FIRST.len()]),
                sha1: rng.hex(40),
                sha256: rng.hex(64),
                size: 20_000 + rng.below(9_000_000),
            })
            .collect();
        Entities {
            devices,
            users,
            ips,
            files,
            urls: URLS.iter().map(|s| s.to_string()).collect(),
        }
    }
}

fn capital(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Ev {
    Device,
    User,
    Ip,
    File,
    Process,
    Url,
    Mailbox,
}

struct Detection {
    title: &'static str,
    category: &'static str,
    mitre: &'static [&'static str],
    service: &'static str,
    detection: &'static str,
    product: &'static str,
    evidence: &'static [Ev],
    description: &'static str,
}

const DETECTIONS: &[Detection] = &[
    Detection {
        title: "Suspicious PowerShell command line",
        category: "Execution",
        mitre: &["T1059.001"],
        service: "microsoftDefenderForEndpoint",
        detection: "antivirus",
        product: "Microsoft Defender for Endpoint",
        evidence: &[Ev::Device, Ev::Process, Ev::File],
        description: "A suspicious PowerShell command line was observed. Attackers use encoded commands to evade detection.",
    },
    Detection {
        title: "Ransomware behavior detected in the file system",
        category: "Impact",
        mitre: &["T1486"],
        service: "microsoftDefenderForEndpoint",
        detection: "antivirus",
        product: "Microsoft Defender for Endpoint",
        evidence: &[Ev::Device, Ev::File, Ev::Process, Ev::User],
        description: "File system activity typical of ransomware encryption was detected on the device.",
    },
    Detection {
        title: "Anonymous IP address",
        category: "InitialAccess",
        mitre: &["T1078"],
        service: "azureAdIdentityProtection",
        detection: "azureAdIdentityProtection",
        product: "Microsoft Entra ID Protection",
        evidence: &[Ev::User, Ev::Ip],
        description: "Sign-in from an anonymous IP address (for example a Tor exit node).",
    },
    Detection {
        title: "A potentially malicious URL click was detected",
        category: "InitialAccess",
        mitre: &["T1566.002"],
        service: "microsoftDefenderForOffice365",
        detection: "microsoftDefenderForOffice365",
        product: "Microsoft Defender for Office 365",
        evidence: &[Ev::User, Ev::Url, Ev::Mailbox, Ev::Ip],
        description: "A user clicked a URL that was later found to be malicious.",
    },
    Detection {
        title: "Suspicious access to LSASS service",
        category: "CredentialAccess",
        mitre: &["T1003.001"],
        service: "microsoftDefenderForEndpoint",
        detection: "edr",
        product: "Microsoft Defender for Endpoint",
        evidence: &[Ev::Device, Ev::Process, Ev::User, Ev::File],
        description: "A process accessed the LSASS process memory, a technique used to dump credentials.",
    },
    Detection {
        title: "Suspected brute-force attack (Kerberos, NTLM)",
        category: "CredentialAccess",
        mitre: &["T1110"],
        service: "microsoftDefenderForIdentity",
        detection: "microsoftDefenderForIdentity",
        product: "Microsoft Defender for Identity",
        evidence: &[Ev::Device, Ev::User, Ev::Ip],
        description: "Many authentication failures were seen from one source against several accounts.",
    },
    Detection {
        title: "Connection to a known command-and-control server",
        category: "CommandAndControl",
        mitre: &["T1071.001", "T1573"],
        service: "microsoftDefenderForEndpoint",
        detection: "customTi",
        product: "Microsoft Defender for Endpoint",
        evidence: &[Ev::Device, Ev::Ip, Ev::Process],
        description: "A process connected to an address on a threat-intelligence list of command-and-control servers.",
    },
    Detection {
        title: "Impossible travel activity",
        category: "InitialAccess",
        mitre: &["T1078"],
        service: "microsoftDefenderForCloudApps",
        detection: "microsoftDefenderForCloudApps",
        product: "Microsoft Defender for Cloud Apps",
        evidence: &[Ev::User, Ev::Ip, Ev::Ip],
        description: "Sign-ins by one user from locations too far apart for the time between them.",
    },
    Detection {
        title: "Suspicious inbox forwarding rule",
        category: "Exfiltration",
        mitre: &["T1114.003"],
        service: "microsoftDefenderForCloudApps",
        detection: "microsoftDefenderForCloudApps",
        product: "Microsoft Defender for Cloud Apps",
        evidence: &[Ev::User, Ev::Mailbox, Ev::Ip],
        description: "A user created an inbox rule that forwards mail to an external address.",
    },
    Detection {
        title: "Rare RDP connections",
        category: "LateralMovement",
        mitre: &["T1021.001"],
        service: "microsoftSentinel",
        detection: "scheduledAlerts",
        product: "Microsoft Sentinel",
        evidence: &[Ev::Device, Ev::User, Ev::Ip],
        description: "A scheduled analytics rule found RDP connections between devices that do not usually talk.",
    },
    Detection {
        title: "Remote code execution attempt via PsExec",
        category: "LateralMovement",
        mitre: &["T1569.002", "T1021.002"],
        service: "microsoftDefenderForEndpoint",
        detection: "edr",
        product: "Microsoft Defender for Endpoint",
        evidence: &[Ev::Device, Ev::Process, Ev::User, Ev::File],
        description: "PsExec was used to run a command on a remote device.",
    },
    Detection {
        title: "Data exfiltration to cloud storage with rclone",
        category: "Exfiltration",
        mitre: &["T1567.002"],
        service: "microsoft365Defender",
        detection: "customDetection",
        product: "Microsoft Defender XDR",
        evidence: &[Ev::Device, Ev::Process, Ev::File, Ev::Url],
        description: "rclone was used to copy data to an external cloud storage provider.",
    },
];

const SEVERITIES: &[&str] = &["informational", "low", "medium", "high"];
const ANALYSTS: &[&str] = &[
    "soc-analyst1@contoso-demo.onmicrosoft.com",
    "soc-analyst2@contoso-demo.onmicrosoft.com",
    "ir-lead@contoso-demo.onmicrosoft.com",
];

/// Everything the Graph endpoints serve.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub alerts_v2: Vec<Value>,
    pub incidents: Vec<Value>,
    pub legacy_alerts: Vec<Value>,
    /// One secure score a day for the last 30 days, newest first.
    pub secure_scores: Vec<Value>,
    pub control_profiles: Vec<Value>,
    pub entities: Entities,
    pub generated_at: DateTime<Utc>,
}

/// What one alert is about, kept so the other views (legacy, hunting) can be derived consistently.
struct AlertFacts {
    created: DateTime<Utc>,
    device: usize,
    user: usize,
    ips: Vec<usize>,
    file: usize,
    url: usize,
}

impl Dataset {
    /// Generates `alerts` alerts (and their incidents) from `seed`, timed in the 30 days before `now`.
    pub fn generate(seed: u64, alerts: usize, now: DateTime<Utc>) -> Dataset {
        let mut rng = Rng::new(seed);
        let entities = Entities::generate(&mut rng);
        let window_ms = 30 * 24 * 3600 * 1000u64;
        let mut facts: Vec<AlertFacts> = (0..alerts)
            .map(|_| AlertFacts {
                created: now - Duration::milliseconds(1 + rng.below(window_ms - 3_600_000) as i64 + 600_000),
                device: rng.below(entities.devices.len() as u64) as usize,
                user: rng.below(entities.users.len() as u64) as usize,
                ips: vec![
                    rng.below(entities.ips.len() as u64) as usize,
                    rng.below(entities.ips.len() as u64) as usize,
                ],
                file: rng.below(entities.files.len() as u64) as usize,
                url: rng.below(entities.urls.len() as u64) as usize,
            })
            .collect();
        facts.sort_by_key(|f| f.created);

        let mut alerts_v2 = Vec::with_capacity(alerts);
        let mut legacy = Vec::with_capacity(alerts);
        let mut incidents = Vec::new();
        let mut i = 0;
        let mut incident_no = 1000u64;
        while i < facts.len() {
            let group = (1 + rng.below(4) as usize).min(facts.len() - i);
            incident_no += 1 + rng.below(3);
            let incident_id = incident_no.to_string();
            let mut members = Vec::new();
            for f in &facts[i..i + group] {
                let d = rng.pick(DETECTIONS);
                let alert = build_alert(&mut rng, d, f, &entities, &incident_id, now);
                legacy.push(build_legacy(&mut rng, d, f, &alert, &entities));
                members.push(alert.clone());
                alerts_v2.push(alert);
            }
            incidents.push(build_incident(&mut rng, &incident_id, &members));
            i += group;
        }
        let (secure_scores, control_profiles) = secure_scores(&mut rng, now);
        Dataset {
            alerts_v2,
            incidents,
            legacy_alerts: legacy,
            secure_scores,
            control_profiles,
            entities,
            generated_at: now,
        }
    }
}

fn build_alert(rng: &mut Rng, d: &Detection, f: &AlertFacts, e: &Entities, incident_id: &str, now: DateTime<Utc>) -> Value {
    let id = format!(
        "da{:018}_{}",
        rng.below(1_000_000_000_000_000_000),
        -(rng.below(2_000_000_000) as i64) - 1
    );
    let first_activity = f.created - Duration::minutes(5 + rng.below(240) as i64);
    let last_update = (f.created + Duration::minutes(rng.below(3 * 24 * 60) as i64)).min(now);
    let severity = SEVERITIES[(rng.below(10) as usize * SEVERITIES.len()) / 10];
    let roll = rng.below(100);
    let (status, classification, determination) = if roll < 50 {
        ("new", "unknown", "unknown")
    } else if roll < 75 {
        ("inProgress", "unknown", "unknown")
    } else if roll < 88 {
        (
            "resolved",
            "truePositive",
            *rng.pick(&["malware", "multiStagedAttack", "compromisedAccount", "phishing"]),
        )
    } else if roll < 95 {
        ("resolved", "falsePositive", "notMalicious")
    } else {
        ("resolved", "informationalExpectedActivity", "securityTesting")
    };
    let assigned = if status == "new" && rng.below(3) > 0 {
        Value::Null
    } else {
        json!(rng.pick(ANALYSTS))
    };
    let resolved = if status == "resolved" {
        json!(graph_time(last_update))
    } else {
        Value::Null
    };
    let created_s = graph_time(f.created);
    let dev = &e.devices[f.device];
    let user = &e.users[f.user];
    let file = &e.files[f.file];
    let mut evidence = Vec::new();
    let mut ip_n = 0;
    for kind in d.evidence {
        let common = |t: &str, roles: Vec<&str>| json!({"@odata.type": format!("#microsoft.graph.security.{t}"), "createdDateTime": created_s, "verdict": if status == "resolved" && classification == "falsePositive" { "noThreatsFound" } else { "suspicious" }, "remediationStatus": "none", "remediationStatusDetails": null, "roles": roles, "detailedRoles": [], "tags": []});
        let ev = match kind {
            Ev::Device => {
                let mut v = common("deviceEvidence", vec!["compromised"]);
                merge(
                    &mut v,
                    json!({"firstSeenDateTime": graph_time(f.created - Duration::days(200)), "mdeDeviceId": dev.mde_id, "azureAdDeviceId": dev.aad_id, "deviceDnsName": dev.fqdn, "hostName": dev.name, "ntDomain": "CONTOSO", "dnsDomain": "contoso.local", "osPlatform": dev.os, "osBuild": 22631, "version": "23H2", "healthStatus": "active", "riskScore": "medium", "rbacGroupId": 75, "rbacGroupName": "Workstations", "onboardingStatus": "onboarded", "defenderAvStatus": "updated", "ipInterfaces": [dev.private_ip], "loggedOnUsers": [{"accountName": user.account, "domainName": user.domain}], "vmMetadata": null}),
                );
                v
            }
            Ev::User => {
                let mut v = common("userEvidence", vec![]);
                merge(&mut v, json!({"userAccount": user_account(user)}));
                v
            }
            Ev::Ip => {
                let ip = &e.ips[f.ips[ip_n.min(1)]];
                ip_n += 1;
                let mut v = common("ipEvidence", vec![]);
                merge(&mut v, json!({"ipAddress": ip.address, "countryLetterCode": ip.country}));
                v
            }
            Ev::File => {
                let mut v = common("fileEvidence", vec![]);
                merge(
                    &mut v,
                    json!({"detectionStatus": "detected", "mdeDeviceId": dev.mde_id, "fileDetails": file_details(file)}),
                );
                v
            }
            Ev::Process => {
                let mut v = common("processEvidence", vec![]);
                merge(
                    &mut v,
                    json!({"processId": 1000 + rng.below(30000), "parentProcessId": 600 + rng.below(3000), "processCommandLine": command_line(d, file), "processCreationDateTime": graph_time(first_activity), "parentProcessCreationDateTime": graph_time(first_activity - Duration::minutes(30)), "detectionStatus": "detected", "mdeDeviceId": dev.mde_id, "imageFile": file_details(file), "parentProcessImageFile": {"sha1": null, "sha256": null, "fileName": "explorer.exe", "filePath": "C:\\Windows", "fileSize": 4_984_832, "filePublisher": "Microsoft Corporation", "signer": null, "issuer": null}, "userAccount": user_account(user)}),
                );
                v
            }
            Ev::Url => {
                let mut v = common("urlEvidence", vec![]);
                merge(&mut v, json!({"url": e.urls[f.url]}));
                v
            }
            Ev::Mailbox => {
                let mut v = common("mailboxEvidence", vec![]);
                merge(
                    &mut v,
                    json!({"primaryAddress": user.upn, "displayName": user.display, "userAccount": user_account(user)}),
                );
                v
            }
        };
        evidence.push(ev);
    }
    json!({
        "@odata.type": "#microsoft.graph.security.alert",
        "id": id,
        "providerAlertId": id,
        "incidentId": incident_id,
        "status": status,
        "severity": severity,
        "classification": classification,
        "determination": determination,
        "serviceSource": d.service,
        "detectionSource": d.detection,
        "productName": d.product,
        "detectorId": rng.guid(),
        "tenantId": DEMO_TENANT_ID,
        "title": d.title,
        "description": d.description,
        "recommendedActions": "Review the evidence, contain affected devices and accounts, and collect artifacts.",
        "category": d.category,
        "assignedTo": assigned,
        "alertWebUrl": format!("https://security.microsoft.com/alerts/{id}?tid={DEMO_TENANT_ID}"),
        "incidentWebUrl": format!("https://security.microsoft.com/incidents/{incident_id}?tid={DEMO_TENANT_ID}"),
        "actorDisplayName": null,
        "threatDisplayName": null,
        "threatFamilyName": null,
        "mitreTechniques": d.mitre,
        "createdDateTime": created_s,
        "lastUpdateDateTime": graph_time(last_update),
        "resolvedDateTime": resolved,
        "firstActivityDateTime": graph_time(first_activity),
        "lastActivityDateTime": graph_time(f.created - Duration::minutes(1)),
        "comments": [],
        "systemTags": [],
        "customDetails": {},
        "additionalData": {},
        "evidence": evidence,
    })
}

fn merge(into: &mut Value, from: Value) {
    if let (Value::Object(a), Value::Object(b)) = (into, from) {
        a.extend(b);
    }
}

fn user_account(u: &User) -> Value {
    json!({"accountName": u.account, "domainName": u.domain, "userSid": u.sid, "azureAdUserId": u.aad_id, "userPrincipalName": u.upn, "displayName": u.display})
}

fn file_details(f: &FileInfo) -> Value {
    json!({"sha1": f.sha1, "sha256": f.sha256, "fileName": f.name, "filePath": f.path, "fileSize": f.size, "filePublisher": null, "signer": null, "issuer": null})
}

fn command_line(d: &Detection, f: &FileInfo) -> String {
    match d.category {
        "Execution" => {
            "powershell.exe -NoProfile -ExecutionPolicy Bypass -EncodedCommand SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoAZQBjAHQAKQA=".into()
        }
        "CredentialAccess" => format!("\"{}\\{}\" -accepteula -ma lsass.exe lsass.dmp", f.path, f.name),
        "LateralMovement" => format!("{} \\\\srv-it-15 -s cmd.exe /c whoami", f.name),
        _ => format!("\"{}\\{}\"", f.path, f.name),
    }
}

fn build_incident(rng: &mut Rng, id: &str, alerts: &[Value]) -> Value {
    let sev_rank = |s: &str| SEVERITIES.iter().position(|x| *x == s).unwrap_or(0);
    let severity = alerts
        .iter()
        .filter_map(|a| a["severity"].as_str())
        .max_by_key(|s| sev_rank(s))
        .unwrap_or("low");
    let created = alerts.first().and_then(|a| a["createdDateTime"].as_str()).unwrap_or_default();
    let updated = alerts
        .iter()
        .filter_map(|a| a["lastUpdateDateTime"].as_str())
        .max()
        .unwrap_or(created);
    let all_resolved = alerts.iter().all(|a| a["status"] == "resolved");
    let status = if all_resolved {
        "resolved"
    } else if alerts.iter().any(|a| a["status"] == "inProgress") {
        "inProgress"
    } else {
        "active"
    };
    let (classification, determination) = if all_resolved {
        (alerts[0]["classification"].clone(), alerts[0]["determination"].clone())
    } else {
        (json!("unknown"), json!("unknown"))
    };
    let mut categories: Vec<&str> = alerts.iter().filter_map(|a| a["category"].as_str()).collect();
    categories.dedup();
    let name = if alerts.len() == 1 {
        format!("{} on one endpoint", alerts[0]["title"].as_str().unwrap_or("Alert"))
    } else {
        format!("Multi-stage incident involving {} on multiple endpoints", categories.join(" & "))
    };
    json!({
        "@odata.type": "#microsoft.graph.security.incident",
        "id": id,
        "incidentWebUrl": format!("https://security.microsoft.com/incidents/{id}?tid={DEMO_TENANT_ID}"),
        "redirectIncidentId": null,
        "displayName": name,
        "tenantId": DEMO_TENANT_ID,
        "createdDateTime": created,
        "lastUpdateDateTime": updated,
        "assignedTo": alerts.iter().find_map(|a| a["assignedTo"].as_str()),
        "classification": classification,
        "determination": determination,
        "status": status,
        "severity": severity,
        "customTags": if rng.below(4) == 0 { json!(["demo"]) } else { json!([]) },
        "comments": [],
        "systemTags": [],
        "summary": null,
        "description": format!("{} correlated alert(s).", alerts.len()),
        "resolvingComment": null,
        "lastModifiedBy": "API-App:secgraph-emulator",
    })
}

fn build_legacy(rng: &mut Rng, d: &Detection, f: &AlertFacts, v2: &Value, e: &Entities) -> Value {
    let dev = &e.devices[f.device];
    let user = &e.users[f.user];
    let file = &e.files[f.file];
    let has = |k: Ev| d.evidence.contains(&k);
    let status = match v2["status"].as_str() {
        Some("new") => "newAlert",
        Some(s) => s,
        None => "unknown",
    };
    let feedback = match v2["classification"].as_str() {
        Some("truePositive") => json!("truePositive"),
        Some("falsePositive") => json!("falsePositive"),
        Some("informationalExpectedActivity") => json!("benignPositive"),
        _ => Value::Null,
    };
    let user_states = if has(Ev::User) || has(Ev::Process) {
        json!([{"aadUserId": user.aad_id, "accountName": user.account, "domainName": user.domain, "emailRole": "unknown", "isVpn": null, "logonDateTime": v2["firstActivityDateTime"], "logonId": null, "logonIp": e.ips[f.ips[0]].address, "logonLocation": null, "logonType": null, "onPremisesSecurityIdentifier": user.sid, "riskScore": null, "userAccountType": null, "userPrincipalName": user.upn}])
    } else {
        json!([])
    };
    let host_states = if has(Ev::Device) {
        json!([{"fqdn": dev.fqdn, "isAzureAdJoined": true, "isAzureAdRegistered": null, "isHybridAzureDomainJoined": null, "netBiosName": dev.name.to_uppercase(), "os": dev.os, "privateIpAddress": dev.private_ip, "publicIpAddress": dev.public_ip, "riskScore": "Medium"}])
    } else {
        json!([])
    };
    let file_states = if has(Ev::File) {
        json!([{"name": file.name, "path": file.path, "riskScore": null, "fileHash": {"hashType": "sha256", "hashValue": file.sha256}}])
    } else {
        json!([])
    };
    let network = if has(Ev::Ip) {
        let src = if has(Ev::Device) {
            dev.private_ip.clone()
        } else {
            e.ips[f.ips[0]].address.clone()
        };
        let dst = &e.ips[f.ips[1]];
        json!([{"applicationName": null, "destinationAddress": dst.address, "destinationDomain": null, "destinationLocation": dst.country, "destinationPort": "443", "destinationUrl": if has(Ev::Url) { json!(e.urls[f.url]) } else { Value::Null }, "direction": "outbound", "domainRegisteredDateTime": null, "localDnsName": null, "natDestinationAddress": null, "natDestinationPort": null, "natSourceAddress": null, "natSourcePort": null, "protocol": "tcp", "riskScore": null, "sourceAddress": src, "sourceLocation": null, "sourcePort": (49152 + rng.below(16000)).to_string(), "status": "open", "urlParameters": null}])
    } else {
        json!([])
    };
    let processes = if has(Ev::Process) {
        json!([{"accountName": format!("{}\\{}", user.domain, user.account), "commandLine": command_line(d, file), "createdDateTime": v2["firstActivityDateTime"], "fileHash": {"hashType": "sha256", "hashValue": file.sha256}, "integrityLevel": "high", "isElevated": true, "name": file.name, "parentProcessCreatedDateTime": null, "parentProcessId": 612, "parentProcessName": "explorer.exe", "path": format!("{}\\{}", file.path, file.name), "processId": 4000 + rng.below(20000)}])
    } else {
        json!([])
    };
    let id = rng.guid().to_uppercase();
    json!({
        "id": id,
        "activityGroupName": null,
        "assignedTo": v2["assignedTo"],
        "azureSubscriptionId": null,
        "azureTenantId": DEMO_TENANT_ID,
        "category": d.category,
        "closedDateTime": v2["resolvedDateTime"],
        "cloudAppStates": [],
        "comments": [],
        "confidence": 50 + rng.below(50),
        "createdDateTime": v2["createdDateTime"],
        "description": d.description,
        "detectionIds": [],
        "eventDateTime": v2["firstActivityDateTime"],
        "feedback": feedback,
        "fileStates": file_states,
        "historyStates": [],
        "hostStates": host_states,
        "incidentIds": [v2["incidentId"]],
        "lastModifiedDateTime": v2["lastUpdateDateTime"],
        "malwareStates": [],
        "networkConnections": network,
        "processes": processes,
        "recommendedActions": [],
        "registryKeyStates": [],
        "securityResources": [],
        "severity": v2["severity"].as_str().unwrap_or("unknown"),
        "sourceMaterials": [v2["alertWebUrl"]],
        "status": status,
        "tags": [],
        "title": d.title,
        "triggers": [],
        "userStates": user_states,
        "vendorInformation": {"provider": d.product, "providerVersion": "3.0", "subProvider": d.detection, "vendor": "Microsoft"},
        "vulnerabilityStates": [],
    })
}

const CONTROLS: &[(&str, &str, &str, f64)] = &[
    ("AdminMFAV2", "Identity", "Require MFA for administrative roles", 10.0),
    (
        "MFARegistrationV2",
        "Identity",
        "Ensure all users can complete multifactor authentication",
        9.0,
    ),
    (
        "BlockLegacyAuthentication",
        "Identity",
        "Enable policy to block legacy authentication",
        8.0,
    ),
    ("DLPEnabled", "Data", "Apply Data Loss Prevention policies", 20.0),
    (
        "mdo_safelinksforOfficeApps",
        "Apps",
        "Ensure Safe Links for Office Apps is enabled",
        9.0,
    ),
    (
        "mdo_atpprotection",
        "Apps",
        "Turn on Microsoft Defender for Office 365 in SharePoint, OneDrive, and Microsoft Teams",
        9.0,
    ),
    (
        "scid_2000",
        "Device",
        "Turn on Microsoft Defender Antivirus real-time protection",
        8.0,
    ),
    ("scid_91", "Device", "Disable Solicited Remote Assistance", 5.0),
];

/// Secure scores (newest first) and control profiles for the demo tenant.
fn secure_scores(rng: &mut Rng, now: DateTime<Utc>) -> (Vec<Value>, Vec<Value>) {
    let max: f64 = CONTROLS.iter().map(|c| c.3).sum();
    let mut scores = Vec::new();
    let mut current = max * 0.45;
    for day in (0..30).rev() {
        current = (current + (rng.below(5) as f64 - 1.5) * 0.5).clamp(0.0, max);
        let date = (now - Duration::days(day)).date_naive();
        let controls: Vec<Value> = CONTROLS
            .iter()
            .map(|(name, cat, desc, m)| json!({"controlCategory": cat, "controlName": name, "description": desc, "score": ((m * (rng.below(101) as f64) / 100.0) * 100.0).round() / 100.0}))
            .collect();
        scores.push(json!({
            "id": format!("{DEMO_TENANT_ID}_{}", date.format("%Y-%m-%d")),
            "azureTenantId": DEMO_TENANT_ID,
            "activeUserCount": 180 + rng.below(20),
            "createdDateTime": format!("{}T00:00:00Z", date.format("%Y-%m-%d")),
            "currentScore": (current * 100.0).round() / 100.0,
            "enabledServices": ["HasExchange", "HasSharePoint", "HasOD4B", "HasMDEP"],
            "licensedUserCount": 250,
            "maxScore": max,
            "averageComparativeScores": [{"basis": "AllTenants", "averageScore": 38.5}, {"basis": "TotalSeats", "averageScore": 41.2}],
            "controlScores": controls,
            "vendorInformation": {"provider": "SecureScore", "providerVersion": null, "subProvider": null, "vendor": "Microsoft"},
        }));
    }
    scores.reverse();
    let profiles = CONTROLS
        .iter()
        .enumerate()
        .map(|(i, (name, cat, title, m))| {
            json!({
                "id": name, "azureTenantId": DEMO_TENANT_ID, "actionType": "Config", "actionUrl": "https://security.microsoft.com/securescore",
                "controlCategory": cat, "title": title, "deprecated": false, "implementationCost": "Low", "lastModifiedDateTime": null,
                "maxScore": m, "rank": i + 1, "remediation": format!("Turn on: {title}."), "remediationImpact": "Low impact on users.",
                "service": if *cat == "Identity" { "AzureAD" } else { "MDO" }, "threats": ["Account Breach", "Elevation of Privilege"],
                "tier": "Core", "userImpact": "Low", "complianceInformation": [], "controlStateUpdates": [],
                "vendorInformation": {"provider": "SecureScore", "providerVersion": null, "subProvider": null, "vendor": "Microsoft"},
            })
        })
        .collect();
    (scores, profiles)
}
