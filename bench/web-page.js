// bench/web.sh's browser half: loads the console's host page and a VM's
// page in headless chromium and prints the time from navigation start to
// the page's first paint and to its data on screen (body[data-loaded]: the
// page's own clock when it has drawn the first API answers), the median of
// RUNS loads each.
// Arguments: URL TOKEN VM RUNS.
'use strict';
const puppeteer = require(process.env.PUPPETEER_CORE);
const [url, token, vm, runs] = process.argv.slice(2);
const median = (a) => a.slice().sort((x, y) => x - y)[Math.floor(a.length / 2)];
(async () => {
  const browser = await puppeteer.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  try {
    const page = await browser.newPage();
    await page.goto(url + '/#token=' + token);
    await page.waitForSelector('body[data-loaded]');
    for (const [label, route, sel] of [['host page, ' + 'all VMs', '#/', '#vms tr[data-vm]'],
      ['VM page, its checkpoint tree', '#/vm/' + encodeURIComponent(vm), '#tree .node[data-id]']]) {
      const paint = [], data = [];
      for (let i = 0; i < Number(runs); i++) {
        await page.goto('about:blank');
        await page.goto(url + '/' + route, { waitUntil: 'domcontentloaded' });
        await page.waitForSelector('body[data-loaded] ' + sel, { timeout: 60000 });
        const t = await page.evaluate(() => {
          const fp = performance.getEntriesByName('first-contentful-paint')[0];
          return { paint: fp ? fp.startTime : NaN, data: Number(document.body.dataset.loaded) };
        });
        paint.push(t.paint), data.push(t.data);
      }
      const n = await page.$$eval(sel, (e) => e.length);
      console.log(`${label} (${n} rows/nodes): first paint ${median(paint).toFixed(0)} ms, ` +
        `data on screen ${median(data).toFixed(0)} ms (median of ${runs})`);
    }
  } finally {
    await browser.close();
  }
})();
