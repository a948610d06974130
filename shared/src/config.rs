//! Typed configuration, read once at start-up from the environment (the Lambda way) and passed down.

use std::collections::HashMap;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::model::Severity;
use crate::schema::{QueueSpec, TableSpec, DETECTIONS_QUEUE, EVENTS_QUEUE, QUEUES, TABLES};

#[derive(Debug, thiserror::Error)]
#[error("configuration: {var}: {problem}")]
pub struct ConfigError {
    pub var: String,
    pub problem: String,
}

/// Limits on what one ingest request may carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IngestLimits {
    /// Whole request body, after any content decoding (413 beyond).
    pub max_body_bytes: usize,
    /// One event as stored (rejected individually beyond).
    pub max_event_bytes: usize,
    /// Events (or lines) in one request (413 beyond).
    pub max_events_per_request: usize,
}

impl Default for IngestLimits {
    fn default() -> Self {
        IngestLimits { max_body_bytes: 5 * 1024 * 1024, max_event_bytes: 32 * 1024, max_events_per_request: 20_000 }
    }
}

/// Deadlines after a ticket opens, per severity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlaPolicy {
    pub acknowledge: HashMap<Severity, Duration>,
    pub close: HashMap<Severity, Duration>,
}

impl SlaPolicy {
    pub fn acknowledge_within(&self, s: Severity) -> Duration {
        self.acknowledge.get(&s).copied().unwrap_or(Duration::from_secs(24 * 3600))
    }

    pub fn close_within(&self, s: Severity) -> Duration {
        self.close.get(&s).copied().unwrap_or(Duration::from_secs(7 * 24 * 3600))
    }
}

impl Default for SlaPolicy {
    fn default() -> Self {
        let h = |n: u64| Duration::from_secs(n * 3600);
        let acknowledge = HashMap::from([
            (Severity::Critical, Duration::from_secs(15 * 60)),
            (Severity::High, h(1)),
            (Severity::Medium, h(4)),
            (Severity::Low, h(24)),
            (Severity::Info, h(24)),
        ]);
        let close = HashMap::from([
            (Severity::Critical, h(4)),
            (Severity::High, h(24)),
            (Severity::Medium, h(72)),
            (Severity::Low, h(168)),
            (Severity::Info, h(168)),
        ]);
        SlaPolicy { acknowledge, close }
    }
}

/// How tokens are checked (and, for `vigil token`, minted).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct AuthConfig {
    /// HS256 shared secret (`VIGIL_JWT_SECRET`).
    pub secret: Option<String>,
    /// RS256/ES256 public key in PEM (`VIGIL_JWT_PUBLIC_KEY`, or a path in `VIGIL_JWT_PUBLIC_KEY_FILE`).
    pub public_key_pem: Option<String>,
    pub issuer: Option<String>,
    pub audience: Option<String>,
}

/// Splunk HEC options of the ingest routes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HecConfig {
    /// Indexer acknowledgement (`VIGIL_HEC_ACK`, default on): a request with a channel gets an `ackId`, and
    /// `POST /services/collector/ack` answers which are durable.
    pub ack: bool,
    /// Accept the token as `?token=` (`VIGIL_HEC_QUERY_TOKEN`, default off: query strings end up in proxy logs).
    pub query_token: bool,
}

impl Default for HecConfig {
    fn default() -> Self {
        HecConfig { ack: true, query_token: false }
    }
}

/// An outbound notification target for new alerts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookConfig {
    pub url: String,
    /// `json` (generic) or `slack`.
    pub format: WebhookFormat,
    /// HMAC-SHA256 key; the signature goes in `X-Vigil-Signature`.
    pub secret: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WebhookFormat {
    Json,
    Slack,
}

/// An analyst shift: a daily UTC time-of-day range `[start, end)` in minutes since midnight. `end` may be 1440
/// (`24:00`); a shift whose end is before its start wraps past midnight (`night=22:00-06:00`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shift {
    pub name: String,
    pub start_minute: u32,
    pub end_minute: u32,
}

impl Shift {
    /// Whether a minute of the UTC day (0..1440) falls in this shift.
    pub fn contains(&self, minute_of_day: u32) -> bool {
        if self.start_minute < self.end_minute {
            (self.start_minute..self.end_minute).contains(&minute_of_day)
        } else {
            minute_of_day >= self.start_minute || minute_of_day < self.end_minute
        }
    }

    /// `HH:MM` of a minute of the day (`24:00` for 1440).
    pub fn format_minute(m: u32) -> String {
        format!("{:02}:{:02}", m / 60, m % 60)
    }
}

/// The default of `VIGIL_SHIFTS`.
pub const DEFAULT_SHIFTS: &str = "day=08:00-16:00,swing=16:00-24:00,night=00:00-08:00";

