import { test, expect, Page } from '@playwright/test';
import * as path from 'path';
import { ARTIFACTS, keep, signIn, watchConsole } from './support';

const PORT = Number(process.env.E2E_PORT || 3100);
const ROUTER = `http://127.0.0.1:${PORT + 80}/`;




test('an operator starts a canary in the demo, sees traffic move live, aborts it, and the router is back on v1', async ({ page, request }, info) => {
  const consoleErrors = watchConsole(page);
  await signIn(page, 'olivia');
  await page.goto('/campaigns');
  await keep(page, 'campaigns', info.project.name);
  // Each browser project drives its own copy of the seeded demo canary.
  const name = `demo-canary-${info.project.name}`;
  const id = await page.evaluate(async (name) => {
    const list = await (await fetch('/api/v1/campaigns?q=demo-canary&status=draft')).json();
    const seeded = list.campaigns.find((c: any) => c.name === 'demo-canary');
    const detail = await (await fetch(`/api/v1/campaigns/${seeded.id}`)).json();
    const res = await fetch('/api/v1/campaigns', {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...detail.spec, name }),
    });
    return (await res.json()).summary.id;
  }, name);
  await page.goto('/campaigns');
  await page.getByRole('link', { name, exact: true }).click();
  await expect(page).toHaveURL(new RegExp(`/campaigns/${id}$`));
  await expect(page.getByTestId('campaign-name')).toHaveText(name);
  await expect(page.locator('html')).toHaveAttribute('data-hydrated', 'true');
  await expect(page.getByTestId('traffic-shares')).toContainText('v1: 100.0 %');
  await page.getByRole('button', { name: 'Start' }).click();
  // Live: no reload from here on; the page follows the event stream.
  await expect(page.locator('.badge').first()).toHaveText('running');
  await expect(page.getByTestId('traffic-shares')).toContainText('v2:', { timeout: 30_000 });
  await expect(page.locator('.step-current')).toBeVisible();
  // The plotters chart (SVG from the server) follows the traffic, with v2 in its legend.
  await expect(page.getByTestId('health-chart').locator('svg')).toBeVisible();
  await expect(page.getByTestId('health-chart')).toContainText('v2', { timeout: 30_000 });
  await expect(page.getByTestId('chart-summary')).toContainText('req/s');
  // The chart redraws from each stored sampling round, with no reload and no timer.
  const chart = page.getByTestId('health-chart');
  const before = Number(await chart.getAttribute('data-sample'));
  await expect.poll(async () => Number(await chart.getAttribute('data-sample')), { timeout: 5_000 }).toBeGreaterThan(before);
  // One target at a time: the canary instance on its own.
  const canary = await page.getByTestId('chart-target').locator('option').evaluateAll(
    (os) => os.map((o) => (o as HTMLOptionElement).value).find((v) => v !== '' && !/^web-[1-4]$/.test(v)));
  expect(canary, 'the canary instance can be charted alone').toBeTruthy();
  await page.getByTestId('chart-target').selectOption(canary!);
  await expect(page.getByTestId('chart-summary')).toContainText(/v2, ready, weight \d+\.\d % of the pool/, { timeout: 10_000 });
  await keep(page, 'campaign-running', info.project.name);
  // The top of the page (controls, weights, charts) for the README.
  await page.screenshot({ path: path.join(ARTIFACTS, `${info.project.name}-campaign-running-top.png`), fullPage: true, clip: { x: 0, y: 0, width: page.viewportSize()!.width, height: 1700 } });
  await page.getByTestId('chart-target').selectOption('');

  await page.locator('summary[data-command=abort]').click();
  await page.getByLabel(/Why abort/).fill('e2e: checking the abort button');
  await page.locator('button[data-confirm=abort]').click();
  await expect(page.getByTestId('rollback-time')).toBeVisible({ timeout: 30_000 });
  await expect(page.locator('.badge').first()).toHaveText('rolled back');
  await expect(page.getByTestId('traffic-shares')).toContainText('v1: 100.0 %');
  await keep(page, 'campaign-rolled-back', info.project.name);
  expect(consoleErrors, 'no hydration errors').toEqual([]);

  // Confirm through the router itself, not the UI.
  for (let i = 0; i < 20; i++) {
    const res = await request.get(ROUTER);
    expect(res.status()).toBe(200);
    expect(res.headers()['x-release']).toBe('v1');
  }

  // The impact report: what users got from each release, the rollback time, each step.
  await page.reload();
  const impact = page.getByTestId('impact-report');
  await expect(impact.getByTestId('impact-by-release')).toContainText('v2');
  await expect(impact.getByTestId('impact-by-release')).toContainText('v1');
  await expect(impact.getByTestId('impact-rollback')).toContainText('after the abort');
  await expect(impact.getByTestId('impact-steps')).toContainText('rollback');
  await impact.screenshot({ path: path.join(ARTIFACTS, `${info.project.name}-impact-report.png`) });
});

test('a viewer sees the campaign without controls and the server refuses a start', async ({ page }, info) => {
  const consoleErrors = watchConsole(page);
  await signIn(page, 'vera');
  await page.goto('/campaigns');
  await page.getByRole('link', { name: 'demo-canary', exact: true }).click();
  await expect(page.getByTestId('campaign-name')).toHaveText('demo-canary');
  // A full page load too: the server's HTML must hydrate cleanly with live traffic on the page.
  await page.reload();
  await expect(page.locator('html')).toHaveAttribute('data-hydrated', 'true');
  await expect(page.getByTestId('traffic-shares')).toContainText('v1:');
  // A draft has no samples yet: the chart says so and what to do next.
  await expect(page.getByTestId('chart-empty')).toContainText('No health samples yet');
  await expect(page.getByRole('button', { name: 'Start' })).toHaveCount(0);
  await expect(page.locator('summary[data-command=abort]')).toHaveCount(0);
  const status = await page.evaluate(async () => {
    const id = location.pathname.split('/').pop();
    const res = await fetch(`/api/v1/campaigns/${id}/start`, { method: 'POST' });
    return res.status;
  });
  expect(status).toBe(403);
  await keep(page, 'campaign-viewer', info.project.name);
  expect(consoleErrors, 'no hydration errors').toEqual([]);
});

test('the environments page shows targets, health and the weights read back from the router; an operator checks the backends', async ({ page }, info) => {
  const consoleErrors = watchConsole(page);
  await signIn(page, 'olivia');
  await page.getByRole('link', { name: 'Environments' }).click();
  await expect(page.locator('html')).toHaveAttribute('data-hydrated', 'true');
  const env = page.getByTestId('environment').first();
  await expect(env.getByTestId('targets')).toContainText('web-1');
  await expect(env.getByTestId('targets')).toContainText('healthy');
  // The record beside what the router and the provider have now: the same, and said so.
  await expect(env.getByTestId('record-vs-live')).toContainText('%');
  await expect(env.getByTestId('record-vs-live')).toContainText('✓ healthy');
  await expect(env.getByTestId('pool-matches')).toBeVisible();
  await page.getByTestId('check-backends').click();
  const results = page.getByTestId('check-results');
  await expect(results).toContainText('reachable');
  await expect(results).toContainText('embedded');
  await keep(page, 'environments', info.project.name);
  expect(consoleErrors, 'no hydration errors').toEqual([]);
});
