import { test, expect, Page } from '@playwright/test';
import * as path from 'path';
import { ARTIFACTS, keep, signIn, watchConsole } from './support';





/// The field block (label, input, hint, messages) around an input.
function fieldOf(page: Page, inputId: string) {
  return page.locator('.field', { has: page.locator(`#${inputId}`) });
}

/// A canary for the demo environment, as a person would keep it in a repository.
function demoToml(name: string): string {
  return `name = "${name}"
service = "web"
environment = "demo"
pool = "web"
from_release = "v1"
to_release = "v2"

[window]
start = "2030-06-01T08:00"
end = "2030-06-01T10:00"
timezone = "Europe/Paris"

[[gates]]
max_error_rate = 0.05
max_p99_ms = 500
min_probe_success = 0.9
window_secs = 10
min_samples = 3
deadline_secs = 60
consecutive_failures = 2

[strategy]
kind = "canary"
canary_count = 1
steps = [
  { weight = 20, bake_secs = 30 },
  { weight = 60, bake_secs = 30, pause = "approval" },
  { weight = 100, bake_secs = 30 },
]
`;
}

test('an operator builds a campaign: a field error in place, the live plan, TOML import and export, then a saved draft', async ({ page }, info) => {
  const consoleErrors = watchConsole(page);
  const project = info.project.name;
  await signIn(page, 'olivia');
  // Opened directly: rendered on the server, then live once hydrated.
  await page.goto('/campaigns/new');
  await expect(page.locator('html')).toHaveAttribute('data-hydrated', 'true');
  await page.getByLabel('Campaign name').fill('Web Upgrade');
  await expect(fieldOf(page, 'f-name').locator('.field-errors')).toContainText('only lowercase letters');
  await page.goto('/campaigns');
  await expect(page.locator('html')).toHaveAttribute('data-hydrated', 'true');
  await page.getByTestId('new-campaign').click();
  await expect(page).toHaveURL(/\/campaigns\/new$/);
  await expect(page.locator('html')).toHaveAttribute('data-hydrated', 'true');
  await expect(page.getByRole('heading', { name: 'New campaign' })).toBeVisible();

  // The demo environment and its pool are picked, with the release the pool runs.
  await expect(page.locator('#f-environment')).toHaveValue('demo');
  await expect(page.locator('#f-pool')).toHaveValue('web');
  await expect(page.locator('#f-from_release')).toHaveValue('v1');
  await page.getByLabel('Campaign name').fill(`typed-${project}`);
  await page.getByLabel('Service', { exact: true }).fill('web');
  await page.getByLabel('To release').fill('v2');
  await expect(page.getByTestId('plan-steps').locator('li').first()).toBeVisible();

  // A falling weight: the shared validation, in the browser, puts the message beside step 2.
  const weight2 = page.getByLabel('Step 2 Weight %');
  await weight2.fill('5');
  const step2 = fieldOf(page, 'f-strategy-steps-1-weight');
  await expect(step2.locator('.field-errors')).toContainText('steps must strictly increase');
  await expect(weight2).toHaveAttribute('aria-invalid', 'true');
  await expect(page.getByTestId('plan-invalid')).toContainText('1 problem');
  // Only that field complains.
  await expect(page.locator('.editor-form .field-errors')).toHaveCount(1);
  // A value that is not a percentage at all is named too.
  await weight2.fill('150');
  await expect(step2.locator('.field-errors')).toContainText('out of range');
  // Saving now is refused in the browser: nothing is sent, and the focus goes to the field.
  await page.getByTestId('save-draft').click();
  await expect(weight2).toBeFocused();
  await expect(page.getByText('Not saved: fix the problems shown beside the fields.')).toBeVisible();
  await expect(page).toHaveURL(/\/campaigns\/new$/);
  await keep(page, 'editor-field-error', project);
  await page.getByTestId('steps').screenshot({ path: path.join(ARTIFACTS, `${project}-editor-steps-error.png`) });

  await weight2.fill('50');
  await expect(page.locator('.editor-form .field-errors')).toHaveCount(0);
  await expect(weight2).toHaveAttribute('aria-invalid', 'false');
  await expect(page.getByTestId('plan-headline')).toContainText('canary');
  const typedSteps = await page.getByTestId('plan-steps').locator('li').count();
  expect(typedSteps).toBeGreaterThan(3);
  // Adding a step changes the plan as soon as it is valid again.
  await page.getByRole('button', { name: 'Add step' }).click();
  await expect(page.getByTestId('plan-invalid')).toBeVisible();
  await page.getByRole('button', { name: 'Remove step 4' }).click();
  await expect(page.getByTestId('plan-steps').locator('li')).toHaveCount(typedSteps);

  // Import: a broken file is refused naming the line; a good one fills the form.
  await page.locator('summary', { hasText: 'Import or export' }).click();
  const name = `editor-${project}`;
  const broken = demoToml(name).replace('max_p99_ms = 500', 'max_p99_ms = "fast"');
  await page.getByLabel('Spec text').fill(broken);
  await page.getByRole('button', { name: 'Import into the form' }).click();
  const brokenLine = broken.split('\n').findIndex((l) => l.startsWith('max_p99_ms')) + 1;
  await expect(page.getByTestId('import-error')).toContainText(`gates[0].max_p99_ms: line ${brokenLine}`);
  // A file chosen from disk is read in the browser and imported at once.
  await page.getByLabel('Or choose a file').setInputFiles({
    name: `${name}.toml`, mimeType: 'text/plain', buffer: Buffer.from(demoToml(name)),
  });
  await expect(page.getByTestId('import-done')).toBeVisible();
  await expect(page.getByLabel('Spec text')).toHaveValue(new RegExp(`name = "${name}"`));
  await expect(page.locator('#f-name')).toHaveValue(name);
  await expect(page.locator('#f-window-timezone')).toHaveValue('Europe/Paris');
  await expect(page.getByLabel('Step 2 pause')).toHaveValue('approval');
  await expect(page.getByTestId('plan-steps')).toContainText('approval');
  await expect(page.getByTestId('plan-headline')).toContainText('v1 → v2');

  // Export writes what the form now holds.
  await page.getByLabel('Format').selectOption('yaml');
  await page.getByRole('button', { name: 'Export the form' }).click();
  await expect(page.getByLabel('Spec text')).toHaveValue(new RegExp(`name: ${name}[\\s\\S]*kind: canary`));
  await expect(page.getByRole('link', { name: 'Download' })).toHaveAttribute('download', `${name}.yaml`);
  // At phone width the form is one column: nothing wider than the screen.
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow).toBeLessThanOrEqual(1);
  await keep(page, 'editor-imported', project);
  await page.getByTestId('plan-preview').screenshot({ path: path.join(ARTIFACTS, `${project}-editor-plan-preview.png`) });

  await page.getByTestId('save-draft').click();
  await expect(page).toHaveURL(/\/campaigns\/\d+$/);
  await expect(page.getByTestId('campaign-name')).toHaveText(name);
  await expect(page.locator('.badge').first()).toHaveText('draft');
  await expect(page.getByTestId('timeline').locator('li.step')).not.toHaveCount(0);
  await expect(page.getByTestId('timeline')).toContainText('approval');
  await keep(page, 'editor-saved-campaign', project);

  // The saved spec downloads as the same TOML.
  const href = await page.getByTestId('export-toml').getAttribute('href');
  const toml = await page.evaluate(async (h) => (await fetch(h!)).text(), href);
  expect(toml).toContain(`name = "${name}"`);
  expect(toml).toContain('timezone = "Europe/Paris"');
  expect(consoleErrors, 'no hydration errors').toEqual([]);
});

