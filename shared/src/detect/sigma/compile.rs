//! From Sigma documents to engine rules: detections to predicates, filters into the rules they name,
//! correlations to windowed kinds, with a report entry for every document.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use toml::{Table, Value};
use yaml_rust2::Yaml;

use super::condition;
use super::document::{documents, scalar, scalar_text, strings, Doc, DocKind, Source};
use super::mapping::{severity_of, LogSource, Mapping, Route};
use super::modifiers::{compile_item, match_values, Resolver, Scalar};
use super::predicate::{Node, Predicate, SigmaPredicate, Target};
use super::report::{Entry, Outcome, Report};
use super::scan::LiteralSets;
use super::temporal::{Step, TemporalSpec};
use super::{EntityPart, SigmaInfo};
use crate::detect::load::{format_duration, parse_duration, valid_technique};
use crate::detect::rule::{
    Field, GroupKey, Matcher, Rule, RuleKind, SeverityPolicy, Signal, DEFAULT_SUPPRESSION, MAX_ENTRIES_PER_KEY,
    MAX_WINDOW,
};

/// Rules compiled from Sigma files, and what became of every document.
#[derive(Debug, Default)]
pub struct SigmaSet {
    pub rules: Vec<Rule>,
    pub report: Report,
}

struct RouteResolver<'a> {
    mapping: &'a Mapping,
    route: Option<&'a Route>,
    literals: &'a LiteralSets,
}

impl Resolver for RouteResolver<'_> {
    fn field(&self, name: &str) -> Result<Target, String> {
        self.mapping.field(name, self.route)
    }

    fn placeholder(&self, name: &str) -> Option<&[String]> {
        self.mapping.placeholder(name)
    }

    fn literals(&self) -> &LiteralSets {
        self.literals
    }
}

/// A Sigma rule whose detection compiled.
struct Base {
    route: Route,
    /// The route as predicate tests.
    events: Node,
    detection: Node,
}

impl Base {
    /// The rule's events: its logsource and its detection.
    fn full(&self) -> Node {
        Node::All(vec![self.events.clone(), self.detection.clone()])
    }
}

/// A logsource route as predicate tests (field conditions compile to borrowed-value checks; anything else is
/// evaluated by the TOML matcher itself).
fn route_node(route: &Route, literals: &LiteralSets) -> Node {
    let node = |m: &Matcher| -> Node {
        let plain = m.outcome.is_none() && m.severity.is_none() && m.min_severity.is_none() && m.sigma.is_none();
        let tests: Option<Vec<Node>> = plain
            .then(|| {
                m.fields
                    .iter()
                    .map(|(f, accepted)| {
                        let target = Target::Field(f.clone());
                        match_values(accepted, &target, literals).ok().map(|c| Node::Test(target, c))
                    })
                    .collect()
            })
            .flatten();
        tests.map(Node::All).unwrap_or_else(|| Node::Route(Box::new(m.clone())))
    };
    match &route.except {
        Some(x) => Node::All(vec![node(&route.conditions), Node::Not(Box::new(node(x)))]),
        None => node(&route.conditions),
    }
}

/// A compiled detection section: search identifiers and condition.
fn compile_detection(detection: &Yaml, resolver: &dyn Resolver, skip: &[&str]) -> Result<Node, String> {
    let Yaml::Hash(map) = detection else { return Err("detection must be a mapping".to_string()) };
    let mut identifiers: Vec<(String, Node)> = Vec::new();
    let mut conditions: Vec<String> = Vec::new();
    for (key, value) in map {
        let Some(name) = scalar_text(key) else { return Err("a search identifier must be a string".to_string()) };
        match name.as_str() {
            "condition" => {
                conditions = strings(value);
                if conditions.is_empty() {
                    return Err("condition must be a string or a list of strings".to_string());
                }
            }
            "timeframe" => {}
            other if skip.contains(&other) => {}
            _ => {
                let node = search_identifier(value, resolver).map_err(|e| format!("{name}: {e}"))?;
                identifiers.push((name, node));
            }
        }
    }
    if conditions.is_empty() {
        return Err("the detection has no condition".to_string());
    }
    let mut nodes = Vec::with_capacity(conditions.len());
    for text in &conditions {
        let expr = condition::parse(text).map_err(|e| format!("condition: {e}"))?;
        nodes.push(condition::resolve(&expr, &identifiers).map_err(|e| format!("condition: {e}"))?);
    }
    Ok(if nodes.len() == 1 { nodes.remove(0) } else { Node::Any(nodes) })
}

