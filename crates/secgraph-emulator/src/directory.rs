//! The seeded directory: tenants, the users who can sign in to them, and the applications registered in them.
//! The defaults below are the demo data; a YAML file can replace them (`secgraph emulator --directory FILE`).

use base64::Engine;
use serde::Deserialize;
use sha2::Digest;

/// Tenant id of the demo tenant (also written by `--write-config`).
pub const DEMO_TENANT_ID: &str = "8f3b9a52-6c1d-4e2f-9a7b-0c5d3e1f2a4b";
/// Domain of the demo tenant; requests may name the tenant by id or by this domain.
pub const DEMO_TENANT_DOMAIN: &str = "contoso-demo.onmicrosoft.com";
/// Client id of the demo app: every security role, a secret and a certificate, consented delegated permissions.
pub const DEMO_CLIENT_ID: &str = "5d2f1c3b-8a7e-4b6d-9c0f-1e2a3b4c5d6e";
/// Client secret of the demo app. Demo data, public by design: it opens only this emulator.
pub const DEMO_CLIENT_SECRET: &str = "demo-secret-for-the-local-emulator-only";
/// Client id of an app with a valid secret but no granted roles (tokens work, Graph answers 403).
pub const NO_ROLES_CLIENT_ID: &str = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
/// Second seeded tenant, for multi-tenant set-ups.
pub const SECOND_TENANT_ID: &str = "2b7e4c91-3d5a-4f6e-8b1c-7a9d0e2f4c6b";
/// Client id of the app registered in the second tenant.
pub const SECOND_CLIENT_ID: &str = "7c4e2a19-5b3d-4c8f-a6e1-2d9b0f7c3e5a";
/// The demo analyst: may read and write alerts and incidents, and hunt.
pub const DEMO_ANALYST: &str = "analyst@contoso-demo.onmicrosoft.com";
/// A user who may only read alerts (incidents and hunting answer 403).
pub const DEMO_READER: &str = "reader@contoso-demo.onmicrosoft.com";

/// Client id of the MSSP's multi-tenant app (`--tenants N`): registered in the demo tenant (its home) and consented
/// in most customer tenants.
pub const MSSP_CLIENT_ID: &str = "4e8a1c6f-2b9d-4f3a-8c5e-6d7b0a1f9e2c";
/// Client secret of the MSSP app. Demo data, public by design.
pub const MSSP_CLIENT_SECRET: &str = "mssp-demo-secret-for-the-local-emulator-only";

/// Application roles a fully privileged app is granted.
pub const ALL_SECURITY_ROLES: &[&str] = &[
    "SecurityAlert.ReadWrite.All",
    "SecurityIncident.ReadWrite.All",
    "SecurityEvents.ReadWrite.All",
    "ThreatHunting.Read.All",
    "CustomDetection.ReadWrite.All",
    "ThreatIntelligence.Read.All",
    "AuditLogsQuery.Read.All",
    "SecurityIdentitiesHealth.Read.All",
    "SecurityIdentitiesSensors.Read.All",
    "SecurityIdentitiesAccount.Read.All",
    "SecurityIdentitiesActions.ReadWrite.All",
];

/// Application roles of a customer that lets the MSSP read its custom detection rules but not change them: every
/// security role, with `CustomDetection.Read.All` in place of `CustomDetection.ReadWrite.All`.
pub fn detections_read_only_roles() -> Vec<String> {
    ALL_SECURITY_ROLES
        .iter()
        .map(|r| {
            if *r == "CustomDetection.ReadWrite.All" {
                "CustomDetection.Read.All"
            } else {
                r
            }
        })
        .map(str::to_string)
        .collect()
}

/// Delegated permissions the demo apps have consent for.
pub const DELEGATED_PERMISSIONS: &[&str] = &[
    "SecurityAlert.Read.All",
    "SecurityAlert.ReadWrite.All",
    "SecurityIncident.Read.All",
    "SecurityIncident.ReadWrite.All",
    "SecurityEvents.Read.All",
    "SecurityEvents.ReadWrite.All",
    "ThreatHunting.Read.All",
    "User.Read",
];

/// A tenant: its apps and users.
#[derive(Debug, Clone)]
pub struct Tenant {
    /// Directory id (GUID).
    pub id: String,
    /// Its `*.onmicrosoft.com` domain; requests may name the tenant by it.
    pub domain: String,
    /// Registered apps.
    pub apps: Vec<App>,
    /// Users who can sign in.
    pub users: Vec<User>,
    /// Whether the tenant has a Defender Threat Intelligence licence (`/security/threatIntelligence` answers 403
    /// without one).
    pub threat_intel: bool,
}

