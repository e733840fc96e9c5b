import { test, expect } from '@playwright/test';
import * as fs from 'fs';
import * as path from 'path';
import { dataDir, keep, ready, signIn, startServer, stop, watchConsole } from './support';

// A server of this test's own: it destroys the demo's stable instances out of band.
const BASE_PORT = Number(process.env.E2E_PORT || 3100) + 400;

test('a rollback whose stable members were destroyed out of band pauses instead of routing users to them, and the page says why', async ({ page, request }, info) => {
  test.setTimeout(120_000);
  const port = BASE_PORT + (info.project.name === 'mobile' ? 100 : 0);
  const base = `http://127.0.0.1:${port}`;
  const router = `http://127.0.0.1:${port + 80}/`;
  const server = startServer(port, false);
  try {
    await ready(port);
    const consoleErrors = watchConsole(page);
    await signIn(page, 'olivia', { base });
    await page.goto(`${base}/campaigns`);
    await page.getByRole('link', { name: 'demo-canary', exact: true }).click();
    await expect(page.locator('html')).toHaveAttribute('data-hydrated', 'true');
    await expect(page.getByTestId('live-check')).toContainText('The pool is what its record says');
    await page.getByRole('button', { name: 'Start' }).click();
    await expect(page.getByTestId('traffic-shares')).toContainText('v2:', { timeout: 30_000 });

    // Out of band, every v1 instance dies (the provider's own record has their process ids).
    const state = JSON.parse(fs.readFileSync(path.join(dataDir(port), 'demo-processes.json'), 'utf8'));
    for (const target of ['web-1', 'web-2', 'web-3', 'web-4']) {
      process.kill(state.pids[target], 'SIGKILL');
    }

    await page.locator('summary[data-command=abort]').click();
    await page.getByLabel(/Why abort/).fill('e2e: the stable set is gone');
    await page.locator('button[data-confirm=abort]').click();
    await expect(page.locator('.badge').first()).toHaveText('rollback paused', { timeout: 30_000 });
    const why = page.getByTestId('last-error');
    await expect(why).toContainText('it would send users to web-1 (the provider has no such instance)');
    await expect(why).toContainText('now take none (weight 0)');
    await expect(page.getByTestId('rollback-time')).toHaveCount(0);
    // The pool as it is: the healthy canary takes everything; the dead members are flagged.
    await expect(page.getByTestId('traffic-shares')).toContainText('v2: 100.0 %');
    await expect(page.getByTestId('member-unhealthy')).toContainText('web-1 does not exist');
    await expect(page.getByRole('button', { name: 'Resume the rollback' })).toBeVisible();
    await keep(page, 'rollback-paused', info.project.name);
    expect(consoleErrors, 'no hydration errors').toEqual([]);

    // Users are served by the live canary, never sent to a dead member.
    for (let i = 0; i < 20; i++) {
      const res = await request.get(router);
      expect(res.status()).toBe(200);
      expect(res.headers()['x-release']).toBe('v2');
    }
  } finally {
    await stop(server);
  }
});
