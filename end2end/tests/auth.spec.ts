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
