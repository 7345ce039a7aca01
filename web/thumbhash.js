// ThumbHash placeholders (https://evanw.github.io/thumbhash/): the API's `thumbhash` (base64)
// drawn as a small RGBA picture with the image's aspect ratio and transparency, then as a data
// URL a page shows, blurred by scaling, until the rendition loads. The same decoding as the
// reference decoder (thumbHashToRGBA), written for this page; tests/unit/imaging/
// test_thumbhash.py holds the Python port the engine's hashes are checked with.

function bytesOf(base64) {
  return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
}

// The picture's width / height, from the hash's header alone.
export function aspectRatio(hash) {
  const hasAlpha = hash[2] & 0x80;
  const landscape = hash[4] & 0x80;
  const lx = landscape ? (hasAlpha ? 5 : 7) : hash[3] & 7;
  const ly = landscape ? hash[3] & 7 : hasAlpha ? 5 : 7;
  return lx / ly;
}

// {width, height, rgba}: at most 32 px on the longer side.
export function decode(hash) {
  const header24 = hash[0] | (hash[1] << 8) | (hash[2] << 16);
  const header16 = hash[3] | (hash[4] << 8);
  const lDc = (header24 & 63) / 63;
  const pDc = ((header24 >> 6) & 63) / 31.5 - 1;
  const qDc = ((header24 >> 12) & 63) / 31.5 - 1;
  const lScale = ((header24 >> 18) & 31) / 31;
  const hasAlpha = header24 >> 23;
  const pScale = ((header16 >> 3) & 63) / 63;
  const qScale = ((header16 >> 9) & 63) / 63;
  const landscape = header16 >> 15;
  const lx = Math.max(3, landscape ? (hasAlpha ? 5 : 7) : header16 & 7);
  const ly = Math.max(3, landscape ? header16 & 7 : hasAlpha ? 5 : 7);
  const aDc = hasAlpha ? (hash[5] & 15) / 15 : 1;
  const aScale = hasAlpha ? (hash[5] >> 4) / 15 : 0;
  const start = hasAlpha ? 6 : 5;
  let index = 0;
  const channel = (nx, ny, scale) => {
    const ac = [];
    for (let cy = 0; cy < ny; cy++) {
      for (let cx = cy ? 0 : 1; cx * ny < nx * (ny - cy); cx++) {
        const nibble = (hash[start + (index >> 1)] >> ((index & 1) << 2)) & 15;
        ac.push((nibble / 7.5 - 1) * scale);
        index++;
      }
    }
    return ac;
  };
  const lAc = channel(lx, ly, lScale);
  const pAc = channel(3, 3, pScale * 1.25);
  const qAc = channel(3, 3, qScale * 1.25);
  const aAc = hasAlpha ? channel(5, 5, aScale) : [];
  const ratio = aspectRatio(hash);
  const width = Math.round(ratio > 1 ? 32 : 32 * ratio);
  const height = Math.round(ratio > 1 ? 32 / ratio : 32);
  const rgba = new Uint8ClampedArray(width * height * 4);
  const fx = new Array(Math.max(lx, hasAlpha ? 5 : 3));
  const fy = new Array(Math.max(ly, hasAlpha ? 5 : 3));
  for (let y = 0, i = 0; y < height; y++) {
    for (let cy = 0; cy < fy.length; cy++) fy[cy] = Math.cos((Math.PI / height) * (y + 0.5) * cy);
    for (let x = 0; x < width; x++, i += 4) {
      for (let cx = 0; cx < fx.length; cx++) fx[cx] = Math.cos((Math.PI / width) * (x + 0.5) * cx);
      let l = lDc, p = pDc, q = qDc, a = aDc;
      for (let cy = 0, j = 0; cy < ly; cy++) {
        for (let cx = cy ? 0 : 1; cx * ly < lx * (ly - cy); cx++, j++) l += lAc[j] * fx[cx] * fy[cy] * 2;
      }
      for (let cy = 0, j = 0; cy < 3; cy++) {
        for (let cx = cy ? 0 : 1; cx < 3 - cy; cx++, j++) {
          const f = fx[cx] * fy[cy] * 2;
          p += pAc[j] * f;
          q += qAc[j] * f;
        }
      }
      if (hasAlpha) {
        for (let cy = 0, j = 0; cy < 5; cy++) {
          for (let cx = cy ? 0 : 1; cx < 5 - cy; cx++, j++) a += aAc[j] * fx[cx] * fy[cy] * 2;
        }
      }
      const b = l - (2 / 3) * p;
      const r = (3 * l - b + q) / 2;
      const g = r - q;
      rgba[i] = 255 * Math.min(1, r); // the clamped array floors at 0 and rounds
      rgba[i + 1] = 255 * Math.min(1, g);
      rgba[i + 2] = 255 * Math.min(1, b);
      rgba[i + 3] = 255 * Math.min(1, a);
    }
  }
  return { width, height, rgba };
}

// A PNG data URL of the placeholder, and its size.
export function toDataURL(base64) {
  const { width, height, rgba } = decode(bytesOf(base64));
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  canvas.getContext("2d").putImageData(new ImageData(rgba, width, height), 0, 0);
  return { url: canvas.toDataURL("image/png"), width, height };
}
