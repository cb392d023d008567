#!/usr/bin/env node
// The end-to-end walk of Avatar Adam in a real Chromium (Debian's, driven by
// playwright-core), against a private instance started like `make run`
// (instance.mjs): the super admin signs in, creates a dealership and a user
// and uploads a TXT and a DOCX; the user chats in training mode, plays one
// role-play turn, talks to Adam through the fake microphone, reports an
// answer and logs out.  Every step is named; the first failure skips the
// rest.  Output is TAP; screenshots of each page, the nginx error log and
// failure screenshots go to the output folder.
//
//   node t/e2e/run.mjs
//
// Environment: AVC_BUILD (avatarctl and the module, default build/),
// AVC_E2E_DIST (the built web app, default html/dist), AVC_E2E_OUT (default
// t/e2e/out), AVC_KEEP=1 keeps the instance's directory.

import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Instance } from './instance.mjs';
import {
  DOCX_NAME,
  SPOKEN_QUESTION,
  TXT_NAME,
  makeSpeechWav,
  writeDocuments,
} from './fixtures.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const top = resolve(here, '../..');
const build = resolve(process.env.AVC_BUILD || join(top, 'build'));
const dist = resolve(process.env.AVC_E2E_DIST || join(top, 'html/dist'));
const outDir = resolve(process.env.AVC_E2E_OUT || join(here, 'out'));
const keep = !!process.env.AVC_KEEP;
const CHROMIUM = '/usr/bin/chromium';

// A step that takes longer than this has hung.
const STEP_TIMEOUT_MS = 60000;
// Waiting for one thing on a page.
const WAIT_MS = 15000;
// The offline responder writes its whole answer at once and hands it out
// in pieces of three words; with its default pace (0 ms) they reach the
// page in one read.  Spaced out, the page can be seen growing the answer
// as it does with a real model.
const LLM = 'offline_pace=25';

let chromium;
try {
  ({ chromium } = createRequire(join(top, 'html/package.json'))('playwright-core'));
} catch {
  console.error('Bail out! playwright-core is not installed: run "cd html && npm ci" (or make web)');
  process.exit(1);
}

// ---------------------------------------------------------------------------
// A tiny step runner: TAP out, the first failure skips the rest.

const steps = [];
const step = (name, fn) => steps.push({ name, fn });
const problems = []; // console errors, page errors, 5xx answers
const expected = []; // the same, where the API documents the failure

// Failures the API documents and a page may meet on purpose (none today:
// without an avatar provider the voice page no longer asks for a session).
const EXPECTED = [];

function problem(text) {
  (EXPECTED.some((re) => re.test(text)) ? expected : problems).push(text);
}

let shotSeq = 0;

const log = (msg) => console.log(`# ${msg}`);

class StepError extends Error {}

function check(cond, message) {
  if (!cond) throw new StepError(message);
}

/** Waits for a locator's state, failing with `what` in the message. */
async function waitFor(locator, what, { state = 'visible', timeout = WAIT_MS } = {}) {
  try {
    await locator.first().waitFor({ state, timeout });
  } catch (err) {
    if (err?.name === 'TimeoutError') throw new StepError(`${what}: not ${state} after ${timeout / 1000} s`);
    throw err;
  }
}

/** Waits until fn (run in the page) returns a truthy value; returns it. */
async function waitUntil(page, what, fn, arg, timeout = WAIT_MS) {
  try {
    const handle = await page.waitForFunction(fn, arg, { timeout, polling: 50 });
    return await handle.jsonValue();
  } catch (err) {
    if (err?.name === 'TimeoutError') throw new StepError(`${what}: not after ${timeout / 1000} s`);
    throw err;
  }
}