fn search_identifier(value: &Yaml, resolver: &dyn Resolver) -> Result<Node, String> {
    match value {
        Yaml::Hash(map) => {
            let mut items = Vec::with_capacity(map.len());
            for (key, values) in map {
                let key = scalar_text(key).ok_or("a field name must be a string")?;
                let mut parts = key.split('|');
                let field = parts.next().unwrap_or("").trim();
                let modifiers: Vec<&str> = parts.map(str::trim).collect();
                let values = scalars(values)?;
                let field = (!field.is_empty()).then_some(field);
                items.push(compile_item(field, &modifiers, &values, resolver).map_err(|e| format!("{key}: {e}"))?);
            }
            if items.is_empty() {
                return Err("an empty search identifier".to_string());
            }
            Ok(Node::All(items))
        }
        Yaml::Array(elements) => {
            let mut keywords = Vec::new();
            let mut nodes = Vec::new();
            for e in elements {
                match e {
                    Yaml::Hash(_) => nodes.push(search_identifier(e, resolver)?),
                    other => keywords.push(scalar(other).ok_or("a list may hold strings or maps only")?),
                }
            }
            if !keywords.is_empty() {
                nodes.push(compile_item(None, &[], &keywords, resolver)?);
            }
            if nodes.is_empty() {
                return Err("an empty list".to_string());
            }
            Ok(Node::Any(nodes))
        }
        Yaml::Null | Yaml::BadValue => Err("an empty search identifier".to_string()),
        other => compile_item(None, &[], &[scalar(other).ok_or("unsupported value")?], resolver),
    }
}

fn scalars(y: &Yaml) -> Result<Vec<Scalar>, String> {
    match y {
        Yaml::Array(items) => {
            items.iter().map(|i| scalar(i).ok_or_else(|| "a value list may hold scalars only".to_string())).collect()
        }
        other => Ok(vec![scalar(other).ok_or("a value must be a scalar or a list of scalars")?]),
    }
}

/// `sigma-<id>` (or the name, or the file and position), in the engine's id alphabet.
fn vigil_id(doc: &Doc) -> String {
    let base = match (&doc.sigma_id, &doc.name) {
        (Some(id), _) => id.clone(),
        (None, Some(name)) => name.clone(),
        (None, None) => {
            let stem =
                std::path::Path::new(&doc.file).file_stem().and_then(|s| s.to_str()).unwrap_or("rule").to_string();
            if doc.index == 0 {
                stem
            } else {
                format!("{stem}-{}", doc.index + 1)
            }
        }
    };
    let clean: String =
        base.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') { c } else { '_' }).collect();
    let mut id = format!("sigma-{clean}");
    id.truncate(64);
    id
}

/// ATT&CK technique ids from `attack.t1190` / `attack.t1505.003` tags.
fn techniques(tags: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in tags {
        if let Some(rest) = t.trim().to_ascii_lowercase().strip_prefix("attack.t") {
            let id = format!("T{}", rest.to_ascii_uppercase());
            if valid_technique(&id) && !out.contains(&id) {
                out.push(id);
            }
        }
    }
    out
}

struct Compiler<'a> {
    mapping: &'a Mapping,
    docs: Vec<Doc>,
    /// Per document: its base compilation, or why it was skipped.
    bases: HashMap<usize, Result<Base, String>>,
    outcomes: BTreeMap<usize, Outcome>,
    /// Documents referenced by correlations, with the referencing correlations and whether they `generate`.
    referenced: HashMap<usize, Vec<(usize, bool)>>,
    literals: LiteralSets,
}

/// Compiles every document of `sources`.
pub fn compile(sources: &[Source], mapping: &Mapping) -> SigmaSet {
    let mut report = Report::default();
    let mut docs = Vec::new();
    for source in sources {
        match documents(source) {
            Ok(d) => docs.extend(d),
            Err(reason) => report.entries.push(Entry {
                file: source.path.clone(),
                document: 0,
                title: String::new(),
                sigma_id: None,
                kind: "file",
                logsource: String::new(),
                outcome: Outcome::Skipped { reason },
            }),
        }
    }
    let mut c = Compiler {
        mapping,
        docs,
        bases: HashMap::new(),
        outcomes: BTreeMap::new(),
        referenced: HashMap::new(),
        literals: LiteralSets::default(),
    };
    c.check_identities();
    c.compile_bases();
    c.apply_filters();
    let correlations = c.compile_correlations();
    let mut rules = c.emit(correlations);
    if let Err(reason) = std::mem::take(&mut c.literals).finish() {
        rules.clear();
        for outcome in c.outcomes.values_mut() {
            if matches!(outcome, Outcome::Loaded { .. }) {
                *outcome = Outcome::Skipped { reason: reason.clone() };
            }
        }
    }
    for (i, doc) in c.docs.iter().enumerate() {
        let outcome = c.outcomes.remove(&i).unwrap_or(Outcome::Skipped { reason: "not compiled".to_string() });
        report.entries.push(Entry {
            file: doc.file.clone(),
            document: doc.index,
            title: doc.title.clone(),
            sigma_id: doc.sigma_id.clone(),
            kind: doc.kind.as_ref().map(|k| k.as_str()).unwrap_or("unknown"),
            logsource: doc.logsource().map(|l| l.to_string()).unwrap_or_default(),
            outcome,
        });
    }
    SigmaSet { rules, report }
}

