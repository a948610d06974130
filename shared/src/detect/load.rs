//! The loader: turns a TOML rules file (rules, their `[[rule.test]]`s and `[scoring]`) into the typed rules of
//! [`super::rule`]. It reads the file into a plain TOML table and checks every field by hand, so each problem
//! is reported as a [`RuleError`] naming the file, the rule and the field (`match.outcome`, `window`, …).

use std::net::IpAddr;
use std::time::Duration;

use toml::{Table, Value};

use super::rule::*;
use crate::model::{Event, Outcome, Severity};

/// A rules file split into its rule tables and its optional `[scoring]` table.
pub(crate) struct RawFile {
    pub rules: Vec<(String, Table)>,
    pub scoring: Option<Table>,
    /// `[sigma]`: Sigma files to load and mapping extensions (see `super::sigma`).
    pub sigma: Option<Table>,
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
    let mut sigma = None;
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
            ("sigma", Value::Table(t)) => sigma = Some(t),
            ("sigma", _) => return Err(err(origin, None, "sigma", "must be a table ([sigma])")),
            (other, _) => {
                return Err(err(
                    origin,
                    None,
                    other,
                    "unknown top-level key (expected [[rule]], [scoring] or [sigma])",
                ));
            }
        }
    }
    Ok(RawFile { rules, scoring, sigma })
}

fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// Reads typed fields out of one table, reporting problems against the rule and a field prefix.
pub(crate) struct Reader<'a> {
    pub table: &'a Table,
    pub origin: &'a str,
    pub rule: Option<&'a str>,
    pub prefix: &'a str,
}

impl<'a> Reader<'a> {
    pub(crate) fn field(&self, name: &str) -> String {
        format!("{}{}", self.prefix, name)
    }

    pub(crate) fn fail(&self, name: &str, problem: impl Into<String>) -> RuleError {
        err(self.origin, self.rule, self.field(name), problem)
    }

    pub(crate) fn check_known(&self, known: &[&str]) -> Result<(), RuleError> {
        for key in self.table.keys() {
            if !known.contains(&key.as_str()) {
                return Err(self.fail(key, format!("unknown field (expected one of: {})", known.join(", "))));
            }
        }
        Ok(())
    }

    pub(crate) fn has(&self, name: &str) -> bool {
        self.table.contains_key(name)
    }

    pub(crate) fn wrong_type(&self, name: &str, expected: &str, found: &Value) -> RuleError {
        self.fail(name, format!("expected {expected}, found {}", found.type_str()))
    }

