//! `vigil rules test [FILE]`: runs the `[[rule.test]]` entries of the built-in rules, and of FILE layered
//! over them the way `VIGIL_RULES_FILE` is, through the real detection engine; prints one line per test.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use vigil::detect::ruletest::{run_rule_tests, TestOutcome, TestReport};
use vigil::detect::DetectionEngine;

/// The engine `vigil serve` would run with `file` as its rules file.
pub fn engine_for(file: Option<&Path>) -> anyhow::Result<DetectionEngine> {
    let engine = DetectionEngine::builtin();
    match file {
        None => Ok(engine),
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            engine.with_overrides(&text, &path.display().to_string()).map_err(|e| anyhow::anyhow!("{e}"))
        }
    }
}

/// Runs every test; returns the printed report and whether all tests passed.
pub async fn rules_test(file: Option<&Path>) -> anyhow::Result<(String, bool)> {
    let engine = engine_for(file)?;
    let reports = run_rule_tests(&engine).await;
    Ok(render(&engine, &reports))
}

pub fn render(engine: &DetectionEngine, reports: &[TestReport]) -> (String, bool) {
    let mut out = String::new();
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    for rule in engine.rules() {
        let mine: Vec<&TestReport> = reports.iter().filter(|r| r.rule == rule.id).collect();
        let _ = writeln!(out, "{} ({})", rule.id, rule.origin);
        if mine.is_empty() {
            let _ = writeln!(out, "  warn  no tests");
        }
        for r in mine {
            match &r.outcome {
                TestOutcome::Passed => {
                    passed += 1;
                    let _ = writeln!(out, "  ok    {}", r.test);
                }
                TestOutcome::Skipped(why) => {
                    skipped += 1;
                    let _ = writeln!(out, "  skip  {} ({why})", r.test);
                }
                TestOutcome::Failed(problems) => {
                    failed += 1;
                    let _ = writeln!(out, "  FAIL  {}", r.test);
                    for p in problems {
                        let _ = writeln!(out, "        {p}");
                    }
                }
            }
        }
    }
    let _ = writeln!(
        out,
        "\n{passed} passed, {failed} failed, {skipped} skipped ({} tests of {} rules)",
        reports.len(),
        engine.rules().len()
    );
    (out, failed == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn builtin_tests_pass_and_a_file_that_breaks_one_fails() {
        let (out, ok) = rules_test(None).await.unwrap();
        assert!(ok, "{out}");
        assert!(out.contains("  ok    ten sshd failures within two minutes fire"), "{out}");
        assert!(!out.contains("no tests"), "every built-in rule has tests:\n{out}");

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rules.toml");
        std::fs::write(&path, "[[rule]]\nid = \"ssh_brute_force\"\nthreshold = 11\n").unwrap();
        let (out, ok) = rules_test(Some(&path)).await.unwrap();
        assert!(!ok);
        assert!(out.contains("  FAIL  ten sshd failures within two minutes fire"), "{out}");
        assert!(out.contains("expected to fire, but there was no detection"), "{out}");
        assert!(out.contains(&format!("ssh_brute_force ({})", path.display())), "{out}");
    }
}
