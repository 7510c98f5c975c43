// forgelet's real-browser test: the system's headless Chromium, driven by playwright-core, uses a
// running site the way a person would. Started by run.sh, which sets up the site and passes:
//   BASE_URL            the site's base URL, e.g. http://127.0.0.1:PORT/git
//   FORGELET_USER       an existing user, and FORGELET_PASSWORD their password
//   CHROMIUM_BIN        the browser (Debian's chromium; never a downloaded one)
//   SCREENSHOT_DIR      where the screenshots go
//   PROFILE_DIR         a fresh, empty directory for the browser profile
import { strict as assert } from 'node:assert';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const env = (name) => {
  const v = process.env[name];
  if (!v) {
    console.error(`ui.mjs: ${name} is not set (run tests/browser/run.sh)`);
    process.exit(2);
  }
  return v;
};
const BASE = env('BASE_URL').replace(/\/$/, '');
const USER = env('FORGELET_USER');
const PASSWORD = env('FORGELET_PASSWORD');
const SHOTS = env('SCREENSHOT_DIR');
mkdirSync(SHOTS, { recursive: true });
rmSync(join(SHOTS, 'failure.png'), { force: true });

const REPO = 'hello-browser';
const DESCRIPTION = 'Made by the browser test';
const LAPTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };

const t0 = Date.now();
let steps = 0;
async function step(name, fn) {
  const start = Date.now();
  try {
    await fn();
  } catch (e) {
    console.error(`not ok - ${name}\n${e?.stack ?? e}`);
    throw e;
  }
  steps += 1;
  console.log(`ok - ${name} (${Date.now() - start} ms)`);
}

const CHROMIUM = env('CHROMIUM_BIN');
const context = await chromium.launchPersistentContext(env('PROFILE_DIR'), {
  executablePath: CHROMIUM,
  headless: true,
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
  viewport: LAPTOP,
  timeout: 20_000,
}).catch((e) => {
  console.error(`ui.mjs: could not start Chromium (${CHROMIUM}):\n${e.message.split('\n').slice(0, 12).join('\n')}`);
  process.exit(1);
});
context.setDefaultTimeout(10_000);
context.setDefaultNavigationTimeout(10_000);

// The browser asks the host (outside forgelet's base path) for /favicon.ico on its own.
const isFavicon = (url) => (url ?? '').endsWith('/favicon.ico');
// What the site does wrong shows up here: script errors, console errors (a CSP violation is
// one), and failed or 4xx/5xx subresources (a missing stylesheet).
const problems = [];
const page = context.pages()[0] ?? (await context.newPage());
page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
page.on('console', (m) => {
  if (m.type() === 'error' && !isFavicon(m.location()?.url)) {
    problems.push(`console error: ${m.text()} (${m.location()?.url ?? ''})`);
  }
});
page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));
page.on('response', (r) => {
  if (r.status() >= 400 && !isFavicon(r.url())) {
    problems.push(`HTTP ${r.status()} for ${r.url()}`);
  }
});

const pathOf = (url) => new URL(url).pathname;
const BASE_PATH = new URL(BASE).pathname.replace(/\/$/, '');
const repoPath = `${BASE_PATH}/${USER}/${REPO}`;

// Fails unless the page (at any width) scrolls sideways: a layout that does not fit.
async function assertNoSidewaysScroll(what) {
  const { scroll, client } = await page.evaluate(() => ({
    scroll: document.documentElement.scrollWidth,
    client: document.documentElement.clientWidth,
  }));
  assert.ok(scroll <= client, `${what}: the page is ${scroll}px wide in a ${client}px window`);
}

