//! Detection rules as data: their typed form (what the engine evaluates, and the tests a rule carries).
//! [`super::load`] builds them from TOML.

use std::fmt;
use std::time::Duration;

use toml::Table;

use crate::model::{Event, Outcome, Severity};

/// No window key keeps more entries than this (the oldest are dropped), so no rule may need more.
pub const MAX_ENTRIES_PER_KEY: usize = 2_000;
/// Suppression when a rule does not set one.
pub const DEFAULT_SUPPRESSION: Duration = Duration::from_secs(60 * 60);
/// Longest window a rule may use (state and TTLs grow with it).
pub const MAX_WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);
/// Longest value kept from an event field for an entity or a distinct tag (bounded key and item size).
pub(crate) const MAX_VALUE_CHARS: usize = 200;

/// A rules file that cannot be loaded: names the file, the rule (when known) and the field.
#[derive(Debug, thiserror::Error)]
#[error("{origin}: rule {rule:?}: {field}: {problem}")]
pub struct RuleError {
    pub origin: String,
    pub rule: Option<String>,
    pub field: String,
    pub problem: String,
}

/// A normalised event field a rule can group by, count distinct values of, or match on.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    SrcIp,
    DstIp,
    User,
    Host,
    Program,
    Source,
    Category,
    Action,
    /// `label.<name>`: one of the event's labels.
    Label(String),
}

impl Field {
    /// The string fields, by the names rule files use.
    pub(crate) const NAMED: [(&'static str, Field); 8] = [
        ("src_ip", Field::SrcIp),
        ("dst_ip", Field::DstIp),
        ("user", Field::User),
        ("host", Field::Host),
        ("program", Field::Program),
        ("source", Field::Source),
        ("category", Field::Category),
        ("action", Field::Action),
    ];

    pub fn parse(name: &str) -> Option<Field> {
        if let Some(label) = name.strip_prefix("label.") {
            return (!label.is_empty()).then(|| Field::Label(label.to_string()));
        }
        Field::NAMED.iter().find(|(n, _)| *n == name).map(|(_, f)| f.clone())
    }

    /// The field's value on `event`; empty strings count as absent.
    pub fn value(&self, event: &Event) -> Option<String> {
        let v = match self {
            Field::SrcIp => event.src_ip.map(|ip| ip.to_string()),
            Field::DstIp => event.dst_ip.map(|ip| ip.to_string()),
            Field::User => event.user.clone(),
            Field::Host => event.host.clone(),
            Field::Program => event.program.clone(),
            Field::Source => Some(event.source.clone()),
            Field::Category => event.category.clone(),
            Field::Action => event.action.clone(),
            Field::Label(name) => event.labels.get(name).cloned(),
        }?;
        let v = v.trim();
        (!v.is_empty()).then(|| truncate_chars(v, MAX_VALUE_CHARS).to_string())
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Field::Label(name) => write!(f, "label.{name}"),
            other => {
                let name = Field::NAMED.iter().find(|(_, x)| x == other).map(|(n, _)| *n).unwrap_or("?");
                f.write_str(name)
            }
        }
    }
}

pub(crate) fn truncate_chars(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// One part of an entity: alternatives tried in order, the first the event has wins (`host|src_ip|source`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupKey {
    pub alternatives: Vec<Field>,
}

impl fmt::Display for GroupKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self.alternatives.iter().map(Field::to_string).collect();
        f.write_str(&names.join("|"))
    }
}

/// The entity an event belongs to under one rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entity {
    /// `src_ip=203.0.113.7` (parts joined by `,`): the detection's entity and the window key's last part.
    pub key: String,
    /// `203.0.113.7`: the values alone, for reasons.
    pub display: String,
}

/// Conditions on an event's normalised fields; all given must hold, a list means any of its values.
/// String comparisons ignore case; `*` at the end or the start of a value matches by prefix (`"4*"`), suffix
/// (`"*.php"`) or both (`"*admin*"`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Matcher {
    /// `(field, accepted values in lower case)`.
    pub fields: Vec<(Field, Vec<String>)>,
    pub outcome: Option<Vec<Outcome>>,
    pub severity: Option<Vec<Severity>>,
    pub min_severity: Option<Severity>,
    /// A compiled Sigma detection that must hold too (Sigma rules and their correlations' signals).
    pub sigma: Option<super::sigma::SigmaPredicate>,
}

impl Matcher {
    pub fn matches(&self, event: &Event) -> bool {
        self.outcome.as_ref().is_none_or(|o| o.contains(&event.outcome))
            && self.severity.as_ref().is_none_or(|s| s.contains(&event.severity))
            && self.min_severity.is_none_or(|min| event.severity >= min)
            && self.fields.iter().all(|(field, accepted)| {
                field.value(event).is_some_and(|v| accepted.iter().any(|a| value_matches(a, &v)))
            })
            && self.sigma.as_ref().is_none_or(|p| p.matches(event))
    }

