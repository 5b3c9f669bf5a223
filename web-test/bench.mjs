// make bench-web: a report, not a test. Times graftcert's WebAssembly worker in
// headless chromium against the native CLI on the same samples (per-sample median, one
// worker against native on one core and native's default one job), measures the worker
// pool's throughput with 1 and 2 workers beside native --jobs 2, and prints the page
// weight. The per-sample seconds are those each side measures around
// certify.Sample, so page and messaging overheads are excluded from the first table
// and included in the second.
import { spawn, execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import zlib from "node:zlib";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "..");
const bin = process.env.GRAFTCERT_BIN || path.join(root, "bin", "graftcert");
const chromePath = process.env.CHROMIUM || "/usr/bin/chromium";
const testdata = process.env.GRAFTCERT_TESTDATA || path.resolve(root, "..", "shared", "testdata");
const quick = process.env.BENCH_QUICK === "1";
const repeat = quick ? 1 : 5; // this 2-vCPU VM varies by up to 1.5x between identical runs

const models = [
  { name: "mnist_6_100", file: "static/demo/mnist_6_100.onnx", data: "mnist", eps: "0.026" },
  { name: "mnist_conv_small", file: path.join(testdata, "models", "mnist_conv_small.onnx"), data: "mnist", eps: "0.12" },
  { name: "cifar_conv_small", file: "static/demo/cifar_conv_small.onnx", data: "cifar", eps: "0.00784313725490196" },
];
const methods = [
  { method: "crown", n: quick ? 4 : 10 },
  { method: "alpha-crown", n: quick ? 2 : 4 },
];

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

