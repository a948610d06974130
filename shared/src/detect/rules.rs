//! Detection rules as data: their typed form and the loader that turns a TOML rules file into it.
//!
//! The loader reads the file into a plain TOML table and checks every field by hand, so each problem is
//! reported as a [`RuleError`] naming the file, the rule and the field (`match.outcome`, `window`, …).

use std::fmt;
use std::time::Duration;

use toml::{Table, Value};

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
    const NAMED: [(&'static str, Field); 8] = [
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
/// String comparisons ignore case.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Matcher {
    /// `(field, accepted values in lower case)`.
    pub fields: Vec<(Field, Vec<String>)>,
    pub outcome: Option<Vec<Outcome>>,
    pub severity: Option<Vec<Severity>>,
    pub min_severity: Option<Severity>,
}

impl Matcher {
    pub fn matches(&self, event: &Event) -> bool {
        self.outcome.as_ref().is_none_or(|o| o.contains(&event.outcome))
            && self.severity.as_ref().is_none_or(|s| s.contains(&event.severity))
            && self.min_severity.is_none_or(|min| event.severity >= min)
            && self.fields.iter().all(|(field, accepted)| {
                field.value(event).is_some_and(|v| accepted.iter().any(|a| a.eq_ignore_ascii_case(&v)))
            })
    }
}

/// How a detection's severity is chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeverityPolicy {
    Fixed(Severity),
    /// The highest severity among this evaluation's events in the firing window.
    Event,
}

/// What a rule looks for.
#[derive(Clone, Debug, PartialEq)]
pub enum RuleKind {
    /// At least `threshold` matching events within `window`.
    Threshold { window: Duration, threshold: u64 },
    /// At least `threshold` distinct values of `field` within `window`.
    Distinct { window: Duration, threshold: u64, field: Field },
    /// A `success` event with at least `threshold` `failure` events in the `window` before it (inclusive).
    Sequence { window: Duration, threshold: u64, failure: Matcher, success: Matcher },
    /// Every matching event, at once, without state.
    Passthrough,
}