/** An unexpected error: its message without colours, the call log cut short. */
function briefly(err) {
  // eslint-disable-next-line no-control-regex
  const text = String(err?.message ?? err).replace(/\x1b\[[0-9;]*m/g, '');
  const lines = text.split('\n');
  const cut = lines.findIndex((l) => l.startsWith('Call log:'));
  const kept = cut === -1 ? lines : lines.slice(0, cut + 8);
  const where = String(err?.stack ?? '')
    .split('\n')
    .find((l) => l.includes('run.mjs'));
  return [...kept, where ? where.trim() : ''].filter(Boolean).join('\n');
}

/** A numbered screenshot; the chat's sticky input box is taken as seen. */
async function shot(page, name, { fullPage = true } = {}) {
  shotSeq += 1;
  const file = join(outDir, `${String(shotSeq).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file, fullPage });
  return file;
}

/** Collects what a page logs as an error, and 5xx answers it gets. */
function watch(page, who) {
  page.on('console', (msg) => {
    if (msg.type() === 'error') {
      const loc = msg.location();
      problem(`${who}: console error: ${msg.text()}${loc?.url ? ` (${loc.url}:${loc.lineNumber})` : ''}`);
    }
  });
  page.on('pageerror', (err) => problem(`${who}: uncaught ${err.name}: ${err.message}`));
  page.on('response', (res) => {
    if (res.status() >= 500) problem(`${who}: ${res.status()} from ${res.request().method()} ${res.url()}`);
  });
  page.setDefaultTimeout(WAIT_MS);
}

// ---------------------------------------------------------------------------
// The walk

const stamp = Date.now().toString(36);
const DEALERSHIP = `E2E Motors ${stamp}`;
const USER = {
  email: `trainee.${stamp}@e2e.example.com`,
  first: 'Terry',
  last: 'Trainee',
  password: `Tr4inee!${stamp}`,
};
const QUESTION = 'What does GAP coverage pay when the vehicle is totaled?';
const ROLEPLAY_LINE =
  'Good afternoon, thanks for choosing us. Before we sign, may I show you the protection options for your new car?';
const REPORT_NOTE = `The answer should mention that GAP is optional (${stamp}).`;

const S = {}; // state shared by the steps

step("the web app is served with conf/'s headers and the SPA fallback", async () => {
  const { url } = S.inst;
  const index = await fetch(`${url}/`);
  check(index.status === 200, `GET / answered ${index.status}`);
  const html = await index.text();
  check(/<div id="root">/.test(html), 'GET / is not the web app');
  const h = index.headers;
  check(h.get('x-content-type-options') === 'nosniff', 'no X-Content-Type-Options: nosniff');
  check(h.get('x-frame-options') === 'DENY', 'no X-Frame-Options: DENY');
  check(/default-src 'self'/.test(h.get('content-security-policy') ?? ''), 'no Content-Security-Policy');
  check(/microphone=\(self\)/.test(h.get('permissions-policy') ?? ''), 'the Permissions-Policy does not allow the microphone');
  check(h.get('cache-control') === 'no-cache', `index.html has Cache-Control ${h.get('cache-control')}`);

  const deep = await fetch(`${url}/knowledge-base?dealership=1`);
  check(deep.status === 200 && (await deep.text()) === html, 'a deep link does not fall back to index.html');

  const asset = html.match(/\/assets\/[^"]+\.js/)?.[0];
  check(asset, 'index.html names no script under /assets/');
  const a = await fetch(`${url}${asset}`);
  check(a.status === 200, `GET ${asset} answered ${a.status}`);
  check(/immutable/.test(a.headers.get('cache-control') ?? ''), `${asset} is not cached as immutable`);
  const missing = await fetch(`${url}/assets/missing-${stamp}.js`);
  check(missing.status === 404, `a missing asset answered ${missing.status}, not 404`);

  const api = await fetch(`${url}/api/v1/no-such-route`);
  const body = await api.json().catch(() => null);
  check(api.status === 404 && body?.error?.type === 'NotFoundError', 'an unknown API path is not a JSON 404');
});

step('the super admin signs in', async () => {
  const page = S.admin;
  await page.goto(`${S.inst.url}/`);
  await page.waitForURL('**/login', { timeout: WAIT_MS });
  await waitFor(page.getByRole('heading', { name: 'Sign in to your account' }), 'the sign-in form');
  await shot(page, 'login');
  await page.locator('#email').fill(S.inst.adminEmail);
  await page.locator('#password').fill(S.inst.adminPassword);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${S.inst.url}/`, { timeout: WAIT_MS });
  await waitFor(page.getByTestId('admin-nav'), 'the administration menu');
  await waitUntil(page, 'the dashboard title', () => document.title.startsWith('Dashboard'));
  await shot(page, 'dashboard-admin');
});

step('the super admin creates a dealership', async () => {
  const page = S.admin;
  await page.getByTestId('admin-nav-dealerships').click();
  await waitFor(page.getByRole('heading', { name: 'Dealerships', level: 1 }), 'the dealerships page');
  await page.getByTestId('dealership-create-open').click();
  await waitFor(page.getByTestId('dealership-form'), 'the dealership form');
  await page.getByTestId('dealership-form-name').fill(DEALERSHIP);
  await page.getByTestId('dealership-form-email').fill('office@e2e-motors.example.com');
  await shot(page, 'dealership-form');
  await page.getByTestId('dealership-form-submit').click();
  const row = page.locator(`[data-testid="dealership-row"][data-name="${DEALERSHIP}"]`);
  await waitFor(row, `the new dealership "${DEALERSHIP}" in the list`);
  await waitFor(page.getByTestId('dealerships-notice').getByText(`Created ${DEALERSHIP}.`), 'the "Created" notice');
  S.dealershipId = Number(await row.getAttribute('data-dealership-id'));
  check(S.dealershipId > 0, 'the dealership row carries no id');
  await shot(page, 'dealerships');
});

