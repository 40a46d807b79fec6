// A plan in a real browser: an operator (role operator) signs in, opens the plan run.sh made of
// examples/bundle with `cadence plan create`, reads its diff, calls, estimate and hash, confirms
// it by ticking the hash, and watches the background apply finish through the page's own
// progress script (/assets/plan.js polling progress.json) until every step is done.
import { env, launch, check, expect, shot, text, done } from "./lib.mjs";

const { context, page } = await launch();
const steps = Number(env.PLAN_STEPS);

await check("an operator signs in", async () => {
  await page.goto(`${env.BASE}/admin/login`);
  await page.fill("#email", env.OPER_EMAIL);
  await page.fill("#password", env.OPER_PW);
  await page.click("button:has-text('Sign in')");
  await page.waitForURL(/\/admin$/);
});

await check("the plan is listed", async () => {
  await page.goto(`${env.BASE}/admin/plans`);
  const row = await text(page, `#plans tbody tr:has-text('${env.PLAN_ID}')`);
  expect(row.includes("acme-outdoors") && row.includes("planned"), `the row: ${row}`);
  expect(row.includes(`${steps} steps`), `the step count: ${row}`);
  await shot(page, "20-plans");
});

await check("the plan page shows the diff, calls, estimate and hash", async () => {
  await page.click(`a:has-text('${env.PLAN_ID}')`);
  await page.waitForURL(new RegExp(`/admin/plans/${env.PLAN_ID}$`));
  expect((await text(page, "#plan-hash")) === env.PLAN_HASH, "the hash shown is the plan's");
  expect((await text(page, "#plan-status")) === "planned", "planned");
  expect((await page.locator("section.plan-step").count()) === steps, "one section per step");
  const diff = await text(page, "section.plan-step:has-text('welcome') pre.diff");
  expect(diff.includes("+ name:") || diff.includes("+ html:"), `the welcome template's diff: ${diff}`);
  expect((await page.locator("pre.diff .add").count()) > 0, "added lines are styled");
  expect((await text(page, "ul.calls")).includes("POST /api/"), "the calls");
  expect((await text(page, "#estimate")).length > 0, "the estimate");
  await page.locator("section.plan-step").first().scrollIntoViewIfNeeded();
  await shot(page, "21-plan-diff");
});

await check("confirming needs the hash ticked", async () => {
  const before = page.url();
  await page.click("button:has-text('Confirm and apply')");
  // The browser itself refuses the form (the box is required): nothing is sent.
  expect(page.url() === before, "the form was not sent without the tick");
  expect(await page.locator("#hash:invalid").count() === 1, "the box is marked as required");
});

await check("the operator confirms the exact hash", async () => {
  const label = await text(page, "label[for=hash]");
  expect(label.includes(env.PLAN_HASH), "the box names the hash");
  await page.check("#hash");
  await page.click("button:has-text('Confirm and apply')");
  await page.waitForURL(/\?confirmed=1$/);
  expect((await text(page, "#notice")).includes("Confirmed"), "the confirmation notice");
  expect((await text(page, "#confirmed-by")).includes(env.OPER_EMAIL), "confirmed by the operator");
  await shot(page, "22-plan-confirmed");
});

await check("the background apply finishes and the page shows it live", async () => {
  await page.waitForSelector("#progress[data-final=true]", { timeout: 300000 });
  expect((await text(page, "#plan-status")) === "done", `status: ${await text(page, "#plan-status")}`);
  const stepsText = await text(page, "#p-steps");
  expect(stepsText.startsWith(`${steps} of ${steps} done`), `progress: ${stepsText}`);
  expect(Number(await text(page, "#p-calls")) > 0, "calls are counted");
  expect((await text(page, "#p-kinds")).includes("template"), "counts per kind");
  expect((await text(page, "#p-worker")) === "finished", "the worker finished");
  await shot(page, "23-plan-done");
});

await check("the finished plan offers to send its campaigns", async () => {
  await page.reload();
  expect((await page.locator("form.campaign-send").count()) > 0, "a send form per campaign");
  expect((await page.locator("#confirm").count()) === 0, "no confirm form on a done plan");
});

await done(context);
