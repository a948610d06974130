//! A compiled Sigma detection: a boolean tree over tests of an event's fields, evaluated per event with no
//! YAML in sight. Strings are compared as bytes (so UTF-16 and Base64 forms match too); literal lists go
//! through one Aho-Corasick automaton, everything with inner wildcards through one compiled regex.

use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use chrono::{Datelike, Timelike};
use ipnet::IpNet;

use super::scan::Literals;
use crate::detect::rule::{Field, Matcher};
use crate::model::Event;

thread_local! {
    static REQUEST_URI: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// Where a test reads its value: a Vigil field, as the mapping names it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    Field(Field),
    SrcPort,
    Outcome,
    Severity,
    /// Event time, RFC 3339 in UTC.
    Timestamp,
    Message,
    Raw,
    /// `label.path`, plus `?` and `label.query` when there is a query.
    RequestUri,
    /// What keyword (field-less) searches look at: the message, or the raw text when there is none.
    Keywords,
}

impl Target {
    /// A Vigil field name as the mapping file and rules write it.
    pub fn parse(name: &str) -> Option<Target> {
        Some(match name {
            "src_port" => Target::SrcPort,
            "outcome" => Target::Outcome,
            "severity" => Target::Severity,
            "timestamp" => Target::Timestamp,
            "message" => Target::Message,
            "raw" => Target::Raw,
            "request_uri" => Target::RequestUri,
            other => Target::Field(Field::parse(other)?),
        })
    }

    /// The engine field this target is, for grouping and distinct counts.
    pub fn as_field(&self) -> Option<&Field> {
        match self {
            Target::Field(f) => Some(f),
            _ => None,
        }
    }

    /// The value on `event`; empty values count as absent, as everywhere in the engine.
    pub fn value<'e>(&self, event: &'e Event) -> Option<Cow<'e, str>> {
        let v: Cow<'e, str> = match self {
            Target::Field(field) => match field {
                Field::SrcIp => Cow::Owned(event.src_ip?.to_string()),
                Field::DstIp => Cow::Owned(event.dst_ip?.to_string()),
                Field::User => Cow::Borrowed(event.user.as_deref()?),
                Field::Host => Cow::Borrowed(event.host.as_deref()?),
                Field::Program => Cow::Borrowed(event.program.as_deref()?),
                Field::Source => Cow::Borrowed(event.source.as_str()),
                Field::Category => Cow::Borrowed(event.category.as_deref()?),
                Field::Action => Cow::Borrowed(event.action.as_deref()?),
                Field::Label(name) => Cow::Borrowed(event.labels.get(name)?.as_str()),
            },
            Target::SrcPort => Cow::Owned(event.src_port?.to_string()),
            Target::Outcome => Cow::Borrowed(outcome_name(event)),
            Target::Severity => Cow::Borrowed(event.severity.as_str()),
            Target::Timestamp => Cow::Owned(event.timestamp.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
            Target::Message => Cow::Borrowed(event.message.as_deref()?),
            Target::Raw => Cow::Borrowed(event.raw.as_deref()?),
            Target::RequestUri => {
                let path = event.labels.get("path").map(String::as_str).unwrap_or("");
                match event.labels.get("query").map(String::as_str).filter(|q| !q.is_empty()) {
                    Some(query) => Cow::Owned(format!("{path}?{query}")),
                    None => Cow::Borrowed(path),
                }
            }
            Target::Keywords => Cow::Borrowed(event.message.as_deref().or(event.raw.as_deref())?),
        };
        (!v.is_empty()).then_some(v)
    }

    /// Whether `event` has a (non-empty) value, without building it.
    fn present(&self, event: &Event) -> bool {
        match self {
            Target::Field(Field::SrcIp) => event.src_ip.is_some(),
            Target::Field(Field::DstIp) => event.dst_ip.is_some(),
            Target::SrcPort => event.src_port.is_some(),
            Target::Outcome | Target::Severity | Target::Timestamp => true,
            Target::RequestUri => ["path", "query"].iter().any(|l| event.labels.get(*l).is_some_and(|v| !v.is_empty())),
            other => other.value(event).is_some(),
        }
    }

    /// Runs `f` on the value's bytes and where they live (an identity for the literal cache); a request
    /// target with a query is assembled in a per-thread buffer, so testing it allocates nothing.
    fn with_value<R>(&self, event: &Event, f: impl FnOnce(&[u8], usize) -> R) -> Option<R> {
        if let Target::RequestUri = self {
            let path = event.labels.get("path").map(String::as_str).unwrap_or("");
            return match event.labels.get("query").map(String::as_str).filter(|q| !q.is_empty()) {
                Some(query) => REQUEST_URI.with(|buf| {
                    let mut buf = buf.borrow_mut();
                    buf.clear();
                    buf.push_str(path);
                    buf.push('?');
                    buf.push_str(query);
                    Some(f(buf.as_bytes(), (path.as_ptr() as usize).rotate_left(17) ^ query.as_ptr() as usize))
                }),
                None => (!path.is_empty()).then(|| f(path.as_bytes(), path.as_ptr() as usize)),
            };
        }
        let value = self.value(event)?;
        let identity = match &value {
            Cow::Borrowed(v) => v.as_ptr() as usize,
            // A value built for this test has no lasting address: never reuse another's hits.
            Cow::Owned(_) => 0,
        };
        Some(f(value.as_bytes(), identity))
    }

    fn ip(&self, event: &Event) -> Option<IpAddr> {
        match self {
            Target::Field(Field::SrcIp) => event.src_ip,
            Target::Field(Field::DstIp) => event.dst_ip,
            other => other.value(event)?.trim().parse().ok(),
        }
    }
}

