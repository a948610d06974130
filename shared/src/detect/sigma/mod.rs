//! Sigma rules as a rule source: YAML detections, filters and correlations compiled at load into the engine's
//! own rules (never interpreted from YAML per event). docs/sigma.md is the user's guide.
//!
//! # How a Sigma document becomes an engine rule
//! * **Rule** (`detection`): a `passthrough` rule with id `sigma-<uuid>`. Its logsource picks a route from the
//!   mapping ([`mapping`]), which becomes the rule's `match`/`except` and `group_by`; its detection compiles
//!   into a [`Predicate`] held by the rule's matcher ([`crate::detect::Matcher::sigma`]), so
//!   [`crate::detect::Rule::applies`] requires it. Field names go through the mapping; values through the
//!   modifiers ([`modifiers`]); the condition through [`condition`]. Matching ignores case (`cased` and
//!   `re` without `i` do not); keywords search the event's message (its raw text when it has none).
//! * **Filter** (`filter`): its condition is ANDed into the detection of each rule it names (or of every rule
//!   of its logsource with `rules: any`), as pySigma does — write `condition: not selection` to exclude.
//! * **Correlation** (`correlation`): `event_count` → `threshold`, `value_count` → `distinct`, `temporal` over
//!   Sigma rules → `risk` (one signal per rule, each worth 1, firing when `min_signals` = all of them, or the
//!   condition's count, are present in a window), `temporal_ordered` (and `temporal` over event_count /
//!   value_count correlations) → the `temporal` kind ([`temporal`]). `group-by` fields map like detection
//!   fields; where they (or `aliases`) map to different fields for different correlated rules, the entity is
//!   taken per event from the first correlated rule it matches ([`SigmaInfo::entity`]). Rules a correlation
//!   references run only inside it unless it says `generate: true`. Counting conditions must grow (`gte`,
//!   `gt`): windows fire as they fill and never wait for one to close, so `lt`, `lte`, `eq` and `neq` are
//!   reported as unsupported.
//! * Anything else, or anything the mapping cannot route or map, is skipped with the reason in the
//!   [`Report`] (`vigil rules import-sigma DIR` prints it).
//!
//! Rules sit beside TOML rules: a rules file's `[sigma]` table names Sigma files or directories (`paths`) and
//! extends the mapping; `[[rule]]` patches in the same file (or in a `<file>.tests.toml` beside a Sigma file)
//! may change a Sigma rule's `enabled`, severity, score, suppression, texts and `test`s (see [`patch`]).

mod compile;
mod condition;
mod document;
pub mod mapping;
mod modifiers;
mod predicate;
pub mod report;
mod scan;
pub mod temporal;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use toml::{Table, Value};

pub use compile::{compile, SigmaSet};
pub use document::Source;
pub use mapping::{LogSource, Mapping};
pub use predicate::{Predicate, SigmaPredicate, Target};
pub use report::{Outcome, Report};
pub use temporal::{Step, TemporalSpec};

use super::load::{build_rule, err, format_duration, parse_file};
use super::rule::{Entity, Field, Rule, RuleError, RuleKind, SeverityPolicy};
use crate::model::Event;

/// What a rule keeps of its Sigma source: for analysts (alerts show the false positives and references),
/// for reports, and for the entity of correlations whose group-by differs per correlated rule.
#[derive(Clone, Debug, PartialEq)]
pub struct SigmaInfo {
    pub sigma_id: Option<String>,
    pub name: Option<String>,
    pub title: String,
    pub file: String,
    pub status: Option<String>,
    pub level: Option<String>,
    pub author: Option<String>,
    pub tags: Vec<String>,
    pub falsepositives: Vec<String>,
    pub references: Vec<String>,
    /// The correlation type, for correlation rules.
    pub correlation: Option<String>,
    /// Group-by parts resolved per correlated rule (aliases), when plain group keys cannot express them.
    pub(crate) entity: Option<Vec<EntityPart>>,
}

