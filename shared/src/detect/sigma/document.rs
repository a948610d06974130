//! Sigma YAML files as documents: rules, correlation rules and filters (one or many per file), with the
//! metadata every kind shares and the typed reads the compiler needs.

use yaml_rust2::{Yaml, YamlLoader};

use super::mapping::LogSource;
use super::modifiers::Scalar;

/// One Sigma file as read.
#[derive(Clone, Debug)]
pub struct Source {
    /// How reports and rules name it (usually its path).
    pub path: String,
    pub text: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DocKind {
    Rule,
    Correlation,
    Filter,
}

impl DocKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DocKind::Rule => "rule",
            DocKind::Correlation => "correlation",
            DocKind::Filter => "filter",
        }
    }
}

/// One YAML document of a Sigma file.
#[derive(Clone, Debug)]
pub(crate) struct Doc {
    pub file: String,
    /// 0-based position in the file.
    pub index: usize,
    pub yaml: Yaml,
    pub kind: Result<DocKind, String>,
    pub title: String,
    pub sigma_id: Option<String>,
    pub name: Option<String>,
}

impl Doc {
    pub fn get(&self, key: &str) -> &Yaml {
        &self.yaml[key]
    }

    pub fn string(&self, key: &str) -> Option<String> {
        scalar_text(self.get(key))
    }

    /// A string or a list of strings (absent: empty).
    pub fn strings(&self, key: &str) -> Vec<String> {
        strings(self.get(key))
    }

    pub fn logsource(&self) -> Result<LogSource, String> {
        let ls = self.get("logsource");
        if !ls.is_hash() {
            return Err("missing logsource".to_string());
        }
        let part = |k: &str| scalar_text(&ls[k]).map(|s| s.trim().to_ascii_lowercase()).filter(|s| !s.is_empty());
        Ok(LogSource { category: part("category"), product: part("product"), service: part("service") })
    }

    /// How the document is referred to: `file#n "title"`.
    pub fn describe(&self) -> String {
        format!("{}#{} {:?}", self.file, self.index + 1, self.title)
    }

    /// Whether `reference` (a rule id or name) names this document.
    pub fn is(&self, reference: &str) -> bool {
        self.sigma_id.as_deref() == Some(reference) || self.name.as_deref() == Some(reference)
    }
}

pub(crate) fn scalar_text(y: &Yaml) -> Option<String> {
    match y {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(n) => Some(n.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

pub(crate) fn strings(y: &Yaml) -> Vec<String> {
    match y {
        Yaml::Array(items) => items.iter().filter_map(scalar_text).collect(),
        other => scalar_text(other).into_iter().collect(),
    }
}

pub(crate) fn scalar(y: &Yaml) -> Option<Scalar> {
    Some(match y {
        Yaml::String(s) => Scalar::Str(s.clone()),
        Yaml::Integer(n) => Scalar::Int(*n),
        Yaml::Real(s) => Scalar::Real(s.clone()),
        Yaml::Boolean(b) => Scalar::Bool(*b),
        Yaml::Null => Scalar::Null,
        _ => return None,
    })
}

/// The documents of a file, or why the file cannot be read as YAML at all.
pub(crate) fn documents(source: &Source) -> Result<Vec<Doc>, String> {
    let docs = YamlLoader::load_from_str(&source.text).map_err(|e| format!("invalid YAML: {e}"))?;
    Ok(docs
        .into_iter()
        .filter(|y| !y.is_null() && !y.is_badvalue())
        .enumerate()
        .map(|(index, yaml)| {
            let kind = classify(&yaml);
            let title = scalar_text(&yaml["title"]).unwrap_or_default();
            let sigma_id = scalar_text(&yaml["id"]).map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
            let name = scalar_text(&yaml["name"]).map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
            Doc { file: source.path.clone(), index, yaml, kind, title, sigma_id, name }
        })
        .collect())
}

fn classify(yaml: &Yaml) -> Result<DocKind, String> {
    if !yaml.is_hash() {
        return Err("the document is not a YAML mapping".to_string());
    }
    if !yaml["action"].is_badvalue() {
        return Err("Sigma 1 rule collections (`action: global/reset/repeat`) are not supported".to_string());
    }
    let has = |k: &str| !yaml[k].is_badvalue();
    match (has("correlation"), has("filter"), has("detection")) {
        (true, false, false) => Ok(DocKind::Correlation),
        (false, true, false) => Ok(DocKind::Filter),
        (false, false, true) => Ok(DocKind::Rule),
        (false, false, false) => Err("neither a rule (detection), a correlation nor a filter".to_string()),
        _ => Err("a document may have only one of detection, correlation and filter".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_of_a_multi_document_file_are_classified() {
        let text = "title: a\nname: first\ndetection:\n  k: [x]\n  condition: k\n---\ntitle: c\ncorrelation:\n  type: \
                    event_count\n---\ntitle: f\nfilter:\n  rules: any\n---\n- just a list\n---\ntitle: g\naction: global\n";
        let docs = documents(&Source { path: "x.yml".into(), text: text.into() }).unwrap();
        let kinds: Vec<_> = docs.iter().map(|d| d.kind.clone()).collect();
        assert_eq!(kinds[..3], [Ok(DocKind::Rule), Ok(DocKind::Correlation), Ok(DocKind::Filter)]);
        assert!(kinds[3].as_ref().unwrap_err().contains("not a YAML mapping"));
        assert!(kinds[4].as_ref().unwrap_err().contains("action: global"));
        assert!(docs[0].is("first") && docs[0].describe().starts_with("x.yml#1"));
        let bad = documents(&Source { path: "y.yml".into(), text: "a: [".into() }).unwrap_err();
        assert!(bad.starts_with("invalid YAML"), "{bad}");
    }
}
