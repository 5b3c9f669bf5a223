// Command wasm is the browser's certifier worker. Built with GOOS=js GOARCH=wasm into
// static/worker.wasm, it runs inside a Web Worker (static/worker.js starts it) and
// answers the versioned postMessage protocol of package worker: load a model, load
// samples, bound, evaluate, graft. The page runs one instance per worker and cancels
// by terminating the worker: Go's js/wasm port has no preemption, so a busy worker
// never sees a cancel message.
package main
