//go:build js && wasm

package main

import (
	"encoding/json"
	"errors"
	"syscall/js"
)

// jsError is a rejected promise's reason: the worker's error message and code (see
// wasm/worker/protocol.go), or any JavaScript error.
type jsError struct {
	Message        string
	Code           string
	EstimatedBytes int64
	LimitBytes     int64
}

func (e *jsError) Error() string { return e.Message }

func toError(v js.Value) error {
	if v.IsUndefined() || v.IsNull() {
		return errors.New("unknown error")
	}
	if v.Type() != js.TypeObject {
		return &jsError{Message: v.String()}
	}
	e := &jsError{Message: v.Get("message").String()}
	if c := v.Get("code"); c.Type() == js.TypeString {
		e.Code = c.String()
	}
	if n := v.Get("estimatedBytes"); n.Type() == js.TypeNumber {
		e.EstimatedBytes = int64(n.Float())
	}
	if n := v.Get("limitBytes"); n.Type() == js.TypeNumber {
		e.LimitBytes = int64(n.Float())
	}
	if v.Get("message").IsUndefined() {
		e.Message = js.Global().Get("String").Invoke(v).String()
	}
	return e
}

func errCode(err error) string {
	var je *jsError
	if errors.As(err, &je) {
		return je.Code
	}
	return ""
}

// await blocks the calling goroutine until the promise settles. It must not run on a
// goroutine that JavaScript is waiting for (an event handler): callers start a
// goroutine first.
func await(p js.Value) (js.Value, error) {
	type result struct {
		v   js.Value
		err error
	}
	ch := make(chan result, 1)
	ok := js.FuncOf(func(_ js.Value, args []js.Value) any {
		var v js.Value
		if len(args) > 0 {
			v = args[0]
		}
		ch <- result{v: v}
		return nil
	})
	fail := js.FuncOf(func(_ js.Value, args []js.Value) any {
		var v js.Value
		if len(args) > 0 {
			v = args[0]
		}
		ch <- result{err: toError(v)}
		return nil
	})
	p.Call("then", ok, fail)
	r := <-ch
	ok.Release()
	fail.Release()
	return r.v, r.err
}

// decode turns a JavaScript value into Go through JSON.
func decode(v js.Value, out any) error {
	s := js.Global().Get("JSON").Call("stringify", v).String()
	return json.Unmarshal([]byte(s), out)
}

// rawJSON returns a JavaScript value's JSON.
func rawJSON(v js.Value) json.RawMessage {
	return json.RawMessage(js.Global().Get("JSON").Call("stringify", v).String())
}

// object builds a JavaScript object from Go values (js.ValueOf handles maps of
// strings, numbers, bools, slices of those and js.Values).
func object(m map[string]any) js.Value { return js.ValueOf(m) }
