// Test support for the renderer in real headless Chromium (Debian's
// /usr/bin/chromium through playwright-core), over http from the dev bridge.

import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { build } from 'vite';

export const ROOT = join(import.meta.dirname, '..', '..', '..');
export const RESULTS = join(ROOT, 'test-results', 'renderer');
const CHROMIUM = process.env['TETHER_CHROMIUM'] ?? '/usr/bin/chromium';

/** Builds the renderer once per test file into its own folder. */
export async function buildRenderer(outDir: string): Promise<string> {
  await build({ configFile: join(ROOT, 'renderer', 'vite.config.ts'), logLevel: 'error', build: { outDir, emptyOutDir: true } });
  return outDir;
}

/**
 * Chromium with a fresh, empty profile in `userDataDir` (a new temporary folder per run).
 * Browser zoom is emulated exactly: at 200% a 1280×800 window lays out as 640×400 CSS
 * pixels with devicePixelRatio 2, which is what `{ width: 640, height: 400 }, 2` gives.
 */
export async function launchChromium(userDataDir: string, viewport = { width: 1280, height: 800 }, deviceScaleFactor = 1): Promise<BrowserContext> {
  return chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    viewport,
    deviceScaleFactor,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic'],
  });
}

/** Collects console errors, page errors and CSP violations; a test fails if any appear. */
export function watchProblems(page: Page): string[] {
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()}`);
  });
  return problems;
}

export async function screenshot(page: Page, name: string): Promise<string> {
  await mkdir(RESULTS, { recursive: true });
  const path = join(RESULTS, `${name}.png`);
  await page.screenshot({ path, fullPage: false });
  return path;
}

/**
 * WCAG contrast of every visible text element against its nearest opaque
 * background. Returns the failures (ratio below 4.5, or 3 for large text).
 */
export function contrastFailures(page: Page, scope = 'body'): Promise<string[]> {
  return page.evaluate((scope) => {
    const parse = (c: string): [number, number, number, number] => {
      const m = c.match(/rgba?\(([^)]+)\)/);
      if (!m) return [0, 0, 0, 0];
      const p = m[1]!.split(/[ ,/]+/).filter(Boolean).map(Number);
      return [p[0]!, p[1]!, p[2]!, p[3] ?? 1];
    };
    const lum = ([r, g, b]: number[]) => {
      const f = (v: number) => {
        const s = v / 255;
        return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
      };
      return 0.2126 * f(r!) + 0.7152 * f(g!) + 0.0722 * f(b!);
    };
    const background = (el: Element | null): number[] => {
      for (let e = el; e; e = e.parentElement) {
        const bg = parse(getComputedStyle(e).backgroundColor);
        if (bg[3] >= 0.99) return bg;
      }
      return [255, 255, 255, 1];
    };
    const out: string[] = [];
    const root = document.querySelector(scope);
    if (!root) return out;
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    const seen = new Set<Element>();
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
      const el = n.parentElement;
      if (!el || seen.has(el) || !n.textContent?.trim()) continue;
      seen.add(el);
      const st = getComputedStyle(el);
      const rect = el.getBoundingClientRect();
      if (st.visibility === 'hidden' || st.display === 'none' || rect.width === 0 || rect.height === 0 || el.closest('[hidden], .visually-hidden, .xterm')) continue;
      if ((el as HTMLButtonElement).disabled) continue; // WCAG exempts inactive controls
      const fg = parse(st.color);
      const bg = background(el);
      const a = fg[3];
      const mixed = [0, 1, 2].map((i) => fg[i]! * a + bg[i]! * (1 - a));
      const [l1, l2] = [lum(mixed), lum(bg)].sort((x, y) => y - x);
      const ratio = (l1! + 0.05) / (l2! + 0.05);
      const size = parseFloat(st.fontSize);
      const large = size >= 24 || (size >= 18.66 && Number(st.fontWeight) >= 700);
      if (ratio < (large ? 3 : 4.5)) out.push(`${ratio.toFixed(2)} "${n.textContent.trim().slice(0, 40)}" (${st.color} on rgb(${bg.slice(0, 3).join(',')}))`);
    }
    return out;
  }, scope);
}

/** Form controls and buttons without an accessible name. */
export function unlabelledControls(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const out: string[] = [];
    for (const el of document.querySelectorAll<HTMLElement>('button, input, select, textarea, [role="tab"]')) {
      if (el.closest('[hidden]') || el.offsetParent === null) continue;
      const id = el.id;
      const label = (id && document.querySelector(`label[for="${id}"]`)?.textContent?.trim()) || el.getAttribute('aria-label') || el.getAttribute('aria-labelledby') || el.textContent?.trim() || el.getAttribute('title');
      if (!label) out.push(el.outerHTML.slice(0, 80));
    }
    return out;
  });
}

/**
 * Elements whose content spills out of their box, or is cut off with no sign
 * of it (overflow hidden without an ellipsis), or that reach past the right
 * edge; and the page scrolling sideways. Scroll containers are fine.
 */
export function overflowing(page: Page, scope = 'body'): Promise<string[]> {
  return page.evaluate((scope) => {
    const out: string[] = [];
    const doc = document.documentElement;
    if (doc.scrollWidth > window.innerWidth + 1) out.push(`the page scrolls sideways: ${doc.scrollWidth} > ${window.innerWidth}`);
    const root = document.querySelector(scope);
    if (!root) return out;
    for (const el of root.querySelectorAll<HTMLElement>('*')) {
      if (el.closest('.xterm, [hidden], .visually-hidden') || el.offsetParent === null) continue;
      const st = getComputedStyle(el);
      if (st.display === 'inline' || st.display === 'contents') continue;
      const wider = el.scrollWidth > el.clientWidth + 1;
      const spills = st.overflowX === 'visible' && wider;
      // Clipped without a sign of it (no ellipsis, no scrollbar): the rest cannot be read.
      const cut = (st.overflowX === 'hidden' || st.overflowX === 'clip') && wider && st.textOverflow !== 'ellipsis';
      const outside = el.getBoundingClientRect().right > window.innerWidth + 1;
      const what = spills ? `content ${el.scrollWidth}px spills out of ${el.clientWidth}px` : cut ? `content ${el.scrollWidth}px cut off at ${el.clientWidth}px` : outside ? 'reaches past the right edge' : '';
      if (what) out.push(`${el.tagName.toLowerCase()}.${[...el.classList].join('.')} "${(el.textContent ?? '').trim().slice(0, 40)}" ${what}`);
    }
    return out;
  }, scope);
}

/**
 * Walks the page with Tab (by default, enough presses for a full round) and reports every enabled,
 * visible control in `scope` that focus never reached, or that was cut off or
 * covered when focused (its centre off screen, or another element on top).
 * Controls of the xterm mirror are left out (its helper textarea is for screen readers).
 */
export async function keyboardReach(page: Page, scope: string, maxTabs?: number): Promise<{ controls: number; unreached: string[]; hidden: string[] }> {
  const controls = await page.evaluate((scope) => {
    const root = document.querySelector(scope);
    let n = 0;
    for (const el of root?.querySelectorAll<HTMLElement>('button, input, select, textarea, a[href], [tabindex]') ?? []) {
      delete el.dataset['reach'];
      if (el.closest('.xterm, [hidden], [inert]') || el.offsetParent === null || (el as HTMLButtonElement).disabled || el.tabIndex < 0) continue;
      el.dataset['reach'] = String(n++);
    }
    return n;
  }, scope);
  const reached = new Set<string>();
  const hidden = new Set<string>();
  // One full round of the tab order, with room for stops outside the scope.
  const presses = maxTabs ?? controls * 2 + 10;
  for (let i = 0; i < presses && reached.size < controls; i++) {
    await page.keyboard.press('Tab');
    const seen = await page.evaluate(() => {
      const el = document.activeElement as HTMLElement | null;
      const id = el?.dataset['reach'];
      if (!el || id === undefined) return undefined;
      const r = el.getBoundingClientRect();
      const x = r.left + r.width / 2;
      const y = r.top + r.height / 2;
      const onScreen = x >= 0 && y >= 0 && x <= window.innerWidth && y <= window.innerHeight;
      const top = onScreen ? document.elementFromPoint(x, y) : null;
      const visible = onScreen && top !== null && (top === el || el.contains(top));
      return { id, visible, label: `${el.tagName.toLowerCase()} "${(el.getAttribute('aria-label') ?? el.textContent ?? '').trim().slice(0, 50)}"` };
    });
    if (!seen) continue;
    reached.add(seen.id);
    if (!seen.visible) hidden.add(seen.label);
  }
  const unreached = await page.evaluate(({ scope, reached }) => {
    const out: string[] = [];
    for (const el of document.querySelector(scope)?.querySelectorAll<HTMLElement>('[data-reach]') ?? []) {
      if (!reached.includes(el.dataset['reach']!)) out.push(`${el.tagName.toLowerCase()} "${(el.getAttribute('aria-label') ?? el.textContent ?? '').trim().slice(0, 50)}"`);
    }
    return out;
  }, { scope, reached: [...reached] });
  return { controls, unreached, hidden: [...hidden] };
}
