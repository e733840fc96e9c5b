import { test, expect, Page } from '@playwright/test';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { ARTIFACTS, keep, signIn } from './support';

// The public status page end to end: an operator schedules a notifying campaign, an anonymous
// visitor sees it on /status, subscribes through the form, confirms from the e-mail the real
// SMTP server (aiosmtpd, started by start-server.sh) received, and then receives the reminder.

const BASE = `http://127.0.0.1:${Number(process.env.E2E_PORT || 3100)}`;
const MAILDIR = path.join(__dirname, '..', '.data', 'maildir');
// Due 45 s before the start, which is 75 s after scheduling: 30 s to subscribe and confirm.
const REMINDER = '45s';
const LEAD_SECS = 75;



type Mail = { to: string; subject: string; text: string; html: string; attachments: { filename: string; type: string }[] };

/// Every message in the Maildir, parsed by Python's `email` package (MIME, quoted-printable).
function mails(): Mail[] {
  if (!fs.existsSync(path.join(MAILDIR, 'new'))) {
    throw new Error(`no Maildir at ${MAILDIR}: start-server.sh needs aiosmtpd (python3 -m pip install aiosmtpd)`);
  }
  const script = `
import email, json, os, sys
from email import policy
d = sys.argv[1]
out = []
for name in sorted(os.listdir(d)):
    with open(os.path.join(d, name), 'rb') as f:
        m = email.message_from_binary_file(f, policy=policy.default)
    def body(kind):
        p = m.get_body(preferencelist=(kind,))
        return p.get_content() if p is not None else ''
    atts = [{'filename': p.get_filename(), 'type': p.get_content_type()} for p in m.iter_attachments()]
    out.append({'to': str(m['To']), 'subject': str(m['Subject']), 'text': body('plain'), 'html': body('html'), 'attachments': atts})
print(json.dumps(out))
`;
  return JSON.parse(execFileSync('python3', ['-c', script, path.join(MAILDIR, 'new')]).toString());
}

async function mailTo(address: string, subject: string, timeoutMs: number): Promise<Mail> {
  let found: Mail | undefined;
  await expect
    .poll(() => {
      found = mails().find((m) => m.to === address && m.subject.includes(subject));
      return !!found;
    }, { message: `an e-mail to ${address} about "${subject}"`, timeout: timeoutMs, intervals: [250] })
    .toBe(true);
  return found as Mail;
}