/// Settings of the SOC analytics (`/v1/analytics/*`).
#[derive(Clone, Debug, PartialEq)]
pub struct AnalyticsConfig {
    /// Rules whose precision (true positives / closed tickets) is below this are flagged `needs_tuning`
    /// (`VIGIL_PRECISION_FLOOR`, 0..=1, default 0.8) …
    pub precision_floor: f64,
    /// … once they have at least this many closed tickets in the period (`VIGIL_PRECISION_MIN_CLOSED`, default 5).
    pub precision_min_closed: u64,
    /// Shift boundaries for shift performance (`VIGIL_SHIFTS`); the first shift containing a time wins.
    pub shifts: Vec<Shift>,
}

impl Default for AnalyticsConfig {
    fn default() -> Self {
        AnalyticsConfig {
            precision_floor: 0.8,
            precision_min_closed: 5,
            shifts: parse_shifts(DEFAULT_SHIFTS).unwrap_or_default(),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Physical table names, by logical name (`EventsTable` → `vigil-events`).
    pub tables: HashMap<&'static str, String>,
    /// Queue names or URLs, by logical name.
    pub queues: HashMap<&'static str, String>,
    pub limits: IngestLimits,
    pub event_retention: Duration,
    pub sla: SlaPolicy,
    pub auth: AuthConfig,
    pub webhooks: Vec<WebhookConfig>,
    /// A rules file that adds to or overrides the built-in rules.
    pub rules_path: Option<PathBuf>,
    pub analytics: AnalyticsConfig,
    pub hec: HecConfig,
}

impl Config {
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads every setting through `get`, so tests can pass a map instead of mutating the environment.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let tables = TABLES.iter().map(|t| (t.logical, get(t.env).unwrap_or_else(|| t.default_name.into()))).collect();
        let queues = QUEUES.iter().map(|q| (q.logical, get(q.env).unwrap_or_else(|| q.default_name.into()))).collect();
        let defaults = IngestLimits::default();
        let limits = IngestLimits {
            max_body_bytes: parse_or(&get, "VIGIL_MAX_BODY_BYTES", defaults.max_body_bytes)?,
            max_event_bytes: parse_or(&get, "VIGIL_MAX_EVENT_BYTES", defaults.max_event_bytes)?,
            max_events_per_request: parse_or(&get, "VIGIL_MAX_EVENTS_PER_REQUEST", defaults.max_events_per_request)?,
        };
        let retention_days: u64 = parse_or(&get, "VIGIL_EVENT_RETENTION_DAYS", 30)?;
        let mut sla = SlaPolicy::default();
        for sev in Severity::ALL {
            let ack = format!("VIGIL_SLA_ACK_{}_MINUTES", sev.as_str().to_ascii_uppercase());
            if let Some(m) = parse_opt::<u64>(&get, &ack)? {
                sla.acknowledge.insert(sev, Duration::from_secs(m * 60));
            }
            let close = format!("VIGIL_SLA_CLOSE_{}_MINUTES", sev.as_str().to_ascii_uppercase());
            if let Some(m) = parse_opt::<u64>(&get, &close)? {
                sla.close.insert(sev, Duration::from_secs(m * 60));
            }
        }
        let public_key_pem = match (get("VIGIL_JWT_PUBLIC_KEY"), get("VIGIL_JWT_PUBLIC_KEY_FILE")) {
            (Some(pem), _) => Some(pem),
            (None, Some(path)) => Some(std::fs::read_to_string(&path).map_err(|e| ConfigError {
                var: "VIGIL_JWT_PUBLIC_KEY_FILE".into(),
                problem: format!("cannot read {path}: {e}"),
            })?),
            (None, None) => None,
        };
        let auth = AuthConfig {
            secret: get("VIGIL_JWT_SECRET").filter(|s| !s.is_empty()),
            public_key_pem,
            issuer: get("VIGIL_JWT_ISSUER").filter(|s| !s.is_empty()),
            audience: get("VIGIL_JWT_AUDIENCE").filter(|s| !s.is_empty()),
        };
        let webhooks = match get("VIGIL_WEBHOOKS") {
            Some(spec) if !spec.trim().is_empty() => parse_webhooks(&spec, get("VIGIL_WEBHOOK_SECRET"))?,
            _ => Vec::new(),
        };
        let analytics_defaults = AnalyticsConfig::default();
        let precision_floor: f64 = parse_or(&get, "VIGIL_PRECISION_FLOOR", analytics_defaults.precision_floor)?;
        if !(0.0..=1.0).contains(&precision_floor) {
            return Err(ConfigError {
                var: "VIGIL_PRECISION_FLOOR".into(),
                problem: format!("{precision_floor} is not between 0 and 1"),
            });
        }
        let analytics = AnalyticsConfig {
            precision_floor,
            precision_min_closed: parse_or(
                &get,
                "VIGIL_PRECISION_MIN_CLOSED",
                analytics_defaults.precision_min_closed,
            )?,
            shifts: match get("VIGIL_SHIFTS") {
                Some(spec) if !spec.trim().is_empty() => {
                    parse_shifts(&spec).map_err(|problem| ConfigError { var: "VIGIL_SHIFTS".into(), problem })?
                }
                _ => analytics_defaults.shifts,
            },
        };
        let hec = HecConfig {
            ack: parse_flag(&get, "VIGIL_HEC_ACK", HecConfig::default().ack)?,
            query_token: parse_flag(&get, "VIGIL_HEC_QUERY_TOKEN", HecConfig::default().query_token)?,
        };
        Ok(Config {
            tables,
            queues,
            limits,
            event_retention: Duration::from_secs(retention_days * 24 * 3600),
            sla,
            auth,
            webhooks,
            rules_path: get("VIGIL_RULES_FILE").filter(|s| !s.is_empty()).map(PathBuf::from),
            analytics,
            hec,
        })
    }

    pub fn table(&self, spec: &TableSpec) -> &str {
        self.tables.get(spec.logical).map(String::as_str).unwrap_or(spec.default_name)
    }

    pub fn queue(&self, spec: &QueueSpec) -> &str {
        self.queues.get(spec.logical).map(String::as_str).unwrap_or(spec.default_name)
    }

    pub fn events_queue(&self) -> &str {
        self.queue(&EVENTS_QUEUE)
    }

    pub fn detections_queue(&self) -> &str {
        self.queue(&DETECTIONS_QUEUE)
    }
}

impl Default for Config {
    fn default() -> Self {
        Config::from_lookup(|_| None).expect("defaults are valid")
    }
}

fn parse_opt<T: FromStr>(get: &impl Fn(&str) -> Option<String>, var: &str) -> Result<Option<T>, ConfigError>
where
    T::Err: std::fmt::Display,
{
    match get(var) {
        None => Ok(None),
        Some(v) if v.trim().is_empty() => Ok(None),
        Some(v) => v
            .trim()
            .parse()
            .map(Some)
            .map_err(|e| ConfigError { var: var.into(), problem: format!("{v:?} is not valid: {e}") }),
    }
}

fn parse_or<T: FromStr>(get: &impl Fn(&str) -> Option<String>, var: &str, default: T) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    Ok(parse_opt(get, var)?.unwrap_or(default))
}