function startServer() {
  return new Promise((resolve, reject) => {
    const p = spawn(bin, ["serve", "--addr", "127.0.0.1:0", "--dir", path.join(root, "static")], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    p.stdout.on("data", (d) => {
      out += d;
      const m = /on (http:\/\/127\.0\.0\.1:\d+)\//.exec(out);
      if (m) resolve({ proc: p, origin: m[1] });
    });
    p.on("exit", (code) => reject(new Error("server exited " + code)));
  });
}

// nativeRun runs the CLI's bounds on samples 0..count-1 with the given jobs. With
// oneCore the Go runtime gets one CPU (GOMAXPROCS=1), as one Web Worker has; without it
// one job still spreads a sample's rows and products over every core.
function nativeRun(m, method, count, jobs, oneCore) {
  const env = { ...process.env };
  if (oneCore) env.GOMAXPROCS = "1";
  const out = execFileSync(bin, ["bounds", "--model", m.file, "--data", `static/demo/${m.data}_X.npy`, "--labels",
    `static/demo/${m.data}_y.npy`, "--eps", m.eps, "--method", method, "--count", String(count), "--jobs", String(jobs), "--json"],
  { cwd: root, maxBuffer: 64 << 20, env, stdio: ["ignore", "pipe", "ignore"] });
  return JSON.parse(out);
}

function nativeSeconds(m, method, n, oneCore) {
  // Sample 0 is a warm-up, as in the browser.
  return nativeRun(m, method, n + 1, 1, oneCore).samples.slice(1).map((s) => s.seconds);
}

function pageWeight() {
  const rows = [];
  let total = 0;
  for (const f of ["index.html", "style.css", "wasm_exec.js", "vugu-render.js", "pool.js", "draw.js", "app.js", "worker.js",
    "ui.wasm", "worker.wasm", "gemm.wasm", "demo/mnist_6_100.onnx"]) {
    const b = fs.readFileSync(path.join(root, "static", f));
    const gz = zlib.gzipSync(b, { level: 9 }).length;
    total += gz;
    rows.push(`| ${f} | ${(b.length / 1024).toFixed(0)} KiB | ${(gz / 1024).toFixed(0)} KiB |`);
  }
  rows.push(`| **first load** | | **${(total / 1024 / 1024).toFixed(2)} MiB** |`);
  return rows;
}

const { proc: server, origin } = await startServer();
const browser = await chromium.launch({
  executablePath: chromePath,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic"],
});
try {
  const page = await browser.newPage();
  await page.goto(origin + "/");
  await page.waitForFunction(() => window.graftcert && window.graftcert.pool, null, { timeout: 60000 });
  // Load a model and samples into the page from bytes the page fetched itself
  // (bundled) or that this script hands over (shared models).
  const run = (m, bytes, method, indices, workers) => page.evaluate(async ({ m, bytes, method, indices, workers }) => {
    const gc = window.graftcert;
    const model = { key: m.name, name: m.name + ".onnx", bytes: new Uint8Array(bytes).buffer };
    const data = { key: m.data, name: m.data, x: await gc.fetchBundled(`demo/${m.data}_X.npy`), y: await gc.fetchBundled(`demo/${m.data}_y.npy`) };
    const t0 = performance.now();
    const out = await gc.pool.bounds(workers, model, data, { eps: Number(m.eps), method, indices }, null);
    return { wall: (performance.now() - t0) / 1000, seconds: out.map((s) => s.seconds) };
  }, { m, bytes, method, indices, workers });

  await page.evaluate(() => window.graftcert.pool.ensure(1));
  const kernel = await page.evaluate(() => window.graftcert.pool.handles[0].info.kernel);
  console.log(`workers' matrix kernel: ${kernel}\n`);
  console.log("## wasm (chromium, 1 worker) vs native: median seconds per sample\n");
  console.log("A worker runs on one core. \"native, 1 core\" is the CLI with GOMAXPROCS=1 (the same");
  console.log("resources); \"native, 1 job\" is its default for one sample, which spreads the sample's");
  console.log("rows and products over both cores. Each sample's time is its fastest of " + repeat + " runs.\n");
  console.log("| model | method | samples | native, 1 core | native, 1 job (2 cores) | wasm | wasm / native 1 core | wasm / native 1 job |");
  console.log("|---|---|---|---|---|---|---|---|");
  for (const m of models) {
    const bytes = [...fs.readFileSync(path.isAbsolute(m.file) ? m.file : path.join(root, m.file))];
    for (const { method, n } of methods) {
      const idx = [...Array(n + 1).keys()];
      // Each side runs the samples `repeat` times; a sample counts with its fastest time
      // (timings on a shared machine only ever err slow), then the median over samples.
      const fastest = async (f) => {
        let best = null;
        for (let r = 0; r < repeat; r++) {
          const ts = await f();
          best = best ? best.map((b, i) => Math.min(b, ts[i])) : ts;
        }
        return median(best);
      };
      const w = await fastest(async () => (await run(m, bytes, method, idx, 1)).seconds.slice(1));
      const nat1 = await fastest(async () => nativeSeconds(m, method, n, true));
      const nt = await fastest(async () => nativeSeconds(m, method, n, false));
      console.log(`| ${m.name} | ${method} | ${n} | ${(nat1 * 1000).toFixed(1)} ms | ${(nt * 1000).toFixed(1)} ms | ${(w * 1000).toFixed(1)} ms | ${(w / nat1).toFixed(2)} | ${(w / nt).toFixed(2)} |`);
    }
  }

  console.log("\n## worker pool throughput (CROWN, wall time including messaging; fastest of " + Math.min(repeat, 3) + " runs)\n");
  console.log("| model | samples | 1 worker | 2 workers | speedup | native --jobs 2 | 2 workers / native |");
  console.log("|---|---|---|---|---|---|---|");
  for (const m of [models[0], models[2]]) {
    const bytes = [...fs.readFileSync(path.join(root, m.file))];
    const n = quick ? 8 : 100; // every bundled sample: shorter runs were too noisy to compare
    const idx = [...Array(n).keys()];
    await run(m, bytes, "crown", [0, 1], 2); // warm both workers
    // Each figure is its fastest of `repeat` runs (at most 3), the three interleaved.
    let one = { wall: Infinity }, two = { wall: Infinity }, nat = Infinity;
    for (let r = 0; r < Math.min(repeat, 3); r++) {
      const o = await run(m, bytes, "crown", idx, 1);
      if (o.wall < one.wall) one = o;
      const t = await run(m, bytes, "crown", idx, 2);
      if (t.wall < two.wall) two = t;
      nat = Math.min(nat, nativeRun(m, "crown", n, 2, false).seconds);
    }
    console.log(`| ${m.name} | ${n} | ${one.wall.toFixed(2)} s | ${two.wall.toFixed(2)} s | ${(one.wall / two.wall).toFixed(2)}× | ${nat.toFixed(2)} s | ${(two.wall / nat).toFixed(2)} |`);
  }

  // One hard sample decided by branch and bound, its subdomains shared out over the
  // workers (pool.verify, core/bab Shard): graft50 at eps 0.026, samples the root
  // bound leaves open.
  console.log("\n## one hard sample's branch and bound, 1 vs 2 workers (wall time including messaging)\n");
  console.log("| model | sample | verdict | 1 worker | 2 workers | speedup | subdomains 1 / 2 workers (per worker) |");
  console.log("|---|---|---|---|---|---|---|");
  {
    const m = { name: "mnist_6_100_graft50", file: "static/demo/mnist_6_100_graft50.onnx", data: "mnist", eps: "0.026" };
    const bytes = [...fs.readFileSync(path.join(root, m.file))];
    const verify = (index, workers) => page.evaluate(async ({ m, bytes, index, workers }) => {
      const gc = window.graftcert;
      const model = { key: m.name, name: m.name + ".onnx", bytes: new Uint8Array(bytes).buffer };
      const data = { key: m.data, name: m.data, x: await gc.fetchBundled(`demo/${m.data}_X.npy`), y: await gc.fetchBundled(`demo/${m.data}_y.npy`) };
      await gc.pool.prepare(workers, model, data); // loading is not part of the time
      const t0 = performance.now();
      // Refinement off on both sides: the comparison is of the same search, shared.
      const r = await gc.pool.verify(workers, model, data, { index, eps: Number(m.eps), timeout: 300, refine: 0 }, null);
      return { wall: (performance.now() - t0) / 1000, result: r.result, domains: r.shards.map((s) => s.domains) };
    }, { m, bytes, index, workers });
    for (const index of quick ? [19] : [19, 9]) {
      const one = await verify(index, 1);
      const two = await verify(index, 2);
      const verdict = one.result === two.result ? one.result : `${one.result} / ${two.result}`;
      console.log(`| ${m.name} | ${index} | ${verdict} | ${one.wall.toFixed(2)} s | ${two.wall.toFixed(2)} s | ${(one.wall / two.wall).toFixed(2)}× | ${one.domains.join("+")} / ${two.domains.join("+")} |`);
    }
  }

  console.log("\n## page weight (gzip -9; graftcert serve sends these gzipped)\n");
  console.log("| file | size | gzipped |");
  console.log("|---|---|---|");
  for (const r of pageWeight()) console.log(r);
  const load = execFileSync("cat", ["/proc/loadavg"]).toString().trim();
  console.log(`\nload average during the run: ${load} (2-core machine; other work on it inflates the times)`);
} finally {
  await browser.close();
  server.kill();
}
