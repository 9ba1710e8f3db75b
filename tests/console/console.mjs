#!/usr/bin/env node
// Headless-browser test of the graft web console (GET /, src/api/console/index.html).
//
//   node tests/console/console.mjs BASE_URL [--screenshot FILE] [--text TEXT]
//        [--expect-label LABEL] [--timeout MS]
//
// Needs `npm ci` (or `npm install`) in tests/console once, and a Chromium:
// $CHROMIUM, else /usr/bin/chromium. Prints one `ok ...` line per check passed;
// exits 1 with `FAIL ...` on the first failed check, 2 on bad usage.

import { existsSync } from "node:fs";
import { chromium } from "playwright-core";

const DEFAULT_TEXT = "Deutsche Bank shares fell in Frankfurt after Apple reported weak iPhone sales.";
const USAGE = "usage: node tests/console/console.mjs BASE_URL [--screenshot FILE] [--text TEXT] [--expect-label LABEL] [--timeout MS]";

function parseArgs(argv) {
  const opts = { base: null, screenshot: null, text: DEFAULT_TEXT, expectLabel: null, timeout: 120000 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) usage(`${a} needs a value`);
      return argv[++i];
    };
    if (a === "--screenshot") opts.screenshot = value();
    else if (a === "--text") opts.text = value();
    else if (a === "--expect-label") opts.expectLabel = value();
    else if (a === "--timeout") opts.timeout = Number(value());
    else if (a === "-h" || a === "--help") { console.log(USAGE); process.exit(0); }
    else if (a.startsWith("--")) usage(`unknown option ${a}`);
    else if (opts.base === null) opts.base = a;
    else usage(`unexpected argument ${a}`);
  }
  if (!opts.base) usage("BASE_URL is required");
  if (!/^https?:\/\//.test(opts.base)) usage(`BASE_URL must start with http:// or https://, got ${opts.base}`);
  if (!(opts.timeout > 0)) usage("--timeout must be a positive number of milliseconds");
  if (!opts.text.trim()) usage("--text must not be empty");
  opts.base = opts.base.replace(/\/+$/, "");
  return opts;
}

function usage(msg) {
  console.error(`${msg}\n${USAGE}`);
  process.exit(2);
}

class CheckFailed extends Error {}
const fail = (msg) => { throw new CheckFailed(msg); };
const ok = (msg) => console.log(`ok   ${msg}`);

const opts = parseArgs(process.argv.slice(2));
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
if (!existsSync(executablePath)) {
  console.error(`FAIL no Chromium at ${executablePath} (install Debian's chromium or set CHROMIUM=/path/to/chromium)`);
  process.exit(1);
}

const pageErrors = [];
const consoleErrors = [];
let browser;

// Waits for `done(arg)` in the page, or for the error element `errorSel` to
// become visible (then fails with its text), or for the timeout.
async function waitOrError(page, what, done, errorSel) {
  // Functions, not expression strings: Playwright evaluates strings with
  // eval, which the console's Content-Security-Policy (no 'unsafe-eval') forbids.
  const poll = { timeout: opts.timeout, polling: 100 };
  const timedOut = (e) => ({ timeout: e.message.split("\n")[0] });
  const ok = page.waitForFunction(done, null, poll).then(() => ({ error: null }), timedOut);
  const bad = page.waitForFunction((sel) => {
    const err = document.querySelector(sel);
    return err && !err.hidden && err.textContent.trim() ? err.textContent.trim() : false;
  }, errorSel, poll).then(async (h) => ({ error: await h.jsonValue() }), timedOut);
  const outcome = await Promise.race([ok, bad]);
  if (outcome.timeout) fail(`timed out after ${opts.timeout} ms waiting for ${what} (${outcome.timeout})`);
  if (outcome.error) fail(`${what}: the page shows an error: ${outcome.error.replace(/\s+/g, " ")}`);
}