step('the super admin creates a user of that dealership', async () => {
  const page = S.admin;
  await page.getByTestId('admin-nav-users').click();
  await waitFor(page.getByRole('heading', { name: 'Users', level: 1 }), 'the users page');
  await page.getByTestId('user-create-open').click();
  const form = page.getByTestId('user-create-form');
  await waitFor(form, 'the user form');
  await form.getByTestId('user-form-email').fill(USER.email);
  await form.getByTestId('user-form-first-name').fill(USER.first);
  await form.getByTestId('user-form-last-name').fill(USER.last);
  await form.getByTestId('user-form-password').fill(USER.password);
  await form.getByTestId('user-form-role').selectOption('user');
  await form.getByTestId('user-form-dealership').selectOption(String(S.dealershipId));
  await shot(page, 'user-form');
  await form.getByTestId('user-form-submit').click();
  const row = page.locator(`[data-testid="user-row"][data-email="${USER.email}"]`);
  await waitFor(row, `the new user ${USER.email} in the list`);
  check((await row.getAttribute('data-active')) === 'true', 'the new user is not active');
  check((await row.innerText()).includes(DEALERSHIP), 'the new user is not shown with its dealership');
  await shot(page, 'users');
});

step('the super admin initialises the knowledge base', async () => {
  const page = S.admin;
  await page.getByTestId('admin-nav-knowledge-base').click();
  await waitFor(page.getByRole('heading', { name: 'Knowledge base', level: 1 }), 'the knowledge-base page');
  await page.getByTestId('kb-dealership-select').selectOption(String(S.dealershipId));
  await waitFor(page.locator('[data-testid="kb-status-initialized"][data-initialized="false"]'), 'the "not initialised" status');
  await page.getByTestId('kb-initialize').click();
  await waitFor(page.locator('[data-testid="kb-status-initialized"][data-initialized="true"]'), 'the initialised status');
  await waitFor(page.getByTestId('kb-notice').getByText(DEALERSHIP), 'the "RAG initialized" notice');
});

