//go:build js && wasm

package main

import (
	"strconv"
	"syscall/js"

	"github.com/syumai/workers"

	"github.com/graftcert/graftcert/edge/api"
)

func main() {
	workers.Serve(api.New(api.Options{Limits: limitsFromEnv()}))
}

// limitsFromEnv overrides api.DefaultLimits from the worker's text bindings (wrangler
// [vars] or workerd bindings): GRAFTCERT_MAX_WORK, GRAFTCERT_MAX_SAMPLES, and so on.
// The worker entry puts the bindings object in context.env before Go starts.
func limitsFromEnv() api.Limits {
	l := api.DefaultLimits
	env := js.Global().Get("context").Get("env")
	get := func(name string) (string, bool) {
		if env.Type() != js.TypeObject {
			return "", false
		}
		v := env.Get(name)
		if v.Type() != js.TypeString {
			return "", false
		}
		return v.String(), true
	}
	i64 := func(name string, p *int64) {
		if s, ok := get(name); ok {
			if v, err := strconv.ParseInt(s, 10, 64); err == nil && v > 0 {
				*p = v
			}
		}
	}
	i := func(name string, p *int) {
		var v int64 = int64(*p)
		i64(name, &v)
		*p = int(v)
	}
	if s, ok := get("GRAFTCERT_MAX_WORK"); ok {
		if v, err := strconv.ParseFloat(s, 64); err == nil && v > 0 {
			l.MaxWork = v
		}
	}
	i64("GRAFTCERT_MAX_BODY_BYTES", &l.MaxBodyBytes)
	i64("GRAFTCERT_MAX_MODEL_BYTES", &l.MaxModelBytes)
	i64("GRAFTCERT_MAX_DATA_BYTES", &l.MaxDataBytes)
	i64("GRAFTCERT_MAX_VNNLIB_BYTES", &l.MaxVNNLIBBytes)
	i64("GRAFTCERT_MAX_MEMORY_BYTES", &l.MaxMemory)
	i("GRAFTCERT_MAX_SAMPLES", &l.MaxSamples)
	i("GRAFTCERT_MAX_ITERATIONS", &l.MaxIterations)
	i("GRAFTCERT_MAX_DOMAINS", &l.MaxDomains)
	return l
}
