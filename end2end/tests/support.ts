import { expect, Page } from '@playwright/test';
import { spawn, ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

// What every spec shares: the users' password, signing in, console watching and screenshots.
export const PASSWORD = process.env.E2E_PASSWORD || 'e2e password long enough';
export const ARTIFACTS = path.join(__dirname, '..', 'artifacts');

/// Signs in through the form; `base` is another server's origin (default: the configured one).
export async function signIn(page: Page, user: string, opts: { base?: string; password?: string } = {}) {
  await page.goto(`${opts.base ?? ''}/login`);
  await page.getByLabel('User name').fill(user);
  await page.getByLabel('Password').fill(opts.password ?? PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByTestId('home-title')).toBeVisible();
}

/// Collects console errors; a hydration mismatch is logged there before the page goes dead,
/// and so is anything the Content Security Policy refused (an inline script without the
/// page's nonce, an inline style).
export function watchConsole(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (m) => { if (m.type() === 'error' && /hydrat|panicked|Content Security Policy/i.test(m.text())) errors.push(m.text().slice(0, 300)); });
  return errors;
}

/// Keeps a full-page screenshot as a test artifact: artifacts/PROJECT-NAME.png.
export async function keep(page: Page, name: string, project: string) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, `${project}-${name}.png`), fullPage: true });
}

/// A server of a spec's own (its own database and demo ports, in .data-live-PORT), started by
/// start-server.sh; `restart` keeps its database, as a restarted server would.
export function startServer(port: number, restart: boolean): ChildProcess {
  return spawn('bash', [path.join(__dirname, '..', 'start-server.sh'), String(port)], {
    env: { ...process.env, E2E_DATA: dataDir(port), E2E_RESTART: restart ? '1' : '0' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
}

/// Where the server on `port` (from startServer) keeps its database and state files.
export function dataDir(port: number): string {
  return path.join(__dirname, '..', `.data-live-${port}`);
}

export async function ready(port: number) {
  for (let i = 0; i < 300; i++) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/readyz`);
      if (res.ok) return;
    } catch { /* not up yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`server on ${port} did not become ready`);
}

export async function stop(child: ChildProcess) {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000))]);
  if (child.exitCode === null) child.kill('SIGKILL');
}