async function classify(page, text) {
  await page.fill("#text", text);
  const response = page.waitForResponse((r) => r.url().endsWith("/v1/classify") && r.request().method() === "POST",
    { timeout: opts.timeout }).catch(() => null);
  await page.click("#classify");
  await waitOrError(page, "the classification",
    () => document.querySelector("#label").textContent.trim() !== "" && !document.querySelector("#classify").disabled,
    "#error");
  const r = await response;
  return r ? { status: r.status(), body: await r.json().catch(() => null) } : null;
}

async function runSparql(page, query) {
  await page.fill("#sparql-query", query);
  await page.click("#sparql-run");
}

async function main() {
  browser = await chromium.launch({
    executablePath,
    headless: true,
    args: ["--no-sandbox", "--headless=new"],
    timeout: 60000,
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(opts.timeout);
  page.on("pageerror", (e) => {
    pageErrors.push(e.message);
    console.error(`page error: ${e.message}`);
  });
  page.on("console", (m) => {
    // A failed HTTP request is logged as "Failed to load resource"; the bad
    // SPARQL query below makes one on purpose, and the page reports those itself.
    if (m.type() === "error" && !/Failed to load resource/.test(m.text())) consoleErrors.push(m.text());
  });

  // 1. The page itself.
  const res = await page.goto(`${opts.base}/`, { waitUntil: "domcontentloaded" }).catch((e) => fail(`GET ${opts.base}/ failed: ${e.message.split("\n")[0]}`));
  if (!res) fail(`GET ${opts.base}/ gave no response`);
  if (res.status() !== 200) fail(`GET / answered ${res.status()}, expected 200`);
  const type = res.headers()["content-type"] || "";
  if (!type.startsWith("text/html")) fail(`GET / has Content-Type "${type}", expected text/html`);
  ok(`GET / 200 ${type}`);

  // 2. Model picker and health line.
  await waitOrError(page, "the model picker",
    () => { const s = document.querySelector("#model"); return !s.disabled && s.options.length > 0 && s.value !== ""; },
    "#error");
  const models = await page.$$eval("#model option", (os) => os.map((o) => o.value));
  const chosen = await page.inputValue("#model");
  ok(`model picker filled: ${models.length} model(s) [${models.join(", ")}], selected ${chosen}`);
  await page.waitForFunction(() => !/…/.test(document.querySelector("#health").textContent), null, { timeout: opts.timeout })
    .catch(() => fail("the #health line never loaded"));
  const health = (await page.textContent("#health")).trim();
  if (/unreachable/.test(health) || !/generation/.test(health)) fail(`#health does not show the store status: "${health}"`);
  ok(`health line: ${health}`);
  if (!(await page.isChecked("#use-graph"))) fail("#use-graph is not checked by default");
  ok("use graph is on by default");

  // 3. Classify.
  const r = await classify(page, opts.text);
  const label = (await page.textContent("#label")).trim();
  if (!label) fail("#label is empty after classifying");
  if (opts.expectLabel !== null && label !== opts.expectLabel) fail(`#label is "${label}", expected "${opts.expectLabel}"`);
  const score = (await page.textContent("#score")).trim();
  const ms = r?.body?.timing_ms?.total;
  ok(`classified: label "${label}" score ${score}` + (r ? ` (HTTP ${r.status}${ms != null ? `, ${ms} ms` : ""})` : ""));

  const bars = await page.$$eval("#ranking .bar-row", (rows) => rows.map((row) => ({
    text: row.textContent.trim().replace(/\s+/g, " "),
    width: row.querySelector(".bar")?.style.width || "",
  })));
  if (bars.length < 2) fail(`#ranking has ${bars.length} .bar-row, expected at least 2`);
  if (bars.some((b) => !/%$/.test(b.width))) fail(`a ranking bar has no percentage width: ${JSON.stringify(bars)}`);
  ok(`ranking: ${bars.length} bars (${bars.slice(0, 3).map((b) => b.text).join("; ")}${bars.length > 3 ? "; …" : ""})`);

  const marks = await page.$$eval("#highlighted mark.entity", (ms) => ms.map((m) => m.textContent));
  const inText = marks.filter((m) => m.length > 0 && opts.text.includes(m));
  if (inText.length === 0) fail(`no mark.entity in #highlighted whose text is in the input (marks: ${JSON.stringify(marks)})`);
  const shown = (await page.textContent("#highlighted"));
  if (shown !== opts.text) fail(`#highlighted does not re-render the input text exactly: ${JSON.stringify(shown)}`);
  ok(`highlighted entities: ${inText.map((m) => JSON.stringify(m)).join(", ")}`);

  const facts = await page.$$eval("#facts li", (lis) => lis.map((li) => li.textContent.trim().replace(/\s+/g, " ")));
  if (facts.length < 1) fail("#facts has no <li>: no injected facts shown");
  ok(`facts: ${facts.length} (first: ${facts[0]})`);

  const meta = (await page.textContent("#meta")).trim().replace(/\s+/g, " ");
  if (!meta) fail("#meta is empty");
  ok(`meta: ${meta}`);

  // 4. SPARQL: the default query gives a table with at least one row.
  const defaultQuery = await page.inputValue("#sparql-query");
  if (!defaultQuery.trim()) fail("#sparql-query has no default query");
  await page.click("#sparql-run");
  await waitOrError(page, "the default SPARQL query",
    () => document.querySelector("#sparql-result table") !== null && !document.querySelector("#sparql-run").disabled,
    "#sparql-error");
  const rows = await page.$$eval("#sparql-result table tbody tr", (trs) => trs.length);
  const cols = await page.$$eval("#sparql-result table thead th", (ths) => ths.map((th) => th.textContent));
  if (rows < 1) fail(`the default SPARQL query gave a table with ${rows} data rows, expected at least 1 (query: ${defaultQuery})`);
  ok(`SPARQL default query: table ${cols.join(" ")} with ${rows} row(s)`);

  // 5. SPARQL: a syntax error shows up in #sparql-error.
  await runSparql(page, "SELEC nonsense");
  await page.waitForFunction(() => !document.querySelector("#sparql-run").disabled && !document.querySelector("#sparql-error").hidden,
    null, { timeout: opts.timeout }).catch(() => fail("a bad SPARQL query did not show #sparql-error"));
  if (!(await page.isVisible("#sparql-error"))) fail("#sparql-error is not visible after a bad SPARQL query");
  const sparqlError = (await page.textContent("#sparql-error")).trim();
  if (!sparqlError) fail("#sparql-error is empty after a bad SPARQL query");
  if (await page.$("#sparql-result table")) fail("a stale result table is still shown after a bad SPARQL query");
  ok(`SPARQL syntax error shown: ${sparqlError.replace(/\s+/g, " ")}`);

  // 6. Screenshot of a clean state: the main text classified, the default query run.
  if (opts.screenshot) {
    await runSparql(page, defaultQuery);
    await waitOrError(page, "the default SPARQL query (again)",
      () => document.querySelector("#sparql-result table") !== null && !document.querySelector("#sparql-run").disabled,
      "#sparql-error");
    await classify(page, opts.text);
    await page.screenshot({ path: opts.screenshot, fullPage: true });
    ok(`screenshot saved to ${opts.screenshot}`);
  }

  // 7. No script errors at any point.
  if (pageErrors.length) fail(`${pageErrors.length} page error(s): ${pageErrors.join(" | ")}`);
  if (consoleErrors.length) fail(`${consoleErrors.length} console error(s): ${consoleErrors.join(" | ")}`);
  ok("no page errors or console errors");
}

let code = 0;
try {
  await main();
  console.log("all console checks passed");
} catch (e) {
  code = 1;
  console.error(e instanceof CheckFailed ? `FAIL ${e.message}` : `FAIL unexpected error: ${e.stack || e}`);
} finally {
  if (browser) await browser.close().catch(() => {});
}
process.exit(code);