/// One group-by part whose field depends on which correlated rule an event matched.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct EntityPart {
    /// The group-by name (an alias or a Sigma field), which names the part in the entity.
    pub name: String,
    pub sources: Vec<(SigmaPredicate, Field)>,
}

impl SigmaInfo {
    /// The entity of `event`, when this rule groups per correlated rule; `None` inside means the event lacks a
    /// part and is skipped, like an event lacking a group-by field.
    pub(crate) fn entity(&self, event: &Event) -> Option<Option<Entity>> {
        let parts = self.entity.as_ref()?;
        let mut keys = Vec::with_capacity(parts.len());
        let mut values = Vec::with_capacity(parts.len());
        for part in parts {
            let found = part.sources.iter().filter(|(p, _)| p.matches(event)).find_map(|(_, f)| f.value(event));
            let Some(value) = found else { return Some(None) };
            keys.push(format!("{}={value}", part.name));
            values.push(value);
        }
        Some(Some(Entity { key: keys.join(","), display: values.join(", ") }))
    }
}

/// Settings of a rules file's `[sigma]` table: the mapping layered over the shipped one, and what to load.
#[derive(Clone, Debug)]
pub struct SigmaConfig {
    pub mapping: Mapping,
    /// Sigma files or directories (searched recursively for `.yml` / `.yaml`).
    pub paths: Vec<PathBuf>,
    /// Fail loading when any Sigma document is skipped.
    pub strict: bool,
}

const CONFIG_KEYS: &[&str] = &["paths", "strict", "fields", "levels", "placeholders", "logsource"];

impl SigmaConfig {
    /// Reads a `[sigma]` table; relative paths are relative to the rules file (`origin`).
    pub fn from_table(table: &Table, origin: &str) -> Result<SigmaConfig, RuleError> {
        let r = super::load::Reader { table, origin, rule: None, prefix: "sigma." };
        r.check_known(CONFIG_KEYS)?;
        let mut mapping = Mapping::shipped();
        mapping.extend(table, origin, "sigma.")?;
        let base = Path::new(origin).parent().unwrap_or(Path::new(""));
        let paths = r.list("paths")?.unwrap_or_default().into_iter().map(|p| base.join(p)).collect();
        Ok(SigmaConfig { mapping, paths, strict: r.bool("strict")?.unwrap_or(false) })
    }
}

/// The Sigma files under `paths` (sorted), each with the text of its `<stem>.tests.toml` if there is one.
pub fn read_sources(paths: &[PathBuf]) -> Result<Vec<(Source, Option<Source>)>, String> {
    let mut files = Vec::new();
    for p in paths {
        collect(p, &mut files).map_err(|e| format!("{}: {e}", p.display()))?;
    }
    files.sort();
    files.dedup();
    let mut out = Vec::with_capacity(files.len());
    for f in files {
        let text = std::fs::read_to_string(&f).map_err(|e| format!("{}: {e}", f.display()))?;
        let side = f.with_extension("tests.toml");
        let tests = match std::fs::read_to_string(&side) {
            Ok(t) => Some(Source { path: side.display().to_string(), text: t }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(format!("{}: {e}", side.display())),
        };
        out.push((Source { path: f.display().to_string(), text }, tests));
    }
    Ok(out)
}

fn collect(p: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if std::fs::metadata(p)?.is_dir() {
        collect_dir(p, out)
    } else {
        // A file named on its own is read whatever its extension.
        out.push(p.to_path_buf());
        Ok(())
    }
}

fn collect_dir(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        // Symbolic links to directories are not followed (no cycles); links to files are read.
        let kind = entry.file_type()?;
        if kind.is_dir() {
            collect_dir(&path, out)?;
        } else if (kind.is_file() || path.is_file()) && path.extension().is_some_and(|e| e == "yml" || e == "yaml") {
            out.push(path);
        }
    }
    Ok(())
}