let ok = false;
try {
  await step('sign in', async () => {
    await page.goto(`${BASE}/-/login`);
    assert.match(await page.title(), /^Sign in/, 'login page title');
    await page.fill('input[name="user"]', USER);
    await page.fill('input[name="password"]', PASSWORD);
    await Promise.all([
      page.waitForURL((u) => pathOf(u) === `${BASE_PATH}/`),
      page.getByRole('button', { name: 'Sign in' }).click(),
    ]);
    await page.getByRole('heading', { name: 'Your repositories' }).waitFor();
    const cookies = await context.cookies(BASE);
    assert.ok(cookies.length > 0, 'a session cookie after signing in');
    for (const c of cookies) {
      assert.ok(c.httpOnly, `cookie ${c.name} is HttpOnly`);
      assert.equal(c.sameSite, 'Lax', `cookie ${c.name} is SameSite=Lax`);
    }
  });

  await step('create a repository with a README through the form', async () => {
    await Promise.all([
      page.waitForURL((u) => pathOf(u).endsWith("/-/new")),
      page.getByRole('link', { name: 'New repository' }).click(),
    ]);
    await page.fill('input[name="name"]', REPO);
    await page.fill('input[name="description"]', DESCRIPTION);
    await page.check('input[name="visibility"][value="public"]');
    await page.check('input[name="readme"]');
    await Promise.all([
      page.waitForURL((u) => pathOf(u) === repoPath),
      page.getByRole('button', { name: 'Create repository' }).click(),
    ]);
  });

  await step('the repository home shows its clone URL, files and README', async () => {
    assert.equal(await page.inputValue('input#clone-url'), `${BASE}/${USER}/${REPO}.git`);
    await page.locator('table.files a', { hasText: 'README.md' }).waitFor();
    const readme = page.locator('article.readme');
    await readme.getByRole('heading', { name: REPO }).waitFor();
    assert.ok((await readme.innerText()).includes(DESCRIPTION), 'README shows the description');
    await assertNoSidewaysScroll('repository home at 1280px');
    await page.screenshot({ path: join(SHOTS, 'repo-home.png'), fullPage: true });
  });

  await step('each file shows its last change, dated "ago" with the exact time on hover', async () => {
    const row = page.locator('table.files tr', { hasText: 'README.md' });
    assert.equal((await row.locator('td.last').innerText()).trim(), 'Initial commit');
    const when = row.locator('td.when time');
    assert.match((await when.innerText()).trim(), /^(just now|a minute ago|\d+ minutes ago)$/);
    assert.match(await when.getAttribute('title'), /^\d{4}-\d\d-\d\d \d\d:\d\d [+-]\d{4}$/);
  });

  await step('the repository home fits a phone', async () => {
    await page.setViewportSize(PHONE);
    await page.reload();
    await page.locator('input#clone-url').waitFor();
    await page.screenshot({ path: join(SHOTS, 'repo-home-phone.png'), fullPage: true });
    await assertNoSidewaysScroll('repository home at 390px');
    await page.setViewportSize(LAPTOP);
  });

  await step('README.md opens on its blob page with line 1', async () => {
    await Promise.all([
      page.waitForURL((u) => pathOf(u) === `${repoPath}/blob/main/README.md`),
      page.locator('table.files a', { hasText: 'README.md' }).click(),
    ]);
    const line1 = page.locator('table.code tr#L1');
    assert.equal((await line1.locator('td.src').innerText()).trim(), `# ${REPO}`);
  });

  await step('the highlighted README is coloured in the light and the dark scheme', async () => {
    // Still on README.md's blob page: its heading is a highlighted token.
    const token = page.locator('table.code tr#L1 td.src span[class^="hl-"]').first();
    await token.waitFor();
    const colours = async () =>
      token.evaluate((el) => ({
        token: getComputedStyle(el).color,
        text: getComputedStyle(el.closest('td')).color,
        background: getComputedStyle(document.body).backgroundColor,
      }));
    const luminance = (css) => {
      const [r, g, b] = css.match(/[\d.]+/g).slice(0, 3).map(Number);
      return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255;
    };
    await page.emulateMedia({ colorScheme: 'light' });
    const light = await colours();
    await page.screenshot({ path: join(SHOTS, 'blob-light.png') });
    await page.emulateMedia({ colorScheme: 'dark' });
    const dark = await colours();
    await page.screenshot({ path: join(SHOTS, 'blob-dark.png') });
    await page.emulateMedia({ colorScheme: null });
    console.log(`# token colours: light ${light.token} on ${light.background}, dark ${dark.token} on ${dark.background}`);
    assert.notEqual(light.token, light.text, 'the token is coloured in the light scheme');
    assert.notEqual(dark.token, dark.text, 'the token is coloured in the dark scheme');
    assert.ok(luminance(light.background) > 0.8 && luminance(light.token) < 0.6, `light: ${JSON.stringify(light)}`);
    assert.ok(luminance(dark.background) < 0.2 && luminance(dark.token) > 0.4, `dark: ${JSON.stringify(dark)}`);
  });

  await step("the file's History link lists the commit that made it", async () => {
    await Promise.all([
      page.waitForURL((u) => pathOf(u) === `${repoPath}/commits/main/README.md`),
      page.locator('.filebar').getByRole('link', { name: 'History' }).click(),
    ]);
    await page.getByText('Initial commit').first().waitFor();
    await page.goBack();
  });

  await step("README.md's blame gives each line its commit, author and date", async () => {
    // The file page links its blame; until it does, go there by URL.
    const blame = page.locator('.filebar').getByRole('link', { name: 'Blame' });
    if (await blame.count()) {
      await Promise.all([page.waitForURL((u) => pathOf(u).includes('/blame/')), blame.click()]);
    } else {
      console.log('# no Blame link on the file page; opening blame/main/README.md by URL');
      const r = await page.goto(`${BASE}/${USER}/${REPO}/blame/main/README.md`);
      assert.equal(r.status(), 200, `GET blame/main/README.md answered ${r.status()}`);
    }
    const who = page.locator('table.blame tr#L1 td.who');
    assert.match((await who.locator('a.sha').innerText()).trim(), /^[0-9a-f]{7}$/);
    assert.ok((await who.innerText()).includes(USER), 'line 1 names its author');
    assert.match(await who.locator('time').getAttribute('title'), /^\d{4}-\d\d-\d\d \d\d:\d\d [+-]\d{4}$/);
    assert.equal((await page.locator('table.blame tr#L1 td.src').innerText()).trim(), `# ${REPO}`);
    await assertNoSidewaysScroll('blame at 1280px');
    await page.screenshot({ path: join(SHOTS, 'blame.png'), fullPage: true });
  });

  await step('the code search finds the README line and leads to it', async () => {
    await page.goto(`${BASE}/${USER}/${REPO}`);
    await Promise.all([
      page.waitForURL((u) => pathOf(u) === `${repoPath}/search`),
      page.locator('nav.repo-nav').getByRole('link', { name: 'Search' }).click(),
    ]);
    await page.fill('form.search input[name="q"]', REPO.toUpperCase());
    await Promise.all([
      page.waitForURL((u) => new URL(u).searchParams.get('q') === REPO.toUpperCase()),
      page.locator('form.search button[type="submit"]').click(),
    ]);
    const hit = page.locator('.results tr.match a').first();
    assert.equal((await hit.innerText()).trim(), '1');
    await assertNoSidewaysScroll('code search at 1280px');
    await page.screenshot({ path: join(SHOTS, 'search.png'), fullPage: true });
    await page.setViewportSize(PHONE);
    await assertNoSidewaysScroll('code search at 390px');
    await page.screenshot({ path: join(SHOTS, 'search-phone.png'), fullPage: true });
    await page.setViewportSize(LAPTOP);
    await Promise.all([
      page.waitForURL((u) => pathOf(u) === `${repoPath}/blob/main/README.md`),
      hit.click(),
    ]);
    assert.equal(new URL(page.url()).hash, '#L1');
  });

  await step('the commit list leads to the first commit, with its message and diff', async () => {
    await page.goto(`${BASE}/${USER}/${REPO}`);
    // The repository home links to its history; until it does, go there by URL.
    const history = page.locator(`a[href*="/${REPO}/commits/"]`).first();
    if (await history.count()) {
      console.log(`# history through the link "${(await history.innerText()).trim()}"`);
      await Promise.all([page.waitForURL((u) => pathOf(u).includes('/commits/')), history.click()]);
    } else {
      console.log('# no link to the history on the repository home; opening commits/main by URL');
      const r = await page.goto(`${BASE}/${USER}/${REPO}/commits/main`);
      assert.equal(r.status(), 200, `GET commits/main answered ${r.status()}`);
    }
    const first = page.locator(`a[href*="/${REPO}/commit/"]`).first();
    await first.waitFor();
    await Promise.all([page.waitForURL((u) => /\/commit\/[0-9a-f]{7,}/.test(pathOf(u))), first.click()]);
    await page.getByText('Initial commit').first().waitFor();
    const diff = page.locator('.diff');
    await diff.first().waitFor();
    assert.ok((await diff.allInnerTexts()).join('\n').includes('README.md'), 'the diff names README.md');
    await page.screenshot({ path: join(SHOTS, 'commit.png'), fullPage: true });
  });

  await step('the dashboard lists the repository', async () => {
    await page.goto(`${BASE}/`);
    await page.getByRole('heading', { name: 'Your repositories' }).waitFor();
    await page.locator(`a[href$="/${USER}/${REPO}"]`).first().waitFor();
    assert.ok((await page.locator('main, body').first().innerText()).includes(DESCRIPTION));
    await assertNoSidewaysScroll('dashboard at 1280px');
    await page.screenshot({ path: join(SHOTS, 'dashboard.png'), fullPage: true });
  });

  await step('an empty repository shows how to push, and fits a phone', async () => {
    await page.goto(`${BASE}/-/new`);
    await page.fill('input[name="name"]', `${REPO}-empty`);
    await page.uncheck('input[name="readme"]');
    await Promise.all([
      page.waitForURL((u) => pathOf(u) === `${repoPath}-empty`),
      page.getByRole('button', { name: 'Create repository' }).click(),
    ]);
    await page.getByRole('heading', { name: 'This repository is empty' }).waitFor();
    await page.setViewportSize(PHONE);
    await page.reload();
    await page.getByText(`git remote add origin ${BASE}/${USER}/${REPO}-empty.git`).waitFor();
    await page.screenshot({ path: join(SHOTS, 'repo-empty-phone.png'), fullPage: true });
    await assertNoSidewaysScroll('empty repository at 390px');
    await page.setViewportSize(LAPTOP);
  });

  await step("a branch's compare link shows its commit and its highlighted diff", async () => {
    await page.goto(`${BASE}/${USER}/compare-me/branches`);
    const row = page.locator('li', { hasText: 'feature/faster' });
    assert.ok((await page.locator('li', { hasText: 'main' }).first().innerText()).includes('default'));
    await Promise.all([
      page.waitForURL((u) => pathOf(u).includes('/compare/')),
      row.getByRole('link', { name: 'compare' }).click(),
    ]);
    await page.getByText('Make it faster').first().waitFor();
    const added = page.locator('table.diff-lines tr.add').first();
    assert.ok((await added.innerText()).includes('return 2'), 'the diff shows the added line');
    assert.ok(await added.locator('span[class^="hl-"]').count() > 0, 'the diff line is highlighted');
    await page.screenshot({ path: join(SHOTS, 'compare.png'), fullPage: true });
  });

  await step('a purge from the settings page ends on the page, saying when it was done', async () => {
    await page.goto(`${BASE}/${USER}/${REPO}/settings`);
    await Promise.all([
      page.waitForURL((u) => pathOf(u) === `${repoPath}/settings` && !u.toString().includes('#')),
      page.getByRole('button', { name: 'Purge unreachable objects' }).click(),
    ]);
    // While it runs the page reloads itself; it ends with the time of the purge.
    await page.locator('p.notice', { hasText: /Last purged at \d{4}-\d\d-\d\d \d\d:\d\d UTC\./ }).waitFor({ timeout: 30_000 });
    await page.screenshot({ path: join(SHOTS, 'purged.png'), fullPage: true });
  });

  assert.deepEqual(problems, [], 'the browser saw no errors');
  ok = true;
} catch (e) {
  if (problems.length) console.error(`what the browser saw:\n  ${problems.join('\n  ')}`);
  try {
    await page.screenshot({ path: join(SHOTS, 'failure.png'), fullPage: true });
    console.error(`at ${page.url()}; screenshot: ${join(SHOTS, 'failure.png')}`);
  } catch {}
} finally {
  await context.close();
}
console.log(`browser: ${steps} steps passed${ok ? '' : ', 1 failed'} in ${Date.now() - t0} ms`);
process.exit(ok ? 0 : 1);
