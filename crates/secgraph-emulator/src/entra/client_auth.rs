//! Client authentication: a confidential client's secret, or its certificate assertion (x5t, signature, audience,
//! lifetime, replay).

use super::*;

/// Checks a confidential client's secret or certificate assertion.
pub(super) fn authenticate_client(
    st: &AppState,
    t: &Tenant,
    app: &App,
    form: &HashMap<String, String>,
    tenant_in_path: &str,
) -> Result<(), Fail> {
    if let Some(assertion) = form.get("client_assertion") {
        if form.get("client_assertion_type").map(String::as_str) != Some(ASSERTION_TYPE) {
            return Err(bad(
                "invalid_request",
                900144,
                format!("The request body must contain the following parameter: 'client_assertion_type' with value '{ASSERTION_TYPE}'."),
            ));
        }
        return verify_assertion(st, t, app, assertion, tenant_in_path);
    }
    match (form.get("client_secret"), &app.secret) {
        (None, _) => Err(fail(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        )),
        (Some(given), Some(real)) if given.as_bytes() == real.as_bytes() => Ok(()),
        (Some(_), _) => Err(fail(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000215,
            format!(
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{}'.",
                app.client_id
            ),
        )),
    }
}

pub(super) fn verify_assertion(st: &AppState, t: &Tenant, app: &App, assertion: &str, tenant_in_path: &str) -> Result<(), Fail> {
    let invalid = |code: u32, m: &str| fail(StatusCode::UNAUTHORIZED, "invalid_client", code, m.to_string());
    let header = jsonwebtoken::decode_header(assertion).map_err(|_| invalid(50027, "JWT token is invalid or malformed."))?;
    let alg = header.alg;
    if !matches!(alg, jsonwebtoken::Algorithm::RS256 | jsonwebtoken::Algorithm::PS256) {
        return Err(invalid(
            5002738,
            &format!("Invalid JWT token. '{alg:?}' is not a supported signature algorithm. Supported: RS256, PS256."),
        ));
    }
    let thumb_s256 = header.x5t_s256.clone();
    let thumb = header.x5t.clone().map(|t| t.trim_end_matches('=').to_string());
    let cert = app.certificates.iter().find(|c| Some(&c.x5t_s256) == thumb_s256.as_ref() || Some(&c.x5t) == thumb.as_ref()).ok_or_else(|| {
        invalid(700027, &format!("The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Thumbprint of key used by client: '{}']", thumb_s256.clone().or(thumb.clone()).unwrap_or_default()))
    })?;
    let key = jsonwebtoken::DecodingKey::from_rsa_pem(cert.public_key_pem.as_bytes())
        .map_err(|_| invalid(700027, "Client assertion contains an invalid signature."))?;
    let mut v = jsonwebtoken::Validation::new(alg);
    v.validate_exp = false;
    v.validate_nbf = false;
    v.validate_aud = false;
    v.required_spec_claims.clear();
    let data = jsonwebtoken::decode::<Value>(assertion, &key, &v).map_err(|_| invalid(700027, "Client assertion contains an invalid signature. [Reason - The signature does not match the certificate registered on the application.]"))?;
    let c = data.claims;
    let s = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    let n = |k: &str| c.get(k).and_then(Value::as_i64);
    let aud = s("aud");
    let expected = [
        format!("{}/{}/oauth2/v2.0/token", st.base_url, tenant_in_path),
        format!("{}/{}/oauth2/v2.0/token", st.base_url, t.id),
        format!("{}/{}/oauth2/token", st.base_url, t.id),
    ];
    if !expected.iter().any(|e| e.eq_ignore_ascii_case(&aud)) {
        return Err(invalid(
            700212,
            &format!(
                "The audience claim in the client assertion '{aud}' does not match the token endpoint '{}'.",
                expected[0]
            ),
        ));
    }
    if s("iss") != app.client_id || s("sub") != app.client_id {
        return Err(invalid(
            700023,
            "Client assertion 'iss' and 'sub' must both be the application (client) id.",
        ));
    }
    let t_now = now(st);
    let (Some(exp), nbf) = (n("exp"), n("nbf")) else {
        return Err(invalid(700024, "Client assertion has no 'exp' claim."));
    };
    if exp <= t_now - 300 || nbf.is_some_and(|nbf| nbf > t_now + 300) {
        return Err(invalid(700024, "Client assertion is not within its valid time range."));
    }
    if exp - nbf.unwrap_or(t_now) > 24 * 3600 {
        return Err(invalid(700024, "Client assertion lifetime is too long."));
    }
    let jti = s("jti");
    if jti.is_empty() {
        return Err(invalid(700025, "Client assertion has no 'jti' claim."));
    }
    let mut store = lock_store(st)?;
    store.jtis.retain(|_, e| *e > t_now - 600);
    if store.jtis.insert(format!("{}:{jti}", app.client_id), exp).is_some() {
        return Err(invalid(700025, "The client assertion 'jti' has already been used (replay)."));
    }
    Ok(())
}
