// graftcert page bootstrap: compiles the worker module once, exposes the small API
// the Go UI calls (window.graftcert), and starts the vugu UI (ui.wasm).
"use strict";

(function () {
  // vugu's renderer installs its DOM helper with window.eval(helperScript). The page's
  // Content-Security-Policy forbids eval, so the same helper is loaded as a file
  // (vugu-render.js, allowed by script-src 'self') before the UI starts, and eval
  // answers that one call as a no-op. Anything else goes to the real eval, which the
  // policy blocks for the page's own scripts.
  const vuguHelperPrefix = "(function(){if(window.vuguRender)return;";
  const realEval = window.eval;
  window.eval = function (src) {
    if (typeof src === "string" && src.startsWith(vuguHelperPrefix) && window.vuguRender) return undefined;
    return realEval(src);
  };

  async function compile(url) {
    try {
      return await WebAssembly.compileStreaming(fetch(url));
    } catch (e) {
      // A server that does not send application/wasm: compile from the bytes.
      const r = await fetch(url);
      if (!r.ok) throw new Error(url + ": HTTP " + r.status);
      return WebAssembly.compile(await r.arrayBuffer());
    }
  }

  const workerModule = compile("worker.wasm");
  workerModule.catch((err) => bootError("cannot load the certifier (worker.wasm): " + err));

  // Bundled files are fetched by fixed names from demo/; nothing the user supplies
  // ever becomes part of a URL.
  const bundled = new Set([
    "demo/mnist_6_100.onnx", "demo/mnist_6_100_graft50.onnx", "demo/cifar_conv_small.onnx",
    "demo/mnist_X.npy", "demo/mnist_y.npy", "demo/cifar_X.npy", "demo/cifar_y.npy",
    "demo/train/mnist_train_X.npy", "demo/train/mnist_train_y.npy",
  ]);
  const cache = new Map();

  const api = {
    cores: Math.max(1, navigator.hardwareConcurrency || 1),
    pool: new window.GraftcertPool(workerModule),
    fetchBundled(path) {
      if (!bundled.has(path)) return Promise.reject(new Error("not a bundled file: " + path));
      if (!cache.has(path)) {
        cache.set(path, fetch(path).then((r) => {
          if (!r.ok) throw new Error(path + ": HTTP " + r.status);
          return r.arrayBuffer();
        }).catch((err) => { cache.delete(path); throw err; }));
      }
      return cache.get(path);
    },
    readFile(file) { return file.arrayBuffer(); },
    // download saves bytes as a file through a blob: URL (no network).
    download(name, bytes, type) {
      const url = URL.createObjectURL(new Blob([bytes], { type: type || "application/octet-stream" }));
      const a = document.createElement("a");
      a.href = url;
      a.download = name;
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    },
    now() { return performance.now(); },
  };
  window.graftcert = api;

  function bootError(msg) {
    const el = document.getElementById("boot-error");
    if (el) {
      el.textContent = msg;
      el.hidden = false;
    }
    console.error(msg);
  }

  (async function startUI() {
    const go = new Go();
    const mod = await compile("ui.wasm");
    const inst = await WebAssembly.instantiate(mod, go.importObject);
    go.run(inst).then(() => bootError("the page's program stopped; reload the page"));
  })().catch((err) => bootError("cannot start the page (ui.wasm): " + err));
})();
