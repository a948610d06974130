//! Bearer-token authentication: JWTs carrying tenant and role, checked with `jsonwebtoken`.

use std::fmt;

use http::HeaderMap;
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::config::AuthConfig;

/// Roles in increasing order of power.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Sender,
    Viewer,
    Analyst,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Sender => "sender",
            Role::Viewer => "viewer",
            Role::Analyst => "analyst",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Some(match s {
            "sender" => Role::Sender,
            "viewer" => Role::Viewer,
            "analyst" => Role::Analyst,
            "admin" => Role::Admin,
            _ => return None,
        })
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub tenant: String,
    pub role: Role,
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    /// Space-separated extra permissions (OAuth 2.0 `scope`): [`SCOPE_ALL_TENANTS`] lets a viewer scrape
    /// `/metrics` of every tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// The scope of an operator's Prometheus token: `/metrics` answers every tenant's series (each with its
/// `tenant` label), not only the token's own.
pub const SCOPE_ALL_TENANTS: &str = "metrics:all-tenants";

impl Claims {
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scope.as_deref().is_some_and(|s| s.split_whitespace().any(|x| x == scope))
    }
}

/// Why a request was not let in. `Unauthenticated` is a 401, `Forbidden` a 403.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("{0}")]
    Unauthenticated(String),
    #[error("role {have} may not do this; {need} or above is needed")]
    Forbidden { have: Role, need: Role },
}

/// A tenant name is part of every storage key, so it is restricted to a safe alphabet; names starting with
/// `_` are reserved (`_global` holds tenant-less series).
pub fn valid_tenant(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 64
        && !t.starts_with('_')
        && t.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Checks tokens. Built once at start-up from [`AuthConfig`].
#[derive(Clone)]
pub struct Authenticator {
    key: DecodingKey,
    validation: Validation,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator").field("algorithms", &self.validation.algorithms).finish_non_exhaustive()
    }
}

impl Authenticator {
    pub fn from_config(cfg: &AuthConfig) -> Result<Authenticator, String> {
        let (key, algorithms) = match (&cfg.public_key_pem, &cfg.secret) {
            (Some(pem), _) => {
                if let Ok(k) = DecodingKey::from_rsa_pem(pem.as_bytes()) {
                    (k, vec![Algorithm::RS256])
                } else if let Ok(k) = DecodingKey::from_ec_pem(pem.as_bytes()) {
                    (k, vec![Algorithm::ES256])
                } else {
                    return Err("VIGIL_JWT_PUBLIC_KEY is neither an RSA nor an EC public key in PEM".into());
                }
            }
            (None, Some(secret)) => {
                if secret.len() < 32 {
                    return Err("VIGIL_JWT_SECRET must be at least 32 bytes".into());
                }
                (DecodingKey::from_secret(secret.as_bytes()), vec![Algorithm::HS256])
            }
            (None, None) => return Err("no token key configured: set VIGIL_JWT_SECRET or VIGIL_JWT_PUBLIC_KEY".into()),
        };
        let mut validation = Validation::new(algorithms[0]);
        validation.algorithms = algorithms;
        validation.leeway = 30;
        validation.set_required_spec_claims(&["exp", "sub"]);
        match &cfg.issuer {
            Some(iss) => validation.set_issuer(&[iss]),
            None => validation.iss = None,
        }
        match &cfg.audience {
            Some(aud) => validation.set_audience(&[aud]),
            None => validation.validate_aud = false,
        }
        Ok(Authenticator { key, validation })
    }