test('a viewer is told they cannot create a campaign, and the server refuses them regardless', async ({ page }, info) => {
  await signIn(page, 'vera');
  await page.goto('/campaigns/new');
  await expect(page.getByTestId('editor-refusal')).toContainText('needs the operator role');
  await expect(page.locator('#f-name')).toHaveCount(0);
  await keep(page, 'editor-viewer', info.project.name);

  const spec = await page.evaluate(async (toml) => {
    const res = await fetch('/api/editor/import', {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ text: toml, format: 'toml' }),
    });
    return res.json();
  }, demoToml(`viewer-${info.project.name}`));
  expect(spec.name).toBe(`viewer-${info.project.name}`);
  const statuses = await page.evaluate(async (spec) => {
    const post = (url: string, body: unknown) => fetch(url, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
    });
    const fn = await post('/api/editor/create_draft', { spec });
    const rest = await post('/api/v1/campaigns', spec);
    const list = await (await fetch(`/api/v1/campaigns?q=${spec.name}`)).json();
    return { fn: fn.status, fnBody: await fn.json(), rest: rest.status, total: list.total };
  }, spec);
  expect(statuses.fn).toBe(403);
  expect(statuses.fnBody.message).toContain('operator');
  expect(statuses.rest).toBe(403);
  expect(statuses.total).toBe(0);
});

