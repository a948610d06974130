//! The field mapping and logsource routing as data (`rules/sigma_mapping.toml`, extended by the `[sigma]`
//! table of a rules file): Sigma's field names to Vigil's, Sigma levels to severities and scores,
//! placeholder values, and which events each Sigma logsource covers.

use std::collections::HashMap;

use toml::{Table, Value};

use super::predicate::Target;
use crate::detect::load::{err, matcher, parse_severity, Reader};
use crate::detect::rule::{Field, GroupKey, Matcher, RuleError};
use crate::model::Severity;

/// The shipped mapping.
pub const SHIPPED_MAPPING: &str = include_str!("../../../rules/sigma_mapping.toml");
const SHIPPED_ORIGIN: &str = "rules/sigma_mapping.toml";
const DEFAULT_GROUP_BY: &str = "host|src_ip|source";

/// What a Sigma `level` becomes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Level {
    pub severity: Severity,
    pub score: u8,
    pub enabled: bool,
}

/// A rule's `logsource` (lower case, as the specification writes them).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogSource {
    pub category: Option<String>,
    pub product: Option<String>,
    pub service: Option<String>,
}

impl std::fmt::Display for LogSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = [("category", &self.category), ("product", &self.product), ("service", &self.service)]
            .iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
            .collect();
        if parts.is_empty() {
            f.write_str("(empty)")
        } else {
            f.write_str(&parts.join(", "))
        }
    }
}

/// Which events one logsource covers, and how its rules name fields and group alerts.
#[derive(Clone, Debug)]
pub struct Route {
    pub logsource: LogSource,
    pub conditions: Matcher,
    pub except: Option<Matcher>,
    pub group_by: Vec<GroupKey>,
    pub fields: HashMap<String, Target>,
    /// `match`, `except` and `group_by` as written, for the rule's TOML form.
    pub table: Table,
}

#[derive(Clone, Debug)]
pub struct Mapping {
    fields: HashMap<String, Target>,
    fields_caseless: HashMap<String, Target>,
    levels: HashMap<String, Level>,
    placeholders: HashMap<String, Vec<String>>,
    routes: Vec<Route>,
}

impl Mapping {
    /// The shipped mapping. Panics only if the embedded file is broken, which a unit test rules out.
    pub fn shipped() -> Mapping {
        let mut m = Mapping {
            fields: HashMap::new(),
            fields_caseless: HashMap::new(),
            levels: HashMap::new(),
            placeholders: HashMap::new(),
            routes: Vec::new(),
        };
        let table: Table = SHIPPED_MAPPING.parse().unwrap_or_else(|e| panic!("{SHIPPED_ORIGIN}: {e}"));
        m.extend(&table, SHIPPED_ORIGIN, "").unwrap_or_else(|e| panic!("the shipped Sigma mapping does not load: {e}"));
        m
    }

