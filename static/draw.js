// graftcert digit pad: draw a digit (or load a picture of one) on the canvas
// #draw-canvas and turn it into a 28×28 MNIST-style input: white ink on black,
// the digit scaled to fit 20×20 and centred by its centre of mass, as MNIST was made.
// Pointer events are delegated from the document, so the canvas may be created and
// re-created by the UI at any time.
"use strict";

(function () {
  const SIZE = 280;
  let drawing = false;
  let last = null;

  // The UI owns the element and re-sets its width and height attributes on every
  // render, which clears a canvas. So the drawing lives in a backing canvas that is
  // not in the document, and the visible one is repainted from it whenever its
  // attributes change or it is created.
  const backing = document.createElement("canvas");
  backing.width = SIZE;
  backing.height = SIZE;
  const bg = backing.getContext("2d", { willReadFrequently: true });
  bg.fillStyle = "#000";
  bg.fillRect(0, 0, SIZE, SIZE);

  function canvas() { return document.getElementById("draw-canvas"); }

  function ctx() { return bg; }

  function show() {
    const c = canvas();
    if (!c) return;
    if (c.width !== SIZE) c.width = SIZE;
    if (c.height !== SIZE) c.height = SIZE;
    c.getContext("2d").drawImage(backing, 0, 0);
  }

  new MutationObserver(show).observe(document.documentElement,
    { subtree: true, childList: true, attributes: true, attributeFilter: ["width", "height"] });

  function pos(c, e) {
    const r = c.getBoundingClientRect();
    return [(e.clientX - r.left) * SIZE / r.width, (e.clientY - r.top) * SIZE / r.height];
  }

  function stroke(c, from, to) {
    const g = ctx();
    g.strokeStyle = "#fff";
    g.fillStyle = "#fff";
    g.lineWidth = 22;
    g.lineCap = "round";
    g.lineJoin = "round";
    g.beginPath();
    g.moveTo(from[0], from[1]);
    g.lineTo(to[0], to[1]);
    g.stroke();
    api.version++;
    show();
  }

  document.addEventListener("pointerdown", (e) => {
    const c = canvas();
    if (e.target !== c) return;
    e.preventDefault();
    c.setPointerCapture(e.pointerId);
    drawing = true;
    last = pos(c, e);
    stroke(c, last, last);
  });
  document.addEventListener("pointermove", (e) => {
    const c = canvas();
    if (!drawing || e.target !== c) return;
    const p = pos(c, e);
    stroke(c, last, p);
    last = p;
  });
  const stop = () => {
    if (drawing) {
      drawing = false;
      document.dispatchEvent(new CustomEvent("graftcert-drawn"));
    }
  };
  document.addEventListener("pointerup", stop);
  document.addEventListener("pointercancel", stop);

  // pixels returns the 784 inputs in [0,1], or null when the canvas is empty.
  function pixels() {
    const c = backing;
    const img = bg.getImageData(0, 0, SIZE, SIZE).data;
    let x0 = SIZE, y0 = SIZE, x1 = -1, y1 = -1;
    for (let y = 0; y < SIZE; y++) {
      for (let x = 0; x < SIZE; x++) {
        if (img[(y * SIZE + x) * 4] > 20) {
          if (x < x0) x0 = x;
          if (x > x1) x1 = x;
          if (y < y0) y0 = y;
          if (y > y1) y1 = y;
        }
      }
    }
    if (x1 < 0) return null;
    // Fit the ink's bounding box into 20×20, keeping its aspect ratio.
    const w = x1 - x0 + 1, h = y1 - y0 + 1;
    const s = 20 / Math.max(w, h);
    const tw = Math.max(1, Math.round(w * s)), th = Math.max(1, Math.round(h * s));
    const small = document.createElement("canvas");
    small.width = 28;
    small.height = 28;
    const sg = small.getContext("2d", { willReadFrequently: true });
    sg.fillStyle = "#000";
    sg.fillRect(0, 0, 28, 28);
    sg.imageSmoothingEnabled = true;
    sg.imageSmoothingQuality = "high";
    sg.drawImage(c, x0, y0, w, h, 0, 0, tw, th);
    const d = sg.getImageData(0, 0, tw, th).data;
    // Centre of mass of the scaled digit, then paste it so that it sits at (14, 14).
    let m = 0, mx = 0, my = 0;
    for (let y = 0; y < th; y++) {
      for (let x = 0; x < tw; x++) {
        const v = d[(y * tw + x) * 4] / 255;
        m += v; mx += v * x; my += v * y;
      }
    }
    const ox = Math.round(14 - (m > 0 ? mx / m : tw / 2));
    const oy = Math.round(14 - (m > 0 ? my / m : th / 2));
    const out = new Float64Array(784);
    for (let y = 0; y < th; y++) {
      for (let x = 0; x < tw; x++) {
        const X = x + ox, Y = y + oy;
        if (X < 0 || X >= 28 || Y < 0 || Y >= 28) continue;
        out[Y * 28 + X] = d[(y * tw + x) * 4] / 255;
      }
    }
    return out;
  }

  function clear() {
    bg.fillStyle = "#000";
    bg.fillRect(0, 0, SIZE, SIZE);
    api.version++;
    show();
  }

  // loadImage draws a picture file onto the canvas; a light background is inverted so
  // that the digit is white on black, as in MNIST. Decoding a File needs no URL.
  async function loadImage(file) {
    const bmp = await createImageBitmap(file);
    const g = bg;
    g.fillStyle = "#000";
    g.fillRect(0, 0, SIZE, SIZE);
    const s = Math.min(SIZE / bmp.width, SIZE / bmp.height);
    const w = bmp.width * s, h = bmp.height * s;
    g.drawImage(bmp, (SIZE - w) / 2, (SIZE - h) / 2, w, h);
    const id = g.getImageData(0, 0, SIZE, SIZE);
    const px = id.data;
    let sum = 0;
    for (let i = 0; i < px.length; i += 4) sum += (px[i] + px[i + 1] + px[i + 2]) / 3;
    const invert = sum / (px.length / 4) > 127;
    for (let i = 0; i < px.length; i += 4) {
      let v = (px[i] + px[i + 1] + px[i + 2]) / 3;
      if (invert) v = 255 - v;
      px[i] = px[i + 1] = px[i + 2] = v;
      px[i + 3] = 255;
    }
    g.putImageData(id, 0, 0);
    api.version++;
    show();
  }

  // drawSample paints a 784-value sample onto the canvas (the demo uses it to start
  // from a real digit).
  function drawSample(values) {
    const g = bg;
    const cell = SIZE / 28;
    for (let y = 0; y < 28; y++) {
      for (let x = 0; x < 28; x++) {
        const v = Math.round(255 * values[y * 28 + x]);
        g.fillStyle = "rgb(" + v + "," + v + "," + v + ")";
        g.fillRect(x * cell, y * cell, cell, cell);
      }
    }
    api.version++;
    show();
  }

  const api = { pixels, clear, loadImage, drawSample, version: 0 };
  window.graftcertDraw = api;
})();