fn outcome_name(event: &Event) -> &'static str {
    match event.outcome {
        crate::model::Outcome::Success => "success",
        crate::model::Outcome::Failure => "failure",
        crate::model::Outcome::Unknown => "unknown",
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Field(field) => write!(f, "{field}"),
            Target::SrcPort => f.write_str("src_port"),
            Target::Outcome => f.write_str("outcome"),
            Target::Severity => f.write_str("severity"),
            Target::Timestamp => f.write_str("timestamp"),
            Target::Message => f.write_str("message"),
            Target::Raw => f.write_str("raw"),
            Target::RequestUri => f.write_str("request_uri"),
            Target::Keywords => f.write_str("keywords"),
        }
    }
}

/// A boolean tree of tests.
#[derive(Clone, Debug)]
pub(crate) enum Node {
    All(Vec<Node>),
    Any(Vec<Node>),
    Not(Box<Node>),
    Const(bool),
    Test(Target, Check),
    /// A TOML matcher (a logsource route with outcome or severity conditions).
    Route(Box<Matcher>),
}

impl Node {
    pub fn matches(&self, event: &Event) -> bool {
        match self {
            Node::All(nodes) => nodes.iter().all(|n| n.matches(event)),
            Node::Any(nodes) => nodes.iter().any(|n| n.matches(event)),
            Node::Not(node) => !node.matches(event),
            Node::Const(b) => *b,
            Node::Test(target, check) => check.holds(target, event),
            Node::Route(m) => m.matches(event),
        }
    }

    /// A rough cost, so conjunctions and disjunctions test cheap things first (the result is the same).
    fn cost(&self) -> u32 {
        match self {
            Node::Const(_) => 0,
            Node::All(n) | Node::Any(n) => n.iter().map(Node::cost).sum(),
            Node::Not(n) => n.cost(),
            Node::Route(_) => 2,
            Node::Test(target, check) => {
                let read = if matches!(target, Target::Keywords | Target::Message | Target::Raw) { 4 } else { 1 };
                read * check.cost()
            }
        }
    }