/// A user who can sign in (no password: the emulator's sign-in page just picks a user).
#[derive(Debug, Clone)]
pub struct User {
    /// User principal name.
    pub upn: String,
    /// Display name.
    pub display_name: String,
    /// Object id.
    pub object_id: String,
    /// What the user's directory roles allow, as permission names; a delegated token can do no more than this.
    pub permissions: Vec<String>,
}

/// A certificate registered on an app, with the thumbprints clients put in `x5t` / `x5t#S256`.
#[derive(Debug, Clone)]
pub struct AppCertificate {
    /// The certificate's public key (PEM), to verify client assertions.
    pub public_key_pem: String,
    /// base64url SHA-1 of the DER certificate.
    pub x5t: String,
    /// base64url SHA-256 of the DER certificate.
    pub x5t_s256: String,
}

impl AppCertificate {
    /// From a PEM certificate; the public key is needed to verify client assertions.
    pub fn from_pem(cert_pem: &str) -> Result<AppCertificate, String> {
        let der = pem_body(cert_pem, "CERTIFICATE").ok_or("no CERTIFICATE block")?;
        let spki = spki_from_der(&der).ok_or("cannot find the public key in the certificate")?;
        let b64 = base64::engine::general_purpose::STANDARD.encode(spki);
        let lines: Vec<String> = b64.as_bytes().chunks(64).map(|c| String::from_utf8_lossy(c).into_owned()).collect();
        let public_key_pem = format!("-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n", lines.join("\n"));
        Ok(AppCertificate {
            public_key_pem,
            x5t: b64url(&sha1::Sha1::digest(&der)),
            x5t_s256: b64url(&sha2::Sha256::digest(&der)),
        })
    }
}

fn b64url(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

fn pem_body(pem: &str, label: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem.find(&begin)? + begin.len();
    let stop = pem[start..].find(&end)? + start;
    let b64: String = pem[start..stop].chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(b64).ok()
}

/// Reads one DER TLV header: (tag, header length, content length).
fn der_header(b: &[u8]) -> Option<(u8, usize, usize)> {
    let tag = *b.first()?;
    let l0 = *b.get(1)? as usize;
    if l0 < 0x80 {
        return Some((tag, 2, l0));
    }
    let n = l0 & 0x7f;
    if n == 0 || n > 4 {
        return None;
    }
    let mut len = 0usize;
    for i in 0..n {
        len = (len << 8) | *b.get(2 + i)? as usize;
    }
    Some((tag, 2 + n, len))
}

/// The SubjectPublicKeyInfo of an X.509 certificate (TBSCertificate's seventh field, or sixth without a version).
fn spki_from_der(der: &[u8]) -> Option<&[u8]> {
    let (_, h, _) = der_header(der)?; // Certificate SEQUENCE
    let tbs = der.get(h..)?;
    let (_, th, tl) = der_header(tbs)?; // TBSCertificate SEQUENCE
    let mut rest = tbs.get(th..th + tl)?;
    let mut fields = Vec::new();
    while !rest.is_empty() && fields.len() < 7 {
        let (tag, hh, l) = der_header(rest)?;
        fields.push((tag, rest.get(..hh + l)?));
        rest = rest.get(hh + l..)?;
    }
    let skip = if fields.first()?.0 == 0xa0 { 6 } else { 5 };
    fields.get(skip).map(|(_, b)| *b)
}

/// An app registration.
#[derive(Clone)]
pub struct App {
    /// Application (client) id.
    pub client_id: String,
    /// Display name.
    pub display_name: String,
    /// Object id of its service principal.
    pub object_id: String,
    /// Its client secret, if it has one.
    pub secret: Option<String>,
    /// Certificates registered for client assertions.
    pub certificates: Vec<AppCertificate>,
    /// Application permissions granted with admin consent (go into app tokens' `roles`).
    pub roles: Vec<String>,
    /// Delegated permissions consented for this app (a delegated token's `scp` is drawn from these).
    pub delegated: Vec<String>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("client_id", &self.client_id)
            .field("display_name", &self.display_name)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("certificates", &self.certificates.len())
            .field("roles", &self.roles)
            .finish()
    }
}

