//! The seeded hunting tables, derived from the alerts so that every view agrees.

use super::stories::{self, Tables};
use super::value::{KTable, KType, KV};
use crate::data::{Dataset, Rng};
use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use std::collections::HashMap;

use KType::{Bool as B, DateTime as D, Dynamic as Y, Int as I, Long as L, String as S};

const ALERT_INFO: &[(&str, KType)] = &[
    ("Timestamp", D),
    ("AlertId", S),
    ("Title", S),
    ("Category", S),
    ("Severity", S),
    ("ServiceSource", S),
    ("DetectionSource", S),
    ("AttackTechniques", S),
];
const ALERT_EVIDENCE: &[(&str, KType)] = &[
    ("Timestamp", D),
    ("AlertId", S),
    ("Title", S),
    ("Categories", S),
    ("AttackTechniques", S),
    ("ServiceSource", S),
    ("DetectionSource", S),
    ("EntityType", S),
    ("EvidenceRole", S),
    ("EvidenceDirection", S),
    ("FileName", S),
    ("FolderPath", S),
    ("SHA1", S),
    ("SHA256", S),
    ("FileSize", L),
    ("ThreatFamily", S),
    ("RemoteIP", S),
    ("RemoteUrl", S),
    ("LocalIP", S),
    ("AccountName", S),
    ("AccountDomain", S),
    ("AccountSid", S),
    ("AccountObjectId", S),
    ("AccountUpn", S),
    ("DeviceId", S),
    ("DeviceName", S),
    ("NetworkMessageId", S),
    ("EmailSubject", S),
    ("Application", S),
    ("ApplicationId", I),
    ("OAuthApplicationId", S),
    ("ProcessCommandLine", S),
    ("RegistryKey", S),
    ("RegistryValueName", S),
    ("RegistryValueData", S),
    ("AdditionalFields", Y),
];
/// DeviceFileEvents (Microsoft 365 Defender's columns).
const DEVICE_FILE: &[(&str, KType)] = &[
    ("Timestamp", D),
    ("DeviceId", S),
    ("DeviceName", S),
    ("ActionType", S),
    ("FileName", S),
    ("FolderPath", S),
    ("SHA1", S),
    ("SHA256", S),
    ("MD5", S),
    ("FileSize", L),
    ("FileOriginUrl", S),
    ("FileOriginIP", S),
    ("PreviousFileName", S),
    ("PreviousFolderPath", S),
    ("InitiatingProcessAccountDomain", S),
    ("InitiatingProcessAccountName", S),
    ("InitiatingProcessAccountSid", S),
    ("InitiatingProcessAccountUpn", S),
    ("InitiatingProcessFileName", S),
    ("InitiatingProcessFolderPath", S),
    ("InitiatingProcessId", L),
    ("InitiatingProcessCommandLine", S),
    ("InitiatingProcessSHA1", S),
    ("ReportId", L),
];

