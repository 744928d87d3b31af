//! Defender for Identity response actions (`POST /security/identities/identityAccounts/{id}/invokeAction`):
//! disable or enable an account, force a password reset, revoke its sessions, require it to sign in again, mark it
//! compromised. [`plan`] finds the account (by id, security identifier or display name), chooses the identity
//! provider the action applies to (given, or the first of the account's identities that allows it) and says what
//! would be sent; an action whose result is already the account's state (disabling a disabled account) is reported
//! as such and nothing is sent. [`invoke`] sends a plan.

use crate::QueryProvider;
use crate::error::{Error, Result};
use serde_json::{Value, json};

/// The actions Graph documents, as the service names them.
pub const ACTIONS: &[&str] = &[
    "disable",
    "enable",
    "forcePasswordReset",
    "revokeAllSessions",
    "requireUserToSignInAgain",
    "markUserAsCompromised",
];
/// The identity providers Graph documents.
pub const PROVIDERS: &[&str] = &["entraID", "activeDirectory", "okta"];

const ACCOUNTS: &str = "/security/identities/identityAccounts";

/// What an action would do, or why nothing needs doing.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[non_exhaustive]
pub struct Plan {
    /// The identity account's id.
    pub account: String,
    /// Its display name.
    pub display_name: String,
    /// The action.
    pub action: String,
    /// The identity provider it goes to.
    pub identity_provider: String,
    /// The account's identifier with that provider (`accountId` of the request).
    pub account_id: String,
    /// Set when the account is already in the state the action would bring (nothing is sent).
    pub already: Option<String>,
    /// The request, as text.
    pub request: String,
}

fn usage(m: String) -> Error {
    Error::Query { message: m }
}

/// Finds the account and plans `action` (`provider`: an identity provider, else inferred).
pub async fn plan(p: &QueryProvider, account: &str, action: &str, provider: Option<&str>) -> Result<Plan> {
    let action = ACTIONS
        .iter()
        .find(|a| a.eq_ignore_ascii_case(action))
        .ok_or_else(|| usage(format!("'{action}' is not an identity action: one of {}", ACTIONS.join(", "))))?;
    if let Some(pv) = provider
        && !PROVIDERS.iter().any(|x| x.eq_ignore_ascii_case(pv))
    {
        return Err(usage(format!(
            "'{pv}' is not an identity provider: one of {}",
            PROVIDERS.join(", ")
        )));
    }
    let enc = crate::graph::segment(account);
    let acct = match p.get(&format!("{ACCOUNTS}/{enc}")).await {
        Ok(v) => v,
        Err(e) if e.http_status() == Some(404) => find(p, account).await?,
        Err(e) => return Err(e),
    };
    let identities = acct["accounts"].as_array().cloned().unwrap_or_default();
    let chosen = identities
        .iter()
        .filter(|i| provider.is_none_or(|pv| i["identityProvider"].as_str().is_some_and(|x| x.eq_ignore_ascii_case(pv))))
        .find(|i| {
            i["actions"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x.as_str() == Some(action)))
        })
        .ok_or_else(|| {
            let offered: Vec<String> = identities
                .iter()
                .map(|i| {
                    format!(
                        "{}: {}",
                        i["identityProvider"].as_str().unwrap_or("?"),
                        i["actions"]
                            .as_array()
                            .map(|a| a.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>().join(", "))
                            .unwrap_or_default()
                    )
                })
                .collect();
            usage(format!(
                "the account offers no identity{} that allows {action} ({})",
                provider.map(|p| format!(" with provider {p}")).unwrap_or_default(),
                offered.join("; ")
            ))
        })?;
    let id = acct["id"].as_str().unwrap_or(account).to_string();
    let enabled = acct["isEnabled"].as_bool();
    let already = match (*action, enabled) {
        ("disable", Some(false)) => Some("the account is already disabled".to_string()),
        ("enable", Some(true)) => Some("the account is already enabled".to_string()),
        _ => None,
    };
    let body = json!({"accountId": chosen["identifier"], "action": action, "identityProvider": chosen["identityProvider"]});
    Ok(Plan {
        account: id.clone(),
        display_name: acct["displayName"].as_str().unwrap_or_default().to_string(),
        action: action.to_string(),
        identity_provider: chosen["identityProvider"].as_str().unwrap_or_default().to_string(),
        account_id: chosen["identifier"].as_str().unwrap_or_default().to_string(),
        already,
        request: format!("POST {ACCOUNTS}/{id}/invokeAction {body}"),
    })
}

async fn find(p: &QueryProvider, account: &str) -> Result<Value> {
    let mut rows: Vec<crate::Row> = Vec::new();
    p.exec(ACCOUNTS, &mut rows).await?;
    rows.iter()
        .map(crate::Row::to_value)
        .find(|a| {
            ["displayName", "onPremisesSecurityIdentifier", "cloudSecurityIdentifier", "id"]
                .iter()
                .any(|k| a[*k].as_str().is_some_and(|v| v.eq_ignore_ascii_case(account)))
                || a["accounts"].as_array().is_some_and(|ids| {
                    ids.iter()
                        .any(|i| i["identifier"].as_str().is_some_and(|v| v.eq_ignore_ascii_case(account)))
                })
        })
        .ok_or_else(|| Error::Query {
            message: format!("no identity account '{account}' (give its id, security identifier or display name)"),
        })
}

/// Sends a plan's request; returns the service's `invokeActionResult`.
pub async fn invoke(p: &QueryProvider, plan: &Plan) -> Result<Value> {
    let g = p.graph();
    let url = g.url_for(&format!("{ACCOUNTS}/{}/invokeAction", crate::graph::segment(&plan.account)))?;
    let body = json!({"accountId": plan.account_id, "action": plan.action, "identityProvider": plan.identity_provider});
    g.send_json(reqwest::Method::POST, &url, Some(&body)).await
}
