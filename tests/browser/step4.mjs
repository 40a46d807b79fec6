// Onboarding Step 4 in a real browser, for Acme (whose Klaviyo key onboarding.mjs connected): a
// store domain Shopify cannot map (its message, the domain kept, the token field emptied), a good
// Shopify token (the shop's name, domain and scopes), a Postscript public key (the explanation),
// a good Attentive key, then Finish to the done page listing each connection. Every response is
// scanned for the secrets by lib.mjs.
import { env, launch, check, expect, shot, text, done } from "./lib.mjs";

const { context, page } = await launch();
const extras = `${env.BASE}/onboard/${env.TOK_ACME}/extras`;

await check("Step 4 has three sections, each its own form", async () => {
  await page.goto(extras);
  expect((await text(page, "h1")).includes("Optional extras"), "the step's heading");
  for (const id of ["shopify", "postscript", "attentive"]) {
    expect(await page.isVisible(`section#${id} form`), `the ${id} form`);
    expect((await page.locator(`section#${id} input[name=csrf]`).count()) === 1, `${id}: CSRF`);
  }
  for (const f of ["shopify_token", "postscript_key", "attentive_key"]) {
    expect((await page.getAttribute(`#${f}`, "type")) === "password", `${f} is a password input`);
    expect((await page.getAttribute(`#${f}`, "autocomplete")) === "off", `${f} autocomplete=off`);
  }
  const howto = await text(page, "#shopify-howto");
  for (const s of ["Develop apps", "Configure Admin API scopes", "read_products", "Install app", "Reveal token once"])
    expect(howto.includes(s), `the Shopify instructions mention ${s}`);
  await shot(page, "20-step4");
});

await check("a store domain Shopify cannot map", async () => {
  await page.fill("#shopify_domain", "www.acme-outdoors.com");
  await page.fill("#shopify_token", env.SHOPIFY_TOKEN);
  await page.click("section#shopify button[type=submit]");
  await page.waitForSelector("#shopify_domain-err");
  const err = await text(page, "#shopify_domain-err");
  expect(err.includes("Settings → Domains"), `the domain's message: ${err}`);
  expect((await page.inputValue("#shopify_domain")) === "www.acme-outdoors.com", "the domain is kept");
  expect((await page.inputValue("#shopify_token")) === "", "the token is not filled back in");
  await shot(page, "21-bad-domain");
});

await check("a good Shopify token: shop name and scopes", async () => {
  await page.fill("#shopify_domain", "acme-outdoors");
  await page.fill("#shopify_token", env.SHOPIFY_TOKEN);
  await page.click("section#shopify button[type=submit]");
  await page.waitForSelector("section#shopify #notice");
  const notice = await text(page, "section#shopify #notice");
  expect(notice.includes("Connected to Acme Outdoors"), `shop name: ${notice}`);
  expect(notice.includes("acme-outdoors.myshopify.com"), "the store's domain");
  expect(notice.includes("read_products") && notice.includes("read_inventory"), `scopes: ${notice}`);
  expect(!(await page.isVisible("#shopify-warning")), "no write warning for a read-only token");
  await shot(page, "22-shopify-connected");
});

await check("a Postscript public key is explained", async () => {
  await page.fill("#postscript_key", env.PS_PUBLIC);
  await page.click("section#postscript button[type=submit]");
  await page.waitForSelector("#postscript_key-err");
  const err = await text(page, "#postscript_key-err");
  expect(err.includes("Public Key of your Postscript key pair"), `explanation: ${err}`);
  expect((await page.inputValue("#postscript_key")) === "", "the key is not filled back in");
  await shot(page, "23-postscript-public");
});

await check("a good Attentive key", async () => {
  await page.fill("#attentive_key", env.AT_KEY);
  await page.click("section#attentive button[type=submit]");
  await page.waitForSelector("section#attentive #notice");
  const notice = await text(page, "section#attentive #notice");
  expect(notice.includes("Connected to"), `Attentive: ${notice}`);
  expect((await text(page, "section#shopify")).includes("Connected to Acme Outdoors"), "Shopify stays connected");
  await shot(page, "24-attentive-connected");
});

await check("finish: the done page lists each connection", async () => {
  await page.click("button:has-text('Finish')");
  await page.waitForURL(/\/done$/);
  const summary = await text(page, "dl.summary");
  expect(/Shopify\s*Connected to Acme Outdoors/.test(summary), `Shopify: ${summary}`);
  expect(/Postscript\s*Not connected/.test(summary), `Postscript: ${summary}`);
  expect(/Attentive\s*Connected to/.test(summary), `Attentive: ${summary}`);
  await shot(page, "25-done");
});

await done(context);
