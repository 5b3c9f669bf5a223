package worker

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/graftcert/graftcert/core/crown"
	"github.com/graftcert/graftcert/core/nn"
	"github.com/graftcert/graftcert/core/onnx"
	"github.com/graftcert/graftcert/internal/sharedtest"
)

// call runs one request through a fresh JSON round trip, as the browser glue does,
// and returns every response.
func call(t *testing.T, h *Handler, req Request, bufs map[string][]byte) []Response {
	t.Helper()
	req.V = Version
	b, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	var r2 Request
	if err := json.Unmarshal(b, &r2); err != nil {
		t.Fatal(err)
	}
	var out []Response
	h.Handle(context.Background(), r2, bufs, func(resp Response, buf []byte) {
		jb, err := json.Marshal(resp)
		if err != nil {
			t.Fatalf("response does not marshal: %v", err)
		}
		var back Response
		if err := json.Unmarshal(jb, &back); err != nil {
			t.Fatal(err)
		}
		out = append(out, back)
	})
	if len(out) == 0 {
		t.Fatalf("%s: no response", req.Type)
	}
	last := out[len(out)-1]
	if last.Type != TypeResult && last.Type != TypeError {
		t.Fatalf("%s: last response is %q", req.Type, last.Type)
	}
	for _, r := range out[:len(out)-1] {
		if r.Type != TypeProgress {
			t.Fatalf("%s: non-final response %q", req.Type, r.Type)
		}
	}
	return out
}