impl Compiler<'_> {
    fn skip(&mut self, doc: usize, reason: impl Into<String>) {
        self.outcomes.insert(doc, Outcome::Skipped { reason: reason.into() });
    }

    /// Unclassifiable documents, missing titles and duplicate ids are skipped before anything else.
    fn check_identities(&mut self) {
        let mut seen: HashMap<String, usize> = HashMap::new();
        for i in 0..self.docs.len() {
            let doc = &self.docs[i];
            if let Err(reason) = &doc.kind {
                let reason = reason.clone();
                self.skip(i, reason);
                continue;
            }
            if doc.title.trim().is_empty() {
                self.skip(i, "missing title");
                continue;
            }
            let id = vigil_id(doc);
            if let Some(&first) = seen.get(&id) {
                let other = self.docs[first].describe();
                self.skip(i, format!("rule id {id} is already used by {other}"));
                continue;
            }
            seen.insert(id, i);
        }
    }

    fn usable(&self, i: usize, kind: DocKind) -> bool {
        self.docs[i].kind == Ok(kind) && !self.outcomes.contains_key(&i)
    }

    fn compile_bases(&mut self) {
        for i in 0..self.docs.len() {
            if !self.usable(i, DocKind::Rule) {
                continue;
            }
            let result = self.compile_base(i);
            if let Err(reason) = &result {
                let reason = reason.clone();
                self.skip(i, reason);
            }
            self.bases.insert(i, result);
        }
    }

    fn compile_base(&self, i: usize) -> Result<Base, String> {
        let doc = &self.docs[i];
        if let Some(status) = doc.string("status") {
            if matches!(status.trim(), "deprecated" | "unsupported") {
                return Err(format!("status {status}: the rule is not meant to run"));
            }
        }
        let logsource = doc.logsource()?;
        let route = self.mapping.route(&logsource).ok_or_else(|| {
            format!("unsupported logsource {logsource} (add a [[sigma.logsource]] entry to route it to Vigil's events)")
        })?;
        let resolver = RouteResolver { mapping: self.mapping, route: Some(&route), literals: &self.literals };
        let detection = compile_detection(doc.get("detection"), &resolver, &[])?;
        let events = route_node(&route, &self.literals);
        Ok(Base { route, events, detection })
    }

    /// Filters AND their condition into the rules they name (pySigma's semantics: write `not selection` to
    /// exclude), for rules whose logsource the filter's covers.
    fn apply_filters(&mut self) {
        for f in 0..self.docs.len() {
            if !self.usable(f, DocKind::Filter) {
                continue;
            }
            let result = self.apply_filter(f);
            self.outcomes.insert(
                f,
                match result {
                    Ok(rules) if rules.is_empty() => {
                        Outcome::Skipped { reason: "the filter applies to no loaded rule".to_string() }
                    }
                    Ok(rules) => Outcome::Applied { rules },
                    Err(reason) => Outcome::Skipped { reason },
                },
            );
        }
    }

    fn apply_filter(&mut self, f: usize) -> Result<Vec<String>, String> {
        let doc = self.docs[f].clone();
        let filter = doc.get("filter");
        if !filter.is_hash() {
            return Err("filter must be a mapping".to_string());
        }
        let scope = doc.logsource()?;
        let targets = strings(&filter["rules"]);
        if filter["rules"].is_badvalue() {
            return Err("the filter has no `rules` (name rules, or `any` for every rule of its logsource)".to_string());
        }
        let any = targets.is_empty()
            || targets.iter().any(|t| t.eq_ignore_ascii_case("any") || t.eq_ignore_ascii_case("all"));
        let within = |ls: &LogSource| {
            let covers = |f: &Option<String>, r: &Option<String>| f.is_none() || f == r;
            covers(&scope.category, &ls.category)
                && covers(&scope.product, &ls.product)
                && covers(&scope.service, &ls.service)
        };
        let mut applied = Vec::new();
        let candidates: Vec<usize> = self.bases.iter().filter(|(_, b)| b.is_ok()).map(|(&i, _)| i).collect();
        let mut candidates = candidates;
        candidates.sort_unstable();
        for i in candidates {
            let rule = &self.docs[i];
            let named = any || targets.iter().any(|t| rule.is(t));
            let Ok(ls) = rule.logsource() else { continue };
            if !named || !within(&ls) {
                continue;
            }
            let Some(Ok(base)) = self.bases.get(&i) else { continue };
            let resolver = RouteResolver { mapping: self.mapping, route: Some(&base.route), literals: &self.literals };
            let node = compile_detection(filter, &resolver, &["rules"])?;
            if let Some(Ok(base)) = self.bases.get_mut(&i) {
                base.detection = Node::All(vec![base.detection.clone(), node]);
            }
            applied.push(vigil_id(rule));
        }
        Ok(applied)
    }

    fn find(&self, reference: &str) -> Option<usize> {
        self.docs.iter().position(|d| d.is(reference) && d.kind.is_ok())
    }

    /// Every correlation, compiled into a rule (not yet knowing whether it is emitted).
    fn compile_correlations(&mut self) -> Vec<(usize, Rule)> {
        let mut out = Vec::new();
        for i in 0..self.docs.len() {
            if !self.usable(i, DocKind::Correlation) {
                continue;
            }
            match self.compile_correlation(i) {
                Ok(rule) => out.push((i, rule)),
                Err(reason) => self.skip(i, reason),
            }
        }
        out
    }

    fn compile_correlation(&mut self, i: usize) -> Result<Rule, String> {
        let doc = self.docs[i].clone();
        let corr = doc.get("correlation");
        let kind = scalar_text(&corr["type"]).ok_or("the correlation has no type")?;
        let references = strings(&corr["rules"]);
        if references.is_empty() {
            return Err("the correlation names no rules".to_string());
        }
        let generate =
            matches!(corr["generate"], Yaml::Boolean(true)) || matches!(doc.get("generate"), Yaml::Boolean(true));
        let mut referenced = Vec::new();
        for r in &references {
            let target =
                self.find(r).ok_or_else(|| format!("references rule `{r}`, which is not in the loaded files"))?;
            if target == i {
                return Err("the correlation references itself".to_string());
            }
            referenced.push(target);
        }
        // Referenced rules belong to this correlation even if it turns out unusable: they are its parts.
        for &r in &referenced {
            self.referenced.entry(r).or_default().push((i, generate));
            if let Ok(DocKind::Correlation) = self.docs[r].kind {
                for b in self.chained_bases(r) {
                    self.referenced.entry(b).or_default().push((i, generate));
                }
            }
        }
        let timespan_text = scalar_text(&corr["timespan"])
            .or_else(|| scalar_text(&corr["timeframe"]))
            .ok_or("the correlation has no timespan")?;
        let timespan = parse_duration(&timespan_text).map_err(|e| format!("timespan: {e}"))?;
        if timespan > MAX_WINDOW {
            return Err(format!(
                "timespan {timespan_text} is longer than Vigil's longest window, {}",
                format_duration(MAX_WINDOW)
            ));
        }
        let condition = parse_condition(&corr["condition"])?;

        // What each referenced rule contributes: its base rules and, for a chained correlation, its count.
        let mut steps: Vec<StepSource> = Vec::new();
        for &r in &referenced {
            steps.push(self.step_source(r, &kind)?);
        }

        let aliases = parse_aliases(&corr["aliases"])?;
        let group_by_names = strings(&corr["group-by"]);
        let parts = self.group_by(&group_by_names, &aliases, &steps)?;

        let predicate =
            |nodes: Vec<Node>, label: String| SigmaPredicate(Arc::new(Predicate::new(Node::Any(nodes), label)));
        let all_bases: Vec<&Base> = steps.iter().flat_map(|s| s.bases.iter().map(|&b| self.base(b))).collect();
        let (kind_value, conditions, reason) = match kind.as_str() {
            "event_count" | "value_count" => {
                if steps.iter().any(|s| s.chained.is_some()) {
                    return Err(format!(
                        "{kind} over other correlation rules is not supported (only temporal ones chain)"
                    ));
                }
                let threshold = condition.threshold(&kind)?;
                if threshold > MAX_ENTRIES_PER_KEY as u64 {
                    return Err(format!("a count above {MAX_ENTRIES_PER_KEY} is more than a window keeps"));
                }
                let matcher = Matcher {
                    sigma: Some(predicate(
                        all_bases.iter().map(|b| b.full()).collect(),
                        format!("sigma correlation {}", vigil_id(&doc)),
                    )),
                    ..Matcher::default()
                };
                if kind == "event_count" {
                    let reason = "{name}: {count} events for {entity} within {window} (Sigma event_count, threshold {threshold})";
                    (
                        RuleKind::Threshold { window: timespan, threshold, reset: None, burst: None },
                        matcher,
                        reason.to_string(),
                    )
                } else {
                    let field_name = condition.field.clone().ok_or("value_count needs condition.field")?;
                    let field = self.common_field(&field_name, &all_bases)?;
                    let reason = "{name}: {distinct} distinct {distinct_field} values for {entity} within {window} (Sigma value_count, threshold {threshold})";
                    (RuleKind::Distinct { window: timespan, threshold, field }, matcher, reason.to_string())
                }
            }
            "temporal" | "temporal_ordered" => {
                let ordered = kind == "temporal_ordered";
                let n = steps.len() as u64;
                let needed = condition.steps(n, ordered)?;
                let chained = steps.iter().any(|s| s.chained.is_some());
                let step_matchers: Vec<Matcher> = steps
                    .iter()
                    .map(|s| Matcher {
                        sigma: Some(predicate(
                            s.bases.iter().map(|&b| self.base(b).full()).collect(),
                            format!("sigma step {}", s.name),
                        )),
                        ..Matcher::default()
                    })
                    .collect();
                if !ordered && !chained {
                    // Risk counts signals present in a window: exactly "these rules all matched within it".
                    let signals = steps
                        .iter()
                        .zip(step_matchers)
                        .map(|(s, matcher)| Signal { name: s.name.clone(), score: 1, cap: 1, matcher })
                        .collect();
                    let reason = "{name}: {signals} for {entity} within {window} (Sigma temporal)".to_string();
                    (
                        RuleKind::Risk { window: timespan, threshold: needed, min_signals: needed, signals },
                        Matcher::default(),
                        reason,
                    )
                } else {
                    let spec = TemporalSpec {
                        timespan,
                        ordered,
                        min_steps: needed as usize,
                        steps: steps
                            .iter()
                            .zip(step_matchers)
                            .map(|(s, matcher)| {
                                let (count, within, distinct) = s.chained.clone().unwrap_or((1, Duration::ZERO, None));
                                Step { name: s.name.clone(), matcher, count, within, distinct }
                            })
                            .collect(),
                    };
                    if spec.lookback() > MAX_WINDOW {
                        return Err(format!("timespans adding up to more than {}", format_duration(MAX_WINDOW)));
                    }
                    let order = if ordered { "in order" } else { "together" };
                    let names: Vec<&str> = steps.iter().map(|s| s.name.as_str()).collect();
                    let reason = format!(
                        "{{name}}: {} {order} for {{entity}} within {timespan_text} (Sigma {kind})",
                        names.join(" → ").replace(['{', '}'], "")
                    );
                    (RuleKind::Temporal(spec), Matcher::default(), reason)
                }
            }
            "value_sum" | "value_avg" | "value_percentile" => {
                return Err(format!(
                    "correlation type {kind} is not supported (Vigil's windows count events and values)"
                ));
            }
            other => return Err(format!("unknown correlation type `{other}`")),
        };
        let info = self.info(&doc, Some(kind.clone()), parts.entity);
        let mut rule = self.rule(&doc, kind_value, info)?;
        rule.conditions = conditions;
        rule.group_by = parts.group_by;
        rule.reason = reason;
        Ok(rule)
    }

    fn base(&self, doc: usize) -> &Base {
        match self.bases.get(&doc) {
            Some(Ok(b)) => b,
            _ => unreachable!("step sources only hold compiled base rules"),
        }
    }

    /// The base rules a correlation rests on (one level).
    fn chained_bases(&self, corr: usize) -> Vec<usize> {
        strings(&self.docs[corr].get("correlation")["rules"]).iter().filter_map(|r| self.find(r)).collect()
    }

    fn step_source(&self, r: usize, outer: &str) -> Result<StepSource, String> {
        let doc = &self.docs[r];
        let name = doc.name.clone().unwrap_or_else(|| doc.title.clone());
        let usable_base = |b: usize| -> Result<(), String> {
            match self.bases.get(&b) {
                Some(Ok(_)) => Ok(()),
                Some(Err(reason)) => {
                    Err(format!("references rule `{}`, which was skipped: {reason}", self.docs[b].title))
                }
                None => Err(format!("references `{}`, which is not a usable Sigma rule", self.docs[b].title)),
            }
        };
        match doc.kind {
            Ok(DocKind::Rule) => {
                usable_base(r)?;
                Ok(StepSource { name, bases: vec![r], chained: None })
            }
            Ok(DocKind::Correlation) => {
                if !matches!(outer, "temporal" | "temporal_ordered") {
                    return Err(format!(
                        "{outer} over other correlation rules is not supported (only temporal ones chain)"
                    ));
                }
                let corr = doc.get("correlation");
                let inner = scalar_text(&corr["type"]).unwrap_or_default();
                let timespan = scalar_text(&corr["timespan"])
                    .and_then(|t| parse_duration(&t).ok())
                    .ok_or_else(|| format!("chained correlation `{name}` has no valid timespan"))?;
                let condition = parse_condition(&corr["condition"]).map_err(|e| format!("chained `{name}`: {e}"))?;
                let bases = self.chained_bases(r);
                for &b in &bases {
                    if self.docs[b].kind != Ok(DocKind::Rule) {
                        return Err(format!(
                            "`{name}` chains further correlations: one level of chaining is supported"
                        ));
                    }
                    usable_base(b)?;
                }
                let count = condition.threshold(&inner).map_err(|e| format!("chained `{name}`: {e}"))?;
                let distinct = match inner.as_str() {
                    "event_count" => None,
                    "value_count" => {
                        let f = condition
                            .field
                            .clone()
                            .ok_or_else(|| format!("chained `{name}`: value_count needs condition.field"))?;
                        let b: Vec<&Base> = bases.iter().map(|&b| self.base(b)).collect();
                        Some(self.common_field(&f, &b)?)
                    }
                    other => {
                        return Err(format!(
                            "chaining a {other} correlation is not supported (event_count and value_count are)"
                        ))
                    }
                };
                Ok(StepSource { name, bases, chained: Some((count, timespan, distinct)) })
            }
            _ => Err(format!("references `{}`, which is not a rule or a correlation", doc.title)),
        }
    }

    /// A field that means the same Vigil field for every base rule.
    fn common_field(&self, name: &str, bases: &[&Base]) -> Result<Field, String> {
        let mut found: Option<Field> = None;
        for b in bases {
            let target = self.mapping.field(name, Some(&b.route))?;
            let field = target
                .as_field()
                .cloned()
                .ok_or_else(|| format!("`{name}` ({target}) cannot be counted or grouped by"))?;
            match &found {
                Some(f) if *f != field => {
                    return Err(format!("`{name}` maps to different Vigil fields in the correlated rules"))
                }
                _ => found = Some(field),
            }
        }
        found.ok_or_else(|| format!("`{name}`: no rule to map it for"))
    }

    /// The entity of a correlation: plain group keys when every group-by field means the same Vigil field for
    /// every correlated rule, otherwise (aliases, or logsources mapping it differently) per-rule fields.
    fn group_by(
        &self,
        names: &[String],
        aliases: &HashMap<String, HashMap<String, String>>,
        steps: &[StepSource],
    ) -> Result<GroupParts, String> {
        let mut parts = Vec::new();
        let mut per_rule_needed = false;
        for name in names {
            let mut sources: Vec<(usize, Field)> = Vec::new();
            for s in steps {
                for &b in &s.bases {
                    let base = self.base(b);
                    let doc = &self.docs[b];
                    let field_name = match aliases.get(name) {
                        Some(per_rule) => per_rule
                            .iter()
                            .find(|(rule, _)| doc.is(rule) || s.name == **rule)
                            .map(|(_, f)| f.clone())
                            .ok_or_else(|| format!("alias `{name}` gives no field for rule `{}`", s.name))?,
                        None => name.clone(),
                    };
                    let target = self.mapping.field(&field_name, Some(&base.route))?;
                    let field = target
                        .as_field()
                        .cloned()
                        .ok_or_else(|| format!("cannot group by `{field_name}` ({target})"))?;
                    sources.push((b, field));
                }
            }
            if sources.windows(2).any(|w| w[0].1 != w[1].1) {
                per_rule_needed = true;
            }
            parts.push((name.clone(), sources));
        }
        let group_by: Vec<GroupKey> = parts
            .iter()
            .map(|(_, sources)| {
                let mut alternatives: Vec<Field> = Vec::new();
                for (_, f) in sources {
                    if !alternatives.contains(f) {
                        alternatives.push(f.clone());
                    }
                }
                GroupKey { alternatives }
            })
            .collect();
        let entity = per_rule_needed.then(|| {
            parts
                .into_iter()
                .map(|(name, sources)| {
                    let sources = sources
                        .into_iter()
                        .map(|(b, f)| {
                            let label = format!("sigma group-by {name} of {}", vigil_id(&self.docs[b]));
                            (SigmaPredicate(Arc::new(Predicate::new(self.base(b).full(), label))), f)
                        })
                        .collect();
                    EntityPart { name, sources }
                })
                .collect()
        });
        Ok(GroupParts { group_by, entity })
    }

    fn info(&self, doc: &Doc, correlation: Option<String>, entity: Option<Vec<EntityPart>>) -> SigmaInfo {
        SigmaInfo {
            sigma_id: doc.sigma_id.clone(),
            name: doc.name.clone(),
            title: doc.title.clone(),
            file: doc.file.clone(),
            status: doc.string("status"),
            level: doc.string("level"),
            author: doc.string("author"),
            tags: doc.strings("tags"),
            falsepositives: doc.strings("falsepositives"),
            references: doc.strings("references"),
            correlation,
            entity,
        }
    }

    /// The engine rule for a document, without its matching parts.
    fn rule(&self, doc: &Doc, kind: RuleKind, info: SigmaInfo) -> Result<Rule, String> {
        let level_name = doc.string("level").unwrap_or_else(|| "medium".to_string());
        let level = self.mapping.level(&level_name).or_else(|| {
            severity_of(&level_name).map(|severity| super::mapping::Level { severity, score: 30, enabled: true })
        });
        let level = level.ok_or_else(|| format!("unknown level `{level_name}` (add it to [sigma.levels])"))?;
        let description = doc.string("description").unwrap_or_default();
        let id = vigil_id(doc);
        let mut table = Table::new();
        table.insert("id".into(), Value::String(id.clone()));
        table.insert("name".into(), Value::String(doc.title.clone()));
        table.insert("kind".into(), Value::String(kind.name().to_string()));
        table.insert("severity".into(), Value::String(level.severity.to_string()));
        table.insert("score".into(), Value::Integer(i64::from(level.score)));
        let mut sigma = Table::new();
        sigma.insert("file".into(), Value::String(doc.file.clone()));
        if let Some(sid) = &doc.sigma_id {
            sigma.insert("id".into(), Value::String(sid.clone()));
        }
        table.insert("sigma".into(), Value::Table(sigma));
        Ok(Rule {
            id,
            name: doc.title.clone(),
            description: description.clone(),
            enabled: level.enabled,
            mitre: techniques(&info.tags),
            kind,
            conditions: Matcher::default(),
            except: None,
            group_by: Vec::new(),
            suppression: DEFAULT_SUPPRESSION,
            score: level.score,
            severity: SeverityPolicy::Fixed(level.severity),
            reason: "Sigma rule {name} matched {count} event(s) from {entity}".to_string(),
            runbook: (!description.trim().is_empty()).then(|| description.trim().to_string()),
            origin: doc.file.clone(),
            tests: Vec::new(),
            table,
            sigma: Some(Arc::new(info)),
        })
    }

    /// The rules that run: base rules and correlations no correlation keeps to itself (`generate: false`).
    fn emit(&mut self, correlations: Vec<(usize, Rule)>) -> Vec<Rule> {
        let mut rules = Vec::new();
        let correlation_ids: HashSet<usize> = correlations.iter().map(|(i, _)| *i).collect();
        let standalone = |c: &mut Self, i: usize| -> bool {
            match c.referenced.get(&i) {
                None => true,
                Some(by) if by.iter().any(|(_, generate)| *generate) => true,
                Some(by) => {
                    let mut names: Vec<String> = by.iter().map(|(r, _)| vigil_id(&c.docs[*r])).collect();
                    names.sort();
                    names.dedup();
                    c.outcomes.insert(i, Outcome::Referenced { by: names });
                    false
                }
            }
        };
        let mut base_ids: Vec<usize> = self.bases.iter().filter(|(_, b)| b.is_ok()).map(|(&i, _)| i).collect();
        base_ids.sort_unstable();
        for i in base_ids {
            if !standalone(self, i) {
                continue;
            }
            let doc = self.docs[i].clone();
            let Some(Ok(base)) = self.bases.get(&i) else { continue };
            let (route, full) = (base.route.clone(), base.full());
            let info = self.info(&doc, None, None);
            match self.rule(&doc, RuleKind::Passthrough, info) {
                Ok(mut rule) => {
                    // The logsource route is part of the predicate (its `match` stays in the table, for display).
                    let label = format!("sigma rule {}", rule.id);
                    rule.conditions = Matcher {
                        sigma: Some(SigmaPredicate(Arc::new(Predicate::new(full, label)))),
                        ..Matcher::default()
                    };
                    rule.group_by = route.group_by.clone();
                    for (k, v) in &route.table {
                        rule.table.insert(k.clone(), v.clone());
                    }
                    self.outcomes.insert(i, Outcome::Loaded { rule: rule.id.clone() });
                    rules.push(rule);
                }
                Err(reason) => self.skip(i, reason),
            }
        }
        for (i, rule) in correlations {
            if correlation_ids.contains(&i) && standalone(self, i) {
                self.outcomes.insert(i, Outcome::Loaded { rule: rule.id.clone() });
                rules.push(rule);
            }
        }
        rules
    }
}