    /// A matcher with no condition at all (matches every event).
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
            && self.outcome.is_none()
            && self.severity.is_none()
            && self.min_severity.is_none()
            && self.sigma.is_none()
    }
}

/// `accepted` (lower case, from a rule) against an event's value, ignoring case: exact; a prefix when it ends
/// in `*` (`4*`); a suffix when it starts with `*` (`*.php`); a substring when it does both (`*admin*`); `*`
/// alone: any value.
fn value_matches(accepted: &str, value: &str) -> bool {
    match (accepted.strip_prefix('*'), accepted.strip_suffix('*')) {
        _ if accepted == "*" => true,
        (Some(rest), Some(_)) => value.to_ascii_lowercase().contains(&rest[..rest.len() - 1]),
        (Some(suffix), None) => value
            .len()
            .checked_sub(suffix.len())
            .and_then(|from| value.get(from..))
            .is_some_and(|tail| tail.eq_ignore_ascii_case(suffix)),
        (None, Some(prefix)) => value.get(..prefix.len()).is_some_and(|head| head.eq_ignore_ascii_case(prefix)),
        (None, None) => accepted.eq_ignore_ascii_case(value),
    }
}

/// How a detection's severity is chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeverityPolicy {
    Fixed(Severity),
    /// The highest severity among this evaluation's events in the firing window.
    Event,
}

/// Where a `threshold` rule's run stops because the events came too fast (`[rule.burst]`): a point where
/// `threshold` counted events fall within `window` ends the run just before it. A slow rule uses it to leave
/// fast attacks to the fast rule.
#[derive(Clone, Debug, PartialEq)]
pub struct Burst {
    pub window: Duration,
    pub threshold: u64,
}

/// One weighted signal of a `risk` rule (`[[rule.signal]]`).
#[derive(Clone, Debug, PartialEq)]
pub struct Signal {
    /// Names the signal in reasons and tags its window entries (unique within the rule).
    pub name: String,
    /// Added per matching event ...
    pub score: u64,
    /// ... up to this much per window.
    pub cap: u64,
    pub matcher: Matcher,
}

/// What a rule looks for.
#[derive(Clone, Debug, PartialEq)]
pub enum RuleKind {
    /// At least `threshold` matching events within `window`. With `reset`, events matching it are not counted
    /// and end the run (a reset in the same millisecond as a counted event is taken to come before it); with
    /// `burst`, the run also ends where the events come faster than the burst rate.
    Threshold { window: Duration, threshold: u64, reset: Option<Matcher>, burst: Option<Burst> },
    /// At least `threshold` distinct values of `field` within `window`.
    Distinct { window: Duration, threshold: u64, field: Field },
    /// A `success` event with at least `threshold` `failure` events in the `window` before it (inclusive).
    Sequence { window: Duration, threshold: u64, failure: Matcher, success: Matcher },
    /// A value of `field` never seen before for the entity, once the entity has been known for `learning`.
    /// Known values are remembered for `window` after they were last seen.
    FirstSeen { window: Duration, learning: Duration, field: Field },
    /// The summed, capped scores of `signals` within `window` reach `threshold`, from at least `min_signals`
    /// different signals.
    Risk { window: Duration, threshold: u64, min_signals: u64, signals: Vec<Signal> },
    /// Every matching event, at once, without state.
    Passthrough,
    /// Several rules' events close in time, in order or not (Sigma `temporal_ordered`, chained `temporal`).
    Temporal(super::sigma::TemporalSpec),
}

impl RuleKind {
    pub fn name(&self) -> &'static str {
        match self {
            RuleKind::Threshold { .. } => "threshold",
            RuleKind::Distinct { .. } => "distinct",
            RuleKind::Sequence { .. } => "sequence",
            RuleKind::FirstSeen { .. } => "first_seen",
            RuleKind::Risk { .. } => "risk",
            RuleKind::Passthrough => "passthrough",
            RuleKind::Temporal(spec) => spec.name(),
        }
    }

    pub fn window(&self) -> Option<Duration> {
        match self {
            RuleKind::Threshold { window, .. }
            | RuleKind::Distinct { window, .. }
            | RuleKind::Sequence { window, .. }
            | RuleKind::FirstSeen { window, .. }
            | RuleKind::Risk { window, .. } => Some(*window),
            RuleKind::Temporal(spec) => Some(spec.lookback()),
            RuleKind::Passthrough => None,
        }
    }

    pub fn threshold(&self) -> Option<u64> {
        match self {
            RuleKind::Threshold { threshold, .. }
            | RuleKind::Distinct { threshold, .. }
            | RuleKind::Sequence { threshold, .. }
            | RuleKind::Risk { threshold, .. } => Some(*threshold),
            RuleKind::FirstSeen { .. } | RuleKind::Passthrough | RuleKind::Temporal(_) => None,
        }
    }
}