test('a scheduled campaign is on the public status page; a visitor subscribes, confirms from the e-mail and gets the reminder', async ({ page, browser }, info) => {
  test.setTimeout(120_000);
  const project = info.project.name;
  const message = `Status e2e (${project}): checkout may be slow for a minute.`;
  const address = `reader-${project}-${Date.now()}@example.test`;

  // An operator schedules a copy of the demo canary that notifies, with a short reminder.
  await signIn(page, 'olivia');
  const scheduled = await page.evaluate(async ({ project, message, lead, reminder }) => {
    const list = await (await fetch('/api/v1/campaigns?q=demo-canary')).json();
    const seeded = list.campaigns.find((c: any) => c.name === 'demo-canary');
    const detail = await (await fetch(`/api/v1/campaigns/${seeded.id}`)).json();
    const start = new Date(Date.now() + lead * 1000);
    const end = new Date(start.getTime() + 3600 * 1000);
    const spec = {
      ...detail.spec,
      name: `status-${project}`,
      window: { start: start.toISOString(), end: end.toISOString(), timezone: 'Europe/Berlin', impact: 'degraded', components: ['checkout'], message },
      communications: { notify: true, audiences: ['customers'], reminders: [reminder] },
    };
    const created = await fetch('/api/v1/campaigns', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(spec) });
    const body = await created.json();
    if (created.status !== 201) return { error: JSON.stringify(body) };
    const id = body.summary.id;
    const res = await fetch(`/api/v1/campaigns/${id}/schedule`, { method: 'POST' });
    return { id, status: (await res.json()).status };
  }, { project, message, lead: LEAD_SECS, reminder: REMINDER });
  expect(scheduled, JSON.stringify(scheduled)).toMatchObject({ status: 'scheduled' });
  const id = (scheduled as { id: number }).id;

  // A visitor with no account sees it on the status page.
  const device = info.project.use;
  const context = () => browser.newContext({
    baseURL: BASE, viewport: device.viewport, deviceScaleFactor: device.deviceScaleFactor,
    isMobile: device.isMobile, hasTouch: device.hasTouch, userAgent: device.userAgent,
  });
  const visitor = await context();
  const pub = await visitor.newPage();
  const res = await pub.goto('/status');
  expect(res?.status()).toBe(200);
  await expect(pub).toHaveURL(/\/status$/);
  const upcoming = pub.locator('section', { has: pub.getByRole('heading', { name: 'Upcoming maintenance' }) });
  await expect(upcoming).toContainText(message);
  await expect(upcoming).toContainText('web: v1 → v2');
  await expect(upcoming).toContainText('degraded performance');
  await expect(pub.getByText('checkout: maintenance scheduled')).toBeVisible();
  await keep(pub, 'status', project);

  // Subscribe through the page's form; the confirmation comes by e-mail.
  await pub.getByLabel('E-mail address').fill(address);
  await pub.getByRole('button', { name: 'Subscribe' }).click();
  await expect(pub.getByRole('heading', { name: 'Check your inbox' })).toBeVisible();
  const confirm = await mailTo(address, 'Confirm your subscription', 20_000);
  const link = confirm.text.split(/\s+/).find((w) => w.includes('/status/confirm?token='));
  expect(link, confirm.text).toBeTruthy();
  expect(link!.startsWith(`${BASE}/status/confirm`), link).toBe(true);
  await pub.goto(link!);
  await expect(pub.getByRole('status')).toContainText(`${address} will get maintenance notices`);

  // The reminder arrives at its offset before the start, with a calendar entry and a way out.
  const reminder = await mailTo(address, 'maintenance in 45 seconds', 60_000);
  expect(reminder.text).toContain(message);
  expect(reminder.text).toContain('Affected: checkout');
  expect(reminder.text).toMatch(/Unsubscribe: http:\/\/127\.0\.0\.1:\d+\/status\/unsubscribe\?token=/);
  expect(reminder.attachments.map((a) => a.type)).toContain('text/calendar');

  // A viewer reads the schedule and the delivery log, but not whom it went to.
  const reader = await context();
  const rpage = await reader.newPage();
  await signIn(rpage, 'vera');
  await rpage.goto(`/campaigns/${id}`);
  const hidden = rpage.getByTestId('campaign-comms').getByTestId('comms-deliveries');
  await expect(hidden.locator('tr', { hasText: 'reminder' }).first()).toContainText('hidden');
  expect(await rpage.content()).not.toContain(address);
  await reader.close();

  // An operator sees the recipients too.
  const viewer = await context();
  const vpage = await viewer.newPage();
  await signIn(vpage, 'olivia');
  await vpage.goto(`/campaigns/${id}`);
  const comms = vpage.getByTestId('campaign-comms');
  await expect(comms.getByTestId('comms-schedule')).toContainText('reminder (45s before)');
  const row = comms.getByTestId('comms-deliveries').locator('tr', { hasText: address }).filter({ hasText: 'reminder' });
  await expect(row).toContainText('sent');
  await expect(row).toContainText('accepted: 250');
  await expect(comms.locator('details.notice-preview').first()).toBeVisible();
  await expect(vpage.locator('html')).toHaveAttribute('data-hydrated', 'true');
  await keep(vpage, 'campaign-comms', project);
  await comms.screenshot({ path: path.join(ARTIFACTS, `${project}-campaign-comms-section.png`) });
  // Wide tables scroll inside their frame; the section itself never widens the page.
  const box = await comms.boundingBox();
  expect(box!.x + box!.width).toBeLessThanOrEqual(vpage.viewportSize()!.width + 1);
  await viewer.close();

  // Unschedule it again: the window is published as cancelled.
  const aborted = await page.evaluate(async (id) => {
    const r = await fetch(`/api/v1/campaigns/${id}/abort`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ reason: 'e2e done' }) });
    return (await r.json()).status;
  }, id);
  expect(aborted).toBe('draft');
  await visitor.close();
});