    pub(crate) fn string(&self, name: &str) -> Result<Option<String>, RuleError> {
        match self.table.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(self.wrong_type(name, "a string", other)),
        }
    }

    pub(crate) fn required_string(&self, name: &str) -> Result<String, RuleError> {
        self.string(name)?.ok_or_else(|| self.fail(name, "missing"))
    }

    /// A string or a non-empty array of strings.
    pub(crate) fn strings(&self, name: &str) -> Result<Option<Vec<String>>, RuleError> {
        match self.list(name)? {
            Some(v) if v.is_empty() => Err(self.fail(name, "must not be empty")),
            other => Ok(other),
        }
    }

    /// A string or an array of strings, possibly empty.
    pub(crate) fn list(&self, name: &str) -> Result<Option<Vec<String>>, RuleError> {
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

    pub(crate) fn bool(&self, name: &str) -> Result<Option<bool>, RuleError> {
        match self.table.get(name) {
            None => Ok(None),
            Some(Value::Boolean(b)) => Ok(Some(*b)),
            Some(other) => Err(self.wrong_type(name, "true or false", other)),
        }
    }

    pub(crate) fn integer(&self, name: &str, min: i64, max: i64) -> Result<Option<i64>, RuleError> {
        match self.table.get(name) {
            None => Ok(None),
            Some(Value::Integer(n)) if (min..=max).contains(n) => Ok(Some(*n)),
            Some(Value::Integer(n)) => Err(self.fail(name, format!("{n} is out of range (expected {min} to {max})"))),
            Some(other) => Err(self.wrong_type(name, "an integer", other)),
        }
    }

    pub(crate) fn duration(&self, name: &str) -> Result<Option<Duration>, RuleError> {
        let Some(text) = self.string(name)? else { return Ok(None) };
        parse_duration(&text).map(Some).map_err(|problem| self.fail(name, problem))
    }

    pub(crate) fn severity(&self, name: &str) -> Result<Option<Severity>, RuleError> {
        let Some(text) = self.string(name)? else { return Ok(None) };
        parse_severity(&text).map(Some).ok_or_else(|| self.fail(name, bad_severity(&text)))
    }

    pub(crate) fn table(&self, name: &str) -> Result<Option<&'a Table>, RuleError> {
        match self.table.get(name) {
            None => Ok(None),
            Some(Value::Table(t)) => Ok(Some(t)),
            Some(other) => Err(self.wrong_type(name, "a table", other)),
        }
    }

    /// A field name (`src_ip`, `label.env`, …).
    pub(crate) fn field_name(&self, name: &str, text: &str) -> Result<Field, RuleError> {
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
    pub(crate) fn forbid(&self, name: &str, kind: &str) -> Result<(), RuleError> {
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

/// Fields every kind may give.
const COMMON_FIELDS: &[&str] = &[
    "id",
    "name",
    "description",
    "enabled",
    "kind",
    "match",
    "except",
    "group_by",
    "suppression",
    "score",
    "severity",
    "mitre",
    "reason",
    "runbook",
    "test",
];

/// Fields only some kinds use, and which.
const KIND_FIELDS: &[(&str, &[&str])] = &[
    ("threshold", &["window", "threshold", "reset", "burst"]),
    ("distinct", &["window", "threshold", "distinct"]),
    ("sequence", &["window", "threshold", "failure", "success"]),
    ("first_seen", &["window", "value", "learning"]),
    ("risk", &["window", "threshold", "signal", "min_signals"]),
    ("passthrough", &[]),
];

/// Every kind-specific field once, `window` and `threshold` first (the order mistakes are reported in).
fn kind_specific_fields() -> Vec<&'static str> {
    let mut all: Vec<&str> = Vec::new();
    for field in KIND_FIELDS.iter().flat_map(|(_, f)| f.iter().copied()) {
        if !all.contains(&field) {
            all.push(field);
        }
    }
    all
}

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
        RuleKind::FirstSeen { .. } => p.extend(["window", "value", "field", "known", "learning"]),
        RuleKind::Risk { .. } => p.extend(["window", "threshold", "score", "signals"]),
        RuleKind::Passthrough => {}
        RuleKind::Temporal(_) => p.push("window"),
    }
    p
}

const DEFAULT_REASON: &str = "{name}: {count} matching events for {entity}";

/// The passthrough entity when a rule gives no `group_by`: every event has a `source`, so none is skipped.
const PASSTHROUGH_GROUP_BY: &str = "host|src_ip|source";

/// Most signals a risk rule may have.
const MAX_SIGNALS: usize = 32;

