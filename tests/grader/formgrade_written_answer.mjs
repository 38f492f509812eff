// Grade written answers by hand in nbgrader's formgrader, in headless Chromium, the way a grader does:
// open the notebook's submission list, follow the student's link, type a score into the written
// answer's score box, leave the box (formgrader saves on change) and wait for its "saved" tick.
//
// usage: node formgrade_written_answer.mjs --url URL --token TOKEN --assignment ASSIGNMENT --notebook NOTEBOOK
//        --grades '[{"student": "canvas_12345", "shown_as": "smithjohn", "grade_id": "ex1_written_why", "score": 1}]'
//        --screenshot out.png [--chromium /usr/bin/chromium] [--playwright DIR]
// --playwright is the folder holding node_modules/playwright-core (default: tests/browser).
// Prints one JSON line prefixed with "REPORT " and exits 0 when every score was saved, 1 otherwise.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));

function parseArgs(argv) {
  const args = { chromium: '/usr/bin/chromium', playwright: join(HERE, '..', 'browser') };
  for (let i = 2; i < argv.length; i += 2) args[argv[i].replace(/^--/, '')] = argv[i + 1];
  for (const need of ['url', 'token', 'assignment', 'notebook', 'grades', 'screenshot']) {
    if (!args[need]) throw new Error(`missing --${need}`);
  }
  args.grades = JSON.parse(args.grades);
  return args;
}

async function main() {
  const args = parseArgs(process.argv);
  const require = createRequire(join(args.playwright, 'package.json'));
  const { chromium } = require('playwright-core');
  const browser = await chromium.launch({
    executablePath: args.chromium,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
  });
  // formgrader loads MathJax from a CDN: offline (these machines) that one script is missing, which
  // is not formgrader failing; any other page error fails the run
  const OFFLINE = /MathJax is not defined/;
  const report = { saved: [], errors: [], offline_only: [] };
  try {
    const page = await browser.newPage();
    page.on('pageerror', (e) => (OFFLINE.test(e.message) ? report.offline_only : report.errors)
      .push(`page error: ${e.message}`));
    // the token once, as a query parameter: the server answers with a login cookie
    await page.goto(`${args.url}/formgrader?token=${args.token}`);
    for (const g of args.grades) {
      const list = `${args.url}/formgrader/gradebook/${args.assignment}/${args.notebook}`;
      await page.goto(list);
      // formgrader lists "Submission #n" links; the student's name is the (hidden) other link
      const link = page.locator('a.name-shown', { hasText: g.shown_as || g.student }).first();
      await link.waitFor({ state: 'attached', timeout: 60_000 });
      const href = await link.getAttribute('href');
      await page.goto(new URL(href, args.url).toString());
      const box = page.locator(`input.score#${g.grade_id}`);
      await box.waitFor({ state: 'visible', timeout: 60_000 });
      // the box is the server's HTML; formgrade.js binds its "change" handler only once it has fetched
      // the grades (grades.loaded): a score typed before that is never saved (seen on a loaded machine)
      await page.waitForFunction(() => window.formgrader && formgrader.grades && formgrader.grades.loaded,
        null, { timeout: 60_000 });
      const saved = page.waitForResponse((r) => r.url().includes('/formgrader/api/grade/')
        && r.request().method() === 'PUT' && r.ok(), { timeout: 60_000 });
      await box.fill(String(g.score));
      await box.press('Tab');              // leaving the box fires "change": formgrader saves the grade
      const response = await saved;
      const body = await response.json();
      const tick = page.locator(`.nbgrader_cell:has(input.score#${g.grade_id}) .score-saved`);
      await tick.first().waitFor({ state: 'visible', timeout: 10_000 }).catch(() => {});
      report.saved.push({ student: g.student, grade_id: g.grade_id, manual_score: body.manual_score,
        page: page.url() });
    }
    await page.screenshot({ path: args.screenshot, fullPage: true });
  } catch (e) {
    report.errors.push(String(e && e.stack || e));
  } finally {
    await browser.close();
  }
  console.log('REPORT ' + JSON.stringify(report));
  process.exit(report.errors.length === 0 && report.saved.length === args.grades.length ? 0 : 1);
}

main();