const DEVICE_PROCESS: &[(&str, KType)] = &[
    ("Timestamp", D),
    ("DeviceId", S),
    ("DeviceName", S),
    ("ActionType", S),
    ("FileName", S),
    ("FolderPath", S),
    ("SHA1", S),
    ("SHA256", S),
    ("MD5", S),
    ("FileSize", L),
    ("ProcessId", L),
    ("ProcessCommandLine", S),
    ("ProcessIntegrityLevel", S),
    ("ProcessTokenElevation", S),
    ("ProcessCreationTime", D),
    ("AccountDomain", S),
    ("AccountName", S),
    ("AccountSid", S),
    ("AccountUpn", S),
    ("AccountObjectId", S),
    ("LogonId", L),
    ("InitiatingProcessAccountDomain", S),
    ("InitiatingProcessAccountName", S),
    ("InitiatingProcessAccountUpn", S),
    ("InitiatingProcessFileName", S),
    ("InitiatingProcessFolderPath", S),
    ("InitiatingProcessId", L),
    ("InitiatingProcessCommandLine", S),
    ("InitiatingProcessCreationTime", D),
    ("InitiatingProcessParentId", L),
    ("InitiatingProcessParentFileName", S),
    ("InitiatingProcessSHA1", S),
    ("InitiatingProcessSHA256", S),
    ("ReportId", L),
];
const DEVICE_NETWORK: &[(&str, KType)] = &[
    ("Timestamp", D),
    ("DeviceId", S),
    ("DeviceName", S),
    ("ActionType", S),
    ("RemoteIP", S),
    ("RemotePort", I),
    ("RemoteUrl", S),
    ("LocalIP", S),
    ("LocalPort", I),
    ("Protocol", S),
    ("RemoteIPType", S),
    ("LocalIPType", S),
    ("InitiatingProcessFileName", S),
    ("InitiatingProcessFolderPath", S),
    ("InitiatingProcessId", L),
    ("InitiatingProcessCommandLine", S),
    ("InitiatingProcessAccountDomain", S),
    ("InitiatingProcessAccountName", S),
    ("InitiatingProcessSHA1", S),
    ("ReportId", L),
];
const DEVICE_LOGON: &[(&str, KType)] = &[
    ("Timestamp", D),
    ("DeviceId", S),
    ("DeviceName", S),
    ("ActionType", S),
    ("LogonType", S),
    ("AccountDomain", S),
    ("AccountName", S),
    ("AccountSid", S),
    ("Protocol", S),
    ("FailureReason", S),
    ("IsLocalAdmin", B),
    ("LogonId", L),
    ("RemoteDeviceName", S),
    ("RemoteIP", S),
    ("RemoteIPType", S),
    ("RemotePort", I),
    ("InitiatingProcessFileName", S),
    ("InitiatingProcessCommandLine", S),
    ("ReportId", L),
];
const IDENTITY_LOGON: &[(&str, KType)] = &[
    ("Timestamp", D),
    ("ActionType", S),
    ("Application", S),
    ("LogonType", S),
    ("Protocol", S),
    ("FailureReason", S),
    ("AccountName", S),
    ("AccountDomain", S),
    ("AccountUpn", S),
    ("AccountSid", S),
    ("AccountObjectId", S),
    ("AccountDisplayName", S),
    ("DeviceName", S),
    ("DeviceType", S),
    ("OSPlatform", S),
    ("IPAddress", S),
    ("Port", I),
    ("DestinationDeviceName", S),
    ("DestinationIPAddress", S),
    ("DestinationPort", I),
    ("TargetDeviceName", S),
    ("TargetAccountDisplayName", S),
    ("Location", S),
    ("ISP", S),
    ("ReportId", S),
    ("AdditionalFields", Y),
];

/// A string cell.
pub(super) fn s(v: &str) -> KV {
    KV::Str(v.to_string())
}

fn js(v: &Value) -> KV {
    match v {
        Value::String(x) => KV::Str(x.clone()),
        Value::Number(n) => n.as_i64().map(KV::Long).unwrap_or(KV::Null),
        _ => KV::Null,
    }
}

fn date(v: &Value) -> KV {
    v.as_str()
        .and_then(|x| DateTime::parse_from_rfc3339(x).ok())
        .map(|d| KV::Date(d.with_timezone(&Utc)))
        .unwrap_or(KV::Null)
}