/// A yes/no setting: `true|false`, `1|0`, `on|off`, `yes|no` (any case).
fn parse_flag(get: &impl Fn(&str) -> Option<String>, var: &str, default: bool) -> Result<bool, ConfigError> {
    match get(var).map(|v| v.trim().to_ascii_lowercase()) {
        None => Ok(default),
        Some(v) if v.is_empty() => Ok(default),
        Some(v) => match v.as_str() {
            "true" | "1" | "on" | "yes" => Ok(true),
            "false" | "0" | "off" | "no" => Ok(false),
            _ => Err(ConfigError { var: var.into(), problem: format!("{v:?} is not true or false") }),
        },
    }
}

/// `VIGIL_SHIFTS`: comma-separated `name=HH:MM-HH:MM` (UTC; `24:00` allowed as an end; an end before the start
/// wraps past midnight). Names are unique and made of letters, digits, `-` and `_`.
pub fn parse_shifts(spec: &str) -> Result<Vec<Shift>, String> {
    fn minute(s: &str, allow_24: bool) -> Option<u32> {
        let (h, m) = s.trim().split_once(':')?;
        if h.len() != 2 || m.len() != 2 {
            return None;
        }
        let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
        match (h, m) {
            (24, 0) if allow_24 => Some(1440),
            (0..=23, 0..=59) => Some(h * 60 + m),
            _ => None,
        }
    }
    let mut shifts: Vec<Shift> = Vec::new();
    for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, range) = item.split_once('=').ok_or_else(|| format!("{item:?} is not name=HH:MM-HH:MM"))?;
        let name = name.trim();
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_')) {
            return Err(format!("{name:?} is not a valid shift name (letters, digits, - and _)"));
        }
        if shifts.iter().any(|s| s.name == name) {
            return Err(format!("shift {name:?} is given twice"));
        }
        let (start, end) = range.split_once('-').ok_or_else(|| format!("{item:?} is not name=HH:MM-HH:MM"))?;
        let start_minute =
            minute(start, false).ok_or_else(|| format!("{item:?}: {start:?} is not a time 00:00-23:59"))?;
        let end_minute = minute(end, true).ok_or_else(|| format!("{item:?}: {end:?} is not a time 00:00-24:00"))?;
        if start_minute == end_minute {
            return Err(format!("{item:?}: a shift cannot start and end at the same time"));
        }
        shifts.push(Shift { name: name.to_string(), start_minute, end_minute });
    }
    if shifts.is_empty() {
        return Err("no shift given".into());
    }
    Ok(shifts)
}

