// Runs a GOOS=js GOARCH=wasm program (a test binary: `go test -exec`) under node as
// $(go env GOROOT)/lib/wasm/wasm_exec_node.js does, with the SIMD kernels installed
// as static/worker.js installs them: gemm.wasm (GRAFTCERT_GEMM_WASM, default
// static/gemm.wasm) instantiated on the Go instance's memory before Go starts, its
// functions as globalThis.graftcertGemm and the globals listed in kernels below. A
// module that fails to load is an error here, not a silent fall-back: the tests run
// this way are there to exercise it.
// Usage: node --stack-size=8192 run_node.js program.wasm [args]
"use strict";

const fs = require("fs");
const path = require("path");

if (process.argv.length < 3) {
	console.error("usage: run_node.js program.wasm [arguments]");
	process.exit(1);
}

globalThis.require = require;
globalThis.fs = fs;
globalThis.path = path;
globalThis.TextEncoder = require("util").TextEncoder;
globalThis.TextDecoder = require("util").TextDecoder;
globalThis.performance ??= require("perf_hooks").performance;
globalThis.crypto ??= require("crypto");

const goroot = process.env.GOROOT || require("child_process").execFileSync("go", ["env", "GOROOT"]).toString().trim();
require(path.join(goroot, "lib", "wasm", "wasm_exec.js"));

const gemmPath = process.env.GRAFTCERT_GEMM_WASM || path.join(__dirname, "..", "..", "static", "gemm.wasm");

// The module's other functions and the globals package gemmsimd reads them from (as in
// static/worker.js).
const kernels = {
	concretize: "graftcertConcretize", relax: "graftcertRelax", pack: "graftcertPack", adam: "graftcertAdam",
	im2col: "graftcertIm2col", gather: "graftcertGather", interleave: "graftcertInterleave",
	sparse: "graftcertSparse", colrelax: "graftcertColRelax", colconc: "graftcertColConc",
};

(async () => {
	const go = new Go();
	go.argv = process.argv.slice(2);
	go.env = Object.assign({ TMPDIR: require("os").tmpdir(), GRAFTCERT_GEMM_RUNNER: "1" }, process.env);
	go.exit = process.exit;
	const { instance } = await WebAssembly.instantiate(fs.readFileSync(process.argv[2]), go.importObject);
	const gemm = await WebAssembly.instantiate(fs.readFileSync(gemmPath), { env: { mem: instance.exports.mem } });
	globalThis.graftcertGemm = gemm.instance.exports.block;
	for (const [name, global] of Object.entries(kernels)) globalThis[global] = gemm.instance.exports[name];
	process.on("exit", (code) => { // node exits when no event is pending
		if (code === 0 && !go.exited) {
			// deadlock: make Go print the error and its stacks
			go._pendingEvent = { id: 0 };
			go._resume();
		}
	});
	await go.run(instance);
})().catch((err) => {
	console.error(err);
	process.exit(1);
});