impl RuleKind {
    pub fn name(&self) -> &'static str {
        match self {
            RuleKind::Threshold { .. } => "threshold",
            RuleKind::Distinct { .. } => "distinct",
            RuleKind::Sequence { .. } => "sequence",
            RuleKind::Passthrough => "passthrough",
        }
    }

    pub fn window(&self) -> Option<Duration> {
        match self {
            RuleKind::Threshold { window, .. }
            | RuleKind::Distinct { window, .. }
            | RuleKind::Sequence { window, .. } => Some(*window),
            RuleKind::Passthrough => None,
        }
    }

    pub fn threshold(&self) -> Option<u64> {
        match self {
            RuleKind::Threshold { threshold, .. }
            | RuleKind::Distinct { threshold, .. }
            | RuleKind::Sequence { threshold, .. } => Some(*threshold),
            RuleKind::Passthrough => None,
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
    /// The definition as written, so an override can patch single fields.
    pub(crate) table: Table,
}

impl Rule {
    pub fn window(&self) -> Option<Duration> {
        self.kind.window()
    }

    pub fn threshold(&self) -> Option<u64> {
        self.kind.threshold()
    }

    /// The event's entity under this rule, or `None` when it lacks a group-by field.
    pub(crate) fn entity(&self, event: &Event) -> Option<Entity> {
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

// ---------------------------------------------------------------------------------------------------------
// Loading

/// A rules file split into its rule tables and its optional `[scoring]` table.
pub(crate) struct RawFile {
    pub rules: Vec<(String, Table)>,
    pub scoring: Option<Table>,
}

pub(crate) fn err(origin: &str, rule: Option<&str>, field: impl Into<String>, problem: impl Into<String>) -> RuleError {
    RuleError {
        origin: origin.to_string(),
        rule: rule.map(str::to_string),
        field: field.into(),
        problem: problem.into(),
    }
}

pub(crate) fn parse_file(text: &str, origin: &str) -> Result<RawFile, RuleError> {
    let doc: Table = text.parse().map_err(|e: toml::de::Error| err(origin, None, "toml", e.to_string().trim_end()))?;
    let mut rules = Vec::new();
    let mut scoring = None;
    for (key, value) in doc {
        match (key.as_str(), value) {
            ("rule", Value::Array(items)) => {
                for (i, item) in items.into_iter().enumerate() {
                    let Value::Table(table) = item else {
                        return Err(err(origin, None, format!("rule[{i}]"), "must be a table ([[rule]])"));
                    };
                    let id = match table.get("id") {
                        Some(Value::String(id)) => id.clone(),
                        Some(other) => {
                            return Err(err(
                                origin,
                                None,
                                "id",
                                format!("expected a string, found {}", other.type_str()),
                            ))
                        }
                        None => {
                            return Err(err(origin, None, "id", format!("missing (rule number {} in the file)", i + 1)))
                        }
                    };
                    if !valid_id(&id) {
                        return Err(err(
                            origin,
                            Some(&id),
                            "id",
                            "must be 1–64 characters of letters, digits, `_`, `-` or `.`",
                        ));
                    }
                    if rules.iter().any(|(existing, _)| *existing == id) {
                        return Err(err(origin, Some(&id), "id", "defined twice in this file"));
                    }
                    rules.push((id, table));
                }
            }
            ("rule", _) => return Err(err(origin, None, "rule", "must be an array of tables ([[rule]])")),
            ("scoring", Value::Table(t)) => scoring = Some(t),
            ("scoring", _) => return Err(err(origin, None, "scoring", "must be a table ([scoring])")),
            (other, _) => {
                return Err(err(origin, None, other, "unknown top-level key (expected [[rule]] or [scoring])"));
            }
        }
    }
    Ok(RawFile { rules, scoring })
}

fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// Reads typed fields out of one table, reporting problems against the rule and a field prefix.
struct Reader<'a> {
    table: &'a Table,
    origin: &'a str,
    rule: Option<&'a str>,
    prefix: &'a str,
}

impl<'a> Reader<'a> {
    fn field(&self, name: &str) -> String {
        format!("{}{}", self.prefix, name)
    }

    fn fail(&self, name: &str, problem: impl Into<String>) -> RuleError {
        err(self.origin, self.rule, self.field(name), problem)
    }

    fn check_known(&self, known: &[&str]) -> Result<(), RuleError> {
        for key in self.table.keys() {
            if !known.contains(&key.as_str()) {
                return Err(self.fail(key, format!("unknown field (expected one of: {})", known.join(", "))));
            }
        }
        Ok(())
    }

    fn has(&self, name: &str) -> bool {
        self.table.contains_key(name)
    }

    fn wrong_type(&self, name: &str, expected: &str, found: &Value) -> RuleError {
        self.fail(name, format!("expected {expected}, found {}", found.type_str()))
    }

    fn string(&self, name: &str) -> Result<Option<String>, RuleError> {
        match self.table.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(self.wrong_type(name, "a string", other)),
        }
    }

    fn required_string(&self, name: &str) -> Result<String, RuleError> {
        self.string(name)?.ok_or_else(|| self.fail(name, "missing"))
    }

    /// A string or a non-empty array of strings.
    fn strings(&self, name: &str) -> Result<Option<Vec<String>>, RuleError> {
        match self.list(name)? {
            Some(v) if v.is_empty() => Err(self.fail(name, "must not be empty")),
            other => Ok(other),
        }
    }

    /// A string or an array of strings, possibly empty.
    fn list(&self, name: &str) -> Result<Option<Vec<String>>, RuleError> {
        match self.table.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(vec![s.clone()])),
            Some(Value::Array(items)) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    match item {
                        Value::String(s) => out.push(s.clone()),
                        other => return Err(self.wrong_type(name, "a string or an array of strings", other)),
                    }
                }
                Ok(Some(out))
            }
            Some(other) => Err(self.wrong_type(name, "a string or an array of strings", other)),
        }
    }

    fn bool(&self, name: &str) -> Result<Option<bool>, RuleError> {
        match self.table.get(name) {
            None => Ok(None),
            Some(Value::Boolean(b)) => Ok(Some(*b)),
            Some(other) => Err(self.wrong_type(name, "true or false", other)),
        }
    }

    fn integer(&self, name: &str, min: i64, max: i64) -> Result<Option<i64>, RuleError> {
        match self.table.get(name) {
            None => Ok(None),
            Some(Value::Integer(n)) if (min..=max).contains(n) => Ok(Some(*n)),
            Some(Value::Integer(n)) => Err(self.fail(name, format!("{n} is out of range (expected {min} to {max})"))),
            Some(other) => Err(self.wrong_type(name, "an integer", other)),
        }
    }

    fn duration(&self, name: &str) -> Result<Option<Duration>, RuleError> {
        let Some(text) = self.string(name)? else { return Ok(None) };
        parse_duration(&text).map(Some).map_err(|problem| self.fail(name, problem))
    }

    fn severity(&self, name: &str) -> Result<Option<Severity>, RuleError> {
        let Some(text) = self.string(name)? else { return Ok(None) };
        parse_severity(&text).map(Some).ok_or_else(|| self.fail(name, bad_severity(&text)))
    }

    fn table(&self, name: &str) -> Result<Option<&'a Table>, RuleError> {
        match self.table.get(name) {
            None => Ok(None),
            Some(Value::Table(t)) => Ok(Some(t)),
            Some(other) => Err(self.wrong_type(name, "a table", other)),
        }
    }

    /// A field name (`src_ip`, `label.env`, …).
    fn field_name(&self, name: &str, text: &str) -> Result<Field, RuleError> {
        Field::parse(text).ok_or_else(|| {
            self.fail(
                name,
                format!(
                    "unknown field {text:?} (expected src_ip, dst_ip, user, host, program, source, category, action or label.<name>)"
                ),
            )
        })
    }

    /// `must_not_have` for fields a kind does not use: a typo'd rule should fail loudly, not half-work.
    fn forbid(&self, name: &str, kind: &str) -> Result<(), RuleError> {
        if self.has(name) {
            return Err(self.fail(name, format!("not used by kind {kind}")));
        }
        Ok(())
    }
}

