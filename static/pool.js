// graftcert worker pool: N Web Workers, each its own instance of worker.wasm with its
// own copy of the model, fed one sample at a time. Cancel terminates the workers; new
// ones start from the same compiled WebAssembly.Module, so a respawn costs an
// instantiation, not a download or a compile.
"use strict";

(function () {
  const PROTOCOL = 1;

  // The SIMD matrix kernel (gemm.wasm, package wasm/gemmsimd), fetched and compiled
  // once, as the worker module is, and sent to every worker with it. null where it
  // cannot be had (a browser without WebAssembly SIMD, or the file missing): the
  // workers then multiply with Go's own kernel, to the same bits, more slowly.
  const gemmModule = (async () => {
    try {
      const r = await fetch("gemm.wasm");
      if (!r.ok) return null;
      const bytes = await r.arrayBuffer();
      if (!WebAssembly.validate(bytes)) return null;
      return await WebAssembly.compile(bytes);
    } catch (err) {
      return null;
    }
  })();

  class CancelledError extends Error {
    constructor() { super("cancelled"); this.code = "cancelled"; }
  }

  class WorkerError extends Error {
    constructor(msg) {
      super(msg.message || "worker error");
      this.code = msg.code || "";
      this.estimatedBytes = msg.estimatedBytes || 0;
      this.limitBytes = msg.limitBytes || 0;
    }
  }

  // One worker and its outstanding requests.
  class Handle {
    constructor(module, gemm, index) {
      this.index = index;
      this.nextId = 1;
      this.calls = new Map();
      this.model = null; // key of the loaded model
      this.data = null;  // key of the loaded samples
      this.dead = false;
      this.w = new Worker("worker.js");
      this.ready = new Promise((resolve, reject) => {
        this.readyResolve = resolve;
        this.readyReject = reject;
      });
      this.w.onmessage = (e) => this.receive(e.data);
      this.w.onerror = (e) => this.die("worker " + index + " failed: " + (e.message || "script error"));
      this.w.postMessage({ type: "init", module: module, gemm: gemm });
    }

    receive(m) {
      if (!m || m.v !== PROTOCOL) {
        this.die("worker " + this.index + " speaks protocol " + (m && m.v) + ", the page " + PROTOCOL);
        return;
      }
      if (m.type === "ready") {
        this.info = m;
        this.readyResolve(m);
        return;
      }
      if (m.code === "fatal") {
        this.die(m.message);
        return;
      }
      const c = this.calls.get(m.id);
      if (!c) return;
      if (m.type === "progress") {
        if (c.onProgress) c.onProgress(m);
        return;
      }
      this.calls.delete(m.id);
      if (m.type === "result") {
        c.resolve(m);
        return;
      }
      // A panic makes the worker drop its model: load it again next time.
      if (m.code === "panic" || m.code === "no_model") this.model = null;
      if (m.code === "no_data") this.data = null;
      c.reject(new WorkerError(m));
    }

    die(message) {
      if (this.dead) return;
      this.dead = true;
      const err = new WorkerError({ message: message, code: "fatal" });
      this.readyReject(err);
      for (const c of this.calls.values()) c.reject(err);
      this.calls.clear();
      this.w.terminate();
    }

    // call sends one request and resolves with its result message. ArrayBuffers are
    // copied (structured clone), so the page keeps its own.
    call(req, onProgress) {
      if (this.dead) return Promise.reject(new WorkerError({ message: "worker is gone", code: "fatal" }));
      const id = this.nextId++;
      const msg = Object.assign({ v: PROTOCOL, id: id }, req);
      return new Promise((resolve, reject) => {
        this.calls.set(id, { resolve, reject, onProgress });
        this.w.postMessage(msg);
      });
    }

    terminate() {
      const err = new CancelledError();
      this.dead = true;
      this.readyReject(err);
      for (const c of this.calls.values()) c.reject(err);
      this.calls.clear();
      this.w.terminate();
    }
  }

  class Pool {
    constructor(modulePromise) {
      this.modulePromise = modulePromise;
      this.handles = [];
      this.spawned = 0; // workers started since the page loaded (tests read it)
      this.tail = Promise.resolve();
    }

    // exclusive runs the operations one after the other: a worker's loaded model and
    // samples are bookkept here, and two interleaved operations could swap them under
    // each other's feet. cancel() ends the running one at once (its calls reject).
    exclusive(fn) {
      const run = this.tail.then(() => fn());
      this.tail = run.catch(() => {});
      return run;
    }

    // ensure starts workers until at least n are alive and ready. Workers beyond n
    // stay (with their loaded model) for a later, larger run.
    async ensure(n) {
      const module = await this.modulePromise;
      const gemm = await gemmModule;
      this.handles = this.handles.filter((h) => !h.dead);
      this.handles.forEach((h, i) => { h.index = i; });
      while (this.handles.length < n) {
        this.handles.push(new Handle(module, gemm, this.handles.length));
        this.spawned++;
      }
      await Promise.all(this.handles.map((h) => h.ready));
      return this.handles.slice(0, n);
    }

    size() { return this.handles.filter((h) => !h.dead).length; }

    // prepare loads the model and the samples into n workers (only where they differ
    // from what a worker already holds) and returns the model summary. model is
    // {key, name, bytes: ArrayBuffer}; data is {key, name, x, y} (.npy ArrayBuffers)
    // or {key, name, inline: {x: Float64Array, shape, labels}}.
    async _prepare(n, model, data) {
      const hs = await this.ensure(n);
      let summary = null;
      await Promise.all(hs.map(async (h) => {
        if (h.model !== model.key) {
          h.model = null;
          const r = await h.call({ type: "load", name: model.name, model: model.bytes, maxBytes: model.maxBytes || 0 });
          h.model = model.key;
          h.summary = r.summary;
        }
        summary = h.summary;
        if (data && h.data !== data.key) {
          h.data = null;
          const req = { type: "data", name: data.name };
          if (data.inline) {
            req.x = data.inline.x;
            req.shape = data.inline.shape;
            req.labels = data.inline.labels;
          } else {
            req.x = data.x;
            req.y = data.y;
          }
          await h.call(req);
          h.data = data.key;
        }
      }));
      return summary;
    }

    // bounds certifies the listed samples, spreading them over the workers one at a
    // time; onSample(k, sample, done, total, worker) is called as sample k of the list
    // finishes. Resolves with the samples in the order of indices. The first error
    // stops the run (the other workers finish the sample they hold).
    async _bounds(n, model, data, opts, onSample) {
      await this._prepare(n, model, data);
      const hs = this.handles.slice(0, n);
      const indices = opts.indices.slice();
      const out = new Array(indices.length);
      let next = 0;
      let done = 0;
      const req = { type: "bounds", eps: opts.eps, method: opts.method };
      if (opts.iterations) req.iterations = opts.iterations;
      if (opts.lr) req.lr = opts.lr;
      // Cheap samples (a few ms of CROWN) go several to a request, so that the round
      // trip through this thread does not idle the workers: each worker sizes its next
      // request to about 30 ms from its last one, never more than 16 samples or its
      // fair share of what is left (the last requests stay small, for balance).
      const run = async (h) => {
        let per = 0; // seconds per sample in this worker's last request
        while (next < indices.length) {
          const left = indices.length - next;
          let size = per > 0 ? Math.round(0.03 / per) : 1;
          size = Math.max(1, Math.min(size, 16, Math.floor(left / (2 * hs.length))));
          const k0 = next;
          next += size;
          const t0 = performance.now();
          let r;
          try {
            r = await h.call(Object.assign({ indices: indices.slice(k0, k0 + size) }, req));
          } catch (err) {
            next = indices.length;
            throw err;
          }
          per = (performance.now() - t0) / 1000 / size;
          for (let j = 0; j < size; j++) {
            out[k0 + j] = r.samples[j];
            done++;
            if (onSample) onSample(k0 + j, out[k0 + j], done, indices.length, h.index);
          }
        }
      };
      await Promise.all(hs.map(run));
      return out;
    }

    // verify decides one sample completely (PGD, then branch and bound with
    // β-CROWN). With n workers every worker gets the whole sample and shard {w, n}: all
    // run the same deterministic first rounds of branch and bound, then each searches
    // its share of the open subdomains (core/bab Shard). The sample is verified when
    // every shard is (and all shared out the same frontier: equal fingerprints),
    // falsified as soon as one worker finds a counterexample (the others are stopped),
    // unknown otherwise. (Sharing margin rows, as before, idled all but one worker
    // when one row was the hard one; every open row's tree is shared now.)
    // A single worker (unsharded) also refines intermediate bounds when its first
    // search stalls, as the CLI does (opts.refine, default 0.3 of the time left; 0
    // turns it off); shards never do.
    // opts: {index, eps, timeout, refine}; onProgress(worker, {domains, bounded, lower,
    // seconds}). Resolves with {index, label, pred, result, seconds, counterexample,
    // domains, workers, shards: [{worker, result, domains, seconds, shard}]}.
    async _verify(n, model, data, opts, onProgress) {
      await this._prepare(n, model, data);
      const hs = this.handles.slice(0, n);
      const t0 = performance.now();
      let found = false;
      const results = await Promise.all(hs.map(async (h, w) => {
        const req = { type: "verify", indices: [opts.index], eps: opts.eps, timeout: opts.timeout || 60 };
        if (n > 1) req.shard = { index: w, count: n };
        else req.refine = opts.refine ?? 0.3;
        try {
          const r = await h.call(req, (m) => { if (onProgress && m.bab) onProgress(w, m.bab); });
          if (r.verify.result === "falsified" && !found) {
            found = true;
            for (const o of hs) if (o !== h && o.calls.size > 0) o.terminate();
          }
          return r.verify;
        } catch (err) {
          if (found) return { result: "stopped", domains: 0 };
          throw err;
        }
      }));
      const first = results.find((r) => r.label !== undefined);
      const out = { index: opts.index, label: first.label, pred: first.pred, counterexample: null,
        seconds: (performance.now() - t0) / 1000, domains: 0, workers: n,
        shards: results.map((r, w) => ({ worker: w, result: r.result, domains: r.domains || 0, seconds: r.seconds || 0,
          shard: r.shard || null })) };
      for (const r of results) out.domains += r.domains || 0;
      // A worker without shard statistics answered for the whole sample.
      const prints = new Set(results.filter((r) => r.shard).map((r) => r.shard.fingerprint));
      const has = (x) => results.some((r) => r.result === x);
      if (has("misclassified")) out.result = "misclassified";
      else if (has("falsified")) {
        out.result = "falsified";
        out.counterexample = results.find((r) => r.result === "falsified").counterexample;
      } else if (results.every((r) => r.result === "verified")) {
        out.result = prints.size <= 1 ? "verified" : "unknown";
        if (prints.size > 1) out.reason = "the workers shared out different frontiers: their proofs do not combine";
      } else out.result = "unknown";
      return out;
    }

    // eval runs the forward pass on the first worker.
    async _eval(model, data, indices) {
      await this._prepare(1, model, data);
      const r = await this.handles[0].call({ type: "eval", indices: indices });
      return r.eval;
    }

    // graft scores, grafts and fine-tunes the model on the first worker; resolves with
    // {report, summary, bytes} where bytes is the grafted ONNX file.
    async _graft(model, opts, trainX, trainY, onProgress) {
      await this._prepare(1, model, null);
      const req = Object.assign({ type: "graft", trainX: trainX, trainY: trainY }, opts);
      const r = await this.handles[0].call(req, onProgress);
      return { report: r.graft, summary: r.summary, bytes: r.model };
    }

    prepare(...a) { return this.exclusive(() => this._prepare(...a)); }
    bounds(...a) { return this.exclusive(() => this._bounds(...a)); }
    verify(...a) { return this.exclusive(() => this._verify(...a)); }
    eval(...a) { return this.exclusive(() => this._eval(...a)); }
    graft(...a) { return this.exclusive(() => this._graft(...a)); }

    // cancel stops everything at once: the workers are terminated (a worker busy in Go
    // never reads a message) and pending calls reject with code "cancelled". The next
    // call starts fresh workers.
    cancel() {
      for (const h of this.handles) h.terminate();
      this.handles = [];
    }
  }

  window.GraftcertPool = Pool;
  window.GraftcertCancelledError = CancelledError;
})();
