//! alerts_v2 alerts with their evidence.
//!
//! An alert is kept as its [`AlertCore`]: the facts every other view needs (times, status, severity, who and what
//! it is about) and a seed for the rest. Its JSON is written from the core when it is served, straight into the
//! page's buffer, so a million alerts cost tens of megabytes rather than gigabytes, and the same core always
//! writes the same bytes.

use super::jw::Obj;
use super::*;

/// What happened to an alert: status, classification and determination.
const OUTCOMES: [(&str, &str); 5] = [
    ("new", "unknown"),
    ("inProgress", "unknown"),
    ("resolved", "truePositive"),
    ("resolved", "falsePositive"),
    ("resolved", "informationalExpectedActivity"),
];
const TRUE_POSITIVE_DETERMINATIONS: [&str; 4] = ["malware", "multiStagedAttack", "compromisedAccount", "phishing"];

/// Who and when an alert is about (drawn in one pass for the whole dataset, then sorted by time).
#[derive(Debug, Clone, Copy)]
pub(super) struct AlertFacts {
    pub(super) created: DateTime<Utc>,
    pub(super) device: u16,
    pub(super) user: u16,
    pub(super) ips: [u16; 2],
    pub(super) file: u16,
    pub(super) url: u16,
}

impl AlertFacts {
    pub(super) fn draw(rng: &mut Rng, e: &Entities, created: DateTime<Utc>) -> AlertFacts {
        let mut pick = |n: usize| rng.below(n as u64) as u16;
        AlertFacts {
            created,
            device: pick(e.devices.len()),
            user: pick(e.users.len()),
            ips: [pick(e.ips.len()), pick(e.ips.len())],
            file: pick(e.files.len()),
            url: pick(e.urls.len()),
        }
    }
}

/// Everything an alert is made from. Filters, sorts, incidents and the legacy twin read these fields; the rest of
/// the alert (evidence details, detector id) comes from `seed`.
#[derive(Debug, Clone)]
pub struct AlertCore {
    pub(super) seed: u64,
    id_a: u64,
    id_b: u32,
    pub(super) facts: AlertFacts,
    pub(super) last_update: DateTime<Utc>,
    first_activity_min: u16,
    pub(super) incident: u64,
    pub(super) detection: u8,
    pub(super) severity: u8,
    outcome: u8,
    tp_determination: u8,
    assigned: Option<u8>,
}

impl AlertCore {
    /// Draws an alert's core from `rng` (one draw: the alert's own seed; the rest follows from it). Its last update
    /// falls after its creation and never after `now` (so a new alert, created `now`, was last updated `now`).
    pub(super) fn draw(rng: &mut Rng, facts: AlertFacts, incident: u64, now: DateTime<Utc>) -> AlertCore {
        let detection = rng.below(DETECTIONS.len() as u64) as u8;
        let seed = rng.next_u64();
        let mut r = Rng::new(seed);
        let id_a = r.below(1_000_000_000_000_000_000);
        let id_b = r.below(2_000_000_000) as u32;
        let first_activity_min = 5 + r.below(240) as u16;
        let last_update = (facts.created + Duration::minutes(r.below(3 * 24 * 60) as i64)).min(now);
        let severity = (r.below(10) as usize * SEVERITIES.len() / 10) as u8;
        let roll = r.below(100);
        let outcome = match roll {
            0..50 => 0,
            50..75 => 1,
            75..88 => 2,
            88..95 => 3,
            _ => 4,
        };
        let tp_determination = r.below(TRUE_POSITIVE_DETERMINATIONS.len() as u64) as u8;
        let assigned = if outcome == 0 && r.below(3) > 0 {
            None
        } else {
            Some(r.below(ANALYSTS.len() as u64) as u8)
        };
        AlertCore {
            seed,
            id_a,
            id_b,
            facts,
            last_update,
            first_activity_min,
            incident,
            detection,
            severity,
            outcome,
            tp_determination,
            assigned,
        }
    }