fn bad_severity(text: &str) -> String {
    format!("unknown severity {text:?} (expected info, low, medium, high or critical)")
}

pub(crate) fn parse_severity(text: &str) -> Option<Severity> {
    Severity::ALL.into_iter().find(|s| s.as_str().eq_ignore_ascii_case(text.trim()))
}

/// `"90s"`, `"2m"`, `"6h"`, `"1d"`: a positive whole number and one unit.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration {text:?} (expected a positive number and a unit s, m, h or d, e.g. \"2m\")");
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let secs_per = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    if n == 0 {
        return Err(bad());
    }
    n.checked_mul(secs_per).map(Duration::from_secs).ok_or_else(bad)
}

/// The shortest exact form of a duration: `2m`, `6h`, `90s`.
pub fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => "0s".to_string(),
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

const RULE_FIELDS: &[&str] = &[
    "id",
    "name",
    "description",
    "enabled",
    "kind",
    "match",
    "group_by",
    "window",
    "threshold",
    "distinct",
    "failure",
    "success",
    "suppression",
    "score",
    "severity",
    "mitre",
    "reason",
    "runbook",
];

const MATCH_FIELDS: &[&str] = &[
    "category",
    "action",
    "outcome",
    "program",
    "source",
    "host",
    "user",
    "src_ip",
    "dst_ip",
    "severity",
    "min_severity",
    "labels",
];

/// Placeholders every kind may use in `reason`, and those only some kinds fill.
const COMMON_PLACEHOLDERS: &[&str] =
    &["count", "entity", "group_by", "rule", "name", "severity", "first_seen", "last_seen"];

fn placeholders_for(kind: &RuleKind) -> Vec<&'static str> {
    let mut p = COMMON_PLACEHOLDERS.to_vec();
    match kind {
        RuleKind::Threshold { .. } => p.extend(["window", "threshold"]),
        RuleKind::Distinct { .. } => p.extend(["window", "threshold", "distinct", "distinct_field"]),
        RuleKind::Sequence { .. } => p.extend(["window", "threshold", "failures"]),
        RuleKind::Passthrough => {}
    }
    p
}

const DEFAULT_REASON: &str = "{name}: {count} matching events for {entity}";

/// The passthrough entity when a rule gives no `group_by`: every event has a `source`, so none is skipped.
const PASSTHROUGH_GROUP_BY: &str = "host|src_ip|source";

