import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import { build } from "vite";
import { afterAll, beforeAll, beforeEach, describe, expect, it, onTestFailed } from "vitest";
import type { Approval } from "../../schemas/approval.js";
import type { Finding } from "../../schemas/finding.js";
import type { Revocation } from "../../schemas/revocation.js";
import { type App, startEmbedded } from "../../services/cli/app.js";
import { billingScenario, otlpProtoExporter, runScenarioAgent } from "../../services/cli/scenario.js";
import { loadConfig } from "../../services/runtime/config.js";
import { shippedPoliciesWith } from "../support/policy-dir.js";
import { testLogger } from "../support/ports.js";
import { chromiumPath } from "../support/servers-available.js";
import { eventually } from "../support/wait.js";

/**
 * The web console as an analyst uses it, in Chromium: the product runs embedded in this
 * process with API auth on and a response rule that holds the billing agent's drift for a
 * human; the page gets the token, lists the tasks, shows the drifting task as it arrives
 * (live, no reload), its flagged step with the finding's explanation, and approves the held
 * response. Screenshots are kept in test-results/browser/.
 */
const CHROMIUM = chromiumPath();
const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
const SHOTS = "test-results/browser";
const TOKEN = "browser-test-admin-token-0123456789";
const VIEWER_TOKEN = "browser-test-viewer-token-012345678";

const missing = existsSync(CHROMIUM) ? undefined : `no Chromium at ${CHROMIUM} (apt-get install chromium, or set DRIFTWATCH_CHROMIUM)`;