func read(t *testing.T, elem ...string) []byte {
	t.Helper()
	b, err := os.ReadFile(sharedtest.Path(t, elem...))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func loadShared(t *testing.T, h *Handler, model, dataset string) *Summary {
	t.Helper()
	out := call(t, h, Request{ID: 1, Type: TypeLoad, Name: model + ".onnx"}, map[string][]byte{"model": read(t, "models", model+".onnx")})
	if r := out[len(out)-1]; r.Type != TypeResult {
		t.Fatalf("load %s: %s", model, r.Message)
	}
	sum := out[0].Summary
	out = call(t, h, Request{ID: 2, Type: TypeData, Name: dataset}, map[string][]byte{
		"x": read(t, "data", dataset+"_X.npy"), "y": read(t, "data", dataset+"_y.npy")})
	if r := out[len(out)-1]; r.Type != TypeResult {
		t.Fatalf("data %s: %s", dataset, r.Message)
	}
	return sum
}

func close(a, b float64) bool {
	return math.Abs(a-b) <= math.Max(1e-4, 1e-4*math.Abs(b))
}

// The worker's CROWN and IBP bounds are auto_LiRPA's (shared reference values), and
// every sample streams one progress message before the result.
func TestBoundsMatchReference(t *testing.T) {
	for _, tc := range []struct{ model, dataset string }{
		{"mnist_6_100", "mnist_eran"},
		{"mnist_6_100_graft50", "mnist_eran"},
		{"cifar_conv_small", "cifar_sdp"},
	} {
		t.Run(tc.model, func(t *testing.T) {
			ref := sharedtest.LoadReference(t, tc.model)
			h := New()
			loadShared(t, h, tc.model, tc.dataset)
			for _, m := range []string{"crown", "ibp"} {
				out := call(t, h, Request{ID: 3, Type: TypeBounds, Eps: ref.Eps, Method: m, Indices: []int{0, 1, 2}}, nil)
				if len(out) != 4 {
					t.Fatalf("%s: %d responses, want 3 progress + result", m, len(out))
				}
				res := out[3]
				if res.Type != TypeResult || len(res.Samples) != 3 {
					t.Fatalf("%s: %+v", m, res)
				}
				for k, s := range res.Samples {
					if out[k].Sample == nil || out[k].Sample.Index != s.Index || out[k].Done != k+1 || out[k].Total != 3 {
						t.Errorf("%s: progress %d is %+v", m, k, out[k])
					}
					rs := ref.Samples[k]
					want := rs.CROWNMarginLB
					if m == "ibp" {
						want = rs.IBPMarginLB
					}
					if s.Index != rs.Index || s.Label != rs.Label || s.Pred != rs.Pred || len(s.MarginLB) != len(want) {
						t.Fatalf("%s sample %d: %+v vs reference %+v", m, k, s, rs)
					}
					for j := range want {
						if !close(s.MarginLB[j], want[j]) {
							t.Errorf("%s sample %d row %d: %v, reference %v", m, k, j, s.MarginLB[j], want[j])
						}
					}
					if m == "crown" {
						for j, u := range rs.CROWNUnstablePerReLU {
							if s.Unstable[j] != u {
								t.Errorf("sample %d: unstable %v, reference %v", k, s.Unstable, rs.CROWNUnstablePerReLU)
								break
							}
						}
					}
				}
			}
		})
	}
}

func TestSummary(t *testing.T) {
	h := New()
	s := loadShared(t, h, "mnist_6_100_graft50", "mnist_eran")
	// README: 6 Gemm of width 100, 119,910 parameters, 5 ReLU layers; graft50 grafts
	// half of each layer.
	if s.Params != 119910 || s.ReLUs != 500 || s.Grafted != 250 || s.Classes != 10 {
		t.Errorf("summary %+v", s)
	}
	gemm, act := 0, 0
	for _, l := range s.Layers {
		switch l.Kind {
		case "Dense":
			gemm++
		case "MaskedReLU":
			act++
			if l.Neurons != 100 || l.Grafted != 50 {
				t.Errorf("layer %+v", l)
			}
		}
	}
	if gemm != 6 || act != 5 || s.Ops["customOp::LinearMaskedRelu"] != 5 {
		t.Errorf("%d Dense, %d MaskedReLU, ops %v", gemm, act, s.Ops)
	}
	if s.EstimatedBytes <= 0 || s.AlphaBytes < s.EstimatedBytes || s.EstimatedBytes > DefaultMaxBytes {
		t.Errorf("estimates %d / %d", s.EstimatedBytes, s.AlphaBytes)
	}
}

func TestErrorsKeepWorkerUsable(t *testing.T) {
	h := New()
	good := read(t, "models", "mnist_6_100.onnx")
	cases := []struct {
		name string
		req  Request
		bufs map[string][]byte
		code string
		text string
	}{
		{"empty", Request{Type: TypeLoad, Name: "x.onnx"}, nil, "bad_request", "no model bytes"},
		{"truncated", Request{Type: TypeLoad, Name: "cut.onnx"}, map[string][]byte{"model": good[:len(good)/2]}, "", "cut.onnx"},
		{"garbage", Request{Type: TypeLoad, Name: "junk.onnx"}, map[string][]byte{"model": []byte("this is not a model at all")}, "", "junk.onnx"},
		{"too big", Request{Type: TypeLoad, Name: "m.onnx", MaxBytes: 100 << 10}, map[string][]byte{"model": good}, "too_big", "native CLI"},
		{"no model", Request{Type: TypeBounds, Eps: 0.01, Indices: []int{0}}, nil, "no_model", "no model"},
		{"unknown", Request{Type: "dance"}, nil, "bad_request", "dance"},
		{"verify without a model", Request{Type: TypeVerify, Indices: []int{0}}, nil, "no_model", "no model"},
	}
	for _, c := range cases {
		out := call(t, h, c.req, c.bufs)
		r := out[len(out)-1]
		if r.Type != TypeError || (c.code != "" && r.Code != c.code) || !strings.Contains(r.Message, c.text) {
			t.Errorf("%s: got %q %q %q", c.name, r.Type, r.Code, r.Message)
		}
		if c.code == "too_big" && (r.EstimatedBytes <= r.LimitBytes || r.LimitBytes != 100<<10) {
			t.Errorf("too big: estimate %d, limit %d", r.EstimatedBytes, r.LimitBytes)
		}
	}
	// A wrong version is refused, whatever the request.
	var got []Response
	h.Handle(context.Background(), Request{V: 2, ID: 9, Type: TypeLoad}, nil, func(r Response, _ []byte) { got = append(got, r) })
	if len(got) != 1 || got[0].Type != TypeError || got[0].ID != 9 || !strings.Contains(got[0].Message, "version 2") {
		t.Errorf("version mismatch: %+v", got)
	}
	// After all that the worker still certifies.
	loadShared(t, h, "mnist_6_100", "mnist_eran")
	out := call(t, h, Request{Type: TypeBounds, Eps: 0.026, Indices: []int{0}}, nil)
	if r := out[len(out)-1]; r.Type != TypeResult || len(r.Samples) != 1 {
		t.Fatalf("after errors: %+v", r)
	}
	// Bad bound requests name the problem.
	for _, c := range []struct {
		req  Request
		text string
	}{
		{Request{Type: TypeBounds, Eps: -1, Indices: []int{0}}, "eps"},
		{Request{Type: TypeBounds, Eps: 0.1, Method: "magic", Indices: []int{0}}, "magic"},
		{Request{Type: TypeBounds, Eps: 0.1, Indices: []int{5000}}, "out of range"},
		{Request{Type: TypeBounds, Eps: 0.1}, "no sample"},
	} {
		out := call(t, h, c.req, nil)
		if r := out[len(out)-1]; r.Type != TypeError || !strings.Contains(r.Message, c.text) {
			t.Errorf("%+v: %+v", c.req, r)
		}
	}
	// Samples of the wrong shape for the model.
	call(t, h, Request{Type: TypeData, X: make([]float64, 5), Shape: []int{5}, Labels: []int{0}}, nil)
	out = call(t, h, Request{Type: TypeBounds, Eps: 0.1, Indices: []int{0}}, nil)
	if r := out[len(out)-1]; r.Type != TypeError || !strings.Contains(r.Message, "shape") {
		t.Errorf("shape mismatch: %+v", r)
	}
}

// A panic inside a request becomes an error message with code "panic" and the worker
// keeps answering.
func TestPanicBecomesError(t *testing.T) {
	h := New()
	loadShared(t, h, "mnist_6_100", "mnist_eran")
	// Corrupt the state so that the forward pass indexes out of range.
	for _, l := range h.net.Layers {
		if d, ok := l.(*nn.Dense); ok {
			d.W = d.W[:10:10]
			break
		}
	}
	out := call(t, h, Request{Type: TypeEval, Indices: []int{3}}, nil)
	if r := out[len(out)-1]; r.Type != TypeError || r.Code != "panic" {
		t.Fatalf("got %+v", r)
	}
	loadShared(t, h, "mnist_6_100", "mnist_eran")
	out = call(t, h, Request{Type: TypeEval, Indices: []int{0, 1}}, nil)
	if r := out[len(out)-1]; r.Type != TypeResult || r.Eval == nil {
		t.Fatalf("after panic: %+v", r)
	}
}

// An inline sample labelled -1 is certified against the model's prediction.
func TestInlineSamplePredictionLabel(t *testing.T) {
	h := New()
	loadShared(t, h, "mnist_6_100", "mnist_eran")
	ref := sharedtest.LoadReference(t, "mnist_6_100")
	x := h.x[:784]
	call(t, h, Request{Type: TypeData, X: x, Shape: []int{1, 28, 28}, Labels: []int{-1}}, nil)
	out := call(t, h, Request{Type: TypeBounds, Eps: ref.Eps, Indices: []int{0}}, nil)
	r := out[len(out)-1]
	if r.Type != TypeResult {
		t.Fatal(r.Message)
	}
	s := r.Samples[0]
	if s.Label != ref.Samples[0].Pred || s.Pred != ref.Samples[0].Pred {
		t.Errorf("label %d pred %d, reference pred %d", s.Label, s.Pred, ref.Samples[0].Pred)
	}
	for j, v := range ref.Samples[0].CROWNMarginLB {
		if !close(s.MarginLB[j], v) {
			t.Errorf("row %d: %v vs %v", j, s.MarginLB[j], v)
		}
	}
}

func TestEstimateMemory(t *testing.T) {
	net, err := onnx.DecodeFile(sharedtest.Path(t, "models", "cifar_conv_small.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	// The worker's estimate is the core's (which the CLI's --max-memory uses) plus the
	// file it holds.
	if got, want := EstimateMemory(net, 1000, crown.CROWN), 1000+crown.EstimateMemory(net, crown.CROWN, 9); got != want {
		t.Errorf("estimate %d, want %d", got, want)
	}
	ibp, cr, al := EstimateMemory(net, 0, crown.IBP), EstimateMemory(net, 0, crown.CROWN), EstimateMemory(net, 0, crown.AlphaCROWN)
	if !(ibp <= cr && cr < al) || ibp < onnx.NetworkBytes(net)/2 {
		t.Errorf("IBP %d, CROWN %d, alpha-CROWN %d", ibp, cr, al)
	}
}
