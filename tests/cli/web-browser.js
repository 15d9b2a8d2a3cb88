// The browser half of t99b-web-browser.sh: Debian's chromium, headless,
// driven by puppeteer-core (from the build's web-npm/, see
// scripts/web-build.sh). Opens the console, starts the guest from its page,
// waits for the counter in the console pane, types into the console, takes
// a checkpoint from the tree and applies it, connects the graphical console (taking one first), and sees a
// checkpoint taken from a shell appear without a reload. Screenshots go to
// SHOTS. Arguments: URL TOKEN SHOTS HVM VM.
'use strict';
const path = require('path');
const { execFileSync } = require('child_process');
const puppeteer = require(process.env.PUPPETEER_CORE);
const [url, token, shots, hvm, vm] = process.argv.slice(2);
const step = (s) => console.log(new Date().toISOString().slice(11, 19) + ' ' + s);

(async () => {
  const browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'],
  });
  let page;
  const shot = (name) => page.screenshot({ path: path.join(shots, name + '.png'), fullPage: true });
  try {
    page = await browser.newPage();
    await page.setViewport({ width: 1100, height: 900 });
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    step('open the host page');
    await page.goto(url + '/#token=' + token);
    await page.waitForSelector(`#vms tr[data-vm="${vm}"]`, { timeout: 60000 });
    if (page.url().includes(token)) throw new Error('the token stays in the address bar');
    await shot('1-host');

    step('open the VM page, start the VM');
    await page.click(`#vms tr[data-vm="${vm}"] a`);
    await page.waitForSelector('#power-start:not([disabled])', { timeout: 60000 });
    await page.waitForSelector('#tree #cp-now');
    await page.click('#power-start');
    await page.waitForFunction(() => document.querySelector('#vm-state')?.textContent === 'Running',
      { timeout: 180000, polling: 500 });

    step('the counter in the console pane');
    await page.waitForFunction(() => /HVM-GUEST COUNT \d+/.test(window.hvmConsoleText()),
      { timeout: 180000, polling: 500 });
    const count = () => page.evaluate(() => {
      const m = window.hvmConsoleText().match(/HVM-GUEST COUNT (\d+)/g) || [];
      return m.length ? Number(m[m.length - 1].split(' ')[2]) : 0;
    });
    const c1 = await count();
    await page.waitForFunction((c) => {
      const m = window.hvmConsoleText().match(/HVM-GUEST COUNT (\d+)/g) || [];
      return m.length && Number(m[m.length - 1].split(' ')[2]) > c;
    }, { timeout: 120000, polling: 500 }, c1);
    step('the console counts on from ' + c1 + ' to ' + await count());

    step('type into the console');
    await page.click('#terminal');
    await page.keyboard.type('echo web-$((6*7))\n', { delay: 20 });
    await page.waitForFunction(() => /^web-42/m.test(window.hvmConsoleText()), { timeout: 60000, polling: 500 });
    await shot('2-console');

    step('the graphical console (noVNC)');
    await page.click('#vnc-connect');
    await page.waitForFunction(() => window.hvmVnc && window.hvmVnc.state === 'connected',
      { timeout: 60000, polling: 500 });
    await page.waitForSelector('#vnc-screen canvas');
    await new Promise((r) => setTimeout(r, 1500)); // the first screen update
    await shot('2b-vnc');
    await page.click('#vnc-disconnect');

    step('take a checkpoint from the tree');
    await page.click('#take');
    await page.waitForSelector('#ask[open]');
    await page.type('#ask-input', 'from-web');
    await page.click('#ask-ok');
    await page.waitForSelector('.node[data-name="from-web"]', { timeout: 120000 });
    await shot('3-tree-taken');

    step('apply it from the tree, taking a checkpoint of now first');
    const before = await page.$$eval('.node[data-id]', (n) => n.length);
    await page.click('.node[data-name="from-web"] .apply');
    await page.waitForSelector('#ask[open]');
    await page.click('#ask-check');
    await page.click('#ask-ok');
    await page.waitForFunction((b) => document.querySelectorAll('.node[data-id]').length === b + 1,
      { timeout: 120000, polling: 500 }, before);
    await page.waitForSelector('.node.current[data-name="from-web"]', { timeout: 60000 });
    await page.waitForFunction(() => document.querySelector('#vm-state')?.textContent === 'Running',
      { timeout: 60000, polling: 500 });

    step('a checkpoint taken from a shell appears without a reload');
    execFileSync(hvm, ['checkpoint', 'take', vm, 'from-shell'], { stdio: 'inherit' });
    await page.waitForSelector('.node[data-name="from-shell"]', { timeout: 30000 });
    await shot('4-tree-applied');
    if (errors.length) throw new Error('errors in the page: ' + errors.join('; '));
    step('ok');
  } catch (e) {
    if (page) await shot('failed').catch(() => {});
    console.error('FAIL: ' + e.message);
    if (page) console.error('status line: ' + await page.$eval('#status', (s) => s.textContent).catch(() => '?'));
    process.exitCode = 1;
  } finally {
    await browser.close();
  }
})();