/// Builds and checks one rule from its table.
pub(crate) fn build_rule(id: &str, table: Table, origin: &str) -> Result<Rule, RuleError> {
    let r = Reader { table: &table, origin, rule: Some(id), prefix: "" };
    let mut known: Vec<&str> = COMMON_FIELDS.to_vec();
    known.extend(kind_specific_fields());
    r.check_known(&known)?;

    let kind_name = r.required_string("kind")?;
    let Some((_, kind_fields)) = KIND_FIELDS.iter().find(|(k, _)| *k == kind_name) else {
        return Err(r.fail(
            "kind",
            format!(
                "unknown kind {kind_name:?} (expected threshold, distinct, sequence, first_seen, risk or passthrough)"
            ),
        ));
    };
    for field in kind_specific_fields() {
        if !kind_fields.contains(&field) {
            r.forbid(field, &kind_name)?;
        }
    }
    let name = r.string("name")?.unwrap_or_else(|| id.to_string());
    let description = r.string("description")?.unwrap_or_default();
    let enabled = r.bool("enabled")?.unwrap_or(true);
    let conditions = match r.table("match")? {
        Some(t) => matcher(t, origin, id, "match.")?,
        None => Matcher::default(),
    };
    let except = match r.table("except")? {
        Some(t) => {
            let m = matcher(t, origin, id, "except.")?;
            if m.is_empty() {
                return Err(r.fail("except", "must give at least one condition"));
            }
            Some(m)
        }
        None => None,
    };

    let window = if kind_fields.contains(&"window") {
        let window = r.duration("window")?.ok_or_else(|| r.fail("window", "missing"))?;
        if window > MAX_WINDOW {
            return Err(r.fail("window", format!("longer than the maximum {}", format_duration(MAX_WINDOW))));
        }
        window
    } else {
        Duration::ZERO
    };
    let threshold = match kind_name.as_str() {
        "threshold" | "distinct" | "sequence" => {
            r.integer("threshold", 1, MAX_ENTRIES_PER_KEY as i64)?.ok_or_else(|| r.fail("threshold", "missing"))? as u64
        }
        "risk" => r.integer("threshold", 1, 10_000)?.ok_or_else(|| r.fail("threshold", "missing"))? as u64,
        _ => 0,
    };

    let kind = match kind_name.as_str() {
        "threshold" => {
            let reset = match r.table("reset")? {
                Some(t) => Some(matcher(t, origin, id, "reset.")?),
                None => None,
            };
            let burst = match r.table("burst")? {
                Some(t) => {
                    let br = Reader { table: t, origin, rule: Some(id), prefix: "burst." };
                    br.check_known(&["threshold", "window"])?;
                    let bw = br.duration("window")?.ok_or_else(|| br.fail("window", "missing"))?;
                    if bw > window {
                        return Err(br.fail("window", "must not be longer than the rule's window"));
                    }
                    let bt = br
                        .integer("threshold", 2, MAX_ENTRIES_PER_KEY as i64)?
                        .ok_or_else(|| br.fail("threshold", "missing"))? as u64;
                    Some(Burst { window: bw, threshold: bt })
                }
                None => None,
            };
            RuleKind::Threshold { window, threshold, reset, burst }
        }
        "distinct" => {
            let text =
                r.string("distinct")?.ok_or_else(|| r.fail("distinct", "missing (the field to count values of)"))?;
            let field = r.field_name("distinct", &text)?;
            RuleKind::Distinct { window, threshold, field }
        }
        "sequence" => {
            let failure = r.table("failure")?.ok_or_else(|| r.fail("failure", "missing (a match table)"))?;
            let success = r.table("success")?.ok_or_else(|| r.fail("success", "missing (a match table)"))?;
            let failure = matcher(failure, origin, id, "failure.")?;
            let success = matcher(success, origin, id, "success.")?;
            RuleKind::Sequence { window, threshold, failure, success }
        }
        "first_seen" => {
            let text =
                r.string("value")?.ok_or_else(|| r.fail("value", "missing (the field whose new values count)"))?;
            let field = r.field_name("value", &text)?;
            let learning = match r.string("learning")? {
                Some(t) if t.trim() == "0" => Duration::ZERO,
                Some(_) => r.duration("learning")?.unwrap_or_default(),
                None => Duration::ZERO,
            };
            if learning > window {
                return Err(r.fail("learning", "must not be longer than the window"));
            }
            RuleKind::FirstSeen { window, learning, field }
        }
        "risk" => {
            let signals = risk_signals(&r, origin, id)?;
            let min_signals = r.integer("min_signals", 1, signals.len() as i64)?.unwrap_or(1) as u64;
            RuleKind::Risk { window, threshold, min_signals, signals }
        }
        _ => RuleKind::Passthrough,
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
    let tests = match table.get("test") {
        None => Vec::new(),
        Some(value) => parse_tests(value, origin, id)?,
    };

    Ok(Rule {
        id: id.to_string(),
        name,
        description,
        enabled,
        kind,
        conditions,
        except,
        group_by,
        suppression,
        score,
        severity,
        mitre,
        reason,
        runbook,
        origin: origin.to_string(),
        tests,
        table,
        sigma: None,
    })
}

/// The `[[rule.signal]]` tables of a risk rule.
fn risk_signals(r: &Reader, origin: &str, id: &str) -> Result<Vec<Signal>, RuleError> {
    let items = match r.table.get("signal") {
        Some(Value::Array(items)) if !items.is_empty() => items,
        Some(Value::Array(_)) | None => return Err(r.fail("signal", "missing (at least one [[rule.signal]])")),
        Some(other) => return Err(r.wrong_type("signal", "an array of tables ([[rule.signal]])", other)),
    };
    if items.len() > MAX_SIGNALS {
        return Err(r.fail("signal", format!("at most {MAX_SIGNALS} signals")));
    }
    let mut signals: Vec<Signal> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let prefix = format!("signal[{i}].");
        let Value::Table(t) = item else {
            return Err(r.fail(&format!("signal[{i}]"), "must be a table ([[rule.signal]])"));
        };
        let sr = Reader { table: t, origin, rule: Some(id), prefix: &prefix };
        sr.check_known(&["name", "score", "cap", "match"])?;
        let name = sr.required_string("name")?;
        if name.trim().is_empty() || name.contains('|') || name.chars().count() > 64 {
            return Err(sr.fail("name", "must be 1-64 characters without `|`"));
        }
        if signals.iter().any(|s| s.name == name) {
            return Err(sr.fail("name", format!("{name:?} is used by another signal of this rule")));
        }
        let score = sr.integer("score", 1, 1000)?.ok_or_else(|| sr.fail("score", "missing"))? as u64;
        let cap = sr.integer("cap", 1, 10_000)?.map_or(u64::MAX, |c| c as u64);
        if cap < score {
            return Err(sr.fail("cap", "must be at least the signal's score"));
        }
        let m = sr.table("match")?.ok_or_else(|| sr.fail("match", "missing (which events give this signal)"))?;
        let matcher = matcher(m, origin, id, &format!("{prefix}match."))?;
        signals.push(Signal { name, score, cap, matcher });
    }
    Ok(signals)
}

