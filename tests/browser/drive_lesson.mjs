// Open one notebook in a running JupyterLab in headless Chromium, run all cells, and prove that
// every widget renders and responds as a student sees it: move one control of each top-level widget
// MOVES times and after each move (kernel idle, output settled) check that the rest of that cell's
// output changed and that every image in the widget's output decodes, is not blank (a real share of
// pixels differs from the background colour) and differs from the image before the move; a widget
// that drew a picture before a move and none after fails. Also fails on "Error displaying widget", a
// Python traceback or error output, and on a JavaScript error in the page. Saves one screenshot per
// moved widget after its last move, <name>-<cell id>-<control>.png in --screenshot-dir (the lessons' ids,
// l<lesson>-<words>, are stable where an index shifts with every new cell; cell<N> for a cell without an id),
// and <name>-page.png of the whole page when the run failed.
//
// usage: node drive_lesson.mjs --url URL --token TOKEN --path notebooks/x.ipynb --screenshot-dir DIR
//        [--name STEM] [--moves 3] [--timeout-s 600] [--change-timeout-s 90] [--chromium /usr/bin/chromium]
// Prints one JSON report line prefixed with "REPORT " and exits 0 when the notebook passed, 1 otherwise.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic'];

// Controls we know how to move, in the order we prefer them within one widget.
const CONTROLS = [
  ['slider', '.widget-slider .noUi-handle, .widget-slider .ui-slider-handle'],
  ['dropdown', '.widget-dropdown select'],
  ['toggle-buttons', '.widget-toggle-buttons button'],
  ['radio', '.widget-radio-box input[type=radio]'],
  ['toggle-button', 'button.widget-toggle-button'],
  ['checkbox', '.widget-checkbox input[type=checkbox]'],
  ['select', '.widget-select select'],
  ['number', '.widget-text input[type=number]'],
  ['button', 'button.widget-button'],
];