/// Compiles the Sigma files under `paths` and attaches the tests of their side files.
pub fn load_paths(paths: &[PathBuf], mapping: &Mapping) -> Result<SigmaSet, RuleError> {
    let files = read_sources(paths).map_err(|e| err("sigma.paths", None, "paths", e))?;
    let sources: Vec<Source> = files.iter().map(|(s, _)| s.clone()).collect();
    let mut set = compile(&sources, mapping);
    for (source, tests) in &files {
        if let Some(side) = tests {
            attach_tests(&mut set.rules, &source.path, side)?;
        }
    }
    Ok(set)
}

/// Applies a side file (the rules-file format: `[[rule]] id = ...` with `[[rule.test]]`s and other patchable
/// fields) to the rules compiled from `file`. Ids may be the engine's (`sigma-<uuid>`) or Sigma's id or name.
fn attach_tests(rules: &mut [Rule], file: &str, side: &Source) -> Result<(), RuleError> {
    let raw = parse_file(&side.text, &side.path)?;
    if raw.scoring.is_some() || raw.sigma.is_some() {
        return Err(err(&side.path, None, "scoring", "a Sigma side file holds only [[rule]] patches and tests"));
    }
    for (id, table) in raw.rules {
        let position = rules.iter().position(|r| {
            r.sigma.as_ref().is_some_and(|s| {
                s.file == file && (r.id == id || s.sigma_id.as_deref() == Some(&id) || s.name.as_deref() == Some(&id))
            })
        });
        let Some(i) = position else {
            return Err(err(&side.path, Some(&id), "id", format!("names no loaded Sigma rule of {file}")));
        };
        rules[i] = patch(&rules[i], table, &side.path)?;
    }
    Ok(())
}

/// Adds the Sigma rules a rules file's `[sigma]` table names to `rules`. Skipped documents are logged (and
/// fail the load with `strict = true`); an id already taken fails it.
pub(crate) fn extend(rules: &mut Vec<Rule>, table: &Table, origin: &str) -> Result<(), RuleError> {
    let config = SigmaConfig::from_table(table, origin)?;
    let set = load_paths(&config.paths, &config.mapping)?;
    for e in &set.report.entries {
        if let Outcome::Skipped { reason } = &e.outcome {
            tracing::warn!(file = %e.file, document = e.document + 1, title = %e.title, %reason, "Sigma document skipped");
        }
    }
    if config.strict && set.report.skipped() > 0 {
        let first = set.report.entries.iter().find(|e| matches!(e.outcome, Outcome::Skipped { .. }));
        let detail = first.map(|e| format!("{}#{}: {:?}", e.file, e.document + 1, e.outcome)).unwrap_or_default();
        return Err(err(
            origin,
            None,
            "sigma.strict",
            format!("{} Sigma documents skipped, e.g. {detail}", set.report.skipped()),
        ));
    }
    tracing::info!(loaded = set.report.loaded(), skipped = set.report.skipped(), "Sigma rules loaded");
    for rule in set.rules {
        if rules.iter().any(|r| r.id == rule.id) {
            return Err(err(
                origin,
                Some(&rule.id),
                "id",
                format!("the Sigma rule from {} reuses an existing id", rule.origin),
            ));
        }
        rules.push(rule);
    }
    Ok(())
}

/// What a rules-file patch may change on a Sigma rule; the rest comes from its YAML.
const PATCHABLE: &[&str] =
    &["id", "enabled", "name", "description", "severity", "score", "suppression", "reason", "runbook", "mitre", "test"];