step('the super admin uploads a TXT and a DOCX, each row shows its progress up to ready', async () => {
  const page = S.admin;
  await page.getByTestId('kb-topic-select').selectOption('product_knowledge');
  // Record every state each upload row goes through.
  await page.evaluate(() => {
    const seen = [];
    const last = new Map();
    const snap = () => {
      for (const row of document.querySelectorAll('[data-testid="upload-row"]')) {
        const bar = row.querySelector('[data-testid="upload-row-progress"]');
        const s = {
          name: row.getAttribute('data-filename'),
          state: row.getAttribute('data-state'),
          status: row.getAttribute('data-status'),
          progress: bar ? bar.getAttribute('data-value') : null,
          label: row.querySelector('[data-testid="upload-row-status"]')?.textContent ?? '',
        };
        const key = JSON.stringify(s);
        if (last.get(s.name) !== key) {
          last.set(s.name, key);
          seen.push({ t: Math.round(performance.now()), ...s });
        }
      }
    };
    new MutationObserver(snap).observe(document.body, { subtree: true, childList: true, attributes: true, characterData: true });
    window.__e2eUploads = seen;
  });
  // Slow the upload down so that its progress is visible.
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Network.enable');
  await cdp.send('Network.emulateNetworkConditions', {
    offline: false,
    latency: 0,
    downloadThroughput: -1,
    uploadThroughput: 64 * 1024,
  });
  await page.getByTestId('kb-file-input').setInputFiles([S.files.txt, S.files.docx]);
  const rows = page.getByTestId('upload-row');
  await waitFor(rows.nth(1), 'two rows waiting for the upload');
  check((await rows.count()) === 2, `${await rows.count()} upload rows, not 2`);
  await page.getByTestId('kb-upload-button').click();
  await waitFor(page.locator('[data-testid="upload-row"][data-state="uploading"]'), 'a row uploading');
  // a picture half-way through, if the poll catches one (checked below)
  await page
    .waitForFunction(
      () => {
        const v = Number(document.querySelector('[data-testid="upload-row-progress"]')?.getAttribute('data-value'));
        return v > 0 && v < 100;
      },
      undefined,
      { timeout: 5000, polling: 20 },
    )
    .catch(() => {});
  await shot(page, 'knowledge-base-uploading');
  let ended;
  try {
    // both rows ready, or one of them stopped for good
    ended = await waitUntil(
      page,
      'both upload rows ready',
      () => {
        const rows = [...document.querySelectorAll('[data-testid="upload-row"]')].map((r) => ({
          name: r.getAttribute('data-filename'),
          status: r.getAttribute('data-status'),
          error: r.querySelector('[data-testid="upload-row-error"]')?.textContent ?? '',
        }));
        const over = (r) => ['ready', 'failed', 'invalid', 'cancelled', 'removed'].includes(r.status);
        return rows.length === 2 && (rows.every((r) => r.status === 'ready') || rows.some((r) => over(r) && r.status !== 'ready'))
          ? rows
          : null;
      },
      undefined,
      30000,
    );
  } finally {
    await cdp
      .send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 })
      .then(() => cdp.detach())
      .catch(() => {});
  }
  for (const r of ended) check(r.status === 'ready', `${r.name}: ${r.status}${r.error ? `: ${r.error}` : ''}`);
  const seen = await page.evaluate(() => window.__e2eUploads);
  writeFileSync(join(outDir, 'upload-rows.json'), JSON.stringify(seen, null, 1));
  for (const name of [TXT_NAME, DOCX_NAME]) {
    const mine = seen.filter((s) => s.name === name);
    const uploading = mine.filter((s) => s.state === 'uploading');
    check(uploading.length > 0, `${name}: the row never showed "uploading"`);
    const values = uploading.map((s) => Number(s.progress)).filter((v) => !Number.isNaN(v));
    check(values.every((v, i) => i === 0 || v >= values[i - 1]), `${name}: the upload progress went backwards: ${values}`);
    check(values.some((v) => v > 0 && v < 100), `${name}: no progress between 0 and 100 % was shown: ${values}`);
    const end = mine[mine.length - 1];
    check(end.status === 'ready' && end.progress === '100', `${name}: the row ended ${end.status} at ${end.progress} %`);
    check(/Ready · \d+ chunk/.test(end.label), `${name}: the ready row says "${end.label}"`);
    const doc = page.locator(`[data-testid="doc-row"][data-filename="${name}"]`);
    await waitFor(doc, `${name} in the document list`);
    await waitFor(doc.locator('[data-testid="doc-row-status"][data-status="ready"]'), `${name} ready in the document list`);
  }
  await waitFor(page.getByTestId('kb-total-documents').getByText('2', { exact: true }), 'the status counting 2 documents');
  await shot(page, 'knowledge-base');
});