/// Builds and checks one rule from its table.
pub(crate) fn build_rule(id: &str, table: Table, origin: &str) -> Result<Rule, RuleError> {
    let r = Reader { table: &table, origin, rule: Some(id), prefix: "" };
    r.check_known(RULE_FIELDS)?;

    let kind_name = r.required_string("kind")?;
    let name = r.string("name")?.unwrap_or_else(|| id.to_string());
    let description = r.string("description")?.unwrap_or_default();
    let enabled = r.bool("enabled")?.unwrap_or(true);
    let conditions = match r.table("match")? {
        Some(t) => matcher(t, origin, id, "match.")?,
        None => Matcher::default(),
    };

    let stateful = kind_name != "passthrough";
    let (window, threshold) = if stateful && ["threshold", "distinct", "sequence"].contains(&kind_name.as_str()) {
        let window = r.duration("window")?.ok_or_else(|| r.fail("window", "missing"))?;
        if window > MAX_WINDOW {
            return Err(r.fail("window", format!("longer than the maximum {}", format_duration(MAX_WINDOW))));
        }
        let threshold = r
            .integer("threshold", 1, MAX_ENTRIES_PER_KEY as i64)?
            .ok_or_else(|| r.fail("threshold", "missing"))? as u64;
        (window, threshold)
    } else {
        (Duration::ZERO, 0)
    };

    let kind = match kind_name.as_str() {
        "threshold" => {
            for f in ["distinct", "failure", "success"] {
                r.forbid(f, "threshold")?;
            }
            RuleKind::Threshold { window, threshold }
        }
        "distinct" => {
            for f in ["failure", "success"] {
                r.forbid(f, "distinct")?;
            }
            let text =
                r.string("distinct")?.ok_or_else(|| r.fail("distinct", "missing (the field to count values of)"))?;
            let field = r.field_name("distinct", &text)?;
            RuleKind::Distinct { window, threshold, field }
        }
        "sequence" => {
            r.forbid("distinct", "sequence")?;
            let failure = r.table("failure")?.ok_or_else(|| r.fail("failure", "missing (a match table)"))?;
            let success = r.table("success")?.ok_or_else(|| r.fail("success", "missing (a match table)"))?;
            let failure = matcher(failure, origin, id, "failure.")?;
            let success = matcher(success, origin, id, "success.")?;
            RuleKind::Sequence { window, threshold, failure, success }
        }
        "passthrough" => {
            for f in ["window", "threshold", "distinct", "failure", "success"] {
                r.forbid(f, "passthrough")?;
            }
            RuleKind::Passthrough
        }
        other => {
            return Err(r.fail(
                "kind",
                format!("unknown kind {other:?} (expected threshold, distinct, sequence or passthrough)"),
            ))
        }
    };

    let group_by_texts = match r.strings("group_by")? {
        Some(v) => v,
        None if kind == RuleKind::Passthrough => vec![PASSTHROUGH_GROUP_BY.to_string()],
        None => return Err(r.fail("group_by", "missing (e.g. \"src_ip\")")),
    };
    let mut group_by = Vec::with_capacity(group_by_texts.len());
    for text in &group_by_texts {
        let mut alternatives = Vec::new();
        for alt in text.split('|') {
            alternatives.push(r.field_name("group_by", alt.trim())?);
        }
        group_by.push(GroupKey { alternatives });
    }

    let suppression = r.duration("suppression")?.unwrap_or(DEFAULT_SUPPRESSION);
    let score = r.integer("score", 0, 100)?.ok_or_else(|| r.fail("score", "missing (0 to 100)"))? as u8;
    let severity_text = r.required_string("severity")?;
    let severity = if severity_text.eq_ignore_ascii_case("event") {
        SeverityPolicy::Event
    } else {
        SeverityPolicy::Fixed(
            parse_severity(&severity_text)
                .ok_or_else(|| r.fail("severity", format!("{} or \"event\"", bad_severity(&severity_text))))?,
        )
    };
    let mitre = r.list("mitre")?.unwrap_or_default();
    for technique in &mitre {
        if !valid_technique(technique) {
            return Err(r.fail("mitre", format!("{technique:?} is not an ATT&CK technique id like T1110 or T1110.001")));
        }
    }
    let reason = r.string("reason")?.unwrap_or_else(|| DEFAULT_REASON.to_string());
    check_template(&reason, &placeholders_for(&kind)).map_err(|problem| r.fail("reason", problem))?;
    let runbook = r.string("runbook")?;

    Ok(Rule {
        id: id.to_string(),
        name,
        description,
        enabled,
        kind,
        conditions,
        group_by,
        suppression,
        score,
        severity,
        mitre,
        reason,
        runbook,
        origin: origin.to_string(),
        table,
    })
}

