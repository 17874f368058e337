// Headless Chromium (Debian's, driven by playwright-core) against `qrlp live`, as
// scripts/ci/12-live-browser.sh runs it. Usage: node live_browser.mjs URL OUTDIR QRLP_BIN DATA_DIR
import { chromium } from "playwright-core";
import { execFileSync } from "node:child_process";

const [url, out, qrlp, dataDir] = process.argv.slice(2);
const failures = [];
const check = (ok, what) => { console.log(`${ok ? "ok  " : "FAIL"} browser: ${what}`); if (!ok) failures.push(what); };

function decode(png) {
  try {
    return execFileSync("python3", ["-c", `
import sys, zxingcpp
from PIL import Image
r = zxingcpp.read_barcodes(Image.open(sys.argv[1]))
sys.stdout.write(r[0].text if r else "")
`, png], { encoding: "utf8" });
  } catch (e) {
    // zbarimg as the fallback decoder.
    try { return execFileSync("zbarimg", ["-q", "--raw", png], { encoding: "utf8" }).replace(/\n$/, ""); } catch { return ""; }
  }
}

function qrlpVerify(text) {
  try {
    const o = execFileSync(qrlp, ["verify", text], { encoding: "utf8", env: { ...process.env, QRLP_DATA_DIR: dataDir } });
    return { ok: true, out: o.trim() };
  } catch (e) { return { ok: false, out: String(e.stdout || e.message).trim() }; }
}

// A contrast and label check of a page: every form control and image is named, and all
// visible text has a contrast ratio of at least 4.5:1 against its background.
async function accessibility(page, name) {
  const problems = await page.evaluate(() => {
    const out = [];
    const parse = (c) => { const m = c.match(/rgba?\(([^)]+)\)/); if (!m) return null; const p = m[1].split(",").map(Number); return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 }; };
    const lum = (c) => { const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); }; return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b); };
    const bgOf = (el) => { for (let e = el; e; e = e.parentElement) { const c = parse(getComputedStyle(e).backgroundColor); if (c && c.a > 0.5) return c; } return { r: 255, g: 255, b: 255, a: 1 }; };
    for (const el of document.querySelectorAll("input, textarea, select, button")) {
      if (el.type === "hidden" || el.hidden) continue;
      const named = (el.labels && el.labels.length) || el.getAttribute("aria-label") || (el.tagName === "BUTTON" && el.textContent.trim());
      if (!named) out.push(`unnamed ${el.tagName.toLowerCase()}#${el.id}`);
    }
    for (const img of document.querySelectorAll("img")) if (!img.getAttribute("alt")) out.push("image without alt");
    if (!document.documentElement.lang) out.push("no lang");
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
      const el = n.parentElement;
      if (!n.textContent.trim() || !el || !el.offsetParent) continue;
      const fg = parse(getComputedStyle(el).color), bg = bgOf(el);
      if (!fg) continue;
      const a = lum(fg), b = lum(bg);
      const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
      if (ratio < 4.5) out.push(`contrast ${ratio.toFixed(2)} for "${n.textContent.trim().slice(0, 30)}"`);
    }
    return out;
  });
  check(problems.length === 0, `${name}: labels and contrast (${problems.length ? problems.join("; ") : "no problems"})`);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu"],
});
try {
  // 1. The viewer: two updates, a screenshot, its code decoded and verified by qrlp verify.
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  await page.goto(url + "/");
  await page.waitForFunction(() => Number(document.body.dataset.updates || 0) >= 2, null, { timeout: 15000 });
  const seqBefore = await page.getAttribute("#qr", "data-sequence");
  const frames = [await page.getAttribute("#qr", "data-frame")];
  await page.screenshot({ path: `${out}/viewer.png` });
  frames.push(await page.getAttribute("#qr", "data-frame"));
  const state = await page.textContent("#state");
  check(state.startsWith("live"), `connection state shown: "${state}"`);
  check(/^#\d+$/.test(await page.textContent("#seq")), `sequence shown (${seqBefore})`);
  check(/\d+\.\d s/.test(await page.textContent("#countdown")), "countdown shown");
  const text = decode(`${out}/viewer.png`);
  check(text.length > 0 && frames.includes(text), `the viewer screenshot decodes to the frame shown (${text.length} characters)`);
  const v = qrlpVerify(text);
  check(v.ok, `qrlp verify accepts the decoded code: ${v.out}`);
  await accessibility(page, "viewer");

  // 2. The verify page: paste the frame, read the verdict.
  const vp = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  await vp.goto(url + "/verify");
  await vp.fill("#frame", text);
  await vp.click("#verify-text");
  await vp.waitForSelector("#verdict", { timeout: 10000 });
  const verdict = await vp.textContent("#verdict");
  const valid = await vp.getAttribute("#verdict", "data-valid");
  check(valid === "true", `/verify paste verdict: "${verdict.replace(/\s+/g, " ").trim()}"`);
  await vp.screenshot({ path: `${out}/verify.png`, fullPage: true });
  await accessibility(vp, "verify page");
  // A tampered paste is invalid.
  await vp.fill("#frame", text.replace(/"sequence_number":(\d)/, (m, d) => `"sequence_number":${(Number(d) + 1) % 10}`));
  await vp.click("#verify-text");
  await vp.waitForFunction(() => document.querySelector("#verdict") && document.querySelector("#verdict").dataset.valid === "false", null, { timeout: 10000 });
  check(true, `/verify shows a tampered frame as invalid: "${(await vp.textContent("#verdict")).replace(/\s+/g, " ").trim().slice(0, 80)}"`);

  // 3. The stream view at 1920x1080 (an OBS browser source): the code decodes.
  const sp = await browser.newPage({ viewport: { width: 1920, height: 1080 } });
  await sp.goto(url + "/?mode=stream");
  await sp.waitForFunction(() => Number(document.body.dataset.updates || 0) >= 2, null, { timeout: 15000 });
  const sframes = [await sp.getAttribute("#qr", "data-frame")];
  await sp.screenshot({ path: `${out}/stream.png` });
  sframes.push(await sp.getAttribute("#qr", "data-frame"));
  const stext = decode(`${out}/stream.png`);
  check(stext.length > 0 && sframes.includes(stext), "the 1920x1080 stream view decodes to the frame shown");
  check(await sp.isHidden("#user-form"), "the stream view has no controls");

  // 4. Phone-sized pages.
  const phone = await browser.newPage({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
  await phone.goto(url + "/");
  await phone.waitForFunction(() => Number(document.body.dataset.updates || 0) >= 1, null, { timeout: 15000 });
  const overflow = await phone.evaluate(() => document.documentElement.scrollWidth > window.innerWidth + 1);
  check(!overflow, "the viewer fits a 390 px wide phone without sideways scrolling");
  await phone.screenshot({ path: `${out}/phone-viewer.png` });
  const ptext = decode(`${out}/phone-viewer.png`);
  check(ptext.length > 0, "the code on the phone-sized viewer decodes");
  await phone.goto(url + "/verify");
  const overflow2 = await phone.evaluate(() => document.documentElement.scrollWidth > window.innerWidth + 1);
  check(!overflow2, "the verify page fits a 390 px wide phone");
  await phone.screenshot({ path: `${out}/phone-verify.png`, fullPage: true });
} finally {
  await browser.close();
}
if (failures.length) { console.log(`browser: ${failures.length} failed`); process.exit(1); }
console.log("browser: all passed");
