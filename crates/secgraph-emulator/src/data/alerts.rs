//! alerts_v2 alerts with their evidence.

use super::*;

pub(super) fn build_alert(rng: &mut Rng, d: &Detection, f: &AlertFacts, e: &Entities, incident_id: &str, now: DateTime<Utc>) -> Value {
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

pub(super) fn merge(into: &mut Value, from: Value) {
    if let (Value::Object(a), Value::Object(b)) = (into, from) {
        a.extend(b);
    }
}

pub(super) fn user_account(u: &User) -> Value {
    json!({"accountName": u.account, "domainName": u.domain, "userSid": u.sid, "azureAdUserId": u.aad_id, "userPrincipalName": u.upn, "displayName": u.display})
}

pub(super) fn file_details(f: &FileInfo) -> Value {
    json!({"sha1": f.sha1, "sha256": f.sha256, "fileName": f.name, "filePath": f.path, "fileSize": f.size, "filePublisher": null, "signer": null, "issuer": null})
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