    /// Flattens nested conjunctions and disjunctions, folds constants and orders children by cost.
    pub fn simplify(self) -> Node {
        match self {
            Node::All(nodes) => {
                let mut out = Vec::with_capacity(nodes.len());
                for n in nodes.into_iter().map(Node::simplify) {
                    match n {
                        Node::Const(true) => {}
                        Node::Const(false) => return Node::Const(false),
                        Node::All(inner) => out.extend(inner),
                        other => out.push(other),
                    }
                }
                out.sort_by_key(Node::cost);
                match out.len() {
                    0 => Node::Const(true),
                    1 => out.pop().unwrap_or(Node::Const(true)),
                    _ => Node::All(out),
                }
            }
            Node::Any(nodes) => {
                let mut out = Vec::with_capacity(nodes.len());
                for n in nodes.into_iter().map(Node::simplify) {
                    match n {
                        Node::Const(false) => {}
                        Node::Const(true) => return Node::Const(true),
                        Node::Any(inner) => out.extend(inner),
                        other => out.push(other),
                    }
                }
                out.sort_by_key(Node::cost);
                match out.len() {
                    0 => Node::Const(false),
                    1 => out.pop().unwrap_or(Node::Const(false)),
                    _ => Node::Any(out),
                }
            }
            Node::Not(inner) => match inner.simplify() {
                Node::Const(b) => Node::Const(!b),
                Node::Not(n) => *n,
                other => Node::Not(Box::new(other)),
            },
            other => other,
        }
    }
}

/// A comparison operator of the numeric modifiers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cmp {
    Lt,
    Lte,
    Gt,
    Gte,
    Eq,
    Neq,
}

impl Cmp {
    fn holds(self, a: f64, b: f64) -> bool {
        match self {
            Cmp::Lt => a < b,
            Cmp::Lte => a <= b,
            Cmp::Gt => a > b,
            Cmp::Gte => a >= b,
            Cmp::Eq => a == b,
            Cmp::Neq => a != b,
        }
    }
}

/// The part of a date the time modifiers extract.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TimePart {
    Minute,
    Hour,
    Day,
    Week,
    Month,
    Year,
}

/// Where a field reference's value must sit in the field's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Position {
    Whole,
    Start,
    End,
    Anywhere,
}

/// One test of one value.
#[derive(Clone, Debug)]
pub(crate) enum Check {
    /// The field is present (non-empty), or absent.
    Exists(bool),
    /// Any of the patterns matches.
    Text(Arc<TextMatch>),
    /// Every one of the patterns matches (the `all` modifier).
    AllText(Vec<Arc<TextMatch>>),
    /// Every literal occurs somewhere (`contains|all` of plain strings), from the shared literal search.
    AllLiterals(Literals),
    Compare(Cmp, f64),
    Cidr(Vec<IpNet>),
    FieldRef {
        other: Target,
        position: Position,
        cased: bool,
    },
    Time(TimePart, Cmp, i64),
}

impl Check {
    fn cost(&self) -> u32 {
        match self {
            Check::Exists(_) => 1,
            Check::Compare(..) | Check::Cidr(_) | Check::Time(..) => 2,
            Check::FieldRef { .. } => 3,
            Check::Text(t) => t.cost(),
            Check::AllText(ts) => ts.iter().map(|t| t.cost()).sum(),
            Check::AllLiterals(..) => 6,
        }
    }

    fn holds(&self, target: &Target, event: &Event) -> bool {
        match self {
            Check::Exists(wanted) => target.present(event) == *wanted,
            Check::Cidr(nets) => target.ip(event).is_some_and(|ip| nets.iter().any(|n| n.contains(&ip))),
            Check::Time(part, cmp, wanted) => {
                time_part(target, event, *part).is_some_and(|v| cmp.holds(v as f64, *wanted as f64))
            }
            Check::Text(t) => target.with_value(event, |hay, id| t.is_match(hay, id)).unwrap_or(false),
            Check::AllText(ts) => {
                target.with_value(event, |hay, id| ts.iter().all(|t| t.is_match(hay, id))).unwrap_or(false)
            }
            Check::AllLiterals(lits) => target.with_value(event, |hay, id| lits.all(hay, id)).unwrap_or(false),
            Check::Compare(cmp, wanted) => target
                .with_value(event, |hay, _| {
                    std::str::from_utf8(hay)
                        .ok()
                        .and_then(|v| v.trim().parse::<f64>().ok())
                        .is_some_and(|v| cmp.holds(v, *wanted))
                })
                .unwrap_or(false),
            Check::FieldRef { other, position, cased } => {
                let Some(theirs) = other.value(event) else { return false };
                target
                    .with_value(event, |hay, _| positioned(hay, theirs.as_bytes(), *position, *cased))
                    .unwrap_or(false)
            }
        }
    }
}

