//! The HTTP client of the CLI commands (`alerts`, `tickets`, `status`, `send`): where the API is
//! (`--addr` / `VIGIL_ADDR`, a bare `host:port` or a URL, so it works against `vigil serve` and a deployed stack
//! alike), which token to send (`--token` / `VIGIL_TOKEN`, or one minted from the local key — never a new key),
//! and answers turned into errors that say what to do.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use serde_json::Value;
use vigil::config::AuthConfig;

use crate::token;

/// Where the API is and who is calling: the options every API command shares.
#[derive(Clone, Debug, clap::Args)]
pub struct ApiArgs {
    /// The API: `host:port` (as `vigil serve --addr` takes it) or a URL such as a deployed stack's ApiUrl.
    #[arg(long, default_value = "127.0.0.1:8080", env = "VIGIL_ADDR", global = true)]
    pub addr: String,
    /// A token for the API; by default one is minted from the local key (the data directory's or VIGIL_JWT_SECRET).
    #[arg(long, env = "VIGIL_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// The tenant of a minted token.
    #[arg(long, default_value = "default", env = "VIGIL_TENANT", global = true)]
    pub tenant: String,
    /// Where `vigil serve` keeps its data and key (for minting a token).
    #[arg(long, default_value = ".vigil", env = "VIGIL_DATA_DIR", global = true)]
    pub data_dir: PathBuf,
}

/// `table` for people, `json` for scripts (`jq`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Table,
    Json,
}

/// The base URL of `addr`: `localhost:8080` → `http://localhost:8080`; URLs are kept (without a trailing `/`).
pub fn base_url(addr: &str) -> String {
    let addr = addr.trim().trim_end_matches('/');
    if addr.starts_with("http://") || addr.starts_with("https://") {
        addr.to_string()
    } else {
        format!("http://{addr}")
    }
}

/// Why the token's signature is refused, in words an operator can act on.
pub fn key_hint(key: &KeySource) -> String {
    format!(
        "the server refused the token's signature: it was signed with a different key than the server's. This \
         command used {key}. Run it with the --data-dir (VIGIL_DATA_DIR) that `vigil serve` uses, or the same \
         VIGIL_JWT_SECRET, or pass a token the server accepts with --token (VIGIL_TOKEN)."
    )
}

/// Where the token of a command came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySource {
    /// `--token` / `VIGIL_TOKEN`.
    Given,
    /// `VIGIL_JWT_SECRET`.
    Secret,
    /// The key file in a data directory.
    File(PathBuf),
}

impl std::fmt::Display for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::Given => f.write_str("the token given with --token / VIGIL_TOKEN"),
            KeySource::Secret => f.write_str("the key in VIGIL_JWT_SECRET"),
            KeySource::File(p) => write!(f, "the key in {}", p.display()),
        }
    }
}

/// The token a command sends, and where it came from: the given one, or one minted with `role` from the local
/// key (which must exist: a missing key is an error naming where it was looked for, never a new key).
pub fn resolve_token(args: &ApiArgs, configured: &AuthConfig, role: &str) -> anyhow::Result<(String, KeySource)> {
    if let Some(t) = args.token.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        return Ok((t.to_string(), KeySource::Given));
    }
    let (auth, source) = token::existing_auth(configured, &args.data_dir)?;
    let token = token::mint(&auth, &token::Mint::new(&args.tenant, role, "vigil-cli"))?;
    Ok((token, source))
}

/// A client of one API with one token.
pub struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
    key: KeySource,
}

impl Api {
    pub fn new(addr: &str, token: String, key: KeySource) -> anyhow::Result<Api> {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build()?;
        Ok(Api { http, base: base_url(addr), token, key })
    }

    /// From the shared options, minting with `role` when no token is given.
    pub fn from_args(args: &ApiArgs, configured: &AuthConfig, role: &str) -> anyhow::Result<Api> {
        let (token, key) = resolve_token(args, configured, role)?;
        Api::new(&args.addr, token, key)
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        let resp = self.send(self.http.get(self.url(path))).await?;
        answer(resp, &self.key).await
    }

    /// The body as text (for `/metrics`).
    pub async fn get_text(&self, path: &str) -> anyhow::Result<String> {
        let resp = self.send(self.http.get(self.url(path))).await?;
        if !resp.status().is_success() {
            return Err(refusal(resp, &self.key).await);
        }
        Ok(resp.text().await?)
    }

    pub async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let resp = self.send(self.http.post(self.url(path)).json(body)).await?;
        answer(resp, &self.key).await
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> anyhow::Result<reqwest::Response> {
        req.bearer_auth(&self.token).send().await.map_err(|e| unreachable(&self.base, &e))
    }
}

/// A transport error, with what to do about a refused connection.
pub fn unreachable(base: &str, e: &reqwest::Error) -> anyhow::Error {
    if e.is_connect() {
        anyhow::anyhow!(
            "cannot connect to {base}: nothing is listening there. Start it with `vigil serve` (which listens on \
             127.0.0.1:8080 by default) or point this command at the API with --addr or VIGIL_ADDR ({e})"
        )
    } else if e.is_timeout() {
        anyhow::anyhow!("{base} did not answer in time ({e})")
    } else {
        anyhow::anyhow!("request to {base} failed: {e}")
    }
}

async fn answer(resp: reqwest::Response, key: &KeySource) -> anyhow::Result<Value> {
    if !resp.status().is_success() {
        return Err(refusal(resp, key).await);
    }
    resp.json().await.context("the answer is not JSON")
}

/// An error answer as an error: the API's own `error` and `detail`, and a hint where one helps.
pub async fn refusal(resp: reqwest::Response, key: &KeySource) -> anyhow::Error {
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let error = body["error"].as_str().map(str::to_string).unwrap_or(text);
    let detail = match &body["detail"] {
        Value::Null => String::new(),
        d => format!(" ({d})"),
    };
    if status.as_u16() == 401 && error.contains("signature") {
        return anyhow::anyhow!("{status}: {error}. {}", key_hint(key));
    }
    if status.as_u16() == 401 && error.contains("expired") {
        return anyhow::anyhow!("{status}: {error}. Mint a new token with `vigil token`, or drop --token to mint one.");
    }
    if status.as_u16() == 403 {
        return anyhow::anyhow!(
            "{status}: {error}{detail}. Use a token with a higher role (`vigil token --role analyst`)."
        );
    }
    anyhow::anyhow!("{status}: {error}{detail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_become_urls() {
        assert_eq!(base_url("localhost:8080"), "http://localhost:8080");
        assert_eq!(base_url("127.0.0.1:9000/"), "http://127.0.0.1:9000");
        assert_eq!(
            base_url("https://abc.execute-api.eu-west-1.amazonaws.com/"),
            "https://abc.execute-api.eu-west-1.amazonaws.com"
        );
    }

    #[test]
    fn the_key_hint_names_where_the_key_came_from_and_how_to_point_at_the_servers() {
        let hint = key_hint(&KeySource::File(PathBuf::from("/home/a/.vigil/jwt-secret")));
        assert!(hint.contains("/home/a/.vigil/jwt-secret") && hint.contains("--data-dir"), "{hint}");
        assert!(hint.contains("VIGIL_JWT_SECRET"), "{hint}");
    }
}
