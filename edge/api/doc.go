// Package api is graftcert's HTTP API: POST /api/bounds, POST /api/verify and GET
// /api/health over the same core the CLI runs, answering the same JSON as `graftcert
// bounds --json` and `graftcert verify --json`. It is plain net/http with no syscall/js,
// so the edge worker (GOOS=js, github.com/syumai/workers), a native server and the
// tests all run the one handler.
//
// The handler is written for a host that limits memory (128 MB on Cloudflare Workers)
// and CPU time per request but whose clocks stand still while code computes: every
// request is held to byte limits and to a work budget counted in estimated
// multiply-adds, α-CROWN iterations and branch-and-bound domains, never in elapsed
// time. Nothing from a request is stored or logged.
package api