    /// Layers a mapping table over this one; `prefix` names its keys in errors (`sigma.` in a rules file).
    pub fn extend(&mut self, table: &Table, origin: &str, prefix: &str) -> Result<(), RuleError> {
        let r = Reader { table, origin, rule: None, prefix };
        if let Some(fields) = r.table("fields")? {
            for (name, value) in fields {
                let Value::String(text) = value else {
                    return Err(r.fail(&format!("fields.{name}"), "expected a Vigil field name (a string)"));
                };
                let target = parse_target(text).map_err(|p| r.fail(&format!("fields.{name}"), p))?;
                self.fields.insert(name.clone(), target.clone());
                self.fields_caseless.insert(name.to_ascii_lowercase(), target);
            }
        }
        if let Some(levels) = r.table("levels")? {
            for (name, value) in levels {
                let field = format!("{prefix}levels.{name}");
                let Value::Table(t) = value else {
                    return Err(err(origin, None, field, "expected a table { severity = ..., score = ... }"));
                };
                let lr = Reader { table: t, origin, rule: None, prefix: &format!("{field}.") };
                lr.check_known(&["severity", "score", "enabled"])?;
                let severity = lr.severity("severity")?.ok_or_else(|| lr.fail("severity", "missing"))?;
                let score = lr.integer("score", 0, 100)?.ok_or_else(|| lr.fail("score", "missing (0 to 100)"))? as u8;
                let enabled = lr.bool("enabled")?.unwrap_or(true);
                self.levels.insert(name.to_ascii_lowercase(), Level { severity, score, enabled });
            }
        }
        if let Some(placeholders) = r.table("placeholders")? {
            let pr = Reader { table: placeholders, origin, rule: None, prefix: &format!("{prefix}placeholders.") };
            for name in placeholders.keys() {
                let values = pr.list(name)?.unwrap_or_default();
                self.placeholders.insert(name.trim_matches('%').to_string(), values);
            }
        }
        match table.get("logsource") {
            None => {}
            Some(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    let Value::Table(t) = item else {
                        return Err(r.fail(&format!("logsource[{i}]"), "must be a table ([[logsource]])"));
                    };
                    let route = parse_route(t, origin, &format!("{prefix}logsource[{i}]."))?;
                    self.routes.retain(|existing| existing.logsource != route.logsource);
                    self.routes.push(route);
                }
            }
            Some(other) => return Err(r.wrong_type("logsource", "an array of tables ([[logsource]])", other)),
        }
        Ok(())
    }

    pub fn level(&self, name: &str) -> Option<Level> {
        self.levels.get(&name.trim().to_ascii_lowercase()).copied()
    }

    pub fn placeholder(&self, name: &str) -> Option<&[String]> {
        self.placeholders.get(name).map(Vec::as_slice)
    }

    /// The route of a rule's logsource: the entry with exactly the same category, product and service, or
    /// for `product: vigil` Vigil's own category and source.
    pub fn route(&self, ls: &LogSource) -> Option<Route> {
        let same = |a: &Option<String>, b: &Option<String>| match (a, b) {
            (None, None) => true,
            (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
            _ => false,
        };
        if let Some(r) = self.routes.iter().rev().find(|r| {
            same(&r.logsource.category, &ls.category)
                && same(&r.logsource.product, &ls.product)
                && same(&r.logsource.service, &ls.service)
        }) {
            return Some(r.clone());
        }
        if ls.product.as_deref().is_some_and(|p| p.eq_ignore_ascii_case("vigil")) {
            let mut conditions = Matcher::default();
            let mut table = Table::new();
            let mut matched = Table::new();
            if let Some(c) = &ls.category {
                conditions.fields.push((Field::Category, vec![c.to_ascii_lowercase()]));
                matched.insert("category".into(), Value::String(c.clone()));
            }
            if let Some(s) = &ls.service {
                conditions.fields.push((Field::Source, vec![s.to_ascii_lowercase()]));
                matched.insert("source".into(), Value::String(s.clone()));
            }
            table.insert("match".into(), Value::Table(matched));
            return Some(Route {
                logsource: ls.clone(),
                conditions,
                except: None,
                group_by: default_group_by(),
                fields: HashMap::new(),
                table,
            });
        }
        None
    }

    /// A Sigma field name as a Vigil target: the route's own mapping, then `[fields]` (exact, then ignoring
    /// case), then Vigil's own field names.
    pub fn field(&self, name: &str, route: Option<&Route>) -> Result<Target, String> {
        route
            .and_then(|r| r.fields.get(name))
            .or_else(|| self.fields.get(name))
            .or_else(|| self.fields_caseless.get(&name.to_ascii_lowercase()))
            .cloned()
            .or_else(|| Target::parse(name))
            .ok_or_else(|| format!("unmapped field `{name}` (map it to a Vigil field in [sigma.fields])"))
    }

    /// Every route, for documentation and tests.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }
}

fn parse_target(text: &str) -> Result<Target, String> {
    Target::parse(text.trim()).ok_or_else(|| {
        format!(
            "unknown Vigil field {text:?} (expected src_ip, dst_ip, user, host, program, source, category, action, \
             label.<name>, src_port, outcome, severity, timestamp, message, raw or request_uri)"
        )
    })
}

fn default_group_by() -> Vec<GroupKey> {
    parse_group_by(DEFAULT_GROUP_BY).unwrap_or_default()
}

/// `"host|src_ip|source"`: one group key with alternatives.
fn parse_group_by(text: &str) -> Result<Vec<GroupKey>, String> {
    let mut alternatives = Vec::new();
    for name in text.split('|') {
        alternatives.push(Field::parse(name.trim()).ok_or_else(|| format!("unknown field {name:?} in group_by"))?);
    }
    Ok(vec![GroupKey { alternatives }])
}

