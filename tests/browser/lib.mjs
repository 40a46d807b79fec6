// Shared by the browser scripts: launching Debian's Chromium headless through playwright-core
// (never a downloaded browser), numbered checks that keep going after a failure, screenshots as
// test artifacts, and the secret scan of every page the test saw.
import { chromium } from "playwright-core";
import path from "node:path";

export const env = process.env;
for (const name of ["BASE", "ARTIFACTS", "BROWSER_PROFILE"])
  if (!env[name]) throw new Error(`${name} is not set; run through tests/browser/run.sh`);

let passed = 0;
let failed = 0;
let current = null; // the page, for a screenshot when a check fails
const secrets = [env.KEY_FULL, env.KEY_REVOKED, env.ADMIN_PW, env.SHOPIFY_TOKEN, env.PS_PUBLIC, env.AT_KEY].filter(Boolean);

export async function launch() {
  const context = await chromium.launchPersistentContext(env.BROWSER_PROFILE, {
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
    viewport: { width: 1200, height: 900 },
    acceptDownloads: true,
  });
  context.setDefaultTimeout(15000);
  const page = context.pages()[0] || (await context.newPage());
  // Every response the browser receives is scanned: a key or password must never come back.
  page.on("response", async (res) => {
    let body = "";
    try {
      body = await res.text();
    } catch {
      return;
    }
    const headers = JSON.stringify(await res.allHeaders());
    for (const s of secrets)
      if (body.includes(s) || headers.includes(s)) {
        failed++;
        console.log(`not ok - a secret came back in the response to ${new URL(res.url()).pathname.split("/")[1]}`);
      }
  });
  current = page;
  return { context, page };
}

export async function check(name, fn) {
  try {
    await fn();
    passed++;
    console.log(`ok - ${name}`);
  } catch (e) {
    failed++;
    console.log(`not ok - ${name}: ${String(e.message).split("\n")[0]}`);
    if (current) await shot(current, `failed-${path.basename(process.argv[1], ".mjs")}-${passed + failed}`).catch(() => {});
  }
}

export function expect(cond, what) {
  if (!cond) throw new Error(what);
}

export async function shot(page, name) {
  await page.screenshot({ path: path.join(env.ARTIFACTS, `${name}.png`), fullPage: true });
}

export async function text(page, selector) {
  return (await page.locator(selector).first().textContent()) || "";
}

export async function done(context) {
  await context.close();
  console.log(`# ${passed} passed, ${failed} failed`);
  process.exitCode = failed ? 1 : 0;
}