function parseArgs(argv) {
  const args = { timeoutS: 600, changeTimeoutS: 90, chromium: '/usr/bin/chromium', moves: 3 };
  for (let i = 2; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '').replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    args[key] = argv[i + 1];
  }
  args.timeoutS = Number(args.timeoutS);
  args.changeTimeoutS = Number(args.changeTimeoutS);
  args.moves = Number(args.moves);
  args.name = args.name || args.path.split('/').pop().replace(/\.ipynb$/, '');
  for (const need of ['url', 'token', 'path', 'screenshotDir']) {
    if (!args[need]) throw new Error(`missing --${need}`);
  }
  return args;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what, timeoutMs, probe, intervalMs = 250) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    last = await probe();
    if (last) return last;
    await sleep(intervalMs);
  }
  throw new Error(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}`);
}

// --- functions evaluated in the page (JupyterLab exposed as window.jupyterapp) ---

function pageNotebookState() {
  const app = window.jupyterapp;
  const panel = app && app.shell.currentWidget;
  if (!panel || !panel.content || !panel.sessionContext) return { ready: false };
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  const cells = panel.content.widgets.map((cell, index) => {
    const model = cell.model;
    const info = { index, id: model.id, type: model.type, source: model.sharedModel.getSource() };
    if (model.type === 'code') {
      info.executionCount = model.executionCount;
      info.outputs = model.outputs.toJSON().map((o) => ({
        type: o.output_type, name: o.name, ename: o.ename, evalue: o.evalue,
        widget: !!(o.data && o.data['application/vnd.jupyter.widget-view+json']),
        text: o.output_type === 'stream' ? String(o.text).slice(0, 2000) : undefined,
      }));
    }
    return info;
  });
  return {
    ready: true, kernelStatus: kernel ? kernel.status : 'none', kernelName: kernel ? kernel.name : null,
    busyPrompts: [...panel.content.node.querySelectorAll('.jp-InputPrompt')].filter((p) => p.textContent.includes('*')).length,
    cells,
  };
}

// Problems visible in the page: widget errors, tracebacks and error outputs (also inside Output widgets).
function pageProblems() {
  const problems = [];
  const clip = (s) => {
    const t = s.replace(/\u001b\[[0-9;]*m/g, '');
    return t.length > 2500 ? `${t.slice(0, 700)}\n[...]\n${t.slice(-1800)}` : t;
  };
  for (const el of document.querySelectorAll('[data-driver-notebook] .jp-OutputArea-output')) {
    const text = el.innerText || '';
    if (text.includes('Error displaying widget')) problems.push(`widget failed to display: ${clip(text)}`);
  }
  for (const el of document.querySelectorAll('[data-driver-notebook] .jp-RenderedText[data-mime-type="application/vnd.jupyter.stderr"]')) {
    const text = el.innerText || '';
    if (text.includes('Traceback')) problems.push(`Python traceback in an output: ${clip(text)}`);
  }
  return problems;
}

// The state of each widget output of the notebook model ({cellIndex, outIndex}) in the page:
// rendered, loading, error, missing, or empty (a widget the kernel closed, e.g. a finished
// tqdm bar with leave=False, leaves its output element empty).
function pageWidgetOutputs(expected) {
  const cells = [...document.querySelectorAll('[data-driver-notebook] .jp-Cell')];
  return expected.map(({ cellIndex, outIndex }) => {
    const cell = cells[cellIndex];
    const child = cell && cell.querySelectorAll(':scope .jp-Cell-outputArea > .jp-OutputArea-child')[outIndex];
    const out = child && child.querySelector(':scope > .jp-OutputArea-output');
    if (!out) return { cellIndex, outIndex, state: 'missing', text: '' };
    const text = (out.innerText || '').trim();
    let state = 'empty';
    if (text.includes('Error displaying widget')) state = 'error';
    else if (out.querySelector('.jupyter-widgets') || out.classList.contains('jupyter-widgets')) state = 'rendered';
    else if (text.includes('Loading widget')) state = 'loading';
    return { cellIndex, outIndex, state, text: text.slice(0, 200) };
  });
}

// What the cell shows apart from the control being moved: text and images of its output area.
function pageOutputSnapshot([cellIndex, controlIndexes]) {
  const cell = document.querySelectorAll('[data-driver-notebook] .jp-Cell')[cellIndex];
  const area = cell.querySelector('.jp-Cell-outputArea');
  const clone = area.cloneNode(true);
  // Remove the moved control's whole row (its readout changes by construction).
  const marked = clone.querySelectorAll('[data-driver-control]');
  for (const el of marked) {
    const row = el.closest('.widget-inline-hbox, .widget-toggle-buttons, .widget-radio, .widget-checkbox') || el;
    row.remove();
  }
  // A plot is an <img> with a data: URL; hash it whole (every PNG ends with the same bytes).
  const hash = (s) => { let h = 2166136261; for (let i = 0; i < s.length; i++) { h ^= s.charCodeAt(i); h = Math.imul(h, 16777619); } return (h >>> 0).toString(16); };
  const images = [...clone.querySelectorAll('img')].map((img) => hash(img.src));
  const svgs = [...clone.querySelectorAll('svg')].map((s) => hash(s.outerHTML));
  return JSON.stringify({ text: clone.innerText || clone.textContent, images, svgs });
}

// Every <img> inside one widget output ({cellIndex, outIndex}) as the student sees it: decoded,
// drawn on a canvas, and measured. The background is the most common colour of the picture; "ink"
// is the share of pixels that differ from it by more than 32 in some channel (alpha composited on
// white). A matplotlib figure with axes, labels and a curve has several per cent; a blank canvas 0.
async function pageWidgetImages({ cellIndex, outIndex }) {
  const cell = document.querySelectorAll('[data-driver-notebook] .jp-Cell')[cellIndex];
  const child = cell && cell.querySelectorAll(':scope .jp-Cell-outputArea > .jp-OutputArea-child')[outIndex];
  const out = child && child.querySelector(':scope > .jp-OutputArea-output');
  if (!out) return [];
  const hash = (s) => { let h = 2166136261; for (let i = 0; i < s.length; i++) { h ^= s.charCodeAt(i); h = Math.imul(h, 16777619); } return (h >>> 0).toString(16); };
  const results = [];
  for (const img of out.querySelectorAll('img')) {
    const r = { hash: hash(img.src), srcChars: img.src.length };
    try {
      await img.decode();
    } catch (err) {
      r.error = `not decodable (${err && err.message || err})`;
      results.push(r);
      continue;
    }
    r.width = img.naturalWidth;
    r.height = img.naturalHeight;
    if (!r.width || !r.height) { r.error = 'decoded to 0 pixels'; results.push(r); continue; }
    const canvas = document.createElement('canvas');
    canvas.width = r.width;
    canvas.height = r.height;
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    ctx.fillStyle = '#ffffff';
    ctx.fillRect(0, 0, r.width, r.height);
    ctx.drawImage(img, 0, 0);
    const px = ctx.getImageData(0, 0, r.width, r.height).data;
    const counts = new Map();
    for (let i = 0; i < px.length; i += 4) {
      const key = ((px[i] >> 3) << 10) | ((px[i + 1] >> 3) << 5) | (px[i + 2] >> 3);
      counts.set(key, (counts.get(key) || 0) + 1);
    }
    let bg = 0;
    let best = -1;
    for (const [key, n] of counts) if (n > best) { best = n; bg = key; }
    const [br, bgc, bb] = [((bg >> 10) & 31) * 8 + 4, ((bg >> 5) & 31) * 8 + 4, (bg & 31) * 8 + 4];
    let ink = 0;
    for (let i = 0; i < px.length; i += 4) {
      if (Math.max(Math.abs(px[i] - br), Math.abs(px[i + 1] - bgc), Math.abs(px[i + 2] - bb)) > 32) ink++;
    }
    r.ink = ink / (r.width * r.height);
    results.push(r);
  }
  return results;
}

// --- driver ---

async function main() {
  const args = parseArgs(process.argv);
  const timeoutMs = args.timeoutS * 1000;
  const started = Date.now();
  const report = { path: args.path, screenshot: null, widgets: [], problems: [], jsErrors: [], consoleErrors: [] };
  mkdirSync(args.screenshotDir, { recursive: true });
  const userDataDir = mkdtempSync(join(tmpdir(), 'lesson-chromium-'));
  let context;
  let page;
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: args.chromium, headless: true, args: CHROMIUM_ARGS,
      viewport: { width: 1400, height: 1000 },
    });
    page = context.pages()[0] || await context.newPage();
    page.on('pageerror', (err) => report.jsErrors.push(String(err && err.stack || err).slice(0, 1500)));
    page.on('console', (msg) => {
      if (msg.type() === 'error') report.consoleErrors.push(msg.text().slice(0, 500));
    });

    // ?reset: start from an empty workspace, not the tabs a previous run left open.
    const url = `${args.url}/lab/tree/${args.path.split('/').map(encodeURIComponent).join('/')}?reset&token=${args.token}`;
    await page.goto(url, { waitUntil: 'domcontentloaded', timeout: 120_000 });
    await waitFor('JupyterLab to load and expose window.jupyterapp', 120_000,
      () => page.evaluate(() => !!(window.jupyterapp && window.jupyterapp.started)));
    await page.evaluate(() => window.jupyterapp.started);
    report.labLoadedSeconds = (Date.now() - started) / 1000;
    await waitFor('the notebook to open with a running kernel', 180_000, async () => {
      const s = await page.evaluate(pageNotebookState);
      return s.ready && s.kernelStatus === 'idle' && s.cells.length > 0 ? s : null;
    }, 500);
    // The notebook panel must be the one we asked for (not a launcher or another file).
    const opened = await page.evaluate(() => window.jupyterapp.shell.currentWidget.context.path);
    if (opened !== args.path) throw new Error(`JupyterLab opened ${opened}, expected ${args.path}`);
    // Every DOM query below is scoped to this notebook's own node.
    await page.evaluate(() => window.jupyterapp.shell.currentWidget.content.node.setAttribute('data-driver-notebook', '1'));

    report.kernelReadySeconds = (Date.now() - started) / 1000;
    // Run all cells with JupyterLab's own command, as the Run menu does.
    const runStart = Date.now();
    await page.evaluate(() => window.jupyterapp.commands.execute('notebook:run-all-cells'));
    const done = await waitFor('every cell to finish and the kernel to be idle', timeoutMs, async () => {
      const s = await page.evaluate(pageNotebookState);
      const pending = s.cells.filter((c) => c.type === 'code' && c.source.trim() && c.executionCount == null);
      const errored = s.cells.some((c) => (c.outputs || []).some((o) => o.type === 'error'));
      if (s.kernelStatus === 'idle' && s.busyPrompts === 0 && (pending.length === 0 || errored)) return s;
      return null;
    }, 1000);
    report.runSeconds = (Date.now() - runStart) / 1000;
    for (const cell of done.cells) {
      for (const o of cell.outputs || []) {
        if (o.type === 'error') report.problems.push(`cell #${cell.index} raised ${o.ename}: ${o.evalue}`);
      }
    }
    const neverRan = done.cells.filter((c) => c.type === 'code' && c.source.trim() && c.executionCount == null);
    if (neverRan.length) report.problems.push(`${neverRan.length} code cell(s) never ran, from cell #${neverRan[0].index}`);
    const expected = done.cells.flatMap((c) => (c.outputs || []).flatMap((o, j) => (o.widget ? [{ cellIndex: c.index, outIndex: j }] : [])));
    report.expectedWidgets = expected.length;

    // Every widget output of the model must become a rendered view (or be closed by the kernel);
    // no "Loading widget..." left and no "Error displaying widget". Settled = same states 3 polls running.
    let previous = '';
    let stableFor = 0;
    const views = await waitFor(`${expected.length} widget(s) to render`, 120_000, async () => {
      const found = await page.evaluate(pageWidgetOutputs, expected);
      const key = JSON.stringify(found.map((w) => w.state));
      stableFor = key === previous ? stableFor + 1 : 0;
      previous = key;
      const settled = found.every((w) => ['rendered', 'empty', 'error'].includes(w.state));
      return settled && stableFor >= 3 ? found : null;
    }, 500).catch(async (err) => {
      const found = await page.evaluate(pageWidgetOutputs, expected);
      report.problems.push(`${err.message}; still: ${JSON.stringify(found.filter((w) => w.state !== 'rendered'))}`);
      return found;
    });
    for (const w of views.filter((v) => v.state === 'error')) {
      report.problems.push(`widget in cell #${w.cellIndex} failed to display: ${w.text}`);
    }
    report.closedWidgets = views.filter((w) => w.state === 'empty').length;
    report.renderedWidgets = views.filter((w) => w.state === 'rendered').length;
    report.problems.push(...await page.evaluate(pageProblems));

    // Move one control of each rendered widget MOVES times; after each move check its output changed
    // and that its pictures are real, new pictures (see checkImages).
    let firstWidgetCell = null;
    const shotNames = new Set();
    const cellIds = done.cells.map((c) => c.id || `cell${c.index}`);
    for (const view of views.filter((w) => w.state === 'rendered')) {
      const entry = { cell: view.cellIndex, cellId: cellIds[view.cellIndex], output: view.outIndex, moves: [] };
      report.widgets.push(entry);
      if (firstWidgetCell === null) firstWidgetCell = view.cellIndex;
      const output = page.locator('[data-driver-notebook] .jp-Cell').nth(view.cellIndex)
        .locator(':scope .jp-Cell-outputArea > .jp-OutputArea-child > .jp-OutputArea-output').nth(view.outIndex);
      await output.scrollIntoViewIfNeeded();
      let control = null;
      for (const [kind, selector] of CONTROLS) {
        const found = output.locator(selector);
        if (await found.count()) { control = { kind, locator: found }; break; }
      }
      if (!control) { entry.control = 'none'; entry.changed = null; continue; }
      entry.control = control.kind;
      await control.locator.first().evaluate((el) => el.setAttribute('data-driver-control', '1'));
      entry.imagesBefore = await page.evaluate(pageWidgetImages, view);
      let imagesBefore = entry.imagesBefore;
      entry.changed = true;
      for (let move = 1; move <= args.moves; move++) {
        const step = { move };
        entry.moves.push(step);
        const before = await page.evaluate(pageOutputSnapshot, [view.cellIndex]);
        step.how = await moveControl(page, control, move);
        const outputChanged = async () => {
          const s = await page.evaluate(pageNotebookState);
          if (s.kernelStatus !== 'idle') return null;
          const after = await page.evaluate(pageOutputSnapshot, [view.cellIndex]);
          return after !== before ? after : null;
        };
        const what = `the output of the widget in cell #${view.cellIndex} to change after moving its ${control.kind} (move ${move})`;
        let changed = await waitFor(what, 5_000, outputChanged, 500).catch(() => null);
        // interact_manual: the new value only applies once its one button is pressed.
        const runButton = output.locator('button.widget-button');
        if (changed === null && control.kind !== 'button' && await runButton.count() === 1) {
          await runButton.click();
          step.how += ' + its button';
        }
        if (changed === null) {
          changed = await waitFor(what, args.changeTimeoutS * 1000, outputChanged, 500).catch((err) => { report.problems.push(err.message); return null; });
        }
        step.changed = changed !== null;
        if (!step.changed) { entry.changed = false; break; }
        // The kernel is idle and the output changed; let the last messages land (same pictures 3 polls running).
        // A widget that drew before is not settled on no picture until the wait ends: the kernel is idle
        // before the widget manager has drawn the Output widget's new state, seconds later on a busy machine.
        let previous = '';
        let stable = 0;
        const imagesAfter = await waitFor(`the pictures of the widget in cell #${view.cellIndex} to settle`, 20_000, async () => {
          if ((await page.evaluate(pageNotebookState)).kernelStatus !== 'idle') { stable = 0; return null; }
          const found = await page.evaluate(pageWidgetImages, view);
          const key = JSON.stringify(found.map((i) => i.hash));
          stable = key === previous ? stable + 1 : 0;
          previous = key;
          return stable >= 2 && (found.length || !imagesBefore.length) ? found : null;
        }, 300).catch(async () => page.evaluate(pageWidgetImages, view));
        step.images = imagesAfter;
        const where = `widget in cell #${view.cellIndex} after move ${move} of its ${control.kind} (${step.how})`;
        const found = checkImages(imagesBefore, imagesAfter);
        for (const p of found) report.problems.push(`${where}: ${p}`);
        if (found.length) { entry.imagesOk = false; break; }
        entry.imagesOk = true;
        imagesBefore = imagesAfter;
      }
      await control.locator.first().evaluate((el) => el.removeAttribute('data-driver-control'));
      // What the student sees after the last move: the widget's own output, controls and picture.
      let shot = `${args.name}-${entry.cellId}-${control.kind}`;
      if (shotNames.has(shot)) shot += `-${view.outIndex}`;
      shotNames.add(shot);
      entry.screenshot = join(args.screenshotDir, `${shot}.png`);
      await output.scrollIntoViewIfNeeded();
      await output.screenshot({ path: entry.screenshot }).catch((e) => report.problems.push(`screenshot of ${shot}: ${e.message}`));
    }
    // Widget callbacks can raise: their tracebacks land in Output widgets.
    await waitFor('the kernel to be idle after the widget moves', 120_000,
      async () => (await page.evaluate(pageNotebookState)).kernelStatus === 'idle', 500);
    await sleep(1000);
    const beforeMoves = new Set(report.problems);
    for (const p of await page.evaluate(pageProblems)) {
      if (!beforeMoves.has(p)) report.problems.push(`after moving the widgets: ${p}`);
    }

    if (firstWidgetCell !== null) {
      await page.locator('[data-driver-notebook] .jp-Cell').nth(firstWidgetCell).scrollIntoViewIfNeeded();
    }
  } catch (err) {
    report.problems.push(`driver: ${err && err.message || err}`);
  } finally {
    if (page && (report.problems.length || report.jsErrors.length)) {  // for the person reading the failure
      report.screenshot = join(args.screenshotDir, `${args.name}-page.png`);
      await page.screenshot({ path: report.screenshot }).catch((e) => report.problems.push(`screenshot: ${e.message}`));
    }
    if (context) await context.close().catch(() => {});
    rmSync(userDataDir, { recursive: true, force: true });
  }
  report.seconds = (Date.now() - started) / 1000;
  // Network noise ("Failed to load resource") is reported, any other console error fails the run.
  report.consoleFailures = report.consoleErrors.filter((e) => !e.startsWith('Failed to load resource'));
  report.ok = report.problems.length === 0 && report.jsErrors.length === 0 && report.consoleFailures.length === 0;
  console.log('REPORT ' + JSON.stringify(report));
  process.exit(report.ok ? 0 : 1);
}