// a machine without Chromium leaves this project out (vitest.config.ts says so at the end of
// the run); where it must run (CI=true) and Chromium is missing, the first hook fails saying so
describe("the web console in Chromium", () => {
  let app: App;
  let browser: BrowserContext;
  let page: Page;
  let profileDir: string;
  let policyDir: string;
  const scenario = billingScenario();
  const api = async <T>(path: string): Promise<T> => {
    const res = await fetch(`${app.apiUrl}/api/v1${path}`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(res.status, `${path}: ${res.status}`).toBe(200);
    return (await res.json()) as T;
  };
  const shot = (name: string) => page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });

  beforeAll(async () => {
    if (missing) throw new Error(`the browser tests need Chromium: ${missing}`);
    // the page the console serves: built as `npm run build` builds it
    await build({ configFile: "services/console/web/vite.config.ts", logLevel: "error" });
    // the shipped policies, and a response rule that holds the billing agent's findings for a
    // human, whose approval quarantines the agent
    policyDir = shippedPoliciesWith({});
    writeFileSync(
      join(policyDir, "responses.yaml"),
      [
        "apiVersion: driftwatch/v1",
        "responses:",
        "  rules:",
        "    - id: ask-billing",
        "      when: { agents: [billing-agent] }",
        "      action: ask_human",
        "      approval: { timeoutMs: 600000, onTimeout: revoke, onApprove: quarantine }",
        "",
      ].join("\n"),
    );
    app = await startEmbedded(
      loadConfig({
        DRIFTWATCH_LOG_LEVEL: "silent",
        DRIFTWATCH_OTLP_PORT: "0",
        DRIFTWATCH_API_PORT: "0",
        DRIFTWATCH_POLICY_DIR: policyDir,
        DRIFTWATCH_ALERT_STDOUT: "false",
        DRIFTWATCH_API_TOKEN: TOKEN,
        DRIFTWATCH_API_READ_TOKEN: VIEWER_TOKEN,
      }),
      { logger: testLogger },
    );
    mkdirSync(SHOTS, { recursive: true });
    profileDir = mkdtempSync(join(tmpdir(), "dw-chromium-"));
    browser = await chromium.launchPersistentContext(profileDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: ARGS,
      viewport: { width: 1280, height: 900 },
    });
    page = await browser.newPage();
  });

  // a failing test leaves the page as it was then, for the artefacts
  beforeEach((ctx) => {
    onTestFailed(async () => {
      await page?.screenshot({
        path: join(SHOTS, `failed-${ctx.task.name.replace(/[^a-z0-9]+/gi, "-").slice(0, 60)}.png`),
        fullPage: true,
      });
    });
  });

  afterAll(async () => {
    await browser?.close();
    await app?.close();
    for (const dir of [profileDir, policyDir]) if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("asks for the API token, then lists the drifting task as it arrives, live, without a reload", async () => {
    // no script error, and once the token is in, no request the API refuses
    const errors: string[] = [];
    let authenticated = false;
    page.on("pageerror", (err) => errors.push(err.message));
    // a Content-Security-Policy violation is a console error too (a refused load is counted below, by its response)
    page.on("console", (m) => {
      if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) errors.push(m.text());
    });
    page.on("response", (r) => {
      if (r.status() >= 400 && (authenticated || r.status() !== 401)) errors.push(`${r.status()} ${r.url()}`);
    });
    const served = await page.goto(`${app.apiUrl}/`);
    expect(served?.status()).toBe(200);
    expect(served?.headers()["content-security-policy"]).toContain("script-src 'self'");
    // auth is on: the API answered 401, the page asks for a token
    await page.getByText("The API needs a token").waitFor();
    await page.getByLabel("API token").fill(TOKEN);
    authenticated = true;
    await page.getByRole("button", { name: "Use token" }).click();
    await page.getByTestId("live").getByText("● live").waitFor();
    await page.getByTestId("task-count").getByText("0 tasks match").waitFor();
    // a mark on the window: gone if the page reloads
    await page.evaluate(() => {
      (globalThis as unknown as { stillHere: boolean }).stillHere = true;
    });

    await runScenarioAgent(scenario, otlpProtoExporter(app.gatewayUrl as string));

    const row = page.locator(`tr[data-task-id="${scenario.drifting.taskId}"]`);
    await row.waitFor({ timeout: 30_000 });
    // flagged in the list once its finding is recorded
    await row.locator(".flag").waitFor({ timeout: 30_000 });
    expect(await row.getAttribute("class")).toContain("flagged");
    await page.locator(`tr[data-task-id="${scenario.benign.taskId}"]`).waitFor({ timeout: 30_000 });
    expect(await page.evaluate(() => (globalThis as unknown as { stillHere?: boolean }).stillHere)).toBe(true);
    await page.getByTestId("task-count").getByText("2 tasks match").waitFor();
    // the filters: flagged alone leaves the drifting task
    await page.locator('select[name="flagged"]').selectOption("true");
    await page.getByTestId("task-count").getByText("1 task matches").waitFor();
    expect(await page.locator("tbody tr").count()).toBe(1);
    await shot("tasks");
    await page.locator('select[name="flagged"]').selectOption("");
    // the counts beside the filters, as the API gives them, each a shortcut to its filter
    const counts = await api<{ total: number; byStatus: Record<string, number>; flagged: number }>("/task-counts");
    expect(counts).toMatchObject({ total: 2, flagged: 1 });
    const chips = page.getByTestId("task-counts");
    await chips.getByText("all 2").waitFor();
    await chips.locator('[data-status="flagged"]').getByText("1").waitFor();
    for (const [status, n] of Object.entries(counts.byStatus))
      expect(await chips.locator(`[data-status="${status}"] strong`).textContent(), status).toBe(String(n));
    await chips.locator('[data-status="flagged"]').click();
    await page.getByTestId("task-count").getByText("1 task matches").waitFor();
    expect(await page.locator('select[name="flagged"]').inputValue()).toBe("true");
    await chips.getByText("all 2").click();
    await page.getByTestId("task-count").getByText("2 tasks match").waitFor();
    expect(errors).toEqual([]);
  });

  it("shows the task's path with its flagged step and the finding's explanation", async () => {
    const { findings } = await api<{ findings: Finding[] }>(`/tasks/${encodeURIComponent(scenario.drifting.taskId)}`);
    const finding = findings.find((f) => f.ruleId === "scope.tool");
    expect(finding, JSON.stringify(findings.map((f) => f.ruleId))).toBeDefined();
    await page.locator(`tr[data-task-id="${scenario.drifting.taskId}"] a`).click();
    await page.waitForURL(`**/#/tasks/${encodeURIComponent(scenario.drifting.taskId)}`);
    const steps = page.getByTestId("path").locator("li.step");
    await expect.poll(() => steps.count(), { timeout: 15_000 }).toBe(3);
    // numbered from 1; the flagged one is the step the finding names
    expect(await steps.evaluateAll((els) => els.map((e) => e.getAttribute("data-step")))).toEqual(["1", "2", "3"]);
    const flagged = page.locator('li.step[data-flagged="true"]');
    expect(await flagged.count()).toBe(1);
    expect(await flagged.getAttribute("data-step")).toBe(String((finding as Finding).stepIndex + 1));
    expect(await flagged.locator(".explanation").textContent()).toBe((finding as Finding).explanation);
    expect(await flagged.textContent()).toContain("shell.exec");
    await flagged.locator("details").getByText("Observed").waitFor();
    await shot("task");
  });

  it("lets a viewer's token read the held response but not decide it", async () => {
    const pending = await eventually(
      async () =>
        (await api<{ approvals: Approval[] }>("/approvals?status=pending")).approvals.find((a) => a.taskId === scenario.drifting.taskId),
      30_000,
      "the drifting task's approval",
    );
    // another tab: its own sessionStorage, so its own token
    const viewer = await browser.newPage();
    try {
      await viewer.goto(`${app.apiUrl}/#/approvals`);
      await viewer.getByText("The API needs a token").waitFor();
      await viewer.getByLabel("API token").fill(VIEWER_TOKEN);
      await viewer.getByRole("button", { name: "Use token" }).click();
      const card = viewer.locator(`.card[data-approval-id="${pending.id}"]`);
      await card.waitFor({ timeout: 15_000 });
      await card.getByRole("button", { name: /^Approve/ }).click();
      await card.getByText(/^Not allowed: .*viewer/).waitFor({ timeout: 15_000 });
      await viewer.screenshot({ path: join(SHOTS, "approvals-viewer.png"), fullPage: true });
    } finally {
      await viewer.close();
    }
    expect((await api<Approval>(`/approvals/${pending.id}`)).status).toBe("pending");
  });

  it("approves the held response from the page, as the caller the token names", async () => {
    const pending = await eventually(
      async () =>
        (await api<{ approvals: Approval[] }>("/approvals?status=pending")).approvals.find((a) => a.taskId === scenario.drifting.taskId),
      30_000,
      "the drifting task's approval",
    );
    await page.getByRole("link", { name: "Approvals & quarantine" }).click();
    const card = page.locator(`.card[data-approval-id="${pending.id}"]`);
    await card.waitFor();
    await card.locator("input").fill("confirmed drift from the browser test");
    await card.getByRole("button", { name: /^Approve/ }).click();
    // it leaves the pending list for the decided one
    await page.locator(`tr[data-approval-id="${pending.id}"]`).getByText("approved").waitFor({ timeout: 15_000 });
    expect(await card.count()).toBe(0);
    const decided = await api<Approval>(`/approvals/${pending.id}`);
    expect(decided).toMatchObject({
      status: "approved",
      decidedBy: "api-token (token:api-token)",
      comment: "confirmed drift from the browser test",
    });
    // the approval quarantines the agent (and so revokes its task's credential): the page shows it, live
    const quarantined = page.locator('.card[data-agent-id="billing-agent"]');
    await quarantined.waitFor({ timeout: 30_000 });
    await shot("approvals");
    await page.getByRole("link", { name: "Revocations" }).click();
    await page.getByText(scenario.drifting.credentialId as string).waitFor({ timeout: 30_000 });
    // no credential store is configured: the credential's true status is recorded, not revoked
    const row = page.locator("tr", { hasText: scenario.drifting.credentialId as string });
    await row.locator('td[data-credential-status="recorded"]').waitFor({ timeout: 15_000 });
    await shot("revocations");
  });

  it("lists the drifting task's incident", async () => {
    await page.getByRole("link", { name: "Incidents" }).click();
    const row = page.locator("tr", { has: page.locator(`a[href="#/tasks/${encodeURIComponent(scenario.drifting.taskId)}"]`) });
    await row.waitFor({ timeout: 30_000 });
    expect(await row.locator(".badge").first().textContent()).toBe("high");
    await shot("incidents");
  });

  it("lifts the quarantine from the page", async () => {
    await page.getByRole("link", { name: "Approvals & quarantine" }).click();
    const quarantined = page.locator('.card[data-agent-id="billing-agent"]');
    await quarantined.locator("input").fill("cleared by the browser test");
    await quarantined.getByRole("button", { name: "Lift quarantine" }).click();
    await page.getByText("No agent is quarantined.").waitFor({ timeout: 15_000 });
    expect(await api<{ agents: unknown[] }>("/quarantine")).toEqual({ agents: [] });
    const { records } = await api<{ records: { action: string; outcome: string; actor: { name: string } }[] }>("/audit?limit=5");
    expect(records.find((r) => r.action === "POST /api/v1/agents/:id/quarantine/lift")).toMatchObject({
      outcome: "ok",
      actor: { name: "api-token" },
    });
  });

  it("shows the benign task's credential ended with the task, its revocation naming an id the API resolves", async () => {
    // no credential store is configured: the revocation at the task's end is only recorded
    const revocation = await eventually(
      async () => {
        const { revocations } = await api<{ revocations: Revocation[] }>(`/tasks/${encodeURIComponent(scenario.benign.taskId)}`);
        return revocations.find((r) => r.trigger === "task_completed");
      },
      30_000,
      "the benign task's revocation at its end",
    );
    expect(revocation).toMatchObject({ credentialId: scenario.benign.credentialId, status: "recorded" });
    const named = await api<{ kind: string; event?: { trigger: string; taskId: string } }>(
      `/findings/${encodeURIComponent(revocation.findingId)}`,
    );
    expect(named).toMatchObject({ kind: "lifecycle_event", event: { trigger: "task_completed", taskId: scenario.benign.taskId } });

    await page.goto(`${app.apiUrl}/#/tasks/${encodeURIComponent(scenario.benign.taskId)}`);
    const credential = page.locator("tr", { hasText: scenario.benign.credentialId });
    await credential.getByText("recorded only").waitFor({ timeout: 15_000 });
    await page.getByRole("heading", { name: /Lifecycle/ }).waitFor();
    expect(await page.locator('li.step[data-flagged="true"]').count()).toBe(0);
    await shot("benign-task");
  });
});
