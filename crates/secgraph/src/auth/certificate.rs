//! App-only sign-in with a client certificate: a client assertion JWT signed with the certificate's private key
//! (PS256, `x5t#S256` and `x5t` thumbprints, aud = token endpoint, iss = sub = client id, fresh `jti`, 10-minute
//! life), exchanged at the token endpoint. No OpenSSL: the key is read with the `pkcs8` crate (including
//! passphrase-encrypted PKCS#8) and signed with `jsonwebtoken` on aws-lc-rs.

use crate::auth::{AccessToken, TokenCredential, TokenRequestOptions, request_token_with, validate_tenant};
use crate::error::{Error, Result};
use crate::secret::Secret;
use async_trait::async_trait;
use base64::Engine;
use sha2::Digest;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use url::Url;

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A certificate and its private key, ready to sign assertions. `Debug` shows only the thumbprint.
pub struct ClientCertificate {
    key: jsonwebtoken::EncodingKey,
    x5t: String,
    x5t_s256: String,
}

impl std::fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("x5t#S256", &self.x5t_s256)
            .field("key", &"<redacted>")
            .finish()
    }
}

fn setting_error(setting: &str, message: String) -> Error {
    Error::Setting {
        origin: "connection".into(),
        setting: setting.into(),
        message,
    }
}

fn pem_blocks(text: &str) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = &rest[start + 11..];
        let Some(end_label) = after.find("-----") else { break };
        let label = after[..end_label].to_string();
        let body_start = start + 11 + end_label + 5;
        let end_marker = format!("-----END {label}-----");
        let Some(end) = rest[body_start..].find(&end_marker) else { break };
        let b64: String = rest[body_start..body_start + end].chars().filter(|c| !c.is_whitespace()).collect();
        if let Ok(der) = base64::engine::general_purpose::STANDARD.decode(b64) {
            out.push((label, der));
        }
        rest = &rest[body_start + end + end_marker.len()..];
    }
    out
}

impl ClientCertificate {
    /// Reads a certificate (PEM or DER) and a private key (PEM: PKCS#8, encrypted PKCS#8 with `passphrase`, or
    /// PKCS#1 RSA). The key may also sit in the certificate file, as many PEM bundles have it.
    pub fn load(cert_path: &Path, key_path: Option<&Path>, passphrase: Option<&Secret>) -> Result<ClientCertificate> {
        let cert_bytes = crate::local_file::read(cert_path, crate::local_file::MAX_PEM_FILE_BYTES)
            .map_err(|e| setting_error("certificate", format!("cannot read {}: {e}", cert_path.display())))?;
        let cert_text = String::from_utf8_lossy(&cert_bytes).into_owned();
        let blocks = pem_blocks(&cert_text);
        let cert_der = if blocks.is_empty() {
            cert_bytes.clone()
        } else {
            blocks
                .iter()
                .find(|(l, _)| l == "CERTIFICATE")
                .map(|(_, d)| d.clone())
                .ok_or_else(|| setting_error("certificate", format!("{} has no CERTIFICATE block", cert_path.display())))?
        };
        let key_text = match key_path {
            Some(p) => String::from_utf8(
                crate::local_file::read(p, crate::local_file::MAX_PEM_FILE_BYTES)
                    .map_err(|e| setting_error("private_key", format!("cannot read {}: {e}", p.display())))?,
            )
            .map_err(|_| setting_error("private_key", format!("{} is not a PEM file", p.display())))?,
            None => cert_text,
        };
        let where_ = key_path.unwrap_or(cert_path).display().to_string();
        let key_blocks = pem_blocks(&key_text);
        let key = if let Some((_, der)) = key_blocks.iter().find(|(l, _)| l == "ENCRYPTED PRIVATE KEY") {
            let pass = passphrase.ok_or_else(|| {
                setting_error(
                    "private_key_secret",
                    format!("the private key in {where_} is encrypted: set PrivateKeySecret"),
                )
            })?;
            let enc = pkcs8::EncryptedPrivateKeyInfo::try_from(der.as_slice())
                .map_err(|e| setting_error("private_key", format!("{where_}: malformed encrypted key: {e}")))?;
            let doc = enc.decrypt(pass.expose()).map_err(|_| {
                setting_error(
                    "private_key_secret",
                    format!("cannot decrypt the private key in {where_}: wrong passphrase or unsupported cipher"),
                )
            })?;
            pkcs8_pem(doc.as_bytes())
        } else if let Some((_, der)) = key_blocks.iter().find(|(l, _)| l == "PRIVATE KEY") {
            pkcs8_pem(der)
        } else if let Some((_, der)) = key_blocks.iter().find(|(l, _)| l == "RSA PRIVATE KEY") {
            jsonwebtoken::EncodingKey::from_rsa_der(der)
        } else {
            return Err(setting_error(
                "private_key",
                format!("no private key (PRIVATE KEY, ENCRYPTED PRIVATE KEY or RSA PRIVATE KEY block) in {where_}"),
            ));
        };
        let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        Ok(ClientCertificate {
            key,
            x5t: b64(&sha1::Sha1::digest(&cert_der)),
            x5t_s256: b64(&sha2::Sha256::digest(&cert_der)),
        })
    }