    /// Verifies a raw token.
    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        let data = decode::<Claims>(token, &self.key, &self.validation)
            .map_err(|e| AuthError::Unauthenticated(format!("invalid token: {}", describe(&e))))?;
        let claims = data.claims;
        if !valid_tenant(&claims.tenant) {
            return Err(AuthError::Unauthenticated("invalid token: tenant claim is not a valid tenant name".into()));
        }
        Ok(claims)
    }

    /// Reads `Authorization: Bearer <jwt>` (and, where `allow_splunk`, the HEC schemes of [`request_token`])
    /// and checks the role.
    pub fn authorize(&self, headers: &HeaderMap, need: Role, allow_splunk: bool) -> Result<Claims, AuthError> {
        let schemes = if allow_splunk { Schemes::Hec } else { Schemes::Bearer };
        let token = request_token(headers, schemes).map_err(|e| AuthError::Unauthenticated(e.to_string()))?;
        self.authorize_token(&token, need)
    }

    /// Verifies a token read from a request and checks the role.
    pub fn authorize_token(&self, token: &str, need: Role) -> Result<Claims, AuthError> {
        let claims = self.verify(token)?;
        if claims.role < need {
            return Err(AuthError::Forbidden { have: claims.role, need });
        }
        Ok(claims)
    }
}

/// The `Authorization` schemes a route takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Schemes {
    /// `Bearer <token>`.
    Bearer,
    /// Splunk HEC routes: `Bearer <token>`, `Splunk <token>`, and `Basic base64(user:token)` with the token as
    /// the password (what `curl -u x:TOKEN` and HEC clients configured with a user and password send).
    Hec,
}

/// Why a request carries no readable token.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    #[error("missing Authorization header")]
    Missing,
    #[error("{0}")]
    Malformed(String),
}

/// The token in a request's `Authorization` header, in one of `schemes` (checked, not yet verified).
pub fn request_token(headers: &HeaderMap, schemes: Schemes) -> Result<String, CredentialError> {
    let value = headers
        .get(http::header::AUTHORIZATION)
        .ok_or(CredentialError::Missing)?
        .to_str()
        .map_err(|_| CredentialError::Malformed("Authorization header is not ASCII".into()))?;
    let expected = match schemes {
        Schemes::Bearer => "Bearer <token>",
        Schemes::Hec => "Bearer <token>, Splunk <token> or Basic with the token as password",
    };
    let malformed = || CredentialError::Malformed(format!("Authorization must be {expected}"));
    let (scheme, rest) = value.trim().split_once(' ').unwrap_or((value.trim(), ""));
    let rest = rest.trim();
    let hec = schemes == Schemes::Hec;
    let token = if scheme.eq_ignore_ascii_case("bearer") || (hec && scheme.eq_ignore_ascii_case("splunk")) {
        rest.to_string()
    } else if hec && scheme.eq_ignore_ascii_case("basic") {
        use base64::Engine as _;
        let decoded = base64::engine::general_purpose::STANDARD.decode(rest).map_err(|_| malformed())?;
        let text = String::from_utf8(decoded).map_err(|_| malformed())?;
        // `user:token`: the user is free text (Splunk ignores it too); the token is the password.
        text.split_once(':').map(|(_, password)| password.to_string()).ok_or_else(malformed)?
    } else {
        return Err(malformed());
    };
    if token.trim().is_empty() {
        return Err(malformed());
    }
    Ok(token.trim().to_string())
}

fn describe(e: &jsonwebtoken::errors::Error) -> &'static str {
    use jsonwebtoken::errors::ErrorKind::*;
    match e.kind() {
        ExpiredSignature => "expired",
        InvalidSignature => "bad signature",
        InvalidIssuer => "wrong issuer",
        InvalidAudience => "wrong audience",
        InvalidAlgorithm => "algorithm not accepted",
        MissingRequiredClaim(_) => "a required claim is missing",
        Json(_) => "claims are malformed (sub, tenant, role and exp are required)",
        _ => "malformed",
    }
}