fn capital(x: &str) -> String {
    let mut c = x.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

const BENIGN: &[(&str, &str, &str)] = &[
    ("svchost.exe", "C:\\Windows\\System32", "svchost.exe -k netsvcs -p"),
    (
        "msedge.exe",
        "C:\\Program Files (x86)\\Microsoft\\Edge\\Application",
        "msedge.exe --type=renderer",
    ),
    (
        "OUTLOOK.EXE",
        "C:\\Program Files\\Microsoft Office\\root\\Office16",
        "OUTLOOK.EXE /recycle",
    ),
    (
        "teams.exe",
        "C:\\Users\\Public\\AppData\\Local\\Microsoft\\Teams",
        "teams.exe --system-initiated",
    ),
    ("cmd.exe", "C:\\Windows\\System32", "cmd.exe /c ipconfig /all"),
];

/// Every hunting table, keyed by name: the ones derived here and those of the `stories` module.
pub fn build_tables(ds: &Dataset, seed: u64) -> HashMap<String, KTable> {
    let mut rng = Rng::new(seed ^ 0x4855_4e54);
    let mut tables: HashMap<String, KTable> = [
        ("AlertInfo", ALERT_INFO),
        ("AlertEvidence", ALERT_EVIDENCE),
        ("DeviceProcessEvents", DEVICE_PROCESS),
        ("DeviceFileEvents", DEVICE_FILE),
        ("DeviceNetworkEvents", DEVICE_NETWORK),
        ("DeviceLogonEvents", DEVICE_LOGON),
        ("IdentityLogonEvents", IDENTITY_LOGON),
    ]
    .into_iter()
    .map(|(name, cols)| {
        let columns = cols.iter().map(|(n, t)| (n.to_string(), *t)).collect();
        (name.to_string(), KTable { columns, rows: vec![] })
    })
    .collect();
    stories::add_schemas(&mut tables);
    let mut t = Tables(&mut tables);
    let mut report = 1000i64;
    for item in &ds.alerts_v2 {
        // Parsed for this pass only: the stored alert stays compact.
        let parsed = item.with_value(Value::clone);
        alert_rows(&mut t, &mut rng, &mut report, ds, &parsed);
    }
    stories::seed(&mut t, ds, &mut rng, &mut report);
    tables
}

/// The columns AlertInfo and AlertEvidence share.
type Common = [(&'static str, KV); 6];

/// One alert's rows: AlertInfo, AlertEvidence, the stories' rows derived from it, and the activity around it.
fn alert_rows(t: &mut Tables, rng: &mut Rng, report: &mut i64, ds: &Dataset, a: &Value) {
    let ts = date(&a["createdDateTime"]);
    let KV::Date(at) = ts.clone() else { return };
    let techniques = a["mitreTechniques"].to_string();
    let severity = capital(a["severity"].as_str().unwrap_or("unknown"));
    let service = a["productName"].as_str().unwrap_or("").to_string();
    let detection = capital(a["detectionSource"].as_str().unwrap_or(""));
    let common: Common = [
        ("Timestamp", ts.clone()),
        ("AlertId", js(&a["id"])),
        ("Title", js(&a["title"])),
        ("ServiceSource", s(&service)),
        ("DetectionSource", s(&detection)),
        ("AttackTechniques", s(&techniques)),
    ];
    let mut row = common.to_vec();
    row.extend([("Category", js(&a["category"])), ("Severity", s(&severity))]);
    t.push("AlertInfo", &row);

    stories::from_alert(t, rng, a, at, report);
    let ev = a["evidence"].as_array().cloned().unwrap_or_default();
    let device = ev.iter().find(|x| x["@odata.type"] == "#microsoft.graph.security.deviceEvidence");
    let user = ev.iter().find_map(|x| x.get("userAccount")).cloned().unwrap_or(Value::Null);
    evidence(t, a, &ev, device, &common);

    // Activity around the alert on the same device, by the same account, to the same addresses.
    let Some(d) = device else {
        if !user.is_null() {
            identity_logons(t, rng, report, &ev, &user, at);
        }
        return;
    };
    let around = Around {
        at,
        ev: &ev,
        device: d,
        dev_id: d["mdeDeviceId"].as_str().unwrap_or(""),
        dev_name: d["deviceDnsName"].as_str().unwrap_or(""),
        user: &user,
    };
    process_and_file(t, rng, report, &around);
    surroundings(t, rng, report, ds, &around);
}

/// One AlertEvidence row per evidence item.
fn evidence(t: &mut Tables, a: &Value, ev: &[Value], device: Option<&Value>, common: &Common) {
    let dev_name = device.and_then(|d| d["deviceDnsName"].as_str()).unwrap_or("");
    let dev_id = device.and_then(|d| d["mdeDeviceId"].as_str()).unwrap_or("");
    let local_ip = device.and_then(|d| d["ipInterfaces"][0].as_str()).unwrap_or("");
    for x in ev {
        let kind = x["@odata.type"]
            .as_str()
            .unwrap_or("")
            .trim_start_matches("#microsoft.graph.security.");
        let mut r = common.to_vec();
        r.push(("Categories", s(&format!("[\"{}\"]", a["category"].as_str().unwrap_or("")))));
        r.push((
            "EvidenceRole",
            s(if x["roles"].as_array().is_some_and(|v| !v.is_empty()) {
                "Impacted"
            } else {
                "Related"
            }),
        ));
        r.push(("AdditionalFields", KV::Dyn(serde_json::json!({"Verdict": x["verdict"]}))));
        let entity = match kind {
            "deviceEvidence" => {
                r.extend([
                    ("DeviceId", js(&x["mdeDeviceId"])),
                    ("DeviceName", js(&x["deviceDnsName"])),
                    ("LocalIP", s(local_ip)),
                ]);
                "Machine"
            }
            "fileEvidence" => {
                let f = &x["fileDetails"];
                r.extend([
                    ("FileName", js(&f["fileName"])),
                    ("FolderPath", js(&f["filePath"])),
                    ("SHA1", js(&f["sha1"])),
                    ("SHA256", js(&f["sha256"])),
                    ("FileSize", js(&f["fileSize"])),
                    ("DeviceId", s(dev_id)),
                    ("DeviceName", s(dev_name)),
                ]);
                "File"
            }
            "processEvidence" => {
                let f = &x["imageFile"];
                let u = &x["userAccount"];
                r.extend([
                    ("FileName", js(&f["fileName"])),
                    ("FolderPath", js(&f["filePath"])),
                    ("SHA1", js(&f["sha1"])),
                    ("SHA256", js(&f["sha256"])),
                    ("ProcessCommandLine", js(&x["processCommandLine"])),
                    ("AccountName", js(&u["accountName"])),
                    ("AccountDomain", js(&u["domainName"])),
                    ("AccountUpn", js(&u["userPrincipalName"])),
                    ("DeviceId", s(dev_id)),
                    ("DeviceName", s(dev_name)),
                ]);
                "Process"
            }
            "userEvidence" | "mailboxEvidence" => {
                let u = &x["userAccount"];
                r.extend([
                    ("AccountName", js(&u["accountName"])),
                    ("AccountDomain", js(&u["domainName"])),
                    ("AccountSid", js(&u["userSid"])),
                    ("AccountObjectId", js(&u["azureAdUserId"])),
                    ("AccountUpn", js(&u["userPrincipalName"])),
                ]);
                if kind == "mailboxEvidence" { "Mailbox" } else { "User" }
            }
            "ipEvidence" => {
                r.push(("RemoteIP", js(&x["ipAddress"])));
                r.push(("EvidenceDirection", s("Destination")));
                "Ip"
            }
            "urlEvidence" => {
                r.push(("RemoteUrl", js(&x["url"])));
                "Url"
            }
            other => other,
        };
        r.push(("EntityType", s(entity)));
        t.push("AlertEvidence", &r);
    }
}

/// Sign-ins from an alert's addresses when the alert names a user but no device.
fn identity_logons(t: &mut Tables, rng: &mut Rng, report: &mut i64, ev: &[Value], user: &Value, at: DateTime<Utc>) {
    for ip in ev.iter().filter_map(|x| x["ipAddress"].as_str()) {
        *report += 1;
        let ok = rng.below(3) > 0;
        t.push(
            "IdentityLogonEvents",
            &[
                ("Timestamp", KV::Date(at - Duration::minutes(rng.below(30) as i64 + 1))),
                ("ActionType", s(if ok { "LogonSuccess" } else { "LogonFailed" })),
                ("Application", s("Microsoft Online")),
                ("LogonType", s("Login:login")),
                ("Protocol", s("OAuth2")),
                ("FailureReason", s(if ok { "" } else { "InvalidUserNameOrPassword" })),
                ("AccountName", js(&user["accountName"])),
                ("AccountDomain", s("contoso-demo.onmicrosoft.com")),
                ("AccountUpn", js(&user["userPrincipalName"])),
                ("AccountSid", js(&user["userSid"])),
                ("AccountObjectId", js(&user["azureAdUserId"])),
                ("AccountDisplayName", js(&user["displayName"])),
                ("IPAddress", s(ip)),
                ("Port", KV::Long(0)),
                ("Location", s("")),
                ("ReportId", s(&format!("{report}"))),
                ("AdditionalFields", KV::Dyn(serde_json::json!({}))),
            ],
        );
    }
}

/// An alert with a device: where, when and by whom the activity around it happened.
struct Around<'a> {
    at: DateTime<Utc>,
    ev: &'a [Value],
    device: &'a Value,
    dev_id: &'a str,
    dev_name: &'a str,
    user: &'a Value,
}

/// The alert's own process, and its file arriving on the device shortly before the alert, written by the alert's
/// process (if any).
fn process_and_file(t: &mut Tables, rng: &mut Rng, report: &mut i64, around: &Around) {
    let Around {
        at,
        ev,
        dev_id,
        dev_name,
        user,
        ..
    } = *around;
    let acct = |k: &str| js(&user[k]);
    if let Some(p) = ev.iter().find(|x| x["@odata.type"] == "#microsoft.graph.security.processEvidence") {
        *report += 1;
        let f = &p["imageFile"];
        t.push(
            "DeviceProcessEvents",
            &[
                ("Timestamp", KV::Date(at - Duration::seconds(30))),
                ("DeviceId", s(dev_id)),
                ("DeviceName", s(dev_name)),
                ("ActionType", s("ProcessCreated")),
                ("FileName", js(&f["fileName"])),
                ("FolderPath", js(&f["filePath"])),
                ("SHA1", js(&f["sha1"])),
                ("SHA256", js(&f["sha256"])),
                ("FileSize", js(&f["fileSize"])),
                ("ProcessId", js(&p["processId"])),
                ("ProcessCommandLine", js(&p["processCommandLine"])),
                ("ProcessIntegrityLevel", s("High")),
                ("ProcessTokenElevation", s("TokenElevationTypeFull")),
                ("ProcessCreationTime", date(&p["processCreationDateTime"])),
                ("AccountDomain", acct("domainName")),
                ("AccountName", acct("accountName")),
                ("AccountSid", acct("userSid")),
                ("AccountUpn", acct("userPrincipalName")),
                ("AccountObjectId", acct("azureAdUserId")),
                ("InitiatingProcessFileName", s("explorer.exe")),
                ("InitiatingProcessFolderPath", s("C:\\Windows")),
                ("InitiatingProcessId", js(&p["parentProcessId"])),
                ("InitiatingProcessAccountName", acct("accountName")),
                ("InitiatingProcessAccountDomain", acct("domainName")),
                ("ReportId", KV::Long(*report)),
            ],
        );
    }
    // The alert's file arrives on the device shortly before the alert, written by the alert's process (if any).
    if let Some(fe) = ev.iter().find(|x| x["@odata.type"] == "#microsoft.graph.security.fileEvidence") {
        *report += 1;
        let f = &fe["fileDetails"];
        let p = ev.iter().find(|x| x["@odata.type"] == "#microsoft.graph.security.processEvidence");
        let url = ev.iter().find_map(|x| x["url"].as_str()).unwrap_or("");
        t.push(
            "DeviceFileEvents",
            &[
                ("Timestamp", KV::Date(at - Duration::minutes(2 + rng.below(30) as i64))),
                ("DeviceId", s(dev_id)),
                ("DeviceName", s(dev_name)),
                ("ActionType", s("FileCreated")),
                ("FileName", js(&f["fileName"])),
                ("FolderPath", js(&f["filePath"])),
                ("SHA1", js(&f["sha1"])),
                ("SHA256", js(&f["sha256"])),
                ("FileSize", js(&f["fileSize"])),
                ("FileOriginUrl", s(url)),
                ("InitiatingProcessAccountDomain", acct("domainName")),
                ("InitiatingProcessAccountName", acct("accountName")),
                ("InitiatingProcessAccountSid", acct("userSid")),
                ("InitiatingProcessAccountUpn", acct("userPrincipalName")),
                (
                    "InitiatingProcessFileName",
                    s(if p.is_some() { "powershell.exe" } else { "explorer.exe" }),
                ),
                ("InitiatingProcessFolderPath", s("C:\\Windows\\System32")),
                ("InitiatingProcessId", KV::Long(500 + rng.below(20000) as i64)),
                (
                    "InitiatingProcessCommandLine",
                    p.map_or_else(|| s("explorer.exe"), |p| js(&p["processCommandLine"])),
                ),
                ("ReportId", KV::Long(*report)),
            ],
        );
    }
}

/// Ordinary processes on the device, its connections to the alert's addresses, and the user's logon.
fn surroundings(t: &mut Tables, rng: &mut Rng, report: &mut i64, ds: &Dataset, around: &Around) {
    let Around {
        at,
        ev,
        device: d,
        dev_id,
        dev_name,
        user,
    } = *around;
    let e = &ds.entities;
    let acct = |k: &str| js(&user[k]);
    for (name, folder, cmd) in BENIGN.iter().take(1 + rng.below(3) as usize) {
        *report += 1;
        t.push(
            "DeviceProcessEvents",
            &[
                ("Timestamp", KV::Date(at - Duration::minutes(rng.below(120) as i64 + 1))),
                ("DeviceId", s(dev_id)),
                ("DeviceName", s(dev_name)),
                ("ActionType", s("ProcessCreated")),
                ("FileName", s(name)),
                ("FolderPath", s(folder)),
                ("ProcessId", KV::Long(500 + rng.below(20000) as i64)),
                ("ProcessCommandLine", s(cmd)),
                ("AccountName", acct("accountName")),
                ("AccountDomain", acct("domainName")),
                ("InitiatingProcessFileName", s("services.exe")),
                ("ReportId", KV::Long(*report)),
            ],
        );
    }
    for ip in ev.iter().filter_map(|x| x["ipAddress"].as_str()) {
        *report += 1;
        t.push(
            "DeviceNetworkEvents",
            &[
                ("Timestamp", KV::Date(at - Duration::seconds(10 + rng.below(600) as i64))),
                ("DeviceId", s(dev_id)),
                ("DeviceName", s(dev_name)),
                (
                    "ActionType",
                    s(if rng.below(5) == 0 {
                        "ConnectionFailed"
                    } else {
                        "ConnectionSuccess"
                    }),
                ),
                ("RemoteIP", s(ip)),
                ("RemotePort", KV::Long(*rng.pick(&[443, 80, 8443, 445, 3389]))),
                ("LocalIP", s(d["ipInterfaces"][0].as_str().unwrap_or(""))),
                ("LocalPort", KV::Long(49152 + rng.below(16000) as i64)),
                ("Protocol", s("Tcp")),
                ("RemoteIPType", s("Public")),
                ("LocalIPType", s("Private")),
                ("InitiatingProcessFileName", s("powershell.exe")),
                ("InitiatingProcessAccountName", acct("accountName")),
                ("ReportId", KV::Long(*report)),
            ],
        );
    }
    if !user.is_null() {
        *report += 1;
        let ok = rng.below(4) > 0;
        t.push(
            "DeviceLogonEvents",
            &[
                ("Timestamp", KV::Date(at - Duration::minutes(rng.below(240) as i64 + 5))),
                ("DeviceId", s(dev_id)),
                ("DeviceName", s(dev_name)),
                ("ActionType", s(if ok { "LogonSuccess" } else { "LogonFailed" })),
                (
                    "LogonType",
                    s(rng.pick::<&str>(&["Interactive", "RemoteInteractive", "Network", "Unlock"])),
                ),
                ("AccountDomain", acct("domainName")),
                ("AccountName", acct("accountName")),
                ("AccountSid", acct("userSid")),
                ("Protocol", s("Kerberos")),
                ("FailureReason", s(if ok { "" } else { "InvalidUserNameOrPassword" })),
                ("IsLocalAdmin", KV::Bool(rng.below(5) == 0)),
                ("LogonId", KV::Long(rng.below(1_000_000) as i64)),
                ("RemoteIP", s(e.ips[rng.below(e.ips.len() as u64) as usize].address.as_str())),
                ("RemoteIPType", s("Public")),
                ("ReportId", KV::Long(*report)),
            ],
        );
    }
}