    /// The alert's id, as Graph spells alerts_v2 ids (`da…`).
    pub fn id(&self) -> String {
        format!("da{:018}_{}", self.id_a, -(self.id_b as i64) - 1)
    }
    pub(super) fn detection(&self) -> &'static Detection {
        &DETECTIONS[self.detection as usize % DETECTIONS.len()]
    }
    pub(super) fn status(&self) -> &'static str {
        OUTCOMES[self.outcome as usize].0
    }
    pub(super) fn classification(&self) -> &'static str {
        OUTCOMES[self.outcome as usize].1
    }
    pub(super) fn determination(&self) -> &'static str {
        match self.outcome {
            0 | 1 => "unknown",
            2 => TRUE_POSITIVE_DETERMINATIONS[self.tp_determination as usize % TRUE_POSITIVE_DETERMINATIONS.len()],
            3 => "notMalicious",
            _ => "securityTesting",
        }
    }
    pub(super) fn severity(&self) -> &'static str {
        SEVERITIES[self.severity as usize]
    }
    pub(super) fn assigned_to(&self) -> Option<&'static str> {
        self.assigned.map(|a| ANALYSTS[a as usize % ANALYSTS.len()])
    }
    pub(super) fn resolved(&self) -> Option<DateTime<Utc>> {
        (self.status() == "resolved").then_some(self.last_update)
    }
    pub(super) fn first_activity(&self) -> DateTime<Utc> {
        self.facts.created - Duration::minutes(self.first_activity_min as i64)
    }
    pub(super) fn web_url(&self, tenant: &str) -> String {
        format!("https://security.microsoft.com/alerts/{}?tid={tenant}", self.id())
    }

    /// The named top-level properties (those `$filter` and `$orderby` read), without writing the alert.
    pub(super) fn property(&self, name: &str) -> Option<Value> {
        Some(match name {
            "id" => json!(self.id()),
            "incidentId" => json!(self.incident.to_string()),
            "assignedTo" => json!(self.assigned_to()),
            "classification" => json!(self.classification()),
            "determination" => json!(self.determination()),
            "createdDateTime" => json!(graph_time(self.facts.created)),
            "lastUpdateDateTime" => json!(graph_time(self.last_update)),
            "severity" => json!(self.severity()),
            "serviceSource" => json!(self.detection().service),
            "status" => json!(self.status()),
            _ => return None,
        })
    }

    /// Writes the alert's JSON (compact, Graph's property order).
    pub(super) fn write(&self, e: &Entities, out: &mut Vec<u8>) {
        let mut rng = Rng::new(self.seed.wrapping_add(1));
        let d = self.detection();
        let f = &self.facts;
        let id = self.id();
        let incident = self.incident.to_string();
        let status = self.status();
        let classification = self.classification();
        let first_activity = self.first_activity();
        let detector = rng.guid();
        let verdict = if status == "resolved" && classification == "falsePositive" {
            "noThreatsFound"
        } else {
            "suspicious"
        };

        let mut o = Obj::new(out);
        o.str("@odata.type", "#microsoft.graph.security.alert")
            .str("id", &id)
            .str("providerAlertId", &id)
            .str("incidentId", &incident)
            .str("status", status)
            .str("severity", self.severity())
            .str("classification", classification)
            .str("determination", self.determination())
            .str("serviceSource", d.service)
            .str("detectionSource", d.detection)
            .str("productName", d.product)
            .str("detectorId", &detector)
            .str("tenantId", &e.tenant_id)
            .str("title", d.title)
            .str("description", d.description)
            .str(
                "recommendedActions",
                "Review the evidence, contain affected devices and accounts, and collect artifacts.",
            )
            .str("category", d.category)
            .opt_str("assignedTo", self.assigned_to())
            .str(
                "alertWebUrl",
                &format!("https://security.microsoft.com/alerts/{id}?tid={}", e.tenant_id),
            )
            .str(
                "incidentWebUrl",
                &format!("https://security.microsoft.com/incidents/{incident}?tid={}", e.tenant_id),
            )
            .null("actorDisplayName")
            .null("threatDisplayName")
            .null("threatFamilyName")
            .strs("mitreTechniques", d.mitre)
            .time("createdDateTime", f.created)
            .time("lastUpdateDateTime", self.last_update)
            .opt_time("resolvedDateTime", self.resolved())
            .time("firstActivityDateTime", first_activity)
            .time("lastActivityDateTime", f.created - Duration::minutes(1))
            .raw("comments", "[]")
            .raw("systemTags", "[]")
            .raw("customDetails", "{}")
            .raw("additionalData", "{}");
        self.write_evidence(e, o.key("evidence"), &mut rng, verdict);
        o.end();
    }

    /// Writes the alert's evidence array; `rng` continues the alert's own stream (process ids).
    fn write_evidence(&self, e: &Entities, out: &mut Vec<u8>, rng: &mut Rng, verdict: &str) {
        let d = self.detection();
        let f = &self.facts;
        let first_activity = self.first_activity();
        let dev = &e.devices[f.device as usize % e.devices.len()];
        let user = &e.users[f.user as usize % e.users.len()];
        let file = &e.files[f.file as usize % e.files.len()];
        out.push(b'[');
        let mut ip_n = 0;
        for (n, kind) in d.evidence.iter().enumerate() {
            if n > 0 {
                out.push(b',');
            }
            let mut ev = Obj::new(out);
            let kind_name = match kind {
                Ev::Device => "deviceEvidence",
                Ev::User => "userEvidence",
                Ev::Ip => "ipEvidence",
                Ev::File => "fileEvidence",
                Ev::Process => "processEvidence",
                Ev::Url => "urlEvidence",
                Ev::Mailbox => "mailboxEvidence",
            };
            ev.str("@odata.type", &format!("#microsoft.graph.security.{kind_name}"))
                .time("createdDateTime", f.created)
                .str("verdict", verdict)
                .str("remediationStatus", "none")
                .null("remediationStatusDetails")
                .strs("roles", if *kind == Ev::Device { &["compromised"] } else { &[] })
                .raw("detailedRoles", "[]")
                .raw("tags", "[]");
            match kind {
                Ev::Device => device_evidence(&mut ev, dev, user, f.created),
                Ev::User => {
                    ev.obj("userAccount", |o| user_account(o, user));
                }
                Ev::Ip => {
                    let ip = &e.ips[f.ips[ip_n.min(1)] as usize % e.ips.len()];
                    ip_n += 1;
                    ev.str("ipAddress", &ip.address).str("countryLetterCode", ip.country);
                }
                Ev::File => {
                    ev.str("detectionStatus", "detected")
                        .str("mdeDeviceId", &dev.mde_id)
                        .obj("fileDetails", |o| file_details(o, file));
                }
                Ev::Process => {
                    ev.num("processId", 1000 + rng.below(30000))
                        .num("parentProcessId", 600 + rng.below(3000))
                        .str("processCommandLine", &command_line(d, file))
                        .time("processCreationDateTime", first_activity)
                        .time("parentProcessCreationDateTime", first_activity - Duration::minutes(30))
                        .str("detectionStatus", "detected")
                        .str("mdeDeviceId", &dev.mde_id)
                        .obj("imageFile", |o| file_details(o, file))
                        .obj("parentProcessImageFile", |o| {
                            o.null("sha1")
                                .null("sha256")
                                .str("fileName", "explorer.exe")
                                .str("filePath", "C:\\Windows")
                                .num("fileSize", 4_984_832)
                                .str("filePublisher", "Microsoft Corporation")
                                .null("signer")
                                .null("issuer");
                        })
                        .obj("userAccount", |o| user_account(o, user));
                }
                Ev::Url => {
                    ev.str("url", &e.urls[f.url as usize % e.urls.len()]);
                }
                Ev::Mailbox => {
                    ev.str("primaryAddress", &user.upn)
                        .str("displayName", &user.display)
                        .obj("userAccount", |o| user_account(o, user));
                }
            }
            ev.end();
        }
        out.push(b']');
    }
}