fn time_part(target: &Target, event: &Event, part: TimePart) -> Option<i64> {
    let at = match target {
        Target::Timestamp => event.timestamp,
        other => parse_date(&other.value(event)?)?,
    };
    Some(match part {
        TimePart::Minute => at.minute() as i64,
        TimePart::Hour => at.hour() as i64,
        TimePart::Day => at.day() as i64,
        TimePart::Week => at.iso_week().week() as i64,
        TimePart::Month => at.month() as i64,
        TimePart::Year => at.year() as i64,
    })
}

fn parse_date(text: &str) -> Option<crate::model::Timestamp> {
    let t = text.trim();
    if let Ok(at) = chrono::DateTime::parse_from_rfc3339(t) {
        return Some(at.with_timezone(&chrono::Utc));
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(at) = chrono::NaiveDateTime::parse_from_str(t, format) {
            return Some(at.and_utc());
        }
    }
    chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)).map(|d| d.and_utc())
}

/// `needle` at `position` in `hay`, ignoring ASCII case unless `cased`.
fn positioned(hay: &[u8], needle: &[u8], position: Position, cased: bool) -> bool {
    let eq = |a: &[u8], b: &[u8]| if cased { a == b } else { a.eq_ignore_ascii_case(b) };
    match position {
        Position::Whole => eq(hay, needle),
        Position::Start => hay.len() >= needle.len() && eq(&hay[..needle.len()], needle),
        Position::End => hay.len() >= needle.len() && eq(&hay[hay.len() - needle.len()..], needle),
        Position::Anywhere => needle.is_empty() || hay.windows(needle.len()).any(|w| eq(w, needle)),
    }
}

/// A literal compared as a whole, a prefix or a suffix.
#[derive(Clone, Debug)]
pub(crate) struct Literal {
    pub bytes: Vec<u8>,
    /// Compared exactly; otherwise ASCII letters ignore case (non-ASCII caseless literals go to the regex).
    pub cased: bool,
}

/// Values linked by OR, grouped by how they are cheapest to test.
#[derive(Debug, Default)]
pub(crate) struct TextMatch {
    /// Literals that may occur anywhere (ignoring ASCII case, and exactly), from the shared literal search.
    pub contains: Vec<Literals>,
    pub whole: Vec<Literal>,
    pub prefix: Vec<Literal>,
    pub suffix: Vec<Literal>,
    /// Everything else (inner wildcards, non-ASCII caseless literals, regular expressions).
    pub regexes: Vec<regex::bytes::Regex>,
}

impl TextMatch {
    pub fn is_match(&self, hay: &[u8], identity: usize) -> bool {
        self.whole.iter().any(|l| positioned(hay, &l.bytes, Position::Whole, l.cased))
            || self.prefix.iter().any(|l| positioned(hay, &l.bytes, Position::Start, l.cased))
            || self.suffix.iter().any(|l| positioned(hay, &l.bytes, Position::End, l.cased))
            || self.contains.iter().any(|l| l.any(hay, identity))
            || self.regexes.iter().any(|r| r.is_match(hay))
    }

    fn cost(&self) -> u32 {
        let literals = (self.whole.len() + self.prefix.len() + self.suffix.len()) as u32;
        1 + literals.min(4) + 4 * self.contains.len() as u32 + 8 * self.regexes.len() as u32
    }
}

/// A compiled detection, shared by the rules (and rule signals) that test it.
pub struct Predicate {
    pub(crate) root: Node,
    /// What it was compiled from, for debugging output: `sigma rule <id>`.
    pub(crate) label: String,
}

impl Predicate {
    pub(crate) fn new(root: Node, label: impl Into<String>) -> Predicate {
        Predicate { root: root.simplify(), label: label.into() }
    }

    pub fn matches(&self, event: &Event) -> bool {
        self.root.matches(event)
    }
}

impl fmt::Debug for Predicate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Predicate({})", self.label)
    }
}

/// The handle a [`Matcher`] holds: equal when it is the same compiled predicate.
#[derive(Clone)]
pub struct SigmaPredicate(pub Arc<Predicate>);

impl SigmaPredicate {
    pub fn matches(&self, event: &Event) -> bool {
        self.0.matches(event)
    }
}

impl PartialEq for SigmaPredicate {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl fmt::Debug for SigmaPredicate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