/// Applies a patch (a `[[rule]]` table without `kind`) to a Sigma rule. The patched fields are checked by the
/// TOML loader itself, on a stand-in rule of the same shape; the detection stays the compiled one.
pub fn patch(rule: &Rule, patch: Table, origin: &str) -> Result<Rule, RuleError> {
    let file = rule.sigma.as_ref().map(|s| s.file.clone()).unwrap_or_default();
    for key in patch.keys() {
        if !PATCHABLE.contains(&key.as_str()) {
            return Err(err(
                origin,
                Some(&rule.id),
                key,
                format!(
                    "cannot be changed on a Sigma rule (it comes from {file}): change the Sigma file, or give `kind` to \
                     replace the rule with a TOML one (patchable: {})",
                    PATCHABLE[1..].join(", ")
                ),
            ));
        }
    }
    let mut table = stand_in(rule);
    for (k, v) in &patch {
        if k != "id" {
            table.insert(k.clone(), v.clone());
        }
    }
    let checked = build_rule(&rule.id, table, origin)?;
    let mut out = rule.clone();
    out.enabled = checked.enabled;
    out.name = checked.name;
    out.description = checked.description;
    out.severity = checked.severity;
    out.score = checked.score;
    out.suppression = checked.suppression;
    out.reason = checked.reason;
    out.runbook = checked.runbook;
    out.mitre = checked.mitre;
    if patch.contains_key("test") {
        out.tests = checked.tests;
    }
    out.origin = origin.to_string();
    for (k, v) in patch {
        if k != "id" {
            out.table.insert(k, v);
        }
    }
    Ok(out)
}

/// A TOML rule with `rule`'s patchable fields and a kind that accepts the same reason placeholders.
fn stand_in(rule: &Rule) -> Table {
    let mut t = Table::new();
    let s = |v: &str| Value::String(v.to_string());
    let window = |t: &mut Table, w| {
        t.insert("window".into(), s(&format_duration(w)));
    };
    match &rule.kind {
        RuleKind::Threshold { window: w, threshold, .. } => {
            t.insert("kind".into(), s("threshold"));
            window(&mut t, *w);
            t.insert("threshold".into(), Value::Integer(*threshold as i64));
        }
        RuleKind::Distinct { window: w, threshold, field } => {
            t.insert("kind".into(), s("distinct"));
            window(&mut t, *w);
            t.insert("threshold".into(), Value::Integer(*threshold as i64));
            t.insert("distinct".into(), s(&field.to_string()));
        }
        RuleKind::Risk { window: w, threshold, .. } => {
            t.insert("kind".into(), s("risk"));
            window(&mut t, *w);
            t.insert("threshold".into(), Value::Integer(*threshold as i64));
            let mut signal = Table::new();
            signal.insert("name".into(), s("stand-in"));
            signal.insert("score".into(), Value::Integer(1));
            signal.insert("match".into(), Value::Table(Table::new()));
            t.insert("signal".into(), Value::Array(vec![Value::Table(signal)]));
        }
        RuleKind::Temporal(spec) => {
            t.insert("kind".into(), s("threshold"));
            window(&mut t, spec.lookback());
            t.insert("threshold".into(), Value::Integer(1));
        }
        _ => {
            t.insert("kind".into(), s("passthrough"));
        }
    }
    if rule.kind != RuleKind::Passthrough {
        t.insert("group_by".into(), s("source"));
    }
    t.insert("name".into(), s(&rule.name));
    t.insert("description".into(), s(&rule.description));
    t.insert("enabled".into(), Value::Boolean(rule.enabled));
    t.insert("score".into(), Value::Integer(i64::from(rule.score)));
    let severity = match rule.severity {
        SeverityPolicy::Fixed(sev) => sev.to_string(),
        SeverityPolicy::Event => "event".to_string(),
    };
    t.insert("severity".into(), s(&severity));
    t.insert("suppression".into(), s(&format_duration(rule.suppression)));
    t.insert("reason".into(), s(&rule.reason));
    if let Some(r) = &rule.runbook {
        t.insert("runbook".into(), s(r));
    }
    t.insert("mitre".into(), Value::Array(rule.mitre.iter().map(|m| s(m)).collect()));
    t
}

/// The coverage of the Sigma files under `dir` with the shipped mapping plus `extra` (a `[sigma]` table):
/// what `vigil rules import-sigma` prints.
pub fn import(dir: &Path, extra: Option<(&Table, &str)>) -> Result<SigmaSet, RuleError> {
    let mut mapping = Mapping::shipped();
    if let Some((table, origin)) = extra {
        mapping = SigmaConfig::from_table(table, origin)?.mapping;
    }
    load_paths(&[dir.to_path_buf()], &mapping)
}
