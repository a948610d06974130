// Drives the triage console in Debian's Chromium (headless) through Playwright, as an analyst would:
//   node console.mjs BASE_URL TOKEN OUT_DIR
// Signs in with TOKEN, checks the queue (sorted by SLA deadline, filters), opens the brute-force ticket (alert
// reasons, MITRE techniques, evidence events, history), clicks every transition, and writes queue.png,
// alert.png and result.json (what it saw) to OUT_DIR. Exits non-zero, saying why, on the first failed check.
import { chromium } from "playwright-core";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import assert from "node:assert/strict";

const [base, token, out] = process.argv.slice(2);
if (!base || !token || !out) {
  console.error("usage: node console.mjs BASE_URL TOKEN OUT_DIR");
  process.exit(2);
}
mkdirSync(out, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const result = { steps: [] };
const step = (name, detail) => { result.steps.push({ name, ...detail }); console.log("ok:", name, detail ? JSON.stringify(detail) : ""); };
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });

  await page.goto(base + "/console/");
  await page.locator("#sign-in").waitFor();
  await page.fill("#token", token);
  await page.click("#sign-in-form button[type=submit]");
  const rows = page.locator("#tickets tbody tr");
  await rows.first().waitFor();
  const queue = await rows.evaluateAll((trs) => trs.map((tr) => ({
    id: tr.dataset.id, severity: tr.dataset.severity, title: tr.cells[1].textContent, due: tr.cells[5].title,
  })));
  assert.ok(queue.length >= 2, `at least two open tickets, got ${queue.length}`);
  const dues = queue.map((t) => Date.parse(t.due));
  assert.deepEqual([...dues].sort((a, b) => a - b), dues, "the queue is sorted by SLA deadline");
  assert.match(await page.locator("#who").textContent(), /analyst · tenant acme/);
  step("queue sorted by deadline", { tickets: queue.length });
  await page.screenshot({ path: join(out, "queue.png"), fullPage: true });

  await page.selectOption("#filters select[name=severity]", "critical");
  await page.click("#filters button[type=submit]");
  await page.waitForFunction(() => [...document.querySelectorAll("#tickets tbody tr")].every((tr) => tr.dataset.severity === "critical"));
  const critical = await rows.count();
  assert.ok(critical >= 1 && critical < queue.length, `the severity filter narrows the queue (${critical})`);
  step("severity filter", { critical });
  await page.selectOption("#filters select[name=severity]", "");
  await page.click("#filters button[type=submit]");
  await page.waitForFunction((n) => document.querySelectorAll("#tickets tbody tr").length === n, queue.length);

  const brute = queue.find((t) => /brute force/i.test(t.title) && t.title.includes("203.0.113.7"));
  assert.ok(brute, "a brute-force ticket in the queue: " + JSON.stringify(queue));
  await page.click(`#tickets tbody tr[data-id="${brute.id}"]`);
  await page.locator("#d-evidence tbody tr").first().waitFor();
  const reasons = await page.locator("#d-reasons li").allTextContents();
  const mitre = await page.locator("#d-mitre li").allTextContents();
  const evidence = await page.locator("#d-evidence tbody tr").allTextContents();
  assert.ok(reasons.length >= 1, "the alert's reasons are shown");
  assert.ok(mitre.includes("T1110.001"), "MITRE techniques: " + mitre);
  assert.ok(evidence.length >= 10 && evidence.every((e) => e.includes("203.0.113.7")), "evidence events: " + evidence.length);
  assert.ok(evidence.some((e) => /Failed password/.test(e)), "the evidence shows the log messages");
  step("alert view", { reasons: reasons.length, mitre, evidence: evidence.length });
  await page.screenshot({ path: join(out, "alert.png"), fullPage: true });

  const status = () => page.locator("#d-ticket dd").nth(1).textContent();
  async function act(action, fields, expect) {
    const before = await page.locator("#d-history tbody tr").count();
    await page.click(`#actions button[data-action=${action}]`);
    for (const [name, value] of Object.entries(fields)) {
      const field = page.locator(`#action-form [name=${name}]`);
      if ((await field.evaluate((e) => e.tagName)) === "SELECT") await field.selectOption(value);
      else await field.fill(value);
    }
    await page.click("#action-form button[type=submit]");
    await page.waitForFunction((n) => document.querySelectorAll("#d-history tbody tr").length === n + 1, before);
    const now = await status();
    assert.match(now, expect, `${action}: status is ${now}`);
    step(action, { status: now });
  }
  assert.equal(await page.locator("#actions button[data-action=reopen]").isDisabled(), true, "reopen needs a closed ticket");
  await act("acknowledge", {}, /^acknowledged/);
  await act("respond", { note: "blocked 203.0.113.7 at the firewall" }, /^in progress/);
  await act("assign", { assignee: "bob" }, /^in progress/);
  await act("escalate", { note: "root login succeeded" }, /escalated/);
  await act("close", { disposition: "true_positive", note: "contained" }, /^closed/);
  await act("reopen", { note: "seen again" }, /^in progress/);
  const history = await page.locator("#d-history tbody tr").allTextContents();
  result.ticket = brute.id;
  result.history = history;
  assert.deepEqual(errors, [], "no script errors in the page");
  step("every transition from the console", { history: history.length });
} finally {
  writeFileSync(join(out, "result.json"), JSON.stringify(result, null, 2));
  await browser.close();
}
