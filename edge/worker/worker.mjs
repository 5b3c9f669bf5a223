// graftcert edge worker: the module entry for Cloudflare Workers and workerd.
//
// /api/* goes to the Go program (edge/main.go, built with GOOS=js GOARCH=wasm, serving
// through github.com/syumai/workers); every other path is a static asset from the
// ASSETS binding (static/: a workerd disk service locally, Workers static assets when
// deployed with wrangler), sent with the page's security headers.
//
// syumai/workers v0.27.0 ends the Go program once it has answered, so each API request
// runs in a fresh Go instance of the compiled module. Requests run one at a time per
// isolate: an isolate has one thread, so interleaving them adds no throughput, while
// every live instance holds its own linear memory against the isolate's 128 MB.
//
// wasm_exec.js is the Go toolchain's own ($(go env GOROOT)/lib/wasm), copied at build
// time so that it always matches the compiler. syumai/workers reads globalThis.context
// (env, ctx, binding) during Go's initialisation, which runs synchronously inside
// go.run, so setting it just before is enough; nothing from a request is logged.
import "./wasm_exec.js";
import mod from "./app.wasm";

// The page's headers, as `graftcert serve` sends them (ContentSecurityPolicy in
// cmd/graftcert/serve.go; keep the two equal).
const securityHeaders = {
  "Content-Security-Policy":
    "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; connect-src 'self'; " +
    "img-src 'self' data:; style-src 'self'; worker-src 'self'; object-src 'none'; base-uri 'none'; " +
    "form-action 'none'; frame-ancestors 'none'",
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "no-referrer",
  "Cross-Origin-Opener-Policy": "same-origin",
  "Cross-Origin-Resource-Policy": "same-origin",
  "Cache-Control": "no-cache",
};

const contentTypes = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  mjs: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
  json: "application/json",
  wasm: "application/wasm",
  svg: "image/svg+xml",
  png: "image/png",
  ico: "image/x-icon",
  txt: "text/plain; charset=utf-8",
};

function jsonError(status, code, message, extra = {}) {
  return new Response(JSON.stringify({ error: message, code }) + "\n", {
    status,
    headers: {
      "Content-Type": "application/json; charset=utf-8",
      "Cache-Control": "no-store",
      ...extra,
    },
  });
}

// A FIFO lock: one Go instance at a time.
let tail = Promise.resolve();
function exclusive(fn) {
  const result = tail.then(fn);
  tail = result.then(
    () => {},
    () => {},
  );
  return result;
}

async function runGo(request, env, ctx) {
  const go = new Go();
  const binding = {};
  let ready;
  const isReady = new Promise((resolve) => (ready = resolve));
  const instance = new WebAssembly.Instance(mod, {
    ...go.importObject,
    workers: { ready: () => ready() },
  });
  globalThis.context = { env, ctx, binding };
  const exited = go.run(instance).then(() => {
    // A timer the Go runtime set may still be pending when it exits; firing, it
    // would throw "Go program has already exited". Cancel them.
    if (go._scheduledTimeouts instanceof Map) {
      for (const t of go._scheduledTimeouts.values()) clearTimeout(t);
      go._scheduledTimeouts.clear();
    }
  });
  await Promise.race([isReady, exited]);
  if (!binding.handleRequest) {
    throw new Error("the Go program exited during start-up");
  }
  // If Go dies before answering (out of memory, a fatal runtime error), its exit
  // settles the race instead of leaving the request hanging.
  return Promise.race([
    binding.handleRequest(request),
    exited.then(() => {
      throw new Error("the Go program exited before answering");
    }),
  ]);
}

// The default of api.Limits.MaxBodyBytes (edge/api/api.go); the binding
// GRAFTCERT_MAX_BODY_BYTES changes both.
const defaultMaxBody = 16 << 20;

// readBody receives the request body before the request queues for Go, so that a
// slow upload does not hold up the requests behind it. It stops one byte past the
// limit (the Go handler then answers 413), and does not read at all when the declared
// length is over it.
async function readBody(request, limit) {
  if (!request.body) {
    return null;
  }
  const declared = Number(request.headers.get("Content-Length"));
  if (declared > limit) {
    return new Uint8Array(0);
  }
  const reader = request.body.getReader();
  const chunks = [];
  let n = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) {
      break;
    }
    chunks.push(value);
    n += value.byteLength;
    if (n > limit) {
      reader.cancel();
      break;
    }
  }
  const body = new Uint8Array(n);
  let off = 0;
  for (const c of chunks) {
    body.set(c, off);
    off += c.byteLength;
  }
  return body;
}

async function api(request, env, ctx) {
  // HEAD runs as GET and drops the body: the Go program only ends once its response
  // body has been read.
  const head = request.method === "HEAD";
  let req;
  try {
    const limit = Number(env.GRAFTCERT_MAX_BODY_BYTES) > 0 ? Number(env.GRAFTCERT_MAX_BODY_BYTES) : defaultMaxBody;
    const body = head ? null : await readBody(request, limit);
    req = new Request(request.url, { method: head ? "GET" : request.method, headers: request.headers, body });
  } catch (e) {
    return jsonError(400, "bad_request", "malformed request body: the upload broke off");
  }
  try {
    const res = await exclusive(() => runGo(req, env, ctx));
    if (head) {
      await res.arrayBuffer();
      return new Response(null, { status: res.status, headers: res.headers });
    }
    return res;
  } catch (e) {
    return jsonError(500, "internal", "internal error: " + String(e && e.message ? e.message : e));
  }
}

async function asset(request, env) {
  if (request.method !== "GET" && request.method !== "HEAD") {
    return jsonError(405, "method_not_allowed", request.method + " is not allowed here", {
      Allow: "GET, HEAD",
    });
  }
  if (!env.ASSETS) {
    return jsonError(404, "not_found", "no static assets in this deployment");
  }
  const url = new URL(request.url);
  if (url.pathname.endsWith("/")) {
    url.pathname += "index.html";
  }
  const res = await env.ASSETS.fetch(new Request(url.toString(), { method: request.method }));
  const headers = new Headers(res.headers);
  const ext = url.pathname.split(".").pop().toLowerCase();
  const ct = headers.get("Content-Type");
  if (contentTypes[ext] && (!ct || ct === "application/octet-stream")) {
    headers.set("Content-Type", contentTypes[ext]);
  }
  for (const [k, v] of Object.entries(securityHeaders)) {
    headers.set(k, v);
  }
  return new Response(res.body, { status: res.status, headers });
}

export default {
  async fetch(request, env, ctx) {
    const path = new URL(request.url).pathname;
    if (path === "/api" || path.startsWith("/api/")) {
      return api(request, env, ctx);
    }
    return asset(request, env);
  },
};
