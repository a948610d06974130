// Sends log lines to a HEC endpoint with Splunk's own Node logging library (splunk-logging), one event per line
// in batches, and prints what the server answered to each request as JSON lines:
//   node hec.mjs BASE_URL TOKEN SOURCE < lines
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";

const require = createRequire(import.meta.url);
const { Logger } = require("splunk-logging");
const [url, token, source] = process.argv.slice(2);
if (!url || !token || !source) {
  console.error("usage: node hec.mjs BASE_URL TOKEN SOURCE < lines");
  process.exit(2);
}
const lines = readFileSync(0, "utf8").split("\n").filter((l) => l.trim());
const logger = new Logger({ token, url, maxBatchCount: 1000, maxRetries: 2 });
let failed = false;
logger.error = (err, context) => {
  failed = true;
  console.error("splunk-logging error:", err && err.message, JSON.stringify(context && context.message));
};
const answers = [];
// Two requests: the library batches events sent before flush.
const half = Math.ceil(lines.length / 2);
for (const batch of [lines.slice(0, half), lines.slice(half)]) {
  for (const line of batch) {
    logger.send({ message: line, severity: "info", metadata: { source, sourcetype: "linux_secure", host: "web-1" } });
  }
  const answer = await new Promise((resolve) => logger.flush((err, resp, body) => resolve({
    error: err ? String(err) : null, status: resp && resp.statusCode, body,
  })));
  answers.push(answer);
}
for (const a of answers) console.log(JSON.stringify(a));
process.exit(failed || answers.some((a) => a.error || a.status !== 200) ? 1 : 0);
