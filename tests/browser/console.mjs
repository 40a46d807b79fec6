// The operators' side in a real browser: sign in, the tenants list at a glance and its search, a
// tenant's page, confirming the payment of the brand that skipped its key (the key request is
// queued, `cadence mail send` delivers it to the SMTP server on loopback, and its link opens the
// brand's onboarding), the waiting-for-key list, the audit viewer with a filter, "Verify chain",
// the CSV export (downloaded), and signing out. Runs after onboarding.mjs, on its data.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { env, launch, check, expect, shot, text, done } from "./lib.mjs";

const { context, page } = await launch();

// A quoted-printable body as a mail client reads it.
function qpDecode(s) {
  return s.replace(/=\r?\n/g, "").replace(/=([0-9A-F]{2})/g, (_, h) => String.fromCharCode(parseInt(h, 16)));
}

await check("the console asks for a sign-in", async () => {
  await page.goto(`${env.BASE}/admin`);
  await page.waitForURL(/\/admin\/login$/);
  await page.fill("#email", env.ADMIN_EMAIL);
  await page.fill("#password", "not the password");
  await page.click("button:has-text('Sign in')");
  await page.waitForSelector("#notice");
  expect((await text(page, "#notice")).includes("Wrong email or password"), "a wrong password is refused");
  await shot(page, "10-login-wrong");
});

await check("admin signs in and sees the tenants at a glance", async () => {
  await page.fill("#email", env.ADMIN_EMAIL);
  await page.fill("#password", env.ADMIN_PW);
  await page.click("button:has-text('Sign in')");
  await page.waitForURL(/\/admin$/);
  const rows = page.locator("#tenants tbody tr");
  expect((await rows.count()) === 4, `4 tenants, saw ${await rows.count()}`);
  const acme = await text(page, "#tenants tbody tr:has-text('Acme Outdoors')");
  expect(acme.includes("verified"), `Acme's key is verified: ${acme}`);
  const delta = await text(page, "#tenants tbody tr:has-text('Delta Dunes')");
  expect(delta.includes("deferred") && delta.includes("awaiting payment"), `Delta: ${delta}`);
  const gamma = await text(page, "#tenants tbody tr:has-text('Gamma Goods')");
  expect(gamma.includes("last key failed"), `Gamma: ${gamma}`);
  await shot(page, "11-tenants");
});

await check("search", async () => {
  await page.fill("#q", "dunes");
  await page.click("button:has-text('Search')");
  await page.waitForURL(/q=dunes/);
  expect((await page.locator("#tenants tbody tr").count()) === 1, "one match");
  await shot(page, "12-search");
});

await check("a tenant's page shows credential metadata", async () => {
  await page.goto(`${env.BASE}/admin`);
  await page.click("a:has-text('Acme Outdoors')");
  await page.waitForURL(/\/admin\/tenants\/acme-outdoors$/);
  const row = await text(page, "#credentials tbody tr:has-text('klaviyo')");
  expect(row.includes(env.KEY_FULL.slice(-4)), "last 4");
  expect(row.includes("Acme Outdoors"), "account name");
  expect(row.includes("lists: ok"), "scopes");
  expect(/\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC/.test(row), "verified time");
  await shot(page, "13-tenant");
});

let requestLink = "";
await check("confirming the payment of a brand that skipped its key queues the key request", async () => {
  await page.goto(`${env.BASE}/admin/tenants/delta-dunes`);
  await page.click("#confirm-payment");
  await page.waitForSelector("#notice");
  const notice = await text(page, "#notice");
  expect(notice.includes("Payment confirmed") && notice.includes("brand@delta.test"), notice);
  await shot(page, "14-payment-confirmed");
});