/// A device evidence's own properties (the device the alert is on, `user` signed in to it).
fn device_evidence(ev: &mut Obj<'_>, dev: &Device, user: &User, created: DateTime<Utc>) {
    ev.time("firstSeenDateTime", created - Duration::days(200))
        .str("mdeDeviceId", &dev.mde_id)
        .str("azureAdDeviceId", &dev.aad_id)
        .str("deviceDnsName", &dev.fqdn)
        .str("hostName", &dev.name)
        .str("ntDomain", "CONTOSO")
        .str("dnsDomain", "contoso.local")
        .str("osPlatform", dev.os)
        .num("osBuild", 22631)
        .str("version", "23H2")
        .str("healthStatus", "active")
        .str("riskScore", "medium")
        .num("rbacGroupId", 75)
        .str("rbacGroupName", "Workstations")
        .str("onboardingStatus", "onboarded")
        .str("defenderAvStatus", "updated")
        .strs("ipInterfaces", &[&dev.private_ip]);
    let out = ev.key("loggedOnUsers");
    out.push(b'[');
    let mut u = Obj::new(out);
    u.str("accountName", &user.account).str("domainName", user.domain);
    u.end();
    out.push(b']');
    ev.null("vmMetadata");
}

fn user_account(o: &mut Obj<'_>, u: &User) {
    o.str("accountName", &u.account)
        .str("domainName", u.domain)
        .str("userSid", &u.sid)
        .str("azureAdUserId", &u.aad_id)
        .str("userPrincipalName", &u.upn)
        .str("displayName", &u.display);
}

fn file_details(o: &mut Obj<'_>, f: &FileInfo) {
    o.str("sha1", &f.sha1)
        .str("sha256", &f.sha256)
        .str("fileName", f.name)
        .str("filePath", &f.path)
        .num("fileSize", f.size)
        .null("filePublisher")
        .null("signer")
        .null("issuer");
}

pub(super) fn command_line(d: &Detection, f: &FileInfo) -> String {
    match d.category {
        "Execution" => {
            "powershell.exe -NoProfile -ExecutionPolicy Bypass -EncodedCommand SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoAZQBjAHQAKQA=".into()
        }
        "CredentialAccess" => format!("\"{}\\{}\" -accepteula -ma lsass.exe lsass.dmp", f.path, f.name),
        "LateralMovement" => format!("{} \\\\srv-it-15 -s cmd.exe /c whoami", f.name),
        _ => format!("\"{}\\{}\"", f.path, f.name),
    }
}
