//! Token keys for the local host: `VIGIL_JWT_SECRET` if set, else a secret generated once and kept in the data
//! directory (mode 0600), so `vigil token` and `vigil serve` agree without any set-up.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use rand::RngCore;
use vigil::auth::{mint_hs256, valid_tenant, Claims, Role};
use vigil::config::AuthConfig;

const SECRET_FILE: &str = "jwt-secret";

/// The auth configuration to serve with: the configured key, or the data directory's own secret.
pub fn effective_auth(configured: &AuthConfig, data_dir: &Path) -> anyhow::Result<AuthConfig> {
    if configured.secret.is_some() || configured.public_key_pem.is_some() {
        return Ok(configured.clone());
    }
    Ok(AuthConfig { secret: Some(local_secret(data_dir)?), ..configured.clone() })
}

/// Reads the data directory's secret, creating it on first use.
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

/// Mints a token for `tenant` with `role`, valid for `ttl_hours`.
pub fn mint(auth: &AuthConfig, tenant: &str, role: &str, sub: &str, ttl_hours: u64) -> anyhow::Result<String> {
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
        scope: None,
    };
    mint_hs256(secret, &claims).map_err(|e| anyhow::anyhow!(e))
}