/// `VIGIL_WEBHOOKS` is a comma-separated list of `URL` or `slack+URL`.
fn parse_webhooks(spec: &str, secret: Option<String>) -> Result<Vec<WebhookConfig>, ConfigError> {
    spec.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|item| {
            let (format, url) = match item.strip_prefix("slack+") {
                Some(url) => (WebhookFormat::Slack, url),
                None => (WebhookFormat::Json, item),
            };
            let parsed = url::Url::parse(url).map_err(|e| ConfigError {
                var: "VIGIL_WEBHOOKS".into(),
                problem: format!("{url:?} is not a URL: {e}"),
            })?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(ConfigError { var: "VIGIL_WEBHOOKS".into(), problem: format!("{url:?} is not http(s)") });
            }
            Ok(WebhookConfig { url: url.to_string(), format, secret: secret.clone() })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn defaults_match_the_schema_and_design() {
        let c = Config::default();
        assert_eq!(c.table(&crate::schema::EVENTS_TABLE), "vigil-events");
        assert_eq!(c.events_queue(), "vigil-events");
        assert_eq!(c.sla.acknowledge_within(Severity::Critical), Duration::from_secs(900));
        assert_eq!(c.sla.acknowledge_within(Severity::Low), Duration::from_secs(86400));
        assert!(c.webhooks.is_empty());
    }

    #[test]
    fn overrides_and_errors_name_the_variable() {
        let c = Config::from_lookup(lookup(&[
            ("VIGIL_EVENTS_TABLE", "t1"),
            ("VIGIL_SLA_ACK_HIGH_MINUTES", "30"),
            ("VIGIL_WEBHOOKS", "https://a.example/hook, slack+https://hooks.slack.example/x"),
        ]))
        .unwrap();
        assert_eq!(c.table(&crate::schema::EVENTS_TABLE), "t1");
        assert_eq!(c.sla.acknowledge_within(Severity::High), Duration::from_secs(1800));
        assert_eq!(c.webhooks.len(), 2);
        assert_eq!(c.webhooks[1].format, WebhookFormat::Slack);

        let err = Config::from_lookup(lookup(&[("VIGIL_MAX_BODY_BYTES", "lots")])).unwrap_err();
        assert_eq!(err.var, "VIGIL_MAX_BODY_BYTES");
        let err = Config::from_lookup(lookup(&[("VIGIL_WEBHOOKS", "ftp://x")])).unwrap_err();
        assert_eq!(err.var, "VIGIL_WEBHOOKS");
    }

    #[test]
    fn analytics_settings_default_and_validate() {
        let c = Config::default();
        assert_eq!(c.analytics.precision_floor, 0.8);
        assert_eq!(c.analytics.precision_min_closed, 5);
        let names: Vec<&str> = c.analytics.shifts.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, vec!["day", "swing", "night"]);
        let swing = &c.analytics.shifts[1];
        assert!(swing.contains(16 * 60) && swing.contains(1439) && !swing.contains(0) && !swing.contains(8 * 60));

        let c = Config::from_lookup(lookup(&[
            ("VIGIL_PRECISION_FLOOR", "0.5"),
            ("VIGIL_PRECISION_MIN_CLOSED", "2"),
            ("VIGIL_SHIFTS", "early=06:00-18:00, late=18:00-06:00"),
        ]))
        .unwrap();
        assert_eq!(c.analytics.precision_floor, 0.5);
        assert_eq!(c.analytics.precision_min_closed, 2);
        let late = &c.analytics.shifts[1];
        assert!(late.contains(23 * 60) && late.contains(0) && late.contains(359) && !late.contains(360));

        for (var, value) in [
            ("VIGIL_PRECISION_FLOOR", "1.5"),
            ("VIGIL_PRECISION_FLOOR", "high"),
            ("VIGIL_PRECISION_MIN_CLOSED", "-1"),
            ("VIGIL_SHIFTS", "day=08:00"),
            ("VIGIL_SHIFTS", "day=08:00-25:00"),
            ("VIGIL_SHIFTS", "day=08:00-08:00"),
            ("VIGIL_SHIFTS", "day=08:00-16:00,day=16:00-24:00"),
            ("VIGIL_SHIFTS", "a b=08:00-16:00"),
        ] {
            let err = Config::from_lookup(lookup(&[(var, value)])).unwrap_err();
            assert_eq!(err.var, var, "{value}");
        }
    }
}
