// graftcert worker bootstrap. The page sends {type: "init", module, gemm} with the
// compiled WebAssembly.Module of worker.wasm (compiled once, shared by every worker) and
// that of gemm.wasm, the SIMD matrix kernel (null where the browser has no SIMD), then
// protocol requests {v, id, type, ...}. ArrayBuffer and typed-array fields travel to Go
// as named binary buffers; the rest as JSON. See wasm/worker/protocol.go.
"use strict";
importScripts("wasm_exec.js");

let pending = [];   // requests that arrived before Go registered its handler
let started = false;
let gemmCalls = 0;  // blocks computed by the SIMD kernel, sent with every result

// The SIMD module's functions besides block, and the globals package wasm/gemmsimd
// reads them from (any the module lacks leaves Go's own loop in place).
const gemmKernels = {
  concretize: "graftcertConcretize", relax: "graftcertRelax", pack: "graftcertPack", adam: "graftcertAdam",
  im2col: "graftcertIm2col", gather: "graftcertGather", interleave: "graftcertInterleave",
  sparse: "graftcertSparse", colrelax: "graftcertColRelax", colconc: "graftcertColConc",
};

// installGemm instantiates the SIMD kernels on the Go instance's memory and hands
// their functions to Go (package wasm/gemmsimd reads self.graftcertGemm and the
// globals of gemmKernels as Go starts). Any failure leaves Go's own loops in place:
// the worker must start regardless.
async function installGemm(gemm, goInstance) {
  if (!gemm) return;
  try {
    const g = await WebAssembly.instantiate(gemm, { env: { mem: goInstance.exports.mem } });
    const block = g.exports.block;
    if (typeof block !== "function") return;
    self.graftcertGemm = function (kb, mt, nt, a, b, c, ldc, alpha, accum) {
      gemmCalls++;
      block(kb, mt, nt, a, b, c, ldc, alpha, accum);
    };
    for (const [name, global] of Object.entries(gemmKernels)) {
      if (typeof g.exports[name] === "function") self[global] = g.exports[name];
    }
  } catch (err) {
    delete self.graftcertGemm;
    for (const global of Object.values(gemmKernels)) delete self[global];
  }
}

self.graftcertPost = function (json, buf) {
  const msg = JSON.parse(json);
  if (msg.type === "result") msg.gemmCalls = gemmCalls;
  if (buf) {
    msg.model = buf.buffer;
    self.postMessage(msg, [buf.buffer]);
  } else {
    self.postMessage(msg);
  }
};

function fatal(id, message) {
  self.postMessage({ v: 1, id: id || 0, type: "error", code: "fatal", message: message });
}

function dispatch(m) {
  const meta = {};
  const bufs = {};
  for (const [k, v] of Object.entries(m)) {
    if (v instanceof ArrayBuffer) bufs[k] = new Uint8Array(v);
    else if (ArrayBuffer.isView(v) && !(v instanceof Float64Array)) bufs[k] = new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
    else if (v instanceof Float64Array) meta[k] = Array.from(v);
    else meta[k] = v;
  }
  self.graftcertHandle(JSON.stringify(meta), bufs);
}

self.onmessage = async function (e) {
  const m = e.data;
  if (m && m.type === "init") {
    if (started) return;
    started = true;
    try {
      const go = new Go();
      const inst = await WebAssembly.instantiate(m.module, go.importObject);
      await installGemm(m.gemm, inst);
      go.run(inst).then(
        () => fatal(0, "the worker's Go program exited (exit code " + go.exitCode + ")"),
        (err) => fatal(0, "the worker crashed: " + err));
      // go.run has executed main up to its first wait: the handler is registered.
      const q = pending;
      pending = null;
      for (const r of q) dispatch(r);
    } catch (err) {
      fatal(0, "cannot start the worker: " + err);
    }
    return;
  }
  if (pending) pending.push(m);
  else dispatch(m);
};