/// What one referenced rule of a correlation stands for.
struct StepSource {
    name: String,
    bases: Vec<usize>,
    /// A chained event_count / value_count: its count, timespan and distinct field.
    chained: Option<(u64, Duration, Option<Field>)>,
}

struct GroupParts {
    group_by: Vec<GroupKey>,
    entity: Option<Vec<EntityPart>>,
}

/// A correlation's `condition`: comparisons, and the field of a value_count.
#[derive(Debug, Default)]
struct CorrelationCondition {
    ops: Vec<(String, u64)>,
    field: Option<String>,
}

fn parse_condition(y: &Yaml) -> Result<CorrelationCondition, String> {
    let mut c = CorrelationCondition::default();
    match y {
        Yaml::BadValue | Yaml::Null => return Ok(c),
        Yaml::Hash(map) => {
            for (k, v) in map {
                let key = scalar_text(k).unwrap_or_default();
                if key == "field" {
                    let fields = strings(v);
                    if fields.len() != 1 {
                        return Err("condition.field must name one field".to_string());
                    }
                    c.field = fields.into_iter().next();
                    continue;
                }
                let n = match v {
                    Yaml::Integer(n) if *n >= 0 => *n as u64,
                    _ => return Err(format!("condition.{key} must be a whole number")),
                };
                c.ops.push((key, n));
            }
        }
        _ => return Err("condition must be a mapping such as { gte: 10 }".to_string()),
    }
    Ok(c)
}