fn matcher(table: &Table, origin: &str, id: &str, prefix: &str) -> Result<Matcher, RuleError> {
    let r = Reader { table, origin, rule: Some(id), prefix };
    r.check_known(MATCH_FIELDS)?;
    let mut m = Matcher::default();
    for (name, field) in Field::NAMED.iter() {
        if let Some(values) = r.strings(name)? {
            m.fields.push((field.clone(), values.into_iter().map(|v| v.trim().to_ascii_lowercase()).collect()));
        }
    }
    if let Some(labels) = r.table("labels")? {
        let lr = Reader { table: labels, origin, rule: Some(id), prefix: &format!("{prefix}labels.") };
        for name in labels.keys() {
            let values = lr.strings(name)?.unwrap_or_default();
            m.fields.push((
                Field::Label(name.clone()),
                values.into_iter().map(|v| v.trim().to_ascii_lowercase()).collect(),
            ));
        }
    }
    if let Some(values) = r.strings("outcome")? {
        let mut outcomes = Vec::new();
        for v in values {
            outcomes.push(match v.trim().to_ascii_lowercase().as_str() {
                "success" => Outcome::Success,
                "failure" => Outcome::Failure,
                "unknown" => Outcome::Unknown,
                _ => {
                    return Err(
                        r.fail("outcome", format!("unknown outcome {v:?} (expected success, failure or unknown)"))
                    )
                }
            });
        }
        m.outcome = Some(outcomes);
    }
    if let Some(values) = r.strings("severity")? {
        let mut severities = Vec::new();
        for v in values {
            severities.push(parse_severity(&v).ok_or_else(|| r.fail("severity", bad_severity(&v)))?);
        }
        m.severity = Some(severities);
    }
    m.min_severity = r.severity("min_severity")?;
    Ok(m)
}

fn valid_technique(t: &str) -> bool {
    let b = t.as_bytes();
    let digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    match b.len() {
        5 => b[0] == b'T' && digits(&b[1..]),
        9 => b[0] == b'T' && digits(&b[1..5]) && b[5] == b'.' && digits(&b[6..]),
        _ => false,
    }
}

/// Checks that every `{placeholder}` is one the kind fills and that braces balance.
fn check_template(template: &str, allowed: &[&str]) -> Result<(), String> {
    let mut rest = template;
    while let Some(open) = rest.find(['{', '}']) {
        if rest.as_bytes()[open] == b'}' {
            return Err("unmatched `}`".to_string());
        }
        let after = &rest[open + 1..];
        let close = after.find('}').ok_or("unclosed `{`")?;
        let name = &after[..close];
        if !allowed.contains(&name) {
            return Err(format!("unknown placeholder {{{name}}} (this kind fills: {})", allowed.join(", ")));
        }
        rest = &after[close + 1..];
    }
    Ok(())
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

/// Reads a `[scoring]` table; keys not given keep `base`'s values.
pub(crate) fn build_scoring(table: &Table, origin: &str, base: &Scoring) -> Result<Scoring, RuleError> {
    let r = Reader { table, origin, rule: None, prefix: "scoring." };
    r.check_known(&["severity", "failure", "privileged", "privileged_users"])?;
    let mut s = base.clone();
    if let Some(weights) = r.table("severity")? {
        let wr = Reader { table: weights, origin, rule: None, prefix: "scoring.severity." };
        let names: Vec<&str> = Severity::ALL.iter().map(|s| s.as_str()).collect();
        wr.check_known(&names)?;
        for sev in Severity::ALL {
            if let Some(w) = wr.integer(sev.as_str(), 0, 100)? {
                s.severity[sev as usize] = w as u8;
            }
        }
    }
    if let Some(w) = r.integer("failure", 0, 100)? {
        s.failure = w as u8;
    }
    if let Some(w) = r.integer("privileged", 0, 100)? {
        s.privileged = w as u8;
    }
    if let Some(users) = r.list("privileged_users")? {
        s.privileged_users = users;
    }
    Ok(s)
}