pub(crate) fn matcher(table: &Table, origin: &str, id: &str, prefix: &str) -> Result<Matcher, RuleError> {
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

pub(crate) fn valid_technique(t: &str) -> bool {
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

// ---------------------------------------------------------------------------------------------------------
// Rule tests

/// `+30s`, `-5m`, `+2m1ms`, `1d6h`, `0`: a signed sum of whole numbers with units ms, s, m, h, d.
pub fn parse_offset(text: &str) -> Result<i64, String> {
    let bad = || format!("invalid offset {text:?} (expected e.g. \"+30s\", \"-2m\", \"+2m1ms\" or \"0\")");
    let t = text.trim();
    let (sign, rest) = match t.as_bytes().first() {
        Some(b'-') => (-1i64, &t[1..]),
        Some(b'+') => (1, &t[1..]),
        _ => (1, t),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total: i64 = 0;
    let mut rest = rest;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        if digits == 0 {
            return Err(bad());
        }
        let n: i64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let per = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        total = n.checked_mul(per).and_then(|v| total.checked_add(v)).ok_or_else(bad)?;
    }
    Ok(sign * total)
}

const TEST_FIELDS: &[&str] = &["name", "events", "expect"];
const EVENT_FIELDS: &[&str] = &[
    "at", "repeat", "every", "batch", "id", "tenant", "category", "action", "outcome", "severity", "program", "source",
    "host", "user", "src_ip", "dst_ip", "message", "labels",
];
const EXPECT_FIELDS: &[&str] = &["fires", "detections", "count", "entity", "severity", "reason"];

/// Reads a rule's `test` array.
pub(crate) fn parse_tests(value: &Value, origin: &str, rule: &str) -> Result<Vec<RuleTest>, RuleError> {
    let Value::Array(items) = value else {
        return Err(err(origin, Some(rule), "test", "must be an array of tables ([[rule.test]])"));
    };
    let mut tests = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let prefix = format!("test[{i}].");
        let Value::Table(t) = item else {
            return Err(err(origin, Some(rule), format!("test[{i}]"), "must be a table ([[rule.test]])"));
        };
        let r = Reader { table: t, origin, rule: Some(rule), prefix: &prefix };
        r.check_known(TEST_FIELDS)?;
        let name = r.required_string("name")?;
        if tests.iter().any(|x: &RuleTest| x.name == name) {
            return Err(r.fail("name", format!("{name:?} names another test of this rule")));
        }
        let events = match t.get("events") {
            Some(Value::Array(evs)) if !evs.is_empty() => {
                let mut out = Vec::with_capacity(evs.len());
                let mut total = 0u64;
                for (j, ev) in evs.iter().enumerate() {
                    let eprefix = format!("{prefix}events[{j}].");
                    let Value::Table(et) = ev else {
                        return Err(r.fail(&format!("events[{j}]"), "must be a table"));
                    };
                    let te = test_event(&Reader { table: et, origin, rule: Some(rule), prefix: &eprefix })?;
                    total += te.repeat;
                    out.push(te);
                }
                if total > MAX_TEST_EVENTS {
                    return Err(r.fail("events", format!("more than {MAX_TEST_EVENTS} events")));
                }
                out
            }
            Some(Value::Array(_)) | None => return Err(r.fail("events", "missing (at least one event)")),
            Some(other) => return Err(r.wrong_type("events", "an array of tables", other)),
        };
        let expect = match r.table("expect")? {
            Some(et) => {
                expectation(&Reader { table: et, origin, rule: Some(rule), prefix: &format!("{prefix}expect.") })?
            }
            None => return Err(r.fail("expect", "missing (e.g. expect = { fires = true })")),
        };
        tests.push(RuleTest { name, events, expect });
    }
    Ok(tests)
}

fn test_event(r: &Reader) -> Result<TestEvent, RuleError> {
    r.check_known(EVENT_FIELDS)?;
    let at = r.required_string("at")?;
    let offset_ms = parse_offset(&at).map_err(|p| r.fail("at", p))?;
    let repeat = r.integer("repeat", 1, MAX_TEST_EVENTS as i64)?.unwrap_or(1) as u64;
    let every_ms = match r.string("every")? {
        Some(t) => parse_offset(&t).map_err(|p| r.fail("every", p))?,
        None if repeat > 1 => return Err(r.fail("every", "missing (the step between repeated events)")),
        None => 0,
    };
    let batch = r.integer("batch", 0, 1000)?.unwrap_or(0) as u64;
    let id = r.string("id")?;
    if id.is_some() && repeat > 1 {
        return Err(r.fail("id", "cannot be given with repeat"));
    }
    let mut e = Event {
        tenant: r.string("tenant")?.unwrap_or_else(|| "test".to_string()),
        source: r.string("source")?.unwrap_or_else(|| "test".to_string()),
        category: r.string("category")?,
        action: r.string("action")?,
        program: r.string("program")?,
        host: r.string("host")?,
        user: r.string("user")?,
        message: r.string("message")?,
        ..Event::default()
    };
    if let Some(o) = r.string("outcome")? {
        e.outcome = match o.to_ascii_lowercase().as_str() {
            "success" => Outcome::Success,
            "failure" => Outcome::Failure,
            "unknown" => Outcome::Unknown,
            _ => return Err(r.fail("outcome", format!("unknown outcome {o:?} (expected success, failure or unknown)"))),
        };
    }
    if let Some(s) = r.string("severity")? {
        e.severity = parse_severity(&s).ok_or_else(|| r.fail("severity", format!("unknown severity {s:?}")))?;
    }
    let address = |name: &str| -> Result<Option<String>, RuleError> {
        let Some(text) = r.string(name)? else { return Ok(None) };
        for k in [0, repeat - 1] {
            let value = substitute(&text, k);
            if value.trim().parse::<IpAddr>().is_err() {
                return Err(r.fail(name, format!("{value:?} is not an IP address")));
            }
        }
        Ok(Some(text))
    };
    let (src_ip, dst_ip) = (address("src_ip")?, address("dst_ip")?);
    if let Some(labels) = r.table("labels")? {
        for (k, v) in labels {
            match v {
                Value::String(s) => {
                    e.labels.insert(k.clone(), s.clone());
                }
                other => return Err(r.wrong_type(&format!("labels.{k}"), "a string", other)),
            }
        }
    }
    let normalize = e.message.is_some();
    Ok(TestEvent { offset_ms, repeat, every_ms, batch, id, template: e, src_ip, dst_ip, normalize })
}

fn expectation(r: &Reader) -> Result<Expect, RuleError> {
    r.check_known(EXPECT_FIELDS)?;
    let fires = r.bool("fires")?.ok_or_else(|| r.fail("fires", "missing (true or false)"))?;
    let expect = Expect {
        fires,
        detections: r.integer("detections", 0, 100_000)?.map(|n| n as usize),
        count: r.integer("count", 1, i64::MAX)?.map(|n| n as u64),
        entity: r.string("entity")?,
        severity: match r.string("severity")? {
            Some(s) => Some(parse_severity(&s).ok_or_else(|| r.fail("severity", format!("unknown severity {s:?}")))?),
            None => None,
        },
        reason: r.string("reason")?,
    };
    let details =
        expect.count.is_some() || expect.entity.is_some() || expect.severity.is_some() || expect.reason.is_some();
    if !fires && (details || expect.detections.is_some_and(|n| n > 0)) {
        return Err(r.fail("fires", "is false, so no detection details can be expected"));
    }
    if fires && expect.detections == Some(0) {
        return Err(r.fail("detections", "must be at least 1 when fires = true"));
    }
    Ok(expect)
}
