//! The people, machines, files, addresses and URLs the alerts are about.

use super::*;

/// A managed device (Defender for Endpoint and Entra ID).
#[derive(Debug, Clone)]
pub struct Device {
    /// Host name, e.g. `ws-fin-100`.
    pub name: String,
    /// Fully qualified name.
    pub fqdn: String,
    /// Defender for Endpoint device id.
    pub mde_id: String,
    /// Entra ID device id.
    pub aad_id: String,
    /// Address on the corporate network.
    pub private_ip: String,
    /// Address seen from the internet.
    pub public_ip: String,
    /// Operating system.
    pub os: &'static str,
}

/// A person's account.
#[derive(Debug, Clone)]
pub struct User {
    /// SAM account name.
    pub account: String,
    /// NetBIOS domain.
    pub domain: &'static str,
    /// User principal name.
    pub upn: String,
    /// Display name.
    pub display: String,
    /// Windows security identifier.
    pub sid: String,
    /// Entra ID object id.
    pub aad_id: String,
}

/// A remote address an attack used.
#[derive(Debug, Clone)]
pub struct RemoteIp {
    /// The address.
    pub address: String,
    /// Its country code.
    pub country: &'static str,
}

/// A file an alert names.
#[derive(Debug, Clone)]
pub struct FileInfo {
    /// File name.
    pub name: &'static str,
    /// Folder path.
    pub path: String,
    /// SHA-1, hex.
    pub sha1: String,
    /// SHA-256, hex.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
}

/// The entities alerts refer to; the same pools feed the hunting tables.
#[derive(Debug, Clone)]
pub struct Entities {
    /// Devices.
    pub devices: Vec<Device>,
    /// Users.
    pub users: Vec<User>,
    /// Remote addresses.
    pub ips: Vec<RemoteIp>,
    /// Files.
    pub files: Vec<FileInfo>,
    /// URLs.
    pub urls: Vec<String>,
    /// The tenant these entities (and every item made from them) belong to: the items' `tenantId`.
    pub tenant_id: String,
}

pub(super) const FIRST: &[&str] = &[
    "alex", "bianca", "chen", "dmitri", "emma", "farah", "gustavo", "hana", "ivan", "julia", "kofi", "lena", "marco", "nadia", "omar",
    "priya",
];
pub(super) const LAST: &[&str] = &[
    "walker", "rossi", "li", "petrov", "schmidt", "haddad", "silva", "sato", "novak", "garcia", "mensah", "berg", "conti", "karimi",
    "aziz", "rao",
];
pub(super) const DEPTS: &[&str] = &["fin", "hr", "eng", "ops", "sales", "it"];
pub(super) const COUNTRIES: &[&str] = &["NL", "RU", "CN", "BR", "US", "KP", "IR", "RO", "NG", "VN"];
pub(super) const FILES: &[(&str, &str)] = &[
    ("mimikatz.exe", "C:\\Users\\Public\\Downloads"),
    ("invoice_0423.docm", "C:\\Users\\{user}\\Downloads"),
    ("svchost32.exe", "C:\\ProgramData\\Microsoft\\Crypto"),
    ("payload.ps1", "C:\\Windows\\Temp"),
    ("rclone.exe", "C:\\Users\\{user}\\AppData\\Local\\Temp"),
    ("procdump64.exe", "C:\\Tools"),
    ("update_helper.dll", "C:\\ProgramData\\Updater"),
    ("locker.exe", "C:\\Users\\{user}\\AppData\\Roaming"),
    ("beacon.bin", "C:\\Windows\\Tasks"),
    ("AnyDesk.exe", "C:\\Users\\{user}\\Downloads"),
    ("psexesvc.exe", "C:\\Windows"),
    ("archive_2024.zip.exe", "C:\\Users\\{user}\\Desktop"),
];
pub(super) const URLS: &[&str] = &[
    "http://login-microsoftonline.example-phish.net/owa",
    "https://docs-share.example-cdn.org/invoice.html",
    "http://203.0.113.77/stage2.ps1",
    "https://update-check.example-c2.net/api/v2/beacon",
    "https://bit.example/3xYz9",
];

impl Entities {
    pub(super) fn generate(rng: &mut Rng) -> Entities {
        let mut devices = Vec::new();
        for i in 0..24 {
            let dept = DEPTS[i % DEPTS.len()];
            let (name, os) = if i % 8 == 7 {
                (format!("srv-{dept}-{:02}", i), "WindowsServer2022")
            } else {
                (format!("ws-{dept}-{:03}", 100 + i), "Windows11")
            };
            devices.push(Device {
                fqdn: format!("{name}.contoso.local"),
                mde_id: rng.hex(40),
                aad_id: rng.guid(),
                private_ip: format!("10.1.{}.{}", 10 + i / 8, 20 + i),
                public_ip: format!("198.51.100.{}", 10 + i),
                name,
                os,
            });
        }
        let mut users = Vec::new();
        for i in 0..FIRST.len() {
            let account = format!("{}.{}", FIRST[i], LAST[i]);
            users.push(User {
                upn: format!("{account}@contoso-demo.onmicrosoft.com"),
                display: format!("{} {}", capital(FIRST[i]), capital(LAST[i])),
                sid: format!("S-1-5-21-1004336348-1177238915-682003330-{}", 1100 + i),
                aad_id: rng.guid(),
                domain: "CONTOSO",
                account,
            });
        }
        let ips = (0..20)
            .map(|i| RemoteIp {
                address: format!("203.0.113.{}", 5 + i * 11),
                country: COUNTRIES[i % COUNTRIES.len()],
            })
            .collect();
        let files = FILES
            .iter()
            .enumerate()
            .map(|(i, (name, dir))| FileInfo {
                name,
                path: dir.replace("{user}", FIRST[i % FIRST.len()]),
                sha1: rng.hex(40),
                sha256: rng.hex(64),
                size: 20_000 + rng.below(9_000_000),
            })
            .collect();
        Entities {
            devices,
            users,
            ips,
            files,
            urls: URLS.iter().map(|s| s.to_string()).collect(),
            tenant_id: crate::directory::DEMO_TENANT_ID.to_string(),
        }
    }
}

pub(super) fn capital(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}