test('what only the server can know is refused on save and shown beside the field', async ({ page }, info) => {
  // The browser is told of a pool the server does not have, so only the server's check catches it.
  await page.route('**/api/editor/environments', async (route) => {
    const res = await route.fetch();
    const envs = await res.json();
    const demo = envs.find((e: any) => e.name === 'demo');
    demo.pools.push({ ...demo.pools[0], name: 'ghost' });
    await route.fulfill({ response: res, json: envs });
  });
  await signIn(page, 'olivia');
  await page.goto('/campaigns');
  // Hydrated first, so the link navigates in the browser and the environments are fetched.
  await expect(page.locator('html')).toHaveAttribute('data-hydrated', 'true');
  await page.getByTestId('new-campaign').click();
  await expect(page.locator('#f-pool option[value=ghost]')).toHaveCount(1);
  await page.locator('#f-pool').selectOption('ghost');
  const name = `ghost-${info.project.name}`;
  await page.getByLabel('Campaign name').fill(name);
  await page.getByLabel('Service', { exact: true }).fill('web');
  await page.getByLabel('To release').fill('v2');
  await expect(page.getByTestId('plan-steps').locator('li').first()).toBeVisible();
  await page.getByTestId('save-draft').click();
  const pool = fieldOf(page, 'f-pool').locator('.field-errors');
  await expect(pool).toContainText('server: environment demo has no pool named ghost');
  await expect(page.getByTestId('error-summary')).toContainText('The server refused the draft');
  await expect(page).toHaveURL(/\/campaigns\/new$/);
  await keep(page, 'editor-server-error', info.project.name);
  // The server's message stays only while the form is as it was sent.
  await page.locator('#f-pool').selectOption('web');
  await expect(pool).toHaveCount(0);
  const total = await page.evaluate(async (n) => (await (await fetch(`/api/v1/campaigns?q=${n}`)).json()).total, name);
  expect(total).toBe(0);
});

test('an operator edits a saved draft in the form, and clones a campaign into a new draft', async ({ page }, info) => {
  const consoleErrors = watchConsole(page);
  const project = info.project.name;
  await signIn(page, 'olivia');
  const id = await page.evaluate(async (name) => {
    const list = await (await fetch('/api/v1/campaigns?q=demo-canary&status=draft')).json();
    const seeded = list.campaigns.find((c: any) => c.name === 'demo-canary');
    const detail = await (await fetch(`/api/v1/campaigns/${seeded.id}`)).json();
    const res = await fetch('/api/v1/campaigns', {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...detail.spec, name }),
    });
    return (await res.json()).summary.id;
  }, `to-edit-${project}`);
  await page.goto(`/campaigns/${id}`);
  await expect(page.locator('html')).toHaveAttribute('data-hydrated', 'true');
  await page.getByTestId('edit-draft').click();
  await expect(page).toHaveURL(new RegExp(`/campaigns/${id}/edit$`));
  await expect(page.getByTestId('editor-title')).toHaveText(`Edit draft #${id}`);
  await expect(page.locator('html')).toHaveAttribute('data-hydrated', 'true');
  await expect(page.getByLabel('Campaign name')).toHaveValue(`to-edit-${project}`);
  await page.getByLabel('Campaign name').fill(`edited-${project}`);
  await page.getByTestId('save-draft').click();
  await expect(page).toHaveURL(new RegExp(`/campaigns/${id}$`));
  await expect(page.getByTestId('campaign-name')).toHaveText(`edited-${project}`);

  await expect(page.locator('html')).toHaveAttribute('data-hydrated', 'true');
  await page.getByTestId('clone').click();
  await expect(page.getByTestId('editor-title')).toHaveText(`New campaign from #${id}`);
  await expect(page.locator('html')).toHaveAttribute('data-hydrated', 'true');
  await expect(page.getByLabel('Campaign name')).toHaveValue(`edited-${project}-copy`);
  await expect(page.locator('#f-from_release')).toHaveValue('v1');
  await keep(page, 'editor-clone', project);
  await page.getByTestId('save-draft').click();
  await expect(page.getByTestId('campaign-name')).toHaveText(`edited-${project}-copy`);
  expect(consoleErrors, 'no hydration errors').toEqual([]);
});
