/**
 * A real browser for tests: Debian's chromium, headless, driven by playwright-core, with the
 * network off. Every request other than the page itself and `data:` URLs is aborted and
 * recorded, and so is every console error and uncaught exception: the caller asserts both lists
 * are empty.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { BrowserContext, Page } from 'playwright-core';

export const CHROMIUM = process.env.STACKFLOW_CHROMIUM ?? '/usr/bin/chromium';

/** Whether the browser tests can run here (they must where STACKFLOW_REQUIRE_BROWSER is set). */
export const haveChromium = (): boolean => existsSync(CHROMIUM);

export interface OpenedPage {
  page: Page;
  /** Console errors and uncaught exceptions. */
  errors: string[];
  /** Requests the page tried to make beyond its own file. */
  outside: string[];
  /** Milliseconds from navigation until the client marked the page ready. */
  readyMs: number;
  close(): Promise<void>;
}

export async function openReport(
  file: string,
  viewport = { width: 1400, height: 1000 },
): Promise<OpenedPage> {
  const { chromium } = await import('playwright-core');
  const profile = mkdtempSync(join(tmpdir(), 'stackflow-chromium-'));
  let context: BrowserContext | undefined;
  try {
    // A fresh profile directory (chromium's --user-data-dir) per page.
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
      viewport,
      offline: true,
    });
    const page = context.pages()[0] ?? (await context.newPage());
    const errors: string[] = [];
    const outside: string[] = [];
    const own = pathToFileURL(file).href;
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    page.on('pageerror', (e) => errors.push(`uncaught: ${e.message}`));
    await context.route('**/*', async (route) => {
      const url = route.request().url();
      if (url === own || url.startsWith('data:')) await route.continue();
      else {
        outside.push(url);
        await route.abort();
      }
    });
    page.on('request', (r) => {
      const url = r.url();
      if (url !== own && !url.startsWith('data:') && !outside.includes(url)) outside.push(url);
    });
    const t0 = Date.now();
    await page.goto(own, { waitUntil: 'load' });
    await page.waitForSelector('#app[data-ready="true"]', { timeout: 30_000 });
    const readyMs = Date.now() - t0;
    const c = context;
    return {
      page,
      errors,
      outside,
      readyMs,
      close: async () => {
        await c.close();
        rmSync(profile, { recursive: true, force: true });
      },
    };
  } catch (e) {
    await context?.close();
    rmSync(profile, { recursive: true, force: true });
    throw e;
  }
}