step('the new user signs in', async () => {
  const page = S.user;
  await page.goto(`${S.inst.url}/login`);
  await page.locator('#email').fill(USER.email);
  await page.locator('#password').fill(USER.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${S.inst.url}/`, { timeout: WAIT_MS });
  await waitFor(page.getByText(`${USER.first} ${USER.last}`), "the user's name in the header");
  check((await page.getByTestId('admin-nav').count()) === 0, 'a trainee sees the administration menu');
  await shot(page, 'dashboard-user');
});

/** Records the length of the last answer's text each time it changes. */
async function recordAnswerGrowth(page) {
  await page.evaluate(() => {
    const samples = [];
    const list = document.querySelector('[data-testid="message-list"]');
    new MutationObserver(() => {
      const answers = list.querySelectorAll('[data-testid="streamed-answer"]');
      const a = answers[answers.length - 1];
      if (!a) return;
      const n = a.textContent.length;
      if (samples.length === 0 || samples[samples.length - 1].n !== n) {
        samples.push({ t: performance.now(), n, state: a.getAttribute('data-state') });
      }
    }).observe(list, { subtree: true, childList: true, characterData: true, attributes: true });
    window.__e2eGrowth = samples;
  });
}

async function send(page, text) {
  await page.getByTestId('chat-input').fill(text);
  await page.getByTestId('send-button').click();
}

/** Waits for the last answer to end; fails with its error if it failed. */
async function lastAnswerDone(page, what) {
  const last = page.getByTestId('assistant-message').last();
  await waitFor(last, what);
  await waitFor(page.locator('[data-testid="assistant-message"]:last-child:not([data-state="streaming"])'), `the end of ${what}`, {
    timeout: 30000,
  });
  const state = await last.getAttribute('data-state');
  if (state !== 'done') {
    const why = await last.getByTestId('answer-error').allInnerTexts();
    throw new StepError(`${what} ended ${state}${why.length ? `: ${why.join(' ')}` : ''}`);
  }
  return last;
}

step('training chat: the answer streams in with its sources', async () => {
  const page = S.user;
  await page.getByTestId('nav-chat').click();
  await waitFor(page.getByRole('heading', { name: 'Ask Adam', level: 1 }), 'the chat page');
  check(await page.getByTestId('mode-training').isChecked(), 'the chat does not start in training mode');
  await recordAnswerGrowth(page);
  await send(page, QUESTION);
  await waitFor(page.getByTestId('user-message').getByText(QUESTION), 'the question in the conversation');
  const answer = await lastAnswerDone(page, "Adam's answer");
  const growth = await page.evaluate(() => window.__e2eGrowth);
  writeFileSync(join(outDir, 'answer-growth.json'), JSON.stringify(growth, null, 1));
  const streaming = growth.filter((g) => g.state === 'streaming' && g.n > 0);
  check(
    streaming.length >= 3,
    `the answer did not grow while streaming: ${streaming.length} partial texts (${growth.map((g) => g.n).join(', ')})`,
  );
  check(
    streaming.every((g, i) => i === 0 || g.n > streaming[i - 1].n),
    'the streamed answer shrank while streaming',
  );
  const span = streaming[streaming.length - 1].t - streaming[0].t;
  check(span > 100, `the partial answers came within ${Math.round(span)} ms, not over time`);
  const text = (await answer.getByTestId('streamed-answer').innerText()).trim();
  check(text.length > 40, `the answer is too short: "${text}"`);
  check(/GAP/i.test(text), `the answer does not come from the GAP guide: "${text}"`);
  const sources = answer.getByTestId('source');
  await waitFor(sources, 'the sources of the answer');
  const names = await sources.allInnerTexts();
  check(names.some((n) => n.includes(TXT_NAME)), `the sources do not name ${TXT_NAME}: ${names.join(' | ')}`);
  await waitFor(answer.getByTestId('report-inaccuracy'), 'the report button under the answer');
  S.answerText = text;
  await shot(page, 'chat-training', { fullPage: false });
});

step('role-play: one turn with a chosen customer', async () => {
  const page = S.user;
  await page.getByTestId('mode-switch').locator('label', { hasText: 'Role-play' }).click();
  check(await page.getByTestId('mode-roleplay').isChecked(), 'the role-play switch is not on');
  await waitFor(page.getByRole('heading', { name: 'Role-play', level: 1 }), 'the role-play heading');
  const picker = page.getByTestId('scenario-picker');
  await waitFor(page.locator('[data-testid="scenario-picker"]:enabled'), 'the scenario picker');
  const options = await picker.locator('option').evaluateAll((os) => os.map((o) => o.value).filter(Boolean));
  check(options.length > 0, 'no role-play scenario to choose from');
  await picker.selectOption(options[0]);
  await waitFor(page.getByText('About this customer'), 'the card of the chosen customer');
  await page.locator('details summary', { hasText: 'About this customer' }).click();
  const opening = page.locator('dt', { hasText: 'The customer opens with' }).locator('xpath=following-sibling::dd[1]');
  await waitFor(opening, "the customer's opening line on the card");
  const openingLine = (await opening.innerText()).replace(/^[“"]|[”"]$/g, '').trim();
  check((await page.getByTestId('assistant-message').count()) === 0, 'role-play did not start a new conversation');
  await send(page, ROLEPLAY_LINE);
  const answer = await lastAnswerDone(page, "the customer's answer");
  const text = (await answer.getByTestId('streamed-answer').innerText()).trim();
  check(text.length > 10, `the customer's answer is empty or too short: "${text}"`);
  check((await answer.getByText('Customer', { exact: true }).count()) === 1, 'the answer is not labelled as the customer');
  // the offline responder's customer opens with the chosen scenario's line
  check(text.includes(openingLine), `the customer did not open with the chosen scenario's line "${openingLine}": "${text}"`);
  await waitFor(answer.getByTestId('offline-notice'), 'the offline-mode note under the answer');
  await shot(page, 'chat-roleplay', { fullPage: false });
});

step('voice: a spoken question through the fake microphone, heard back', async () => {
  await voiceTurn(S.user);
});

step('the user reports an answer as inaccurate', async () => {
  const page = S.user;
  await page.getByTestId('nav-chat').click();
  await waitFor(page.getByTestId('session-list'), 'the list of sessions');
  // the training session, from the server's history
  await page.getByTestId('session-list').getByRole('button', { name: /GAP/ }).first().click();
  const answer = page.locator('[data-testid="assistant-message"]', { hasText: S.answerText.slice(0, 40) });
  await waitFor(answer, 'the training answer reloaded from the history');
  await answer.getByTestId('report-inaccuracy').click();
  const dialog = page.getByTestId('report-dialog');
  await waitFor(dialog, 'the report dialog');
  await dialog.locator('textarea').fill(REPORT_NOTE);
  await shot(page, 'report-dialog');
  await page.getByTestId('report-dialog-submit').click();
  await waitFor(dialog.getByText('Thank you for your feedback'), 'the confirmation of the report');
  await shot(page, 'report-sent');
  await dialog.getByRole('button', { name: 'Close' }).click();
  await waitFor(dialog, 'the report dialog closing', { state: 'hidden' });
  // stored, then mailed to the recipients (the outbox of the embedded mail)
  const mail = await waitForMail(S.inst, REPORT_NOTE, 10000);
  check(mail, `no mail of the report reached ${S.inst.reportsTo} (outbox ${S.inst.outboxDir()})`);
  check(mail.includes(`To: ${S.inst.reportsTo}`), 'the report mail is not addressed to the recipients');
  check(mail.includes(`Inaccuracy report from ${DEALERSHIP}`), "the report mail's subject does not name the dealership");
});

/** The first mail of the outbox whose text has `needle`, or null after ms. */
async function waitForMail(inst, needle, ms) {
  const deadline = Date.now() + ms;
  for (;;) {
    for (const f of readdirSync(inst.outboxDir()).filter((n) => n.endsWith('.eml'))) {
      // quoted-printable soft line breaks joined
      const text = readFileSync(join(inst.outboxDir(), f), 'utf8').replace(/=\r?\n/g, '');
      if (text.includes(needle)) return text;
    }
    if (Date.now() > deadline) return null;
    await new Promise((r) => setTimeout(r, 100));
  }
}

step('the super admin finds the report', async () => {
  const page = S.admin;
  await page.getByTestId('admin-nav-reports').click();
  await waitFor(page.getByRole('heading', { name: 'Reports', level: 1 }), 'the reports page');
  const row = page.getByTestId('report-row').filter({ hasText: USER.email });
  await waitFor(row, "the user's report in the list");
  check((await row.getAttribute('data-status')) === 'open', 'the new report is not open');
  await row.getByTestId('report-review').click();
  await waitFor(page.getByTestId('report-content').getByText(REPORT_NOTE), 'the note in the report');
  const mailed = (await page.getByTestId('report-mailed').textContent()) ?? '';
  check(mailed.startsWith('mailed to the team'), `the report does not say it was mailed: "${mailed}"`);
  await shot(page, 'report-review');
  await page.keyboard.press('Escape');
});

step('the user logs out: back at /login and the refresh token revoked', async () => {
  const page = S.user;
  const token = await page.evaluate(() => sessionStorage.getItem('avatar-adam.refresh-token'));
  check(token && token.length > 20, 'no refresh token in sessionStorage before logging out');
  // a live refresh token: refused afterwards only because of the logout
  const claims = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString() || 'null');
  check(claims?.type === 'refresh' && claims.exp * 1000 > Date.now() + 60000, 'the stored token is no live refresh token');
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.waitForURL('**/login', { timeout: WAIT_MS });
  await waitFor(page.getByRole('heading', { name: 'Sign in to your account' }), 'the sign-in form after logout');
  await shot(page, 'logged-out');
  const left = await page.evaluate(() => sessionStorage.getItem('avatar-adam.refresh-token'));
  check(left === null, 'the refresh token is still in sessionStorage');
  const r = await fetch(`${S.inst.url}/api/v1/auth/refresh`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ refresh_token: token }),
  });
  const body = await r.json().catch(() => null);
  check(r.status === 401, `a refresh with the logged-out token answered ${r.status}, not 401`);
  check(body?.error?.type === 'AuthenticationError', 'the refused refresh is not in the API error shape');
  await page.goto(`${S.inst.url}/chat`);
  await page.waitForURL('**/login', { timeout: WAIT_MS });
});

