//! Secure scores and their control profiles.

use super::*;

pub(super) const CONTROLS: &[(&str, &str, &str, f64)] = &[
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
pub(super) fn secure_scores(rng: &mut Rng, now: DateTime<Utc>, tenant: &str) -> (Vec<Value>, Vec<Value>) {
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
            "id": format!("{tenant}_{}", date.format("%Y-%m-%d")),
            "azureTenantId": tenant,
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
                "id": name, "azureTenantId": tenant, "actionType": "Config", "actionUrl": "https://security.microsoft.com/securescore",
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
