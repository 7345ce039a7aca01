// The browser side of the upload API: request -> presigned POST to S3 -> poll -> the picture
// and each rendition.
// No build step, no dependencies (thumbhash.js is this page's own). The configuration (api_url, api_key) comes from the server
// that serves this page (make web: scripts/web.py), which reads the stack's outputs.

import * as thumbhash from "./thumbhash.js";

const POLL_MS = 500;
const TIMEOUT_MS = 120000;
const FINAL = new Set(["READY", "FAILED"]);
// Types browsers do not always know by name.
const TYPES = { heic: "image/heic", heif: "image/heif", avif: "image/avif", tif: "image/tiff" };

function typeOf(file) {
  const extension = file.name.split(".").pop().toLowerCase();
  return file.type || TYPES[extension] || "application/octet-stream";
}

const list = document.getElementById("images");
const drop = document.getElementById("drop");
const picker = document.getElementById("files");
const config = fetch("config.json").then((r) => {
  if (!r.ok) throw new Error(`config.json: HTTP ${r.status}`);
  return r.json();
});

config.then(
  (c) => { document.getElementById("api-url").textContent = c.api_url; },
  (e) => { document.getElementById("api-url").textContent = `no configuration (${e.message})`; },
);

async function api(method, path, body) {
  const { api_url: base, api_key: key } = await config;
  const headers = { "X-Api-Key": key };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(`${base}${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const payload = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new Error(`HTTP ${response.status}: ${payload.message || response.statusText}`);
  }
  return payload;
}

function card(file) {
  const item = document.createElement("li");
  item.className = "image";
  item.innerHTML = `<h2></h2><div><span class="status"></span> <span class="detail"></span></div>
    <div class="picture"></div><div class="renditions"></div>`;
  item.querySelector("h2").textContent = file.name;
  list.prepend(item);
  return {
    item,
    set(status, detail = "") {
      const el = item.querySelector(".status");
      el.textContent = status;
      el.dataset.status = status;
      item.dataset.status = status;
      item.querySelector(".detail").textContent = detail;
    },
  };
}

// The image as an app shows it, from the API's `picture`: a <picture> whose <source>s offer the
// extra formats (AVIF, WebP) and whose <img> falls back to the format every browser takes, the
// browser picking the width from srcset and sizes; the placeholder (the ThumbHash drawn, or a
// tiny blurred image) and dominant colour fill the box, at the image's aspect ratio, until the
// rendition has loaded.
function showPicture(view, picture) {
  const box = view.item.querySelector(".picture");
  box.replaceChildren();
  if (!picture) return;
  const element = document.createElement("picture");
  for (const source of picture.sources) {
    const el = document.createElement("source");
    el.type = source.type;
    el.srcset = source.srcset;
    el.sizes = picture.img.sizes;
    element.append(el);
  }
  const img = document.createElement("img");
  img.alt = "the uploaded image";
  img.width = picture.img.width;
  img.height = picture.img.height;
  img.sizes = picture.img.sizes;
  img.srcset = picture.img.srcset;
  img.decoding = "async";
  // The ThumbHash when there is one (sharper, keeps transparency), else the tiny WebP.
  const placeholder = picture.thumbhash ? thumbhash.toDataURL(picture.thumbhash) : null;
  if (placeholder) {
    img.style.backgroundImage = `url("${placeholder.url}")`;
    img.dataset.placeholder = "shown";
    img.dataset.placeholderKind = "thumbhash";
    img.dataset.placeholderSize = `${placeholder.width}x${placeholder.height}`;
  } else if (picture.placeholder) {
    img.style.backgroundImage = `url("${picture.placeholder}")`;
    img.dataset.placeholder = "shown";
    img.dataset.placeholderKind = "webp";
  }
  if (picture.dominant_color) img.style.backgroundColor = picture.dominant_color;
  img.addEventListener("load", () => {
    img.style.backgroundImage = "";
    if (img.dataset.placeholder) img.dataset.placeholder = "replaced";
  });
  img.src = picture.img.src; // last: the srcset and sizes are known when the fetch starts
  element.append(img);
  box.append(element);
}

function showRenditions(view, image) {
  showPicture(view, image.picture);
  const box = view.item.querySelector(".renditions");
  box.replaceChildren();
  for (const [name, r] of Object.entries(image.renditions)) {
    const figure = document.createElement("figure");
    const img = document.createElement("img");
    img.alt = `${name} rendition`;
    img.dataset.rendition = name;
    img.dataset.width = r.width;
    img.dataset.height = r.height;
    img.src = r.url;
    const caption = document.createElement("figcaption");
    caption.textContent = `${name}: ${r.width}x${r.height} ${r.format}, ${r.bytes.toLocaleString()} bytes`;
    figure.append(img, caption);
    box.append(figure);
  }
}

async function upload(file) {
  const view = card(file);
  try {
    view.set("REQUESTING");
    const created = await api("POST", "/uploads", {
      filename: file.name,
      content_type: typeOf(file),
      size: file.size,
    });
    view.item.dataset.imageId = created.image_id;
    view.set("UPLOADING", created.image_id);
    const form = new FormData();
    for (const [name, value] of Object.entries(created.upload.fields)) form.append(name, value);
    form.append("file", new Blob([file], { type: typeOf(file) }), file.name); // last: S3 ignores fields after the file
    const s3 = await fetch(created.upload.url, { method: "POST", body: form });
    if (!s3.ok) {
      const text = await s3.text();
      const message = /<Message>(.*?)<\/Message>/.exec(text)?.[1] || s3.statusText;
      throw new Error(`S3 refused the upload (${s3.status}): ${message}`);
    }
    const deadline = Date.now() + TIMEOUT_MS;
    let image;
    do {
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      image = await api("GET", `/images/${created.image_id}`);
      view.set(image.status, created.image_id);
    } while (!FINAL.has(image.status) && Date.now() < deadline);
    if (image.status === "READY") showRenditions(view, image);
    else if (image.status === "FAILED") view.set("FAILED", `${image.failure.reason}: ${image.failure.message}`);
    else view.set("ERROR", `still ${image.status} after ${TIMEOUT_MS / 1000} s`);
  } catch (error) {
    view.set("ERROR", error.message);
  }
}

function uploadAll(files) {
  for (const file of files) upload(file);
}

picker.addEventListener("change", () => { uploadAll(picker.files); picker.value = ""; });
for (const type of ["dragenter", "dragover"]) {
  drop.addEventListener(type, (e) => { e.preventDefault(); drop.classList.add("over"); });
}
for (const type of ["dragleave", "drop"]) {
  drop.addEventListener(type, () => drop.classList.remove("over"));
}
drop.addEventListener("drop", (e) => { e.preventDefault(); uploadAll(e.dataTransfer.files); });