// Least share of non-background pixels for a picture to count as drawn (a labelled matplotlib plot
// has several per cent; a blank canvas has none).
const MIN_INK = 0.01;

// What is wrong with the pictures of one widget output after a move, given those before it.
function checkImages(before, after) {
  const problems = [];
  if (before.length && !after.length) {
    problems.push(`it showed ${before.length} picture(s) before the move and none after`);
  }
  after.forEach((img, i) => {
    const name = `picture ${i + 1} of ${after.length}`;
    if (img.error) { problems.push(`${name} is ${img.error}`); return; }
    if (img.ink < MIN_INK) {
      problems.push(`${name} is blank: ${(100 * img.ink).toFixed(2)}% of its ${img.width}x${img.height} pixels `
        + `differ from the background (needs ${100 * MIN_INK}%); ${img.srcChars} characters of data URL`);
    }
    if (i < before.length && before[i].hash === img.hash) problems.push(`${name} is the same image as before the move`);
  });
  return problems;
}

// Move a control the way a user does: keyboard on a slider handle (from the third move on, a mouse
// drag, which streams values when continuous_update is on), choose another option, click.
async function moveControl(page, { kind, locator }, move = 1) {
  const el = locator.first();
  if (kind === 'slider' && move >= 3) {
    const box = await el.boundingBox();
    const track = await el.evaluate((h) => {
      const r = (h.closest('.noUi-base, .noUi-target') || h.parentElement).getBoundingClientRect();
      return { left: r.left, right: r.right };
    });
    const readout = async () => el.evaluate((h) => {
      const row = h.closest('.widget-slider');
      const shown = row && row.querySelector('.widget-readout');
      return shown ? (shown.value || shown.textContent).trim() : h.getAttribute('aria-valuenow');
    });
    const start = await readout();
    const x = box.x + box.width / 2;
    const y = box.y + box.height / 2;
    // Towards the side with more room, a quarter of the track, in small steps.
    const dx = (track.right - x > x - track.left ? 1 : -1) * (track.right - track.left) / 4;
    await page.mouse.move(x, y);
    await page.mouse.down();
    for (let i = 1; i <= 10; i++) { await page.mouse.move(x + (dx * i) / 10, y); await sleep(30); }
    await page.mouse.up();
    await sleep(200);
    return `mouse drag on slider (from ${start} to ${await readout()})`;
  }
  if (kind === 'slider') {
    await el.focus();
    // The slider's own readout as the student sees it (the handle's aria value may be rounded).
    const readout = async () => el.evaluate((h) => {
      const row = h.closest('.widget-slider');
      const shown = row && row.querySelector('.widget-readout');
      return shown ? (shown.value || shown.textContent).trim() : h.getAttribute('aria-valuenow');
    });
    const start = await readout();
    await page.keyboard.press('ArrowRight');
    await sleep(200);
    if (await readout() === start) { await page.keyboard.press('ArrowLeft'); await page.keyboard.press('ArrowLeft'); }
    return `keyboard on slider (from ${start} to ${await readout()})`;
  }
  if (kind === 'dropdown' || kind === 'select') {
    const { values, current } = await el.evaluate((s) => ({ values: [...s.options].map((o) => o.value), current: s.value }));
    const next = values.find((v) => v !== current);
    if (next === undefined) return 'only one option';
    await el.selectOption(next);
    return `selected ${next} instead of ${current}`;
  }
  if (kind === 'toggle-buttons' || kind === 'radio') {
    const count = await locator.count();
    for (let i = 0; i < count; i++) {
      const item = locator.nth(i);
      const active = await item.evaluate((b) => b.classList.contains('mod-active') || b.checked === true);
      if (!active) { await item.click(); return `clicked option ${i}`; }
    }
    return 'no other option';
  }
  if (kind === 'number') {
    await el.focus();
    await page.keyboard.press('ArrowUp');
    await page.keyboard.press('Enter');
    return 'ArrowUp in a number box';
  }
  await el.click();
  return 'clicked';
}

main();
