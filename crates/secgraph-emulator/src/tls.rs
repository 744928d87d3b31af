//! The emulator's own PKI: a CA and a server certificate for `127.0.0.1`, `::1` and `localhost`, generated at start.

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose, SanType};

/// PEM material for the emulator's TLS listener. Only `ca_pem` is meant to leave the process (clients trust it).
pub struct Pki {
    pub ca_pem: String,
    pub server_cert_pem: String,
    pub server_key_pem: String,
}

impl std::fmt::Debug for Pki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pki").field("server_key_pem", &"<redacted>").finish_non_exhaustive()
    }
}

impl Pki {
    pub fn generate(extra_hosts: &[String]) -> Result<Pki, rcgen::Error> {
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::default();
        ca_params.distinguished_name.push(DnType::CommonName, "secgraph emulator local CA");
        ca_params.distinguished_name.push(DnType::OrganizationName, "secgraph emulator");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key)?;

        let key = KeyPair::generate()?;
        let mut names = vec!["localhost".to_string()];
        names.extend(extra_hosts.iter().cloned());
        let mut params = CertificateParams::new(names)?;
        params
            .subject_alt_names
            .push(SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()));
        params
            .subject_alt_names
            .push(SanType::IpAddress(std::net::Ipv6Addr::LOCALHOST.into()));
        params.distinguished_name.push(DnType::CommonName, "secgraph emulator");
        let cert = params.signed_by(&key, &ca)?;
        Ok(Pki {
            ca_pem: ca.pem(),
            server_cert_pem: cert.pem(),
            server_key_pem: key.serialize_pem(),
        })
    }
}

/// A self-signed RSA certificate and its PKCS#8 key for an app's certificate credential.
pub fn client_certificate() -> Result<(String, String), rcgen::Error> {
    let key = KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256)?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::CommonName, "secgraph demo app");
    let cert = params.self_signed(&key)?;
    Ok((cert.pem(), key.serialize_pem()))
}