/// All tenants the emulator knows.
#[derive(Debug, Clone)]
pub struct Directory {
    /// The tenants.
    pub tenants: Vec<Tenant>,
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

impl Default for Directory {
    fn default() -> Self {
        let roles = strings(ALL_SECURITY_ROLES);
        let delegated = strings(DELEGATED_PERMISSIONS);
        let analyst_perms = strings(&[
            "SecurityAlert.ReadWrite.All",
            "SecurityIncident.ReadWrite.All",
            "SecurityEvents.ReadWrite.All",
            "ThreatHunting.Read.All",
            "User.Read",
        ]);
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
                            secret: Some(DEMO_CLIENT_SECRET.into()),
                            certificates: vec![],
                            roles: roles.clone(),
                            delegated: delegated.clone(),
                        },
                        App {
                            client_id: NO_ROLES_CLIENT_ID.into(),
                            display_name: "unconsented app".into(),
                            object_id: "6f2a8c4e-1b3d-4e5f-9a7b-8c0d2e4f6a1b".into(),
                            secret: Some("no-roles-secret".into()),
                            certificates: vec![],
                            roles: vec![],
                            delegated: strings(&["User.Read"]),
                        },
                    ],
                    users: vec![
                        User {
                            upn: DEMO_ANALYST.into(),
                            display_name: "Demo Analyst".into(),
                            object_id: "c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f".into(),
                            permissions: analyst_perms.clone(),
                        },
                        User {
                            upn: DEMO_READER.into(),
                            display_name: "Demo Reader".into(),
                            object_id: "d2e3f4a5-b6c7-4d8e-9f0a-1b2c3d4e5f6a".into(),
                            permissions: strings(&["SecurityAlert.Read.All", "User.Read"]),
                        },
                    ],
                    threat_intel: true,
                },
                Tenant {
                    id: SECOND_TENANT_ID.into(),
                    domain: "fabrikam-demo.onmicrosoft.com".into(),
                    apps: vec![App {
                        client_id: SECOND_CLIENT_ID.into(),
                        display_name: "secgraph demo (fabrikam)".into(),
                        object_id: "9d1f3b5a-7c2e-4a6b-8e0d-1f3a5c7e9b2d".into(),
                        secret: Some("fabrikam-demo-secret".into()),
                        certificates: vec![],
                        roles,
                        delegated,
                    }],
                    users: vec![User {
                        upn: "analyst@fabrikam-demo.onmicrosoft.com".into(),
                        display_name: "Fabrikam Analyst".into(),
                        object_id: "e3f4a5b6-c7d8-4e9f-8a1b-2c3d4e5f6a7b".into(),
                        permissions: analyst_perms,
                    }],
                    threat_intel: true,
                },
            ],
        }
    }
}

/// Whether a customer tenant consented to the MSSP app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consent {
    /// Admin consent with every security role.
    Granted,
    /// Never consented: the app has no service principal there (Entra answers AADSTS7000229).
    Missing,
    /// Consented, then the app's roles were removed: tokens are issued, Graph answers 403.
    RolesRemoved,
    /// Consented with every role but `CustomDetection.ReadWrite.All` (`CustomDetection.Read.All` instead): rules
    /// can be read, not written.
    DetectionsReadOnly,
}

/// A customer tenant of the MSSP set-up (`--tenants N`).
#[derive(Debug, Clone)]
pub struct Customer {
    /// Directory id (a GUID derived from the seed and the position).
    pub tenant_id: String,
    /// `customer-NNNN.onmicrosoft.com`.
    pub domain: String,
    /// Display name, `Customer NNNN`.
    pub name: String,
    /// Tags the tenants file gives it: `prod` or `test`, and `eu` or `us`.
    pub tags: Vec<String>,
    /// Its consent to the MSSP app.
    pub consent: Consent,
    /// Whether it has a Defender Threat Intelligence licence: every twentieth from the second (positions 1, 21, …)
    /// has none.
    pub threat_intel: bool,
}

/// `n` customer tenants, deterministic for `seed`: most consented to the MSSP app; every twentieth from the tenth
/// on (positions 9, 29, 49, …) never did, the fifth (position 4) had the app's roles removed, and every twentieth
/// from the third (positions 2, 22, …) may read custom detection rules but not write them.
pub fn customers(n: usize, seed: u64) -> Vec<Customer> {
    (0..n)
        .map(|i| {
            let h = sha2::Sha256::digest(format!("secgraph-customer/{seed}/{i}").as_bytes());
            let hex: String = h[..16].iter().map(|b| format!("{b:02x}")).collect();
            let tenant_id = format!("{}-{}-4{}-8{}-{}", &hex[..8], &hex[8..12], &hex[13..16], &hex[17..20], &hex[20..32]);
            let consent = if i % 20 == 9 {
                Consent::Missing
            } else if i == 4 {
                Consent::RolesRemoved
            } else if i % 20 == 2 {
                Consent::DetectionsReadOnly
            } else {
                Consent::Granted
            };
            Customer {
                tenant_id,
                domain: format!("customer-{:04}.onmicrosoft.com", i + 1),
                name: format!("Customer {:04}", i + 1),
                tags: vec![
                    if i % 4 == 3 { "test" } else { "prod" }.to_string(),
                    if i % 2 == 0 { "eu" } else { "us" }.to_string(),
                ],
                consent,
                threat_intel: i % 20 != 1,
            }
        })
        .collect()
}

