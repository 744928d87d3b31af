//! The same alerts in the legacy (retired) alert shape.

use super::*;

/// The legacy twin of the alert made from `core` (its own draws come from the alert's seed).
pub(super) fn build_legacy(core: &AlertCore, e: &Entities) -> Value {
    let mut rng = Rng::new(core.seed.wrapping_add(2));
    let rng = &mut rng;
    let d = core.detection();
    let f = &core.facts;
    let dev = &e.devices[f.device as usize % e.devices.len()];
    let user = &e.users[f.user as usize % e.users.len()];
    let file = &e.files[f.file as usize % e.files.len()];
    let ip = |n: usize| &e.ips[f.ips[n] as usize % e.ips.len()];
    let has = |k: Ev| d.evidence.contains(&k);
    let status = match core.status() {
        "new" => "newAlert",
        s => s,
    };
    let feedback = match core.classification() {
        "truePositive" => json!("truePositive"),
        "falsePositive" => json!("falsePositive"),
        "informationalExpectedActivity" => json!("benignPositive"),
        _ => Value::Null,
    };
    let first_activity = graph_time(core.first_activity());
    let user_states = if has(Ev::User) || has(Ev::Process) {
        json!([{"aadUserId": user.aad_id, "accountName": user.account, "domainName": user.domain, "emailRole": "unknown", "isVpn": null, "logonDateTime": first_activity, "logonId": null, "logonIp": ip(0).address, "logonLocation": null, "logonType": null, "onPremisesSecurityIdentifier": user.sid, "riskScore": null, "userAccountType": null, "userPrincipalName": user.upn}])
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
            ip(0).address.clone()
        };
        let dst = ip(1);
        json!([{"applicationName": null, "destinationAddress": dst.address, "destinationDomain": null, "destinationLocation": dst.country, "destinationPort": "443", "destinationUrl": if has(Ev::Url) { json!(e.urls[f.url as usize % e.urls.len()]) } else { Value::Null }, "direction": "outbound", "domainRegisteredDateTime": null, "localDnsName": null, "natDestinationAddress": null, "natDestinationPort": null, "natSourceAddress": null, "natSourcePort": null, "protocol": "tcp", "riskScore": null, "sourceAddress": src, "sourceLocation": null, "sourcePort": (49152 + rng.below(16000)).to_string(), "status": "open", "urlParameters": null}])
    } else {
        json!([])
    };
    let processes = if has(Ev::Process) {
        json!([{"accountName": format!("{}\\{}", user.domain, user.account), "commandLine": command_line(d, file), "createdDateTime": first_activity, "fileHash": {"hashType": "sha256", "hashValue": file.sha256}, "integrityLevel": "high", "isElevated": true, "name": file.name, "parentProcessCreatedDateTime": null, "parentProcessId": 612, "parentProcessName": "explorer.exe", "path": format!("{}\\{}", file.path, file.name), "processId": 4000 + rng.below(20000)}])
    } else {
        json!([])
    };
    let id = legacy_id(core);
    json!({
        "id": id,
        "activityGroupName": null,
        "assignedTo": core.assigned_to(),
        "azureSubscriptionId": null,
        "azureTenantId": e.tenant_id,
        "category": d.category,
        "closedDateTime": core.resolved().map(graph_time),
        "cloudAppStates": [],
        "comments": [],
        "confidence": 50 + rng.below(50),
        "createdDateTime": graph_time(f.created),
        "description": d.description,
        "detectionIds": [],
        "eventDateTime": first_activity,
        "feedback": feedback,
        "fileStates": file_states,
        "historyStates": [],
        "hostStates": host_states,
        "incidentIds": [core.incident.to_string()],
        "lastModifiedDateTime": graph_time(core.last_update),
        "malwareStates": [],
        "networkConnections": network,
        "processes": processes,
        "recommendedActions": [],
        "registryKeyStates": [],
        "securityResources": [],
        "severity": core.severity(),
        "sourceMaterials": [core.web_url(&e.tenant_id)],
        "status": status,
        "tags": [],
        "title": d.title,
        "triggers": [],
        "userStates": user_states,
        "vendorInformation": {"provider": d.product, "providerVersion": "3.0", "subProvider": d.detection, "vendor": "Microsoft"},
        "vulnerabilityStates": [],
    })
}

/// The legacy alert's id (a GUID in upper case, drawn from the alert's seed on its own).
pub(super) fn legacy_id(core: &AlertCore) -> String {
    Rng::new(core.seed.wrapping_add(3)).guid().to_uppercase()
}

/// The named top-level properties of the legacy twin that can be read without building it.
pub(super) fn legacy_property(core: &AlertCore, name: &str) -> Option<Value> {
    Some(match name {
        "id" => json!(legacy_id(core)),
        "lastModifiedDateTime" => json!(graph_time(core.last_update)),
        "createdDateTime" => json!(graph_time(core.facts.created)),
        _ => return None,
    })
}
