//! Token keys for the local host: `VIGIL_JWT_SECRET` if set, else a secret generated once by `vigil serve` and
//! kept in its data directory (mode 0600), so `vigil token` and `vigil serve` agree without any set-up. Only
//! `vigil serve` creates that secret: `vigil token` and the API commands read it, and when it is missing they
//! say where they looked instead of creating a key the server does not know.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use rand::RngCore;
use vigil::auth::{mint_hs256, valid_tenant, Claims, Role, SCOPE_ALL_TENANTS};
use vigil::config::AuthConfig;

use crate::client::KeySource;

pub const SECRET_FILE: &str = "jwt-secret";

/// The auth configuration to serve with: the configured key, or the data directory's own secret.
pub fn effective_auth(configured: &AuthConfig, data_dir: &Path) -> anyhow::Result<AuthConfig> {
    if configured.secret.is_some() || configured.public_key_pem.is_some() {
        return Ok(configured.clone());
    }
    Ok(AuthConfig { secret: Some(local_secret(data_dir)?), ..configured.clone() })
}

/// The auth configuration to mint with: the configured key, or the data directory's existing secret — an error
/// naming the file and how to point at the right one when there is none.
pub fn existing_auth(configured: &AuthConfig, data_dir: &Path) -> anyhow::Result<(AuthConfig, KeySource)> {
    if configured.secret.is_some() {
        return Ok((configured.clone(), KeySource::Secret));
    }
    anyhow::ensure!(
        configured.public_key_pem.is_none(),
        "the server checks tokens with VIGIL_JWT_PUBLIC_KEY, so they come from your identity provider: pass one \
         with --token or VIGIL_TOKEN"
    );
    let path = data_dir.join(SECRET_FILE);
    let shown = std::path::absolute(&path).unwrap_or_else(|_| path.clone());
    match std::fs::read_to_string(&path) {
        Ok(s) if !s.trim().is_empty() => {
            Ok((AuthConfig { secret: Some(s.trim().to_string()), ..configured.clone() }, KeySource::File(shown)))
        }
        _ => anyhow::bail!(
            "no token key at {}: `vigil serve` creates it in its data directory on first start. Run this command              where `vigil serve` runs, point at its data directory with --data-dir or VIGIL_DATA_DIR, set the              server's VIGIL_JWT_SECRET, or pass a token with --token",
            shown.display()
        ),
    }
}

/// Reads the data directory's secret, creating it on first use (`vigil serve` only).
pub fn local_secret(data_dir: &Path) -> anyhow::Result<String> {
    let path = data_dir.join(SECRET_FILE);
    if let Ok(s) = std::fs::read_to_string(&path) {
        return Ok(s.trim().to_string());
    }
    std::fs::create_dir_all(data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let secret = hex::encode(bytes);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(&path) {
        Ok(mut f) => {
            f.write_all(secret.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
            Ok(secret)
        }
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Ok(std::fs::read_to_string(&path)?.trim().to_string())
        }
        Err(e) => Err(e).with_context(|| format!("creating {}", path.display())),
    }
}

/// What a minted token says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mint<'a> {
    pub tenant: &'a str,
    pub role: &'a str,
    pub sub: &'a str,
    pub ttl_hours: u64,
    /// `/metrics` of every tenant ([`SCOPE_ALL_TENANTS`]), for an operator's Prometheus.
    pub all_tenants: bool,
}

impl<'a> Mint<'a> {
    /// A 24-hour token for `tenant` with `role`.
    pub fn new(tenant: &'a str, role: &'a str, sub: &'a str) -> Mint<'a> {
        Mint { tenant, role, sub, ttl_hours: 24, all_tenants: false }
    }
}

/// Mints a token as `m` says.
pub fn mint(auth: &AuthConfig, m: &Mint) -> anyhow::Result<String> {
    let Mint { tenant, role, sub, ttl_hours, all_tenants } = *m;
    anyhow::ensure!(valid_tenant(tenant), "tenant {tenant:?} must be 1-64 characters of A-Z a-z 0-9 . _ -");
    let role = Role::parse(role).with_context(|| format!("role {role:?} must be sender, viewer, analyst or admin"))?;
    let secret = auth
        .secret
        .as_deref()
        .context("minting needs an HS256 secret (VIGIL_JWT_SECRET or the data directory's); RS256/ES256 tokens come from your identity provider")?;
    let claims = Claims {
        sub: sub.to_string(),
        tenant: tenant.to_string(),
        role,
        exp: (chrono::Utc::now().timestamp() as u64) + ttl_hours * 3600,
        iss: auth.issuer.clone(),
        aud: auth.audience.clone(),
        scope: all_tenants.then(|| SCOPE_ALL_TENANTS.to_string()),
    };
    mint_hs256(secret, &claims).map_err(|e| anyhow::anyhow!(e))
}