await check("the email reaches the SMTP server with a working link", async () => {
  const out = execFileSync(env.CADENCE_BIN, ["mail", "send"], { encoding: "utf8" });
  expect(out.includes("1 sent"), `mail send: ${out}`);
  const files = fs.readdirSync(env.SMTP_DIR).filter((f) => /^msg-\d+\.eml$/.test(f));
  expect(files.length === 1, `one message at the SMTP server, saw ${files.length}`);
  const raw = fs.readFileSync(path.join(env.SMTP_DIR, files[0]), "utf8");
  const envelope = fs.readFileSync(path.join(env.SMTP_DIR, files[0].replace(".eml", ".env")), "utf8");
  expect(envelope.includes("RCPT TO brand@delta.test"), `envelope: ${envelope}`);
  expect(/^Subject: .*connect your Klaviyo account/m.test(raw), "the key request's subject");
  const m = qpDecode(raw).match(/http:\/\/127\.0\.0\.1:8080\/onboard\/([A-Za-z0-9_-]{43})/);
  expect(m, "a link in the body");
  requestLink = `${env.BASE}/onboard/${m[1]}`;
  await page.goto(`${requestLink}/klaviyo`);
  expect((await page.content()).includes("Onboarding for Delta Dunes"), "the link opens Delta's onboarding");
  expect(await page.isVisible("label:has-text('Klaviyo private API key')"), "at Connect Klaviyo");
  await shot(page, "15-email-link");
  const old = await page.goto(`${env.BASE}/onboard/${env.TOK_DELTA}`);
  expect(old.status() === 404, "the brand's earlier link no longer works");
});

await check("the waiting-for-key list names the email and when it was sent", async () => {
  await page.goto(`${env.BASE}/admin/waiting`);
  const row = await text(page, "#waiting tbody tr:has-text('Delta Dunes')");
  expect(row.includes("Key request sent to brand@delta.test"), row);
  expect(/\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC/.test(row), "when");
  await shot(page, "16-waiting");
});

await check("the audit viewer filters by tenant", async () => {
  await page.click("nav.console-nav a:has-text('Audit log')");
  await page.waitForURL(/\/admin\/audit$/);
  await page.fill("#f-tenant", "acme-outdoors");
  await page.fill("#f-action", "klaviyo.*");
  await page.click("form.filters button:has-text('Filter')");
  await page.waitForURL(/tenant=acme-outdoors/);
  const rows = page.locator("#audit tbody tr");
  const n = await rows.count();
  expect(n > 0, "Klaviyo calls are listed");
  for (let i = 0; i < n; i++) {
    const cells = await rows.nth(i).locator("td").allTextContents();
    expect(cells[2] === "acme-outdoors" && cells[4].startsWith("klaviyo."), `row ${i}: ${cells.join("|")}`);
  }
  await shot(page, "17-audit-filtered");
});

await check("verify chain", async () => {
  await page.click("#verify-chain");
  await page.waitForSelector("#notice");
  expect((await text(page, "#notice")).includes("Chain verified"), "the chain verifies");
  await shot(page, "18-audit-verified");
});

await check("CSV export", async () => {
  await page.goto(`${env.BASE}/admin/audit?tenant=delta-dunes`);
  const [download] = await Promise.all([page.waitForEvent("download"), page.click("#csv")]);
  const file = path.join(env.ARTIFACTS, "audit-delta-dunes.csv");
  await download.saveAs(file);
  const csv = fs.readFileSync(file, "utf8");
  expect(csv.startsWith("seq,"), "a header row");
  expect(csv.includes("tenant.paid") && csv.includes("key.request"), "the payment and the key request");
  expect(!csv.includes("acme-outdoors"), "only the filtered tenant");
});

await check("sign out", async () => {
  await page.goto(`${env.BASE}/admin`);
  await page.click("button:has-text('Sign out')");
  await page.waitForURL(/\/admin\/login\?out=1$/);
  await page.goto(`${env.BASE}/admin`);
  await page.waitForURL(/\/admin\/login$/);
  await shot(page, "19-signed-out");
});

await done(context);
