// Drives the upload demo in headless Chromium (Debian's, through playwright-core) and reports,
// as one JSON line on stdout, what the page shows once every picked image is READY or FAILED.
//
//   node tests/e2e/browser/drive.mjs PAGE_URL FILE...
//
// The local stack's certificate comes from its own CA: the browser runs with
// --ignore-certificate-errors (this test only), instead of trusting that CA system-wide.
import { chromium } from "playwright-core";

const [pageUrl, ...files] = process.argv.slice(2);
const TIMEOUT_MS = 120000;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--ignore-certificate-errors",
  ],
});
try {
  const page = await browser.newPage();
  const console_ = [];
  page.on("console", (m) => console_.push(`${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => console_.push(`pageerror: ${e.message}`));
  await page.goto(pageUrl);
  await page.waitForFunction(() => !document.getElementById("api-url").textContent.startsWith("loading"));
  await page.setInputFiles("#files", files);
  await page.waitForFunction(
    (n) => {
      const cards = [...document.querySelectorAll("#images .image")];
      const done = cards.filter((c) => ["READY", "FAILED", "ERROR"].includes(c.dataset.status));
      const ready = done.filter((c) => c.dataset.status === "READY");
      // READY cards count once their images (the picture's, each rendition's) have loaded
      // (or failed to)
      const loaded = ready.every((c) => [...c.querySelectorAll("img")].every((i) => i.complete));
      return cards.length === n && done.length === n && loaded;
    },
    files.length,
    { timeout: TIMEOUT_MS, polling: 250 },
  );
  const images = await page.$$eval("#images .image", (cards) =>
    cards.map((c) => ({
      name: c.querySelector("h2").textContent,
      image_id: c.dataset.imageId || null,
      status: c.dataset.status,
      detail: c.querySelector(".detail").textContent,
      picture: (() => {
        const img = c.querySelector(".picture img");
        if (!img) return null;
        return {
          current_src: img.currentSrc,
          img_srcset: img.srcset,
          natural_width: img.naturalWidth,
          natural_height: img.naturalHeight,
          placeholder: img.dataset.placeholder || null,
          placeholder_kind: img.dataset.placeholderKind || null,
          placeholder_size: img.dataset.placeholderSize || null,
          sources: [...c.querySelectorAll(".picture source")].map((s) => ({ type: s.type, srcset: s.srcset })),
        };
      })(),
      renditions: [...c.querySelectorAll(".renditions img")].map((i) => ({
        name: i.dataset.rendition,
        natural_width: i.naturalWidth,
        natural_height: i.naturalHeight,
        width: Number(i.dataset.width),
        height: Number(i.dataset.height),
      })),
    })),
  );
  process.stdout.write(JSON.stringify({ images, console: console_ }) + "\n");
} finally {
  await browser.close();
}
