//! Azure clouds: the login authority, the Graph root and resource, and the Key Vault DNS suffix of each national
//! cloud, or of a custom cloud read from its Resource Manager metadata document.

use crate::error::{Error, Result};
use serde_json::Value;
use url::Url;

/// The endpoints of one cloud.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cloud {
    /// A short name: `global`, `usgov`, `dod`, `cn`, `de`, or the custom cloud's name.
    pub name: String,
    /// Entra authority host, e.g. `https://login.microsoftonline.com/`.
    pub authority_host: Url,
    /// Graph root without version, e.g. `https://graph.microsoft.com/`.
    pub graph_root: Url,
    /// Key Vault DNS suffix, e.g. `vault.azure.net`.
    pub keyvault_dns: String,
}

fn url(s: &str) -> Url {
    // Only called on the constant strings below.
    Url::parse(s).unwrap_or_else(|_| unreachable!("constant URL {s} parses"))
}

impl Cloud {
    /// A national cloud by msticpy's name (`global`/`public`, `usgov`, `dod`, `cn`/`china`, `de`/`germany`).
    pub fn named(name: &str) -> Result<Cloud> {
        let (n, login, graph, kv) = match name.to_ascii_lowercase().as_str() {
            "global" | "public" | "azurecloud" => (
                "global",
                "https://login.microsoftonline.com/",
                "https://graph.microsoft.com/",
                "vault.azure.net",
            ),
            "usgov" | "gov" | "azureusgovernment" => (
                "usgov",
                "https://login.microsoftonline.us/",
                "https://graph.microsoft.us/",
                "vault.usgovcloudapi.net",
            ),
            "dod" | "usgovdod" => (
                "dod",
                "https://login.microsoftonline.us/",
                "https://dod-graph.microsoft.us/",
                "vault.usgovcloudapi.net",
            ),
            "cn" | "china" | "azurechinacloud" => (
                "cn",
                "https://login.chinacloudapi.cn/",
                "https://microsoftgraph.chinacloudapi.cn/",
                "vault.azure.cn",
            ),
            "de" | "germany" | "azuregermancloud" => (
                "de",
                "https://login.microsoftonline.de/",
                "https://graph.microsoft.de/",
                "vault.microsoftazure.de",
            ),
            other => {
                return Err(Error::Setting {
                    origin: "settings".into(),
                    setting: "Azure.cloud".into(),
                    message: format!(
                        "unknown cloud '{other}'; expected global, usgov, dod, cn or de (or set Azure.resource_manager_url for a custom cloud)"
                    ),
                });
            }
        };
        Ok(Cloud {
            name: n.into(),
            authority_host: url(login),
            graph_root: url(graph),
            keyvault_dns: kv.into(),
        })
    }

    /// The Graph resource identifier used in token scopes: the root without its trailing slash.
    pub fn graph_resource(&self) -> String {
        self.graph_root.as_str().trim_end_matches('/').to_string()
    }

    /// The `/.default` scope for app-only Graph tokens.
    pub fn graph_scope(&self) -> String {
        format!("{}/.default", self.graph_resource())
    }

    /// Reads Azure Resource Manager's `/metadata/endpoints` document (one cloud object, or a list of them from
    /// which the one whose `resourceManager` matches `resource_manager_url` — else the first — is taken).
    pub fn from_arm_metadata(doc: &Value, resource_manager_url: &str) -> Result<Cloud> {
        let bad = |m: String| Error::Response {
            url: resource_manager_url.to_string(),
            message: format!("cloud metadata: {m}"),
        };
        let cloud = match doc {
            Value::Array(list) => {
                let want = resource_manager_url.trim_end_matches('/');
                list.iter()
                    .find(|c| c.get("resourceManager").and_then(Value::as_str).map(|s| s.trim_end_matches('/')) == Some(want))
                    .or_else(|| list.first())
                    .ok_or_else(|| bad("the list of clouds is empty".into()))?
            }
            Value::Object(_) => doc,
            _ => return Err(bad("expected a JSON object or list".into())),
        };
        let get = |path: &[&str]| -> Result<String> {
            let mut cur = cloud;
            for p in path {
                cur = cur.get(*p).ok_or_else(|| bad(format!("missing {}", path.join("."))))?;
            }
            cur.as_str()
                .map(str::to_string)
                .ok_or_else(|| bad(format!("{} is not a string", path.join("."))))
        };
        let parse = |what: &str, s: String| -> Result<Url> {
            let s = if s.ends_with('/') { s } else { format!("{s}/") };
            let u = Url::parse(&s).map_err(|e| bad(format!("{what} '{s}' is not a URL: {e}")))?;
            if u.scheme() != "https" {
                return Err(bad(format!("{what} '{s}' is not https")));
            }
            Ok(u)
        };
        Ok(Cloud {
            name: get(&["name"]).unwrap_or_else(|_| "custom".into()),
            authority_host: parse("authentication.loginEndpoint", get(&["authentication", "loginEndpoint"])?)?,
            graph_root: parse("microsoftGraphResourceId", get(&["microsoftGraphResourceId"])?)?,
            keyvault_dns: get(&["suffixes", "keyVaultDns"])
                .unwrap_or_default()
                .trim_start_matches('.')
                .to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn national_clouds_have_their_own_hosts() {
        let cases = [
            (
                "global",
                "https://login.microsoftonline.com/",
                "https://graph.microsoft.com/.default",
                "vault.azure.net",
            ),
            (
                "usgov",
                "https://login.microsoftonline.us/",
                "https://graph.microsoft.us/.default",
                "vault.usgovcloudapi.net",
            ),
            (
                "dod",
                "https://login.microsoftonline.us/",
                "https://dod-graph.microsoft.us/.default",
                "vault.usgovcloudapi.net",
            ),
            (
                "cn",
                "https://login.chinacloudapi.cn/",
                "https://microsoftgraph.chinacloudapi.cn/.default",
                "vault.azure.cn",
            ),
            (
                "de",
                "https://login.microsoftonline.de/",
                "https://graph.microsoft.de/.default",
                "vault.microsoftazure.de",
            ),
        ];
        for (name, login, scope, kv) in cases {
            let c = Cloud::named(name).unwrap();
            assert_eq!(c.authority_host.as_str(), login, "{name}");
            assert_eq!(c.graph_scope(), scope, "{name}");
            assert_eq!(c.keyvault_dns, kv, "{name}");
        }
        let e = Cloud::named("mars").unwrap_err().to_string();
        assert!(e.contains("unknown cloud 'mars'"), "{e}");
    }

    #[test]
    fn arm_metadata_list_picks_matching_cloud() {
        let doc = serde_json::json!([
            {"name": "Other", "resourceManager": "https://other/", "authentication": {"loginEndpoint": "https://login.other"}, "microsoftGraphResourceId": "https://graph.other/", "suffixes": {"keyVaultDns": ".vault.other"}},
            {"name": "Mine", "resourceManager": "https://rm.example/", "authentication": {"loginEndpoint": "https://login.example"}, "microsoftGraphResourceId": "https://graph.example", "suffixes": {"keyVaultDns": "vault.example"}}
        ]);
        let c = Cloud::from_arm_metadata(&doc, "https://rm.example").unwrap();
        assert_eq!(c.name, "Mine");
        assert_eq!(c.authority_host.as_str(), "https://login.example/");
        assert_eq!(c.graph_scope(), "https://graph.example/.default");
        let e = Cloud::from_arm_metadata(&serde_json::json!({"name": "x"}), "https://rm")
            .unwrap_err()
            .to_string();
        assert!(e.contains("authentication.loginEndpoint"), "{e}");
    }
}
