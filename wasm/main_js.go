//go:build js && wasm

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"sync"
	"syscall/js"

	"github.com/graftcert/graftcert/core/blas"
	"github.com/graftcert/graftcert/wasm/gemmsimd"
	"github.com/graftcert/graftcert/wasm/worker"
)

// job is one request as it arrived: the JSON part and the named binary buffers,
// copied out of JavaScript while the callback runs.
type job struct {
	json string
	bufs map[string][]byte
}

// queue keeps requests in arrival order. The JavaScript callback only enqueues: the
// main goroutine does the work, so the callback returns at once.
type queue struct {
	mu    sync.Mutex
	jobs  []job
	ready chan struct{}
}

func (q *queue) push(j job) {
	q.mu.Lock()
	q.jobs = append(q.jobs, j)
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

func (q *queue) pop() job {
	for {
		q.mu.Lock()
		if len(q.jobs) > 0 {
			j := q.jobs[0]
			q.jobs[0] = job{}
			q.jobs = q.jobs[1:]
			q.mu.Unlock()
			return j
		}
		q.mu.Unlock()
		<-q.ready
	}
}

func main() {
	// gonum has no assembly for wasm; its pure-Go Dgemm is 2–3× slower there than the
	// packed, register-blocked one of core/blas. core/nn's init installs it already;
	// saying so here keeps the worker fast should that import ever go.
	blas.Install()
	// The SIMD block kernel, when static/worker.js could load it (Go's kernel otherwise).
	kernel := gemmsimd.Install()
	post := js.Global().Get("graftcertPost")
	uint8Array := js.Global().Get("Uint8Array")
	object := js.Global().Get("Object")
	emit := func(resp worker.Response, buf []byte) {
		b, err := json.Marshal(resp)
		if err != nil {
			b, _ = json.Marshal(worker.Response{V: worker.Version, ID: resp.ID, Type: worker.TypeError,
				Code: "panic", Message: fmt.Sprintf("cannot encode the %s message: %v", resp.Type, err)})
			buf = nil
		}
		if buf == nil {
			post.Invoke(string(b))
			return
		}
		arr := uint8Array.New(len(buf))
		js.CopyBytesToJS(arr, buf)
		post.Invoke(string(b), arr)
	}
	q := &queue{ready: make(chan struct{}, 1)}
	handle := js.FuncOf(func(this js.Value, args []js.Value) any {
		if len(args) == 0 {
			return nil
		}
		j := job{json: args[0].String(), bufs: map[string][]byte{}}
		if len(args) > 1 && args[1].Truthy() {
			keys := object.Call("keys", args[1])
			for i := 0; i < keys.Length(); i++ {
				k := keys.Index(i).String()
				v := args[1].Get(k)
				b := make([]byte, v.Get("byteLength").Int())
				js.CopyBytesToGo(b, v)
				j.bufs[k] = b
			}
		}
		q.push(j)
		return nil
	})
	js.Global().Set("graftcertHandle", handle)
	emit(worker.Response{V: worker.Version, Type: worker.TypeReady, Protocol: worker.Version,
		Go: runtime.Version(), Features: worker.Features(), Kernel: kernel}, nil)

	h := worker.New()
	for {
		j := q.pop()
		var req worker.Request
		if err := json.Unmarshal([]byte(j.json), &req); err != nil {
			emit(worker.Response{V: worker.Version, ID: req.ID, Type: worker.TypeError, Code: "bad_request",
				Message: "malformed request: " + err.Error()}, nil)
			continue
		}
		h.Handle(context.Background(), req, j.bufs, emit)
	}
}
