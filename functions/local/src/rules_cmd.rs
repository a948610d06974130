//! `vigil rules test [FILE]`: runs the `[[rule.test]]` entries of the built-in rules, and of FILE layered
//! over them the way `VIGIL_RULES_FILE` is, through the real detection engine; prints one line per test.
//! `vigil rules import-sigma DIR`: compiles the Sigma files under DIR and reports, per document, whether it
//! loaded and why not (docs/sigma.md).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use vigil::detect::ruletest::{run_rule_tests, TestOutcome, TestReport};
use vigil::detect::sigma;
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

/// The coverage report of the Sigma files under `dir`, with the mapping of `rules_file`'s `[sigma]` table if
/// it has one; and whether nothing was skipped.
pub fn import_sigma(dir: &Path, rules_file: Option<&Path>, json: bool) -> anyhow::Result<(String, bool)> {
    let table = match rules_file {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            let doc: toml::Table = text.parse().with_context(|| format!("parsing {}", path.display()))?;
            doc.get("sigma").and_then(|v| v.as_table()).cloned().map(|t| (t, path.display().to_string()))
        }
        None => None,
    };
    let set = sigma::import(dir, table.as_ref().map(|(t, origin)| (t, origin.as_str())))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let complete = set.report.skipped() == 0;
    if json {
        return Ok((serde_json::to_string_pretty(&set.report)? + "\n", complete));
    }
    let mut out = set.report.render();
    if set.report.loaded() > 0 {
        let _ = writeln!(
            out,
            "\nTo run them, add to your rules file (VIGIL_RULES_FILE):\n\n[sigma]\npaths = [{:?}]",
            dir.display().to_string()
        );
    }
    Ok((out, complete))
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

    #[test]
    fn import_sigma_reports_each_document_with_the_reason_it_was_skipped() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("probe.yml"),
            "title: Probe\nid: 11111111-2222-4333-8444-555555555555\nlogsource:\n    category: webserver\n\
             detection:\n    sel:\n        cs-uri-stem|startswith: '/.env'\n    condition: sel\nlevel: medium\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("process.yml"),
            "title: Whoami\nlogsource:\n    category: process_creation\n    product: windows\n\
             detection:\n    sel:\n        Image|endswith: '\\whoami.exe'\n    condition: sel\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("agg.yml"),
            concat!(
                "title: Many\nlogsource:\n    category: webserver\ndetection:\n    sel:\n        cs-method: POST\n",
                "    condition: sel | count() by c-ip > 10\n",
            ),
        )
        .unwrap();
        let (out, complete) = import_sigma(dir.path(), None, false).unwrap();
        assert!(!complete);
        assert!(out.contains("loaded") && out.contains("sigma-11111111-2222-4333-8444-555555555555"), "{out}");
        assert!(out.contains("skipped") && out.contains("unsupported logsource category=process_creation"), "{out}");
        assert!(out.contains("aggregation pipe"), "{out}");
        assert!(out.contains("1 loaded, 0 part of a correlation, 0 filters applied, 2 skipped (3 documents)"), "{out}");
        assert!(out.contains("[sigma]\npaths = ["), "{out}");

        // A rules file's [sigma] table extends the mapping the report uses.
        let rules = dir.path().join("rules.toml");
        std::fs::write(
            &rules,
            "[[sigma.logsource]]\ncategory = \"process_creation\"\nproduct = \"windows\"\nmatch = { source = \"sysmon\" }\n\
             [sigma.fields]\nImage = \"program\"\n",
        )
        .unwrap();
        let (json, _) = import_sigma(dir.path(), Some(&rules), true).unwrap();
        let report: serde_json::Value = serde_json::from_str(&json).unwrap();
        let whoami = report["entries"].as_array().unwrap().iter().find(|e| e["title"] == "Whoami").unwrap();
        assert_eq!(whoami["outcome"], "loaded", "{json}");
    }

    #[tokio::test]
    async fn the_example_sigma_rules_pass_their_tests() {
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/sigma/rules.toml");
        let (out, ok) = rules_test(Some(&file)).await.unwrap();
        assert!(ok, "{out}");
        for test in ["a request for /.env fires for the client", "ten failures then a success for the same user fire"] {
            assert!(out.contains(&format!("  ok    {test}")), "{out}");
        }
        assert!(!out.contains("sigma-7e2a9c10"), "the correlated rules run only inside the correlation:\n{out}");
    }
}
