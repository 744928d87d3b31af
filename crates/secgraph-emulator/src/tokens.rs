//! Access tokens: the emulator signs v1-format JWTs (RS256, `x5t`/`kid` header) the way Entra issues Graph tokens,
//! and verifies them on every Graph request.

use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, jwk::Jwk};
use serde::{Deserialize, Serialize};
use sha2::Digest;

/// Graph's first-party application id: tokens may name Graph by it instead of its URL.
pub const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";
/// Key Vault's resource id in the public cloud; the emulator's vaults accept tokens for it.
pub const KEYVAULT_RESOURCE: &str = "https://vault.azure.net";

/// Claims of an app-only access token (the subset Graph clients and the emulator look at).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    pub aud: String,
    pub iss: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub app_displayname: String,
    pub appid: String,
    pub appidacr: String,
    pub idp: String,
    pub idtyp: String,
    pub oid: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    pub sub: String,
    pub tid: String,
    pub uti: String,
    pub ver: String,
    /// Delegated tokens: the granted permissions, space-separated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unique_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl AccessClaims {
    /// Claims of an app-only token for `app` in tenant `t`, valid from `issued` until `exp`.
    pub fn app(t: &crate::directory::Tenant, app: &crate::directory::App, aud: &str, issued: i64, exp: i64, uti: String) -> AccessClaims {
        AccessClaims {
            aud: aud.to_string(),
            iss: format!("https://sts.windows.net/{}/", t.id),
            iat: issued,
            nbf: issued,
            exp,
            app_displayname: app.display_name.clone(),
            appid: app.client_id.clone(),
            appidacr: "1".into(),
            idp: format!("https://sts.windows.net/{}/", t.id),
            idtyp: "app".into(),
            oid: app.object_id.clone(),
            roles: app.roles.clone(),
            sub: app.object_id.clone(),
            tid: t.id.clone(),
            uti,
            ver: "1.0".into(),
            scp: None,
            upn: None,
            unique_name: None,
            name: None,
        }
    }
}

/// Why a presented token was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenRejection {
    Malformed,
    BadSignature,
    Expired,
    NotYetValid,
    WrongAudience,
}

pub struct TokenIssuer {
    encoding: EncodingKey,
    decoding: DecodingKey,
    kid: String,
    jwk: Jwk,
}

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenIssuer").field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl TokenIssuer {
    pub fn generate() -> Result<TokenIssuer, String> {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).map_err(|e| format!("RSA key generation: {e}"))?;
        let pem = key.serialize_pem();
        let encoding = EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|e| format!("signing key: {e}"))?;
        let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::RS256).map_err(|e| format!("JWK: {e}"))?;
        let kid = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&sha2::Sha256::digest(key.public_key_pem().as_bytes())[..15]);
        jwk.common.key_id = Some(kid.clone());
        let decoding = DecodingKey::from_jwk(&jwk).map_err(|e| format!("verification key: {e}"))?;
        Ok(TokenIssuer {
            encoding,
            decoding,
            kid,
            jwk,
        })
    }

    /// The JSON Web Key Set served at the discovery `jwks_uri`.
    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({ "keys": [self.jwk] })
    }

    pub fn sign<T: Serialize>(&self, claims: &T) -> Result<String, String> {
        let mut header = Header::new(Algorithm::RS256);
        header.typ = Some("JWT".into());
        header.kid = Some(self.kid.clone());
        header.x5t = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).map_err(|e| format!("signing: {e}"))
    }

    /// Verifies signature, lifetime and audience (one of `audiences`).
    pub fn verify(&self, token: &str, audiences: &[String], now: i64) -> Result<AccessClaims, TokenRejection> {
        if token.split('.').count() != 3 {
            return Err(TokenRejection::Malformed);
        }
        let mut v = Validation::new(Algorithm::RS256);
        v.validate_exp = false;
        v.validate_nbf = false;
        v.validate_aud = false;
        v.required_spec_claims.clear();
        let data = jsonwebtoken::decode::<AccessClaims>(token, &self.decoding, &v).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            match e.kind() {
                K::InvalidSignature | K::InvalidAlgorithm | K::InvalidKeyFormat => TokenRejection::BadSignature,
                _ => TokenRejection::Malformed,
            }
        })?;
        let c = data.claims;
        // Entra allows five minutes of clock skew on nbf, none on exp for this purpose.
        if c.exp <= now {
            return Err(TokenRejection::Expired);
        }
        if c.nbf > now + 300 {
            return Err(TokenRejection::NotYetValid);
        }
        let aud = c.aud.trim_end_matches('/');
        if !audiences.iter().any(|a| a.trim_end_matches('/').eq_ignore_ascii_case(aud)) {
            return Err(TokenRejection::WrongAudience);
        }
        Ok(c)
    }
}
