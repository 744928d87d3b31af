//! The same alerts in the legacy (retired) alert shape.

use super::*;

pub(super) fn build_legacy(rng: &mut Rng, d: &Detection, f: &AlertFacts, v2: &Value, e: &Entities) -> Value {
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
