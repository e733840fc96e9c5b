import { test, expect, Page } from '@playwright/test';
import * as fs from 'fs';
import * as path from 'path';

const PASSWORD = process.env.E2E_PASSWORD || 'e2e password long enough';
const ARTIFACTS = path.join(__dirname, '..', 'artifacts');

async function signIn(page: Page, user: string, password = PASSWORD) {
  await page.goto('/login');
  await page.getByLabel('User name').fill(user);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

async function keepScreenshot(page: Page, name: string, project: string) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, `${project}-${name}.png`), fullPage: true });
}

test('an admin signs in, sees the home page and signs out', async ({ page }, info) => {
  await page.goto('/');
  await expect(page).toHaveURL(/\/login$/);
  await signIn(page, 'admin');
  await expect(page).toHaveURL(/\/$/);
  await expect(page.getByTestId('home-title')).toHaveText('Welcome, admin');
  await expect(page.getByTestId('whoami')).toContainText('admin');
  await expect(page.getByRole('link', { name: 'Users' })).toBeVisible();
  await keepScreenshot(page, 'home', info.project.name);
  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page).toHaveURL(/\/login\?signed_out=1$/);
  await expect(page.getByText('You are signed out.')).toBeVisible();
  await page.goto('/');
  await expect(page).toHaveURL(/\/login$/);
});

test('a wrong password shows an inline error and writes a failed sign-in audit event', async ({ page }, info) => {
  const ghost = `ghost-${info.project.name}`;
  await signIn(page, ghost, 'definitely not it');
  const error = page.getByTestId('login-error');
  await expect(error).toBeVisible();
  await expect(error).toContainText('Wrong user name or password');
  await expect(page.getByLabel('User name')).toBeVisible();
  await keepScreenshot(page, 'login-error', info.project.name);

  await signIn(page, 'admin');
  await page.goto(`/audit?actor=${ghost}`);
  const table = page.getByTestId('audit-table');
  await expect(table).toContainText('auth.login');
  await expect(table).toContainText(`user:${ghost}`);
  await expect(table).toContainText('failure');
  await expect(page.getByTestId('audit-count')).toHaveText('1 matching event');
  await keepScreenshot(page, 'audit', info.project.name);
});

test('a hydrated page creates an API token without a reload and the token works', async ({ page, request }, info) => {
  await signIn(page, 'olivia');
  await page.goto('/account');
  // Wait for hydration: the WebAssembly client takes over the form submission.
  await expect(page.locator('html')).toHaveAttribute('data-hydrated', 'true');
  await page.getByLabel('Token name').fill(`e2e-${info.project.name}`);
  await page.getByRole('button', { name: 'Create token' }).click();
  const secret = page.getByTestId('new-token');
  await expect(secret).toBeVisible();
  const token = (await secret.textContent())!.trim();
  expect(token).toMatch(/^swy_/);
  const me = await request.get('/api/v1/me', { headers: { Authorization: `Bearer ${token}` } });
  expect(me.status()).toBe(200);
  expect(await me.json()).toMatchObject({ username: 'olivia', role: 'operator', via: 'token' });
  await keepScreenshot(page, 'account', info.project.name);
});

test('a viewer does not see the admin page link and is refused by the server', async ({ page, request }) => {
  await signIn(page, 'vera');
  await expect(page.getByTestId('home-title')).toHaveText('Welcome, vera');
  await expect(page.getByRole('link', { name: 'Users' })).toHaveCount(0);
  const res = await page.request.get('/api/v1/users');
  expect(res.status()).toBe(403);
});

test('pages hydrate under the Content Security Policy: its nonce admits Leptos inline scripts, nothing else is refused', async ({ page }) => {
  const refused: string[] = [];
  page.on('console', (m) => { if (/Content Security Policy|hydrat|panicked/i.test(m.text())) refused.push(m.text().slice(0, 300)); });
  await page.exposeFunction('reportViolation', (v: string) => refused.push(v));
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) =>
      (window as any).reportViolation(`${e.violatedDirective}: ${e.blockedURI}`));
  });
  const res = await page.goto('/login');
  const csp = res!.headers()['content-security-policy'];
  expect(csp).toContain("script-src 'self' 'wasm-unsafe-eval' 'nonce-");
  expect(csp).toContain("frame-ancestors 'none'");
  expect(res!.headers()['x-content-type-options']).toBe('nosniff');
  await expect(page.locator('html')).toHaveAttribute('data-hydrated', 'true');
  await signIn(page, 'olivia');
  for (const path of ['/', '/campaigns', '/campaigns/new', '/environments', '/audit', '/account']) {
    await page.goto(path);
    await expect(page.locator('html')).toHaveAttribute('data-hydrated', 'true');
  }
  // The campaign page: charts, traffic bars and the live stream.
  await page.goto('/campaigns');
  const first = page.locator('a[href^="/campaigns/"]').filter({ hasNotText: 'New' }).first();
  if (await first.count()) {
    await first.click();
    await expect(page.locator('html')).toHaveAttribute('data-hydrated', 'true');
    await page.waitForTimeout(1500);
  }
  expect(refused, refused.join('\n')).toEqual([]);
});

test('a user who must change their password is held on the account page until they have', async ({ page, request }, info) => {
  // The admin resets vera's password in the browser and reads the one-time password.
  await signIn(page, 'admin');
  await page.goto('/admin/users');
  await expect(page.locator('html')).toHaveAttribute('data-hydrated', 'true');
  const name = `held-${info.project.name}`;
  await page.getByLabel('User name').fill(name);
  await page.getByLabel('Role', { exact: true }).selectOption('viewer');
  await page.getByLabel(/Initial password/).fill('an initial long password');
  await page.getByRole('button', { name: 'Add user' }).click();
  await expect(page.getByText(`added ${name} as viewer`)).toBeVisible();
  await page.getByRole('button', { name: 'Sign out' }).click();

  await page.goto('/login');
  await page.getByLabel('User name').fill(name);
  await page.getByLabel('Password').fill('an initial long password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page).toHaveURL(/\/account$/);
  await page.goto('/campaigns');
  await expect(page).toHaveURL(/\/account$/, { timeout: 10_000 });
  expect((await page.request.get('/api/v1/campaigns')).status()).toBe(403);
  await expect(page.locator('html')).toHaveAttribute('data-hydrated', 'true');
  await page.getByLabel('Current password').fill('an initial long password');
  await page.getByLabel('New password (at least 12 characters)').fill('my very own password');
  await page.getByLabel('New password again').fill('my very own password');
  await page.getByRole('button', { name: 'Change password' }).click();
  await expect(page.getByTestId('password-changed')).toBeVisible();
  // Still signed in (this session carried over), and free to go anywhere now.
  expect((await page.request.get('/api/v1/campaigns')).status()).toBe(200);
  await page.goto('/campaigns');
  await expect(page).toHaveURL(/\/campaigns$/);
});
