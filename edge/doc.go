// Command edge is graftcert's HTTP service for Cloudflare's Workers runtime: built with
// GOOS=js GOARCH=wasm, it hands the API of package edge/api to
// github.com/syumai/workers (workers.Serve). edge/worker/worker.mjs is the module
// entry that instantiates it per request and serves the static page from the ASSETS
// binding; edge/workerd generates a workerd config and runs it locally on 127.0.0.1.
//
// Built natively, the same command serves the API (and static/) with net/http on a
// loopback address, for development and tests without workerd.
package main
