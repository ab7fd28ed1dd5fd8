/**
 * Debian's chromium driven by playwright-core, for the status-page tests: never a downloaded
 * browser. `scripts/ensure-chromium.sh` installs it (CI runs it); without it the tests skip and
 * say which package is missing. Screenshots go to test-output/ (gitignored), kept after the run.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type BrowserContext, chromium } from "playwright-core";
import { repoRoot } from "./harness.ts";

export const CHROMIUM = "/usr/bin/chromium";
export const hasChromium = existsSync(CHROMIUM);
export const NO_CHROMIUM = `skipped: ${CHROMIUM} is missing (apt-get install chromium, or run scripts/ensure-chromium.sh)`;

export const SCREENSHOTS = join(repoRoot, "test-output", "screenshots");

export interface TestBrowser {
  /** A fresh profile (its own --user-data-dir, so no cookie carries over between tests). */
  context: BrowserContext;
  close(): Promise<void>;
}

export async function launchChromium(): Promise<TestBrowser> {
  const profile = mkdtempSync(join(tmpdir(), "dionysus-chromium-"));
  // Playwright takes the profile dir as launchPersistentContext's first argument (it refuses
  // --user-data-dir in args).
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  mkdirSync(SCREENSHOTS, { recursive: true });
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