impl CorrelationCondition {
    /// The threshold of a count that only grows: `gte n` or `gt n`. Other forms could only be decided once
    /// a window closes, which a streaming engine never waits for.
    fn threshold(&self, kind: &str) -> Result<u64, String> {
        match self.ops.as_slice() {
            [(op, n)] if op == "gte" => Ok((*n).max(1)),
            [(op, n)] if op == "gt" => Ok(n + 1),
            [] => Err(format!("{kind} needs a condition (gte or gt)")),
            other => Err(format!(
                "condition {} is not supported: Vigil fires as a count grows, so only gte and gt are",
                other.iter().map(|(o, n)| format!("{o}: {n}")).collect::<Vec<_>>().join(", ")
            )),
        }
    }

    /// How many of `n` rules must match: all without a condition.
    fn steps(&self, n: u64, ordered: bool) -> Result<u64, String> {
        let needed = match self.ops.as_slice() {
            [] => n,
            _ => self.threshold("a temporal correlation")?,
        };
        if needed == 0 || needed > n {
            return Err(format!("the condition asks for {needed} of {n} rules"));
        }
        if ordered && needed != n {
            return Err(
                "temporal_ordered needs every rule in order (a condition below all is not supported)".to_string()
            );
        }
        Ok(needed)
    }
}

fn parse_aliases(y: &Yaml) -> Result<HashMap<String, HashMap<String, String>>, String> {
    let mut out = HashMap::new();
    match y {
        Yaml::BadValue | Yaml::Null => {}
        Yaml::Hash(map) => {
            for (alias, per_rule) in map {
                let alias = scalar_text(alias).ok_or("an alias name must be a string")?;
                let Yaml::Hash(rules) = per_rule else {
                    return Err(format!("alias `{alias}` must map rule names to fields"));
                };
                let mut m = HashMap::new();
                for (rule, field) in rules {
                    let (Some(rule), Some(field)) = (scalar_text(rule), scalar_text(field)) else {
                        return Err(format!("alias `{alias}` must map rule names to fields"));
                    };
                    m.insert(rule, field);
                }
                out.insert(alias, m);
            }
        }
        _ => return Err("aliases must be a mapping".to_string()),
    }
    Ok(out)
}
