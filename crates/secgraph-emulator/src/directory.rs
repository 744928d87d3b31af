//! The seeded directory: tenants and the applications registered in them.

/// Tenant id of the demo tenant (also written by `--write-config`).
pub const DEMO_TENANT_ID: &str = "8f3b9a52-6c1d-4e2f-9a7b-0c5d3e1f2a4b";
/// Domain of the demo tenant; token requests may name the tenant by id or by this domain.
pub const DEMO_TENANT_DOMAIN: &str = "contoso-demo.onmicrosoft.com";
/// Client id of the demo app, granted every security read and write role.
pub const DEMO_CLIENT_ID: &str = "5d2f1c3b-8a7e-4b6d-9c0f-1e2a3b4c5d6e";
/// Client secret of the demo app. It is demo data, public by design: it opens only this emulator.
pub const DEMO_CLIENT_SECRET: &str = "demo-secret-for-the-local-emulator-only";
/// Client id of an app with a valid secret but no granted roles (tokens work, Graph answers 403).
pub const NO_ROLES_CLIENT_ID: &str = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
/// Second seeded tenant, for multi-tenant set-ups.
pub const SECOND_TENANT_ID: &str = "2b7e4c91-3d5a-4f6e-8b1c-7a9d0e2f4c6b";
/// Client id of the app registered in the second tenant.
pub const SECOND_CLIENT_ID: &str = "7c4e2a19-5b3d-4c8f-a6e1-2d9b0f7c3e5a";

/// Application roles a fully privileged app is granted.
pub const ALL_SECURITY_ROLES: &[&str] = &[
    "SecurityAlert.ReadWrite.All",
    "SecurityIncident.ReadWrite.All",
    "SecurityEvents.ReadWrite.All",
    "ThreatHunting.Read.All",
];

#[derive(Debug, Clone)]
pub struct Tenant {
    pub id: String,
    pub domain: String,
    pub apps: Vec<App>,
}

#[derive(Clone)]
pub struct App {
    pub client_id: String,
    pub display_name: String,
    pub object_id: String,
    pub secret: String,
    pub roles: Vec<String>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("client_id", &self.client_id)
            .field("display_name", &self.display_name)
            .field("secret", &"<redacted>")
            .field("roles", &self.roles)
            .finish()
    }
}

/// All tenants the emulator knows.
#[derive(Debug, Clone)]
pub struct Directory {
    pub tenants: Vec<Tenant>,
}

impl Default for Directory {
    fn default() -> Self {
        let roles: Vec<String> = ALL_SECURITY_ROLES.iter().map(|s| s.to_string()).collect();
        Directory {
            tenants: vec![
                Tenant {
                    id: DEMO_TENANT_ID.into(),
                    domain: DEMO_TENANT_DOMAIN.into(),
                    apps: vec![
                        App {
                            client_id: DEMO_CLIENT_ID.into(),
                            display_name: "secgraph demo".into(),
                            object_id: "3e9c1a7b-2f4d-4b8e-a5c6-7d1e0f9a2b3c".into(),
                            secret: DEMO_CLIENT_SECRET.into(),
                            roles: roles.clone(),
                        },
                        App {
                            client_id: NO_ROLES_CLIENT_ID.into(),
                            display_name: "unconsented app".into(),
                            object_id: "6f2a8c4e-1b3d-4e5f-9a7b-8c0d2e4f6a1b".into(),
                            secret: "no-roles-secret".into(),
                            roles: vec![],
                        },
                    ],
                },
                Tenant {
                    id: SECOND_TENANT_ID.into(),
                    domain: "fabrikam-demo.onmicrosoft.com".into(),
                    apps: vec![App {
                        client_id: SECOND_CLIENT_ID.into(),
                        display_name: "secgraph demo (fabrikam)".into(),
                        object_id: "9d1f3b5a-7c2e-4a6b-8e0d-1f3a5c7e9b2d".into(),
                        secret: "fabrikam-demo-secret".into(),
                        roles,
                    }],
                },
            ],
        }
    }
}

impl Directory {
    /// Finds a tenant by id or domain (case-insensitive, as Entra does).
    pub fn tenant(&self, id_or_domain: &str) -> Option<&Tenant> {
        self.tenants
            .iter()
            .find(|t| t.id.eq_ignore_ascii_case(id_or_domain) || t.domain.eq_ignore_ascii_case(id_or_domain))
    }
}

impl Tenant {
    pub fn app(&self, client_id: &str) -> Option<&App> {
        self.apps.iter().find(|a| a.client_id.eq_ignore_ascii_case(client_id))
    }
}