fn parse_route(t: &Table, origin: &str, prefix: &str) -> Result<Route, RuleError> {
    let r = Reader { table: t, origin, rule: None, prefix };
    r.check_known(&["category", "product", "service", "match", "except", "group_by", "fields"])?;
    let logsource = LogSource {
        category: r.string("category")?.map(|s| s.to_ascii_lowercase()),
        product: r.string("product")?.map(|s| s.to_ascii_lowercase()),
        service: r.string("service")?.map(|s| s.to_ascii_lowercase()),
    };
    if logsource == LogSource::default() {
        return Err(r.fail("category", "a logsource entry needs at least one of category, product, service"));
    }
    let mut table = Table::new();
    let conditions = match r.table("match")? {
        Some(m) => {
            table.insert("match".into(), Value::Table(m.clone()));
            matcher(m, origin, "sigma-logsource", &format!("{prefix}match."))?
        }
        None => return Err(r.fail("match", "missing (which events this logsource covers; {} for all)")),
    };
    let except = match r.table("except")? {
        Some(m) => {
            table.insert("except".into(), Value::Table(m.clone()));
            Some(matcher(m, origin, "sigma-logsource", &format!("{prefix}except."))?)
        }
        None => None,
    };
    let group_by = match r.string("group_by")? {
        Some(text) => {
            table.insert("group_by".into(), Value::String(text.clone()));
            parse_group_by(&text).map_err(|p| r.fail("group_by", p))?
        }
        None => default_group_by(),
    };
    let mut fields = HashMap::new();
    if let Some(f) = r.table("fields")? {
        for (name, value) in f {
            let Value::String(text) = value else {
                return Err(r.fail(&format!("fields.{name}"), "expected a Vigil field name (a string)"));
            };
            fields.insert(name.clone(), parse_target(text).map_err(|p| r.fail(&format!("fields.{name}"), p))?);
        }
    }
    Ok(Route { logsource, conditions, except, group_by, fields, table })
}

/// Severities by name (`info` or Sigma's `informational`).
pub(crate) fn severity_of(name: &str) -> Option<Severity> {
    if name.eq_ignore_ascii_case("informational") {
        return Some(Severity::Info);
    }
    parse_severity(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_mapping_loads_and_routes_the_corpus_logsources() {
        let m = Mapping::shipped();
        for (category, product, service) in [
            (Some("webserver"), None, None),
            (None, Some("linux"), None),
            (None, Some("linux"), Some("sshd")),
            (None, Some("linux"), Some("auth")),
            (None, Some("linux"), Some("sudo")),
            (None, Some("linux"), Some("cron")),
            (None, Some("linux"), Some("syslog")),
            (None, Some("linux"), Some("clamav")),
            (None, Some("linux"), Some("vsftpd")),
            (None, Some("linux"), Some("guacamole")),
            (Some("authentication"), Some("vigil"), None),
        ] {
            let ls = LogSource {
                category: category.map(String::from),
                product: product.map(String::from),
                service: service.map(String::from),
            };
            assert!(m.route(&ls).is_some(), "{ls}");
        }
        let windows = LogSource { product: Some("windows".into()), ..LogSource::default() };
        assert!(m.route(&windows).is_none());
        assert_eq!(m.field("cs-uri-query", None), Ok(Target::RequestUri));
        assert_eq!(m.field("C-IP", None), Ok(Target::Field(Field::SrcIp)));
        assert_eq!(m.field("label.path", None), Ok(Target::Field(Field::Label("path".into()))));
        assert!(m.field("CommandLine", None).unwrap_err().contains("unmapped field `CommandLine`"));
        assert_eq!(m.level("high").map(|l| l.severity), Some(Severity::High));
        assert_eq!(m.level("informational").map(|l| l.enabled), Some(false));
    }

    #[test]
    fn a_rules_file_extends_and_replaces() {
        let mut m = Mapping::shipped();
        let table: Table = r#"
            [fields]
            CommandLine = "message"
            [placeholders]
            Administrators = ["root", "adm_*"]
            [[logsource]]
            category = "webserver"
            match = { category = "web", host = "edge-*" }
        "#
        .parse()
        .unwrap();
        m.extend(&table, "rules.toml", "sigma.").unwrap();
        assert_eq!(m.field("CommandLine", None), Ok(Target::Message));
        assert_eq!(m.placeholder("Administrators").map(<[String]>::len), Some(2));
        let web = m.route(&LogSource { category: Some("webserver".into()), ..LogSource::default() }).unwrap();
        assert_eq!(web.conditions.fields.len(), 2, "the user's entry replaces the shipped one");

        let bad: Table = "[fields]\nx = \"cmdline\"\n".parse().unwrap();
        let e = Mapping::shipped().extend(&bad, "rules.toml", "sigma.").unwrap_err().to_string();
        assert!(e.contains("sigma.fields.x") && e.contains("unknown Vigil field"), "{e}");
    }
}