impl Directory {
    /// Adds the MSSP app to the first tenant (its home) and a tenant per customer, with the app's service principal
    /// where the customer consented (without roles where they were removed).
    pub fn add_customers(&mut self, customers: &[Customer]) {
        let app = |roles: Vec<String>| App {
            client_id: MSSP_CLIENT_ID.into(),
            display_name: "secgraph MSSP (multi-tenant)".into(),
            object_id: uuid::Uuid::new_v4().to_string(),
            secret: Some(MSSP_CLIENT_SECRET.into()),
            certificates: vec![],
            roles,
            delegated: strings(DELEGATED_PERMISSIONS),
        };
        if let Some(home) = self.tenants.first_mut()
            && home.app(MSSP_CLIENT_ID).is_none()
        {
            home.apps.push(app(strings(ALL_SECURITY_ROLES)));
        }
        for c in customers {
            let apps = match c.consent {
                Consent::Granted => vec![app(strings(ALL_SECURITY_ROLES))],
                Consent::RolesRemoved => vec![app(vec![])],
                Consent::DetectionsReadOnly => vec![app(detections_read_only_roles())],
                Consent::Missing => vec![],
            };
            self.tenants.push(Tenant {
                id: c.tenant_id.clone(),
                domain: c.domain.clone(),
                apps,
                users: vec![],
                threat_intel: c.threat_intel,
            });
        }
    }

    /// Finds a tenant by id or domain (case-insensitive, as Entra does).
    pub fn tenant(&self, id_or_domain: &str) -> Option<&Tenant> {
        self.tenants
            .iter()
            .find(|t| t.id.eq_ignore_ascii_case(id_or_domain) || t.domain.eq_ignore_ascii_case(id_or_domain))
    }

    /// Finds an app by client id in any tenant (for `common` / `organizations` requests).
    pub fn any_app(&self, client_id: &str) -> Option<(&Tenant, &App)> {
        self.tenants.iter().find_map(|t| t.app(client_id).map(|a| (t, a)))
    }

    /// Reads a directory from YAML (see docs/EMULATOR.md for the format). Certificate files are read relative to
    /// `base`.
    pub fn from_yaml(text: &str, base: &std::path::Path) -> Result<Directory, String> {
        let spec: DirectorySpec = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
        let mut tenants = Vec::new();
        for t in spec.tenants {
            let mut apps = Vec::new();
            for a in t.apps {
                let mut certificates = Vec::new();
                for c in &a.certificates {
                    let pem = std::fs::read_to_string(base.join(c)).map_err(|e| format!("certificate {c}: {e}"))?;
                    certificates.push(AppCertificate::from_pem(&pem).map_err(|e| format!("certificate {c}: {e}"))?);
                }
                apps.push(App {
                    object_id: a.object_id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
                    client_id: a.client_id,
                    display_name: a.display_name,
                    secret: a.secret,
                    certificates,
                    roles: a.roles,
                    delegated: a.delegated,
                });
            }
            let users = t
                .users
                .into_iter()
                .map(|u| User {
                    object_id: u.object_id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
                    upn: u.upn,
                    display_name: u.display_name,
                    permissions: u.permissions,
                })
                .collect();
            tenants.push(Tenant {
                id: t.id,
                domain: t.domain,
                apps,
                users,
                threat_intel: true,
            });
        }
        if tenants.is_empty() {
            return Err("the directory has no tenants".into());
        }
        Ok(Directory { tenants })
    }
}

impl Tenant {
    /// An app by client id (any case).
    pub fn app(&self, client_id: &str) -> Option<&App> {
        self.apps.iter().find(|a| a.client_id.eq_ignore_ascii_case(client_id))
    }
    /// A user by UPN or object id (any case).
    pub fn user(&self, upn_or_oid: &str) -> Option<&User> {
        self.users
            .iter()
            .find(|u| u.upn.eq_ignore_ascii_case(upn_or_oid) || u.object_id.eq_ignore_ascii_case(upn_or_oid))
    }
}

#[derive(Deserialize)]
struct DirectorySpec {
    tenants: Vec<TenantSpec>,
}

#[derive(Deserialize)]
struct TenantSpec {
    id: String,
    domain: String,
    #[serde(default)]
    apps: Vec<AppSpec>,
    #[serde(default)]
    users: Vec<UserSpec>,
}

#[derive(Deserialize)]
struct AppSpec {
    client_id: String,
    display_name: String,
    object_id: Option<String>,
    secret: Option<String>,
    #[serde(default)]
    certificates: Vec<String>,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    delegated: Vec<String>,
}

#[derive(Deserialize)]
struct UserSpec {
    upn: String,
    display_name: String,
    object_id: Option<String>,
    #[serde(default)]
    permissions: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_public_key_is_found() {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["app".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let c = AppCertificate::from_pem(&cert.pem()).unwrap();
        assert_eq!(c.public_key_pem.replace('\n', ""), key.public_key_pem().replace('\n', ""));
        assert_eq!(c.x5t.len(), 27);
        assert_eq!(c.x5t_s256.len(), 43);
    }
}