// ---------------------------------------------------------------------------
// Voice

async function voiceTurn(page) {
  await page.getByTestId('nav-voice').click();
  await waitFor(page.getByRole('heading', { name: 'Voice call with Adam', level: 1 }), 'the voice page');
  check(await page.getByTestId('voice-mode-training').isChecked(), 'the voice call does not start in training mode');
  await waitFor(
    page.locator('[data-testid="avatar-provider"][data-provider="builtin"]'),
    'the note that the built-in avatar is used (no avatar provider configured)',
  );
  await waitFor(page.locator('[data-testid="voice-state"][data-state="idle"]'), 'the call state "not in a call"');
  // Record the states the call goes through.
  await page.evaluate(() => {
    const states = [];
    const el = document.querySelector('[data-testid="voice-state"]');
    const note = () => {
      const s = el.getAttribute('data-state');
      if (states[states.length - 1] !== s) states.push(s);
    };
    new MutationObserver(note).observe(el, { attributes: true, attributeFilter: ['data-state'] });
    window.__e2eVoiceStates = states;
  });
  await shot(page, 'voice');

  // The fake microphone plays the question once (leading silence, the
  // question, silence): the server ends the turn itself.
  await page.getByTestId('voice-call-button').click();
  await waitFor(page.locator('[data-testid="voice-state"][data-state="listening"], [data-testid="voice-state"][data-state="user_speaking"]'),
    'the call listening');
  const said = page.locator('[data-testid="voice-turn"][data-role="user"]');
  await waitFor(said, 'the transcript of the spoken question', { timeout: 30000 });
  const heard = (await said.first().innerText()).replace(/^You\s*/, '').trim();
  check(heard.length > 0, 'the transcript of the spoken question is empty');
  const adam = page.locator('[data-testid="voice-turn"][data-role="adam"]');
  await waitFor(adam, "Adam's answer in the transcript", { timeout: 30000 });
  await waitFor(page.locator('[data-testid="voice-turn"][data-role="adam"][data-state="done"]'), "Adam's complete answer", {
    timeout: 30000,
  });
  const answer = (await adam.first().innerText()).replace(/^Adam\s*/, '').trim();
  check(answer.length > 20, `Adam's spoken answer is too short: "${answer}"`);
  // Adam's voice: PCM received, scheduled on the AudioContext, and the
  // first buffers played out by it (the whole answer takes half a minute:
  // the call is ended while Adam speaks).
  const stats = await waitUntil(
    page,
    "Adam's audio played through the AudioContext",
    () => {
      const s = window.__avatarVoice;
      return s && s.chunksEnded >= 4 ? JSON.parse(JSON.stringify(s)) : null;
    },
    undefined,
    30000,
  );
  const states = await page.evaluate(() => window.__e2eVoiceStates);
  writeFileSync(join(outDir, 'voice-stats.json'), JSON.stringify({ heard, answer, states, stats }, null, 1));
  log(`voice: asked "${SPOKEN_QUESTION}", heard "${heard}"; ${stats.framesSent} frames sent, ${stats.bytesReceived} bytes of audio back, ` +
    `${stats.chunksPlayed} buffers (${stats.secondsScheduled.toFixed(1)} s) played; states ${states.join(' > ')}`);
  check(stats.framesSent > 100, `only ${stats.framesSent} microphone frames were sent`);
  check(stats.bytesReceived > 16000, `only ${stats.bytesReceived} bytes of audio came back`);
  check(stats.audioMessages > 0 && stats.chunksPlayed > 0, 'no audio was scheduled on the AudioContext');
  check(stats.secondsScheduled > 1, `only ${stats.secondsScheduled} s of Adam's voice were scheduled`);
  check(stats.sampleRate > 0, 'the AudioContext has no sample rate');
  check(stats.playbackEnd > 0, 'the AudioContext never advanced');
  check(stats.visemes > 0, "no lip-sync (viseme) data came with Adam's voice");
  check(stats.bargeIns === 0 && stats.interruptedReceived === 0, 'the answer was interrupted');
  check(states.includes('user_speaking'), `the call never noticed the user speaking: ${states}`);
  check(states.includes('adam_speaking'), `the call never showed Adam speaking: ${states}`);
  await shot(page, 'voice-answered');
  await page.getByTestId('voice-call-button').click();
  await waitFor(page.locator('[data-testid="voice-state"][data-state="ended"]'), 'the call ended');
  check((await page.getByTestId('voice-error').count()) === 0, `the call shows an error: ${await page.getByTestId('voice-error').allInnerTexts()}`);
}

