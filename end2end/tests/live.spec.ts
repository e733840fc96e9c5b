import { test, expect } from '@playwright/test';
import * as fs from 'fs';
import * as path from 'path';
import { ARTIFACTS, ready, signIn, startServer, stop } from './support';

// A server of this test's own (its own database and demo ports), so it can be restarted while
// a browser watches a running campaign.
const BASE_PORT = Number(process.env.E2E_PORT || 3100) + 200;

test('the live view of a running canary recovers after the server restarts, and abort still works', async ({ page, request }, info) => {
  test.setTimeout(150_000);
  // Each browser project gets its own server and ports.
  const port = BASE_PORT + (info.project.name === 'mobile' ? 100 : 0);
  const base = `http://127.0.0.1:${port}`;
  const router = `http://127.0.0.1:${port + 80}/`;
  let server = startServer(port, false);
  try {
    await ready(port);
    await signIn(page, 'olivia', { base });
    await page.goto(`${base}/campaigns`);
    await page.getByRole('link', { name: 'demo-canary', exact: true }).click();
    await expect(page.locator('html')).toHaveAttribute('data-hydrated', 'true');
    await page.getByRole('button', { name: 'Start' }).click();
    await expect(page.locator('.badge').first()).toHaveText('running');
    // The canary bakes at its first share: traffic is split and the chart is live.
    await expect(page.getByTestId('traffic-shares')).toContainText('v2:', { timeout: 30_000 });
    const chart = page.getByTestId('health-chart');
    await expect(chart.locator('svg')).toBeVisible({ timeout: 10_000 });
    const progressBefore = await page.getByTestId('progress').textContent();
    const sampleBefore = Number(await chart.getAttribute('data-sample'));

    // Restart the server under the open page: no reload from here on.
    await stop(server);
    server = startServer(port, true);
    await ready(port);

    // The event stream reconnects by itself: new sampling rounds redraw the chart, and the
    // campaign, resumed by the restarted engine, advances on the page.
    await expect.poll(async () => Number(await chart.getAttribute('data-sample')), { timeout: 20_000 })
      .toBeGreaterThan(sampleBefore);
    await expect(page.getByTestId('progress')).not.toHaveText(progressBefore ?? '', { timeout: 40_000 });
    await expect(page.locator('.badge').first()).toHaveText(/running|awaiting approval|paused/);
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: path.join(ARTIFACTS, `${info.project.name}-campaign-after-restart.png`), fullPage: true });

    // Abort from the same page; then ask the router itself.
    await page.locator('summary[data-command=abort]').click();
    await page.getByLabel(/Why abort/).fill('e2e: abort after a server restart');
    await page.locator('button[data-confirm=abort]').click();
    await expect(page.getByTestId('rollback-time')).toBeVisible({ timeout: 30_000 });
    for (let i = 0; i < 10; i++) {
      const res = await request.get(router);
      expect(res.status()).toBe(200);
      expect(res.headers()['x-release']).toBe('v1');
    }
  } finally {
    await stop(server);
  }
});