    /// A signed client assertion for `audience` (the token endpoint URL).
    pub fn assertion(&self, client_id: &str, audience: &str) -> Result<Secret> {
        let now = chrono::Utc::now().timestamp();
        let claims = serde_json::json!({"aud": audience, "iss": client_id, "sub": client_id, "jti": uuid::Uuid::new_v4().to_string(), "nbf": now, "iat": now, "exp": now + 600});
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::PS256);
        header.x5t_s256 = Some(self.x5t_s256.clone());
        header.x5t = Some(self.x5t.clone());
        jsonwebtoken::encode(&header, &claims, &self.key).map(Secret::new).map_err(|e| {
            setting_error(
                "private_key",
                format!("cannot sign with the private key (an RSA key is needed): {e}"),
            )
        })
    }
}

fn pkcs8_pem(der: &[u8]) -> jsonwebtoken::EncodingKey {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect();
    let pem = Secret::new(format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        lines.join("\n")
    ));
    jsonwebtoken::EncodingKey::from_rsa_pem(pem.expose().as_bytes()).unwrap_or_else(|_| jsonwebtoken::EncodingKey::from_rsa_der(der))
}

/// The client-certificate credential: a fresh assertion per token request; tokens cached per scope set.
#[derive(Debug)]
pub struct ClientCertificateCredential {
    http: reqwest::Client,
    token_url: Url,
    client_id: String,
    certificate: ClientCertificate,
    cache: Mutex<HashMap<String, (AccessToken, chrono::DateTime<chrono::Utc>)>>,
    retry: crate::retry::RetryOptions,
}

impl ClientCertificateCredential {
    /// A credential for the app `client_id` in `tenant` that signs client assertions with `certificate`.
    pub fn new(http: reqwest::Client, authority_host: &Url, tenant: &str, client_id: &str, certificate: ClientCertificate) -> Result<Self> {
        validate_tenant(tenant)?;
        let token_url = authority_host
            .join(&format!("{tenant}/oauth2/v2.0/token"))
            .map_err(|e| setting_error("authority", format!("cannot build the token URL from {authority_host}: {e}")))?;
        Ok(ClientCertificateCredential {
            http,
            token_url,
            client_id: client_id.into(),
            certificate,
            cache: Mutex::new(HashMap::new()),
            retry: crate::retry::RetryOptions::default(),
        })
    }

    /// The same credential with another retry policy for its token requests (see [`crate::retry`]).
    pub fn with_retry(mut self, retry: crate::retry::RetryOptions) -> Self {
        self.retry = retry;
        self
    }
}

#[async_trait]
impl TokenCredential for ClientCertificateCredential {
    async fn get_token(&self, scopes: &[&str], options: TokenRequestOptions) -> Result<AccessToken> {
        let key = scopes.join(" ");
        if !options.force_refresh
            && let Ok(c) = self.cache.lock()
            && let Some((t, issued)) = c.get(&key)
            && !t.needs_renewal(*issued, chrono::Utc::now())
        {
            return Ok(t.clone());
        }
        let assertion = self.certificate.assertion(&self.client_id, self.token_url.as_str())?;
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", self.client_id.as_str()),
            ("scope", key.as_str()),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", assertion.expose()),
        ];
        let issued = chrono::Utc::now();
        let t = request_token_with(&self.http, &self.token_url, &form, &self.retry).await?.token;
        if let Ok(mut c) = self.cache.lock() {
            c.insert(key, (t.clone(), issued));
        }
        Ok(t)
    }
}