// ---------------------------------------------------------------------------
// Main

async function main() {
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  const work = mkdtempSync(join(tmpdir(), 'avatar-e2e-files-'));
  const t0 = Date.now();
  let failed = false;
  let n = 0;
  const ok = (good, name, extra = '') => {
    n += 1;
    console.log(`${good ? 'ok' : 'not ok'} ${n} - ${name}${extra}`);
    if (!good) failed = true;
  };

  S.inst = new Instance({ top, build, dist, llm: LLM, log });
  let browser;
  const stopAll = async () => {
    if (browser) await browser.close().catch(() => {});
    browser = null;
    await S.inst.stop();
  };
  const removeAll = () => {
    if (keep) log(`kept ${S.inst.dir}`);
    else S.inst.remove();
    rmSync(work, { recursive: true, force: true });
  };
  // A signal ends the walk: closing the browser fails the running step, the
  // rest is skipped and the finally below stops everything.  A second one
  // kills at once.
  let interrupted = null;
  const onSignal = (sig) => {
    interrupted = sig;
    log(`${sig}: stopping`);
    browser?.close().catch(() => {});
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  try {
    try {
      S.files = writeDocuments(work);
      S.wav = makeSpeechWav(work);
      await S.inst.start();
      browser = await chromium.launch({
        executablePath: CHROMIUM,
        headless: true,
        // signals are ours (onSignal): the instance must be stopped too
        handleSIGINT: false,
        handleSIGTERM: false,
        handleSIGHUP: false,
        args: [
          '--no-sandbox',
          '--disable-gpu',
          '--disable-background-networking',
          '--disable-component-update',
          '--disable-sync',
          '--no-first-run',
          '--use-fake-device-for-media-stream',
          '--use-fake-ui-for-media-stream',
          `--use-file-for-fake-audio-capture=${S.wav}%noloop`,
        ],
      });
      const viewport = { width: 1280, height: 900 };
      S.adminCtx = await browser.newContext({ viewport });
      S.userCtx = await browser.newContext({ viewport });
      await S.userCtx.grantPermissions(['microphone'], { origin: S.inst.url });
      S.admin = await S.adminCtx.newPage();
      S.user = await S.userCtx.newPage();
      watch(S.admin, 'admin');
      watch(S.user, 'user');
      if (interrupted) throw new Error(`stopped by ${interrupted}`);
      ok(true, 'the documents, the spoken question, an instance like make run and Chromium', ` (${Date.now() - t0} ms)`);
    } catch (err) {
      ok(false, 'the documents, the spoken question, an instance like make run and Chromium');
      console.log(`  # ${String(err.stack || err).split('\n').join('\n  # ')}`);
      for (const s of steps) ok(true, s.name, ' # SKIP the instance did not start');
      return;
    }

    let stopped = null;
    for (const s of steps) {
      if (stopped || interrupted) {
        ok(true, s.name, stopped ? ` # SKIP after "${stopped}" failed` : ` # SKIP stopped by ${interrupted}`);
        continue;
      }
      const t = Date.now();
      let timer;
      try {
        await Promise.race([
          s.fn(),
          new Promise((_, reject) => {
            timer = setTimeout(() => reject(new StepError(`the step took more than ${STEP_TIMEOUT_MS / 1000} s`)), STEP_TIMEOUT_MS);
          }),
        ]);
        ok(true, s.name, ` (${Date.now() - t} ms)`);
      } catch (err) {
        ok(false, s.name, ` (${Date.now() - t} ms)`);
        const msg = err instanceof StepError ? err.message : briefly(err);
        console.log(`  # ${msg.split('\n').join('\n  # ')}`);
        for (const [who, page] of [['user', S.user], ['admin', S.admin]]) {
          const file = join(outDir, `failed-${who}.png`);
          await page?.screenshot({ path: file, fullPage: true }).then(
            () => console.log(`  # screenshot of the ${who}'s page: ${file}`),
            () => {},
          );
        }
        stopped = s.name;
      } finally {
        clearTimeout(timer);
      }
    }

    for (const p of expected) log(`expected: ${p}`);
    for (const p of problems) log(p);
    ok(problems.length === 0, 'the pages logged no errors and got no 5xx answers', problems.length ? ` (${problems.length})` : '');
  } finally {
    const shots = readdirSync(outDir).filter((f) => f.endsWith('.png')).length;
    await stopAll();
    if (S.inst.errorLog) {
      // read once nginx has exited: sanitizers report at exit
      const logProblems = S.inst.logProblems();
      try {
        copyFileSync(S.inst.errorLog, join(outDir, 'nginx-error.log'));
      } catch {
        // no log written
      }
      for (const l of logProblems.slice(0, 20)) log(l);
      ok(logProblems.length === 0, "nginx's error log has no [alert], [crit] or [emerg] line nor sanitizer report");
    }
    removeAll();
    log(`${shots} screenshots in ${outDir}; ${((Date.now() - t0) / 1000).toFixed(1)} s in all`);
    console.log(`1..${n}`);
    process.exitCode = interrupted ? 130 : failed ? 1 : 0;
  }
}

await main();
