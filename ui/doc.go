// Command ui is the browser page of graftcert, written with vugu
// (github.com/vugu/vugu): the .vugu components are compiled to Go by vugugen and the
// package is built with GOOS=js GOARCH=wasm into static/ui.wasm. It never certifies
// anything itself: it reads the user's files with the File API and hands them to the
// worker pool (static/pool.js), whose workers run the core (wasm/). The files without
// a js build constraint hold the page's pure logic (report assembly, chart geometry,
// formatting) and are tested natively.
package main
