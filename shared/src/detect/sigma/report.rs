//! The coverage report: what became of every Sigma document, with the reason when it was not loaded.

use std::fmt::Write as _;

use serde::Serialize;

/// What became of one document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Runs as this engine rule.
    Loaded { rule: String },
    /// A rule (or correlation) used only inside these correlations (`generate: false`, the default).
    Referenced { by: Vec<String> },
    /// A filter, joined into these rules.
    Applied { rules: Vec<String> },
    /// Not loaded, and why.
    Skipped { reason: String },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Entry {
    pub file: String,
    /// 0-based position of the document in its file.
    pub document: usize,
    pub title: String,
    pub sigma_id: Option<String>,
    /// rule, correlation, filter, file (a file that is not YAML), unknown.
    pub kind: &'static str,
    pub logsource: String,
    #[serde(flatten)]
    pub outcome: Outcome,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub entries: Vec<Entry>,
}

impl Report {
    pub fn loaded(&self) -> usize {
        self.entries.iter().filter(|e| matches!(e.outcome, Outcome::Loaded { .. })).count()
    }

    pub fn skipped(&self) -> usize {
        self.entries.iter().filter(|e| matches!(e.outcome, Outcome::Skipped { .. })).count()
    }

    /// One line per document, then the totals.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for e in &self.entries {
            let place = format!("{}#{}", e.file, e.document + 1);
            let (status, detail) = match &e.outcome {
                Outcome::Loaded { rule } => ("loaded", rule.clone()),
                Outcome::Referenced { by } => ("part of", by.join(", ")),
                Outcome::Applied { rules } => ("filter", format!("applied to {}", rules.join(", "))),
                Outcome::Skipped { reason } => ("skipped", reason.clone()),
            };
            let _ = writeln!(out, "{status:<8}  {place}  {:?} [{}]: {detail}", e.title, e.kind);
        }
        let referenced = self.entries.iter().filter(|e| matches!(e.outcome, Outcome::Referenced { .. })).count();
        let filters = self.entries.iter().filter(|e| matches!(e.outcome, Outcome::Applied { .. })).count();
        let _ = writeln!(
            out,
            "\n{} loaded, {referenced} part of a correlation, {filters} filters applied, {} skipped ({} documents)",
            self.loaded(),
            self.skipped(),
            self.entries.len()
        );
        out
    }
}
