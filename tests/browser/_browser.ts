/**
 * Shared pieces of the browser tests: Debian's Chromium driven by playwright-core (never a
 * downloaded browser), the page served with COOP/COEP by scripts/serve.ts, and the fixture models
 * mounted at `/fixtures/`.
 *
 * Chromium is looked up at `CHROMIUM` or /usr/bin/chromium. Without it the tests are skipped with a
 * visible note, except under `CI=true`, where a missing browser fails the run (.ci/run installs it).
 */

import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { serve, type StaticServer } from "../../scripts/serve.ts";

export const ROOT = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");
export const CHROMIUM = Deno.env.get("CHROMIUM") ?? "/usr/bin/chromium";
/** Where the tests leave screenshots and downloads (a CI artifact folder). */
export const ARTIFACTS = `${ROOT}/dist/browser-test`;

/**
 * The flags Debian's headless Chromium needs here: no sandbox (root, containers), nothing that
 * reaches the network, and WebGPU (off by default on Linux; on a machine without a GPU it runs on
 * SwiftShader, Chromium's software adapter).
 */
export const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-quic",
  "--enable-unsafe-webgpu",
];

/** True when the browser tests can run; logs why not otherwise (and fails under CI). */
export async function browserAvailable(): Promise<boolean> {
  try {
    await Deno.stat(CHROMIUM);
  } catch {
    if (Deno.env.get("CI") === "true") throw new Error(`${CHROMIUM} not found: CI must install chromium (apt-get)`);
    console.warn(`note: browser tests skipped: ${CHROMIUM} not found (apt-get install chromium)`);
    return false;
  }
  try {
    await Deno.stat(`${ROOT}/dist/web/index.html`);
  } catch {
    throw new Error("dist/web/index.html not found: run `deno task build` before the browser tests");
  }
  return true;
}

/** A served page and a browser with a fresh profile (Playwright's temporary one: OPFS starts empty). */
export interface Session {
  server: StaticServer;
  browser: Browser;
  context: BrowserContext;
  page: Page;
  /** Console lines and page errors, for failure messages. */
  console: string[];
  close(): Promise<void>;
}

export async function openSession(): Promise<Session> {
  const server = await serve({ root: `${ROOT}/dist/web`, port: 0, mounts: { "/fixtures/": `${ROOT}/tests/fixtures` } });
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: [...CHROMIUM_ARGS] });
  const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1200, height: 900 } });
  const page = await context.newPage();
  const lines: string[] = [];
  page.on("console", (m) => lines.push(`[${m.type()}] ${m.text()}`));
  page.on("pageerror", (e) => lines.push(`[pageerror] ${e.message}`));
  page.on("worker", (w) => w.on("console", (m) => lines.push(`[worker ${m.type()}] ${m.text()}`)));
  return {
    server,
    browser,
    context,
    page,
    console: lines,
    async close() {
      await context.close();
      await browser.close();
      await server.close();
    },
  };
}

/** The page's URL with query parameters. */
export function pageUrl(s: Session, params: Record<string, string | number>): string {
  const q = new URLSearchParams(Object.entries(params).map(([k, v]) => [k, String(v)]));
  return `${s.server.url}?${q}`;
}

/** Waits until the page reports model and data loaded (the Train button is enabled). */
export async function waitReady(page: Page, timeout = 60_000): Promise<void> {
  await page.waitForFunction(() => !(document.getElementById("train") as HTMLButtonElement).disabled, null, {
    timeout,
  });
}

/** Sets the options form. */
export async function setOptions(page: Page, o: Record<string, string | number>): Promise<void> {
  for (const [id, v] of Object.entries(o)) {
    const sel = `#opt-${id}`;
    if (id === "backend") await page.selectOption(sel, String(v));
    else await page.fill(sel, String(v));
  }
}

/** The page's text of an element. */
export async function text(page: Page, selector: string): Promise<string> {
  return (await page.textContent(selector)) ?? "";
}
