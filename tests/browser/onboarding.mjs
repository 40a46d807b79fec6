// The brand's side in a real browser: the full onboarding with a valid key (ends on "Connected to
// Acme Outdoors" with per-scope results), the public key pasted, a key cut short, a revoked key,
// and "Continue without entering a key" through to the done page. The format check's instant
// verdict (cadence.js) is checked as well as the server's answer after Verify.
import { env, launch, check, expect, shot, text, done } from "./lib.mjs";

const { context, page } = await launch();
const onboard = (tok, step = "") => `${env.BASE}/onboard/${tok}${step ? "/" + step : ""}`;

await check("a valid key: details, payment, Connect Klaviyo", async () => {
  await page.goto(onboard(env.TOK_ACME));
  expect((await text(page, "h1")).includes("Brand details"), "step 1 first");
  await page.fill("#brand_name", "Acme Outdoors");
  await page.fill("#contact_email", "owner@acme.test");
  await page.click("button:has-text('Save and continue')");
  await page.waitForURL(/\/payment$/);
  expect((await page.content()).includes("Awaiting payment"), "payment step says awaiting payment");
  await page.click("text=Continue to Connect Klaviyo");
  await page.waitForURL(/\/klaviyo$/);
  expect(await page.isVisible("label:has-text('Klaviyo private API key')"), "the key's label");
  expect(await page.isVisible("button:has-text('Verify')"), "the Verify button");
  // On screen, not just in the DOM: a button pushed off the page cannot be pressed.
  const skip = await page.locator("button:has-text('Continue without entering a key')").boundingBox();
  expect(skip && skip.x >= 0 && skip.y >= 0 && skip.width > 0, `the skip button is on the page (${JSON.stringify(skip)})`);
  expect(await page.isVisible("a[href='/help/klaviyo']"), "a link to the help page");
  await shot(page, "01-step3-empty");
});

await check("a valid key: instant verdict, then Connected to Acme Outdoors", async () => {
  await page.fill("#key", env.KEY_FULL);
  await page.waitForFunction(() => document.querySelector("#key-check").textContent.includes("looks like a Klaviyo private key"));
  expect((await page.getAttribute("#key-check", "class")).includes("good"), "the verdict is marked good");
  await page.click("button:has-text('Verify')");
  await page.waitForSelector("text=Connected to Acme Outdoors");
  expect(await page.isVisible("table.scopes"), "per-scope results");
  for (const area of ["Lists", "Templates", "Profiles", "Webhooks", "Tags"])
    expect(await page.isVisible(`table.scopes th:has-text('${area}')`), `scope row ${area}`);
  expect(!(await page.content()).includes(env.KEY_FULL), "the key is not on the page");
  await shot(page, "02-connected");
});

await check("the public key pasted", async () => {
  await page.goto(onboard(env.TOK_BETA, "klaviyo"));
  await page.fill("#key", "AbC123");
  await page.waitForFunction(() => document.querySelector("#key-check").textContent.includes("Public API Key"));
  await shot(page, "03-public-key-instant");
  await page.click("button:has-text('Verify')");
  await page.waitForSelector("#notice");
  const notice = await text(page, "#notice");
  expect(notice.includes("Public API Key"), `server verdict: ${notice}`);
  expect((await page.inputValue("#key")) === "", "the field is empty after the answer");
  await shot(page, "04-public-key");
});

await check("a key cut short", async () => {
  const short = env.KEY_FULL.slice(0, 30);
  await page.fill("#key", short);
  await page.waitForFunction(() => document.querySelector("#key-check").textContent.includes("You pasted 30 characters"));
  await page.click("button:has-text('Verify')");
  await page.waitForSelector("#notice");
  const notice = await text(page, "#notice");
  expect(notice.includes("You pasted 30 characters"), `server verdict: ${notice}`);
  expect(!(await page.content()).includes(short), "the partial key is not echoed");
  await shot(page, "05-short-key");
});

await check("a revoked key", async () => {
  const res = await fetch(`${env.KBASE}/__sim/keys/revoke`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ key: env.KEY_REVOKED }),
  });
  expect(res.ok, `the emulator revoked the key (${res.status})`);
  await page.goto(onboard(env.TOK_GAMMA, "klaviyo"));
  await page.fill("#key", env.KEY_REVOKED);
  await page.click("button:has-text('Verify')");
  await page.waitForSelector("#notice");
  const notice = await text(page, "#notice");
  expect(notice.includes("Klaviyo did not accept this key"), `verdict: ${notice}`);
  expect(await page.isVisible("#notice a[href^='/help/klaviyo#']"), "a link to the troubleshooting answer");
  await shot(page, "06-revoked-key");
});

await check("continue without entering a key", async () => {
  await page.goto(onboard(env.TOK_DELTA));
  await page.fill("#brand_name", "Delta Dunes");
  await page.fill("#contact_email", "brand@delta.test");
  await page.click("button:has-text('Save and continue')");
  await page.waitForURL(/\/payment$/);
  await page.goto(onboard(env.TOK_DELTA, "klaviyo"));
  await page.click("button:has-text('Continue without entering a key')");
  await page.waitForURL(/\/extras$/);
  await page.click("button:has-text('Skip for now')");
  await page.waitForURL(/\/done$/);
  expect((await page.content()).includes("You will send the key later"), "the done page says the key comes later");
  await shot(page, "07-skipped");
});

await check("the help page", async () => {
  await page.goto(`${env.BASE}/help/klaviyo`);
  expect((await text(page, "h1")).includes("Connect Klaviyo"), "help page heading");
  await shot(page, "08-help");
});

await done(context);