/// Mints an HS256 token (for `vigil token` and tests).
pub fn mint_hs256(secret: &str, claims: &Claims) -> Result<String, String> {
    encode(&Header::new(Algorithm::HS256), claims, &EncodingKey::from_secret(secret.as_bytes()))
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn claims(role: Role, exp_offset: i64) -> Claims {
        Claims {
            sub: "alice".into(),
            tenant: "acme".into(),
            role,
            exp: (chrono::Utc::now().timestamp() + exp_offset) as u64,
            iss: None,
            aud: None,
            scope: None,
        }
    }

    fn auth() -> Authenticator {
        Authenticator::from_config(&AuthConfig { secret: Some(SECRET.into()), ..Default::default() }).unwrap()
    }

    fn headers(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(http::header::AUTHORIZATION, v.parse().unwrap());
        h
    }

    #[test]
    fn accepts_a_valid_token_with_enough_role() {
        let t = mint_hs256(SECRET, &claims(Role::Analyst, 600)).unwrap();
        let c = auth().authorize(&headers(&format!("Bearer {t}")), Role::Viewer, false).unwrap();
        assert_eq!(c.tenant, "acme");
        assert_eq!(c.role, Role::Analyst);
    }

    #[test]
    fn rejects_low_role_expired_forged_and_missing() {
        let a = auth();
        let t = mint_hs256(SECRET, &claims(Role::Sender, 600)).unwrap();
        assert_eq!(
            a.authorize(&headers(&format!("Bearer {t}")), Role::Viewer, false),
            Err(AuthError::Forbidden { have: Role::Sender, need: Role::Viewer })
        );
        let expired = mint_hs256(SECRET, &claims(Role::Admin, -3600)).unwrap();
        assert!(
            matches!(a.authorize(&headers(&format!("Bearer {expired}")), Role::Sender, false), Err(AuthError::Unauthenticated(m)) if m.contains("expired"))
        );
        let forged = mint_hs256("another-secret-another-secret-xx", &claims(Role::Admin, 600)).unwrap();
        assert!(
            matches!(a.authorize(&headers(&format!("Bearer {forged}")), Role::Sender, false), Err(AuthError::Unauthenticated(m)) if m.contains("signature"))
        );
        assert!(a.authorize(&HeaderMap::new(), Role::Sender, false).is_err());
        assert!(a.authorize(&headers("Basic abc"), Role::Sender, false).is_err());
    }

    #[test]
    fn splunk_scheme_only_where_allowed() {
        let a = auth();
        let t = mint_hs256(SECRET, &claims(Role::Sender, 600)).unwrap();
        assert!(a.authorize(&headers(&format!("Splunk {t}")), Role::Sender, true).is_ok());
        assert!(a.authorize(&headers(&format!("Splunk {t}")), Role::Sender, false).is_err());
    }

    #[test]
    fn hec_routes_also_take_basic_with_the_token_as_password() {
        use base64::Engine as _;
        let a = auth();
        let t = mint_hs256(SECRET, &claims(Role::Sender, 600)).unwrap();
        let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("x:{t}")));
        assert_eq!(request_token(&headers(&basic), Schemes::Hec), Ok(t.clone()));
        assert!(a.authorize(&headers(&basic), Role::Sender, true).is_ok());
        assert!(a.authorize(&headers(&basic), Role::Sender, false).is_err(), "Basic only on HEC routes");
        assert_eq!(request_token(&HeaderMap::new(), Schemes::Hec), Err(CredentialError::Missing));
        for bad in ["Basic !!!", "Basic eDo=", "Basic eHg=", "Splunk ", "Token abc", "Basic"] {
            assert!(matches!(request_token(&headers(bad), Schemes::Hec), Err(CredentialError::Malformed(_))), "{bad}");
        }
    }

    #[test]
    fn short_secrets_and_bad_tenants_are_refused() {
        assert!(Authenticator::from_config(&AuthConfig { secret: Some("short".into()), ..Default::default() }).is_err());
        let mut c = claims(Role::Admin, 600);
        c.tenant = "a#b".into();
        let t = mint_hs256(SECRET, &c).unwrap();
        assert!(auth().verify(&t).is_err());
    }
}