/// One detection rule, as loaded and checked.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    pub id: String,
    pub name: String,
    pub description: String,
    pub enabled: bool,
    pub kind: RuleKind,
    /// The `match` table: which events the rule considers at all.
    pub conditions: Matcher,
    /// The `except` table: events matching all of it are skipped even when `conditions` hold.
    pub except: Option<Matcher>,
    /// Parts of the entity; an event lacking any part is skipped by the rule.
    pub group_by: Vec<GroupKey>,
    pub suppression: Duration,
    /// Added to the score of every event in a firing window.
    pub score: u8,
    pub severity: SeverityPolicy,
    pub mitre: Vec<String>,
    /// Reason template (see the top of `rules/builtin.toml` for placeholders).
    pub reason: String,
    pub runbook: Option<String>,
    /// The file the rule (or its last override) came from.
    pub origin: String,
    /// The rule's own tests (`[[rule.test]]`), run by `vigil rules test` and the test suite.
    pub tests: Vec<RuleTest>,
    /// The definition as written, so an override can patch single fields.
    pub(crate) table: Table,
    /// Where a rule compiled from Sigma came from (id, false positives, references, ...).
    pub sigma: Option<std::sync::Arc<super::sigma::SigmaInfo>>,
}

impl Rule {
    pub fn window(&self) -> Option<Duration> {
        self.kind.window()
    }

    pub fn threshold(&self) -> Option<u64> {
        self.kind.threshold()
    }

    /// Whether the rule considers `event` at all: its `match` holds and its `except` does not.
    pub fn applies(&self, event: &Event) -> bool {
        self.conditions.matches(event) && !self.except.as_ref().is_some_and(|x| x.matches(event))
    }

    /// The event's entity under this rule, or `None` when it lacks a group-by field.
    pub(crate) fn entity(&self, event: &Event) -> Option<Entity> {
        if let Some(per_rule) = self.sigma.as_ref().and_then(|s| s.entity(event)) {
            return per_rule;
        }
        let mut keys = Vec::with_capacity(self.group_by.len());
        let mut values = Vec::with_capacity(self.group_by.len());
        for part in &self.group_by {
            let (field, value) = part.alternatives.iter().find_map(|f| f.value(event).map(|v| (f, v)))?;
            keys.push(format!("{field}={value}"));
            values.push(value);
        }
        Some(Entity { key: keys.join(","), display: values.join(", ") })
    }
}

/// Weights of an event's own signals, before any rule adds to its score.
#[derive(Clone, Debug, PartialEq)]
pub struct Scoring {
    /// Indexed by `Severity as usize` (info … critical).
    pub severity: [u8; 5],
    /// Added when the outcome is a failure.
    pub failure: u8,
    /// Added when the user is one of `privileged_users` (case-insensitive).
    pub privileged: u8,
    pub privileged_users: Vec<String>,
}

impl Default for Scoring {
    fn default() -> Self {
        Scoring {
            severity: [0, 10, 20, 35, 50],
            failure: 10,
            privileged: 10,
            privileged_users: ["root", "admin", "administrator"].map(String::from).to_vec(),
        }
    }
}

impl Scoring {
    pub fn severity_weight(&self, s: Severity) -> u8 {
        self.severity[s as usize]
    }

    pub fn is_privileged(&self, user: &str) -> bool {
        self.privileged_users.iter().any(|p| p.eq_ignore_ascii_case(user.trim()))
    }
}

/// Fills `{name}` placeholders from `value`; the template was checked at load.
pub(crate) fn render(template: &str, value: impl Fn(&str) -> String) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                out.push_str(&value(&after[..close]));
                rest = &after[close + 1..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

// ---------------------------------------------------------------------------------------------------------
// Tests a rule carries (`[[rule.test]]`), run by [`super::ruletest`]

/// No test may make more events than this.
pub(crate) const MAX_TEST_EVENTS: u64 = 20_000;

#[derive(Clone, Debug, PartialEq)]
pub struct RuleTest {
    pub name: String,
    pub events: Vec<TestEvent>,
    pub expect: Expect,
}

/// One `events` entry: a template event and where (and how often) it occurs.
#[derive(Clone, Debug, PartialEq)]
pub struct TestEvent {
    pub offset_ms: i64,
    pub repeat: u64,
    pub every_ms: i64,
    pub batch: u64,
    pub id: Option<String>,
    pub template: Event,
    /// Address templates (may hold `{n}`), parsed per repetition.
    pub src_ip: Option<String>,
    pub dst_ip: Option<String>,
    /// The template has a message to normalise.
    pub normalize: bool,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Expect {
    pub fires: bool,
    pub detections: Option<usize>,
    pub count: Option<u64>,
    pub entity: Option<String>,
    pub severity: Option<Severity>,
    pub reason: Option<String>,
}

/// `{n}` → the repetition index.
pub(crate) fn substitute(text: &str, k: u64) -> String {
    if text.contains("{n}") {
        text.replace("{n}", &k.to_string())
    } else {
        text.to_string()
    }
}
