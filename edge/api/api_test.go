package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/graftcert/graftcert/core/certify"
	"github.com/graftcert/graftcert/core/crown"
	"github.com/graftcert/graftcert/core/data"
	"github.com/graftcert/graftcert/core/nn"
	"github.com/graftcert/graftcert/core/onnx"
	"github.com/graftcert/graftcert/internal/sharedtest"
	"github.com/graftcert/graftcert/static/demo"
)

// part is one multipart part: a file when file is set, else a field.
type part struct{ name, file, value string }

func formBody(t *testing.T, parts ...part) (*bytes.Buffer, string) {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for _, p := range parts {
		if p.file != "" {
			w, _ := mw.CreateFormFile(p.name, p.file)
			io.WriteString(w, p.value)
		} else {
			mw.WriteField(p.name, p.value)
		}
	}
	mw.Close()
	return &b, mw.FormDataContentType()
}

func do(t *testing.T, h http.Handler, method, path string, body io.Reader, ctype string) (int, []byte) {
	t.Helper()
	req := httptest.NewRequest(method, path, body)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s %s: Content-Type %q", method, path, ct)
	}
	return rec.Code, rec.Body.Bytes()
}

func file(t *testing.T, elem ...string) string {
	t.Helper()
	b, err := os.ReadFile(sharedtest.Path(t, elem...))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The handler's report is certify.Run's, field for field (timing aside).
func TestBoundsEqualsCertify(t *testing.T) {
	h := New(Options{Limits: DefaultLimits})
	model := file(t, "models", "mnist_6_100.onnx")
	for _, method := range []string{"ibp", "crown", "alpha-crown"} {
		body, ct := formBody(t, part{"model", "mnist_6_100.onnx", model}, part{name: "dataset", value: "mnist"},
			part{name: "eps", value: "0.026"}, part{name: "method", value: method}, part{name: "start", value: "2"},
			part{name: "count", value: "3"}, part{name: "iterations", value: "5"})
		code, out := do(t, h, "POST", "/api/bounds", body, ct)
		if code != 200 {
			t.Fatalf("%s: %d %s", method, code, out)
		}
		var got certify.Report
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatal(err)
		}
		net, err := onnx.Decode([]byte(model))
		if err != nil {
			t.Fatal(err)
		}
		xb, yb, _ := demo.Dataset("mnist")
		X, labels, _ := data.LoadSamplesBytes(xb, yb)
		m, _ := crown.ParseMethod(method)
		want, err := certify.Run(context.Background(), net, "mnist_6_100", X.Data, labels, []int{2, 3, 4},
			certify.Options{Eps: 0.026, Jobs: 1, Bound: crown.Options{Method: m, Iterations: 5, LR: 0.1, StopWhenPositive: true}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		got.Seconds, want.Seconds = 0, 0
		for i := range got.Samples {
			got.Samples[i].Seconds = 0
			want.Samples[i].Seconds = 0
		}
		if !reflect.DeepEqual(&got, want) {
			t.Errorf("%s: handler report differs from certify.Run\n%+v\n%+v", method, got, *want)
		}
	}
}

func TestBadRequests(t *testing.T) {
	lim := DefaultLimits
	lim.MaxBodyBytes = 4 << 20
	lim.MaxModelBytes = 1 << 20
	h := New(Options{Limits: lim})
	model := file(t, "models", "mnist_6_100.onnx")
	good := []part{{"model", "m.onnx", model}, {name: "dataset", value: "mnist"}, {name: "eps", value: "0.01"}, {name: "count", value: "1"}}
	with := func(extra ...part) []part { return append(append([]part{}, good...), extra...) }
	xnpy := file(t, "data", "mnist_sdp_X.npy")
	for _, c := range []struct {
		name  string
		parts []part
		code  int
		want  string
	}{
		{"not onnx", []part{{"model", "m.onnx", "this is not a model"}, {name: "dataset", value: "mnist"}, {name: "eps", value: "0.01"}}, 400, "model"},
		{"truncated onnx", []part{{"model", "m.onnx", model[:len(model)/2]}, {name: "dataset", value: "mnist"}, {name: "eps", value: "0.01"}}, 400, "model"},
		{"no model", good[1:], 400, "model"},
		{"no eps", []part{good[0], good[1]}, 400, "eps"},
		{"bad eps", with(part{name: "eps", value: "-1"}), 400, "eps"},
		{"eps twice", append(good, part{name: "eps", value: "0.1"}), 400, "twice"},
		{"nan eps", []part{good[0], good[1], {name: "eps", value: "NaN"}}, 400, "eps"},
		{"bad method", with(part{name: "method", value: "magic"}), 400, "method"},
		{"unknown field", with(part{name: "epsilon", value: "1"}), 400, "unknown form part"},
		{"no data", []part{good[0], good[2]}, 400, "dataset"},
		{"dataset and data", with(part{"data", "x.npy", xnpy}), 400, "not both"},
		{"no such dataset", []part{good[0], {name: "dataset", value: "../etc"}, good[2]}, 400, "dataset"},
		{"labels without data", []part{good[0], good[2], {"labels", "y.npy", file(t, "data", "mnist_sdp_y.npy")}}, 400, "data"},
		{"bad npy", []part{good[0], good[2], {"data", "x.npy", "junk"}, {"labels", "y.npy", "junk"}}, 400, "npy"},
		{"shape mismatch", []part{good[0], {name: "dataset", value: "cifar"}, good[2]}, 400, "shape"},
		{"start out of range", with(part{name: "start", value: "100"}), 400, "start"},
		{"iterations over limit", with(part{name: "method", value: "alpha-crown"}, part{name: "iterations", value: "1000"}), 422, "iterations"},
		{"too many samples", []part{good[0], good[1], good[2], {name: "method", value: "alpha-crown"}}, 422, "budget"},
		{"model too large", []part{{"model", "m.onnx", strings.Repeat("x", 1<<20+1)}, good[1], good[2]}, 413, "model"},
	} {
		body, ct := formBody(t, c.parts...)
		code, out := do(t, h, "POST", "/api/bounds", body, ct)
		var e Error
		if err := json.Unmarshal(out, &e); err != nil || e.Message == "" {
			t.Errorf("%s: not a JSON error: %s", c.name, out)
			continue
		}
		if code != c.code || !strings.Contains(e.Message, c.want) {
			t.Errorf("%s: %d %q, want %d and an error containing %q", c.name, code, e.Message, c.code, c.want)
		}
	}
	// Over-budget answers say how many samples would fit.
	body, ct := formBody(t, good[0], good[1], good[2], part{name: "method", value: "alpha-crown"})
	_, out := do(t, h, "POST", "/api/bounds", body, ct)
	var e Error
	json.Unmarshal(out, &e)
	if e.Code != CodeOverBudget || e.MaxSamples == nil || *e.MaxSamples < 1 || *e.MaxSamples >= 100 {
		t.Errorf("over budget: %s", out)
	}

	// Bodies the multipart reader cannot take.
	body, ct = formBody(t, good...)
	whole := body.Bytes()
	for _, c := range []struct {
		name  string
		body  io.Reader
		ctype string
		code  int
	}{
		{"truncated body", bytes.NewReader(whole[:len(whole)/2]), ct, 400},
		{"no boundary", bytes.NewReader(whole), "multipart/form-data", 400},
		{"json body", strings.NewReader(`{"eps": 1}`), "application/json", 415},
		{"no content type", strings.NewReader("x"), "", 415},
		{"garbage", strings.NewReader(strings.Repeat("\x00\xff", 1000)), ct, 400},
		{"oversized, unknown length", io.MultiReader(bytes.NewReader(whole[:200]), strings.NewReader(strings.Repeat("a", 5<<20))), ct, 413},
	} {
		code, out := do(t, h, "POST", "/api/bounds", c.body, c.ctype)
		if code != c.code || !bytes.Contains(out, []byte(`"error"`)) {
			t.Errorf("%s: %d %s, want %d", c.name, code, out, c.code)
		}
	}
	// A declared length over the limit is refused before reading.
	req := httptest.NewRequest("POST", "/api/bounds", strings.NewReader("x"))
	req.ContentLength = 5 << 20
	req.Header.Set("Content-Type", ct)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 413 {
		t.Errorf("Content-Length over the limit: %d", rec.Code)
	}
	// Routing.
	if code, _ := do(t, h, "GET", "/api/bounds", nil, ""); code != 405 {
		t.Errorf("GET /api/bounds: %d", code)
	}
	if code, _ := do(t, h, "POST", "/api/nothing", nil, ""); code != 404 {
		t.Errorf("/api/nothing: %d", code)
	}
	if code, _ := do(t, h, "GET", "/index.html", nil, ""); code != 404 {
		t.Errorf("static without a static handler: %d", code)
	}
	// And the handler still answers.
	body, ct = formBody(t, good...)
	if code, out := do(t, h, "POST", "/api/bounds", body, ct); code != 200 {
		t.Errorf("good request after bad ones: %d %s", code, out)
	}
}

func TestHealth(t *testing.T) {
	h := New(Options{Limits: DefaultLimits})
	code, out := do(t, h, "GET", "/api/health", nil, "")
	var hl Health
	if err := json.Unmarshal(out, &hl); err != nil || code != 200 {
		t.Fatalf("%d %s", code, out)
	}
	if hl.Status != "ok" || !reflect.DeepEqual(hl.Datasets, []string{"cifar", "mnist"}) || hl.Limits != DefaultLimits || !hl.Verify {
		t.Errorf("health: %+v", hl)
	}
}

// The estimate on a hand-sized network: Dense 2→2, ReLU, Dense 2→1. The ReLU's input
// is an affine image of the box (IBP exact), so CROWN only propagates the one
// specification row back through the 4 + 2 + 2 units of the three layers, plus the
// forward pass for the prediction: 8 + 8 = 16 units. IBP: three forward passes, 24.
func TestSampleEstimate(t *testing.T) {
	net, err := nn.New(nn.Shape{2}, []nn.Layer{
		&nn.Dense{NodeName: "a", In: 2, Out: 2, W: []float64{1, -1, 2, -1}},
		&nn.ReLU{NodeName: "r"},
		&nn.Dense{NodeName: "b", In: 2, Out: 1, W: []float64{1, -1}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if w := sampleEstimate(net, []int{2}, 1, crown.CROWN, 0).Work; w != 16 {
		t.Errorf("CROWN estimate %v, want 16", w)
	}
	if w := sampleEstimate(net, []int{2}, 1, crown.IBP, 0).Work; w != 24 {
		t.Errorf("IBP estimate %v, want 24", w)
	}
	// α-CROWN: (1 + 2·10) CROWN passes = 21·8, plus the forward pass.
	if w := sampleEstimate(net, []int{2}, 1, crown.AlphaCROWN, 10).Work; w != 21*8+8 {
		t.Errorf("alpha-CROWN estimate %v, want %v", w, 21*8+8)
	}
	// A second ReLU layer after another Dense: its 2·u rows go back through the
	// 8 units before it.
	net2, err := nn.New(nn.Shape{2}, []nn.Layer{
		&nn.Dense{NodeName: "a", In: 2, Out: 2, W: []float64{1, -1, 2, -1}},
		&nn.ReLU{NodeName: "r"},
		&nn.Dense{NodeName: "b", In: 2, Out: 2, W: []float64{1, -1, 1, 1}},
		&nn.ReLU{NodeName: "r2"},
		&nn.Dense{NodeName: "c", In: 2, Out: 1, W: []float64{1, 1}},
	})
	if err != nil {
		t.Fatal(err)
	}
	// Layers cost 4, 2, 4, 2, 2 (total 14); r2 has 1 unstable: 2 rows × 10 units; the
	// spec row × 14; forward 14.
	if w := sampleEstimate(net2, []int{2, 1}, 1, crown.CROWN, 0).Work; w != 20+14+14 {
		t.Errorf("two-layer CROWN estimate %v, want 48", w)
	}
}

func TestVerify(t *testing.T) {
	h := New(Options{Limits: DefaultLimits})
	vnn := func(elem ...string) string { return file(t, append([]string{"vnncomp"}, elem...)...) }
	for _, c := range []struct{ model, prop, want string }{
		{"test/onnx/test_small.onnx", "test/vnnlib/test_small.vnnlib", "unsat"},
		{"test/onnx/test_sat.onnx", "test/vnnlib/test_prop.vnnlib", "sat"},
	} {
		body, ct := formBody(t, part{"model", "m.onnx", vnn(strings.Split(c.model, "/")...)},
			part{"vnnlib", "p.vnnlib", vnn(strings.Split(c.prop, "/")...)}, part{name: "timeout", value: "30"})
		code, out := do(t, h, "POST", "/api/verify", body, ct)
		var rep struct {
			Result         string          `json:"result"`
			Counterexample json.RawMessage `json:"counterexample"`
		}
		if err := json.Unmarshal(out, &rep); err != nil || code != 200 || rep.Result != c.want {
			t.Errorf("%s: %d %s, want %s", c.prop, code, out, c.want)
		}
	}
	// A property that needs branching, held to 2 domains: unknown, not a hang.
	body, ct := formBody(t, part{"model", "m.onnx", vnn("mnist_fc", "onnx", "mnist-net_256x2.onnx")},
		part{"vnnlib", "p.vnnlib", vnn("mnist_fc", "vnnlib", "prop_6_0.03.vnnlib")}, part{name: "max_domains", value: "2"})
	code, out := do(t, h, "POST", "/api/verify", body, ct)
	if code != 200 || !bytes.Contains(out, []byte(`"result": "unknown"`)) || !bytes.Contains(out, []byte("node limit")) {
		t.Errorf("domain budget: %d %s", code, out)
	}
	for _, c := range []struct {
		name  string
		parts []part
		want  string
	}{
		{"no vnnlib", []part{{"model", "m.onnx", vnn("test", "onnx", "test_small.onnx")}}, "vnnlib"},
		{"bad vnnlib", []part{{"model", "m.onnx", vnn("test", "onnx", "test_small.onnx")}, {"vnnlib", "p", "(assert"}}, "vnnlib"},
		{"bad timeout", []part{{"model", "m.onnx", vnn("test", "onnx", "test_small.onnx")}, {"vnnlib", "p", vnn("test", "vnnlib", "test_small.vnnlib")}, {name: "timeout", value: "soon"}}, "timeout"},
		{"wrong sizes", []part{{"model", "m.onnx", file(t, "models", "mnist_6_100.onnx")}, {"vnnlib", "p", vnn("test", "vnnlib", "test_small.vnnlib")}}, "vnnlib"},
	} {
		body, ct := formBody(t, c.parts...)
		code, out := do(t, h, "POST", "/api/verify", body, ct)
		if code != 400 || !strings.Contains(string(out), c.want) {
			t.Errorf("%s: %d %s", c.name, code, out)
		}
	}
}
