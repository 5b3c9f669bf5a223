package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/graftcert/graftcert/core/certify"
	"github.com/graftcert/graftcert/internal/sharedtest"
)

// cli runs the command in-process and returns exit code, stdout and stderr.
func cli(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func near(got, want float64) bool {
	return math.Abs(got-want) <= math.Max(1e-4, 1e-4*math.Abs(want))
}

func TestBoundsJSONMatchesReference(t *testing.T) {
	for _, name := range []string{"mnist_6_100", "mnist_6_100_graft50", "cifar_conv_small"} {
		ref := sharedtest.LoadReference(t, name)
		args := []string{"bounds", "--model", sharedtest.Path(t, "models", name+".onnx"),
			"--data", sharedtest.Path(t, "data", ref.Dataset+"_X.npy"),
			"--labels", sharedtest.Path(t, "data", ref.Dataset+"_y.npy"),
			"--eps", jsonNum(ref.Eps), "--count", "5", "--json"}
		for _, method := range []string{"ibp", "crown"} {
			code, out, errs := cli(t, append(args, "--method", method, "--logits")...)
			if code != 0 {
				t.Fatalf("%s %s: exit %d: %s", name, method, code, errs)
			}
			var rep certify.Report
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatalf("%s: %v\n%s", name, err, out)
			}
			if rep.Total != 5 || len(rep.Samples) != 5 || rep.Method != method || rep.Model != name {
				t.Fatalf("%s: report header %+v", name, rep)
			}
			verified := 0
			for i, s := range rep.Samples {
				want := ref.Samples[i]
				if s.Index != want.Index || s.Label != want.Label || s.Pred != want.Pred {
					t.Errorf("%s sample %d: index/label/pred %d/%d/%d, reference %d/%d/%d", name, i, s.Index, s.Label, s.Pred, want.Index, want.Label, want.Pred)
				}
				wantLB := want.CROWNMarginLB
				if method == "ibp" {
					wantLB = want.IBPMarginLB
				}
				ok := s.Pred == s.Label
				for j := range wantLB {
					if !near(s.MarginLB[j], wantLB[j]) {
						t.Errorf("%s %s sample %d margin_lb[%d] = %v, reference %v", name, method, i, j, s.MarginLB[j], wantLB[j])
					}
					ok = ok && s.MarginLB[j] > 0
				}
				if s.Verified != ok {
					t.Errorf("%s sample %d: verified %v, margins say %v", name, i, s.Verified, ok)
				}
				if ok {
					verified++
				}
				if method == "crown" {
					for j, u := range want.CROWNUnstablePerReLU {
						if s.Unstable[j] != u {
							t.Errorf("%s sample %d: unstable %v, reference %v", name, i, s.Unstable, want.CROWNUnstablePerReLU)
							break
						}
					}
					if want.CROWNLogitLB != nil {
						for j := range want.CROWNLogitLB {
							if !near(s.LogitLB[j], want.CROWNLogitLB[j]) || !near(s.LogitUB[j], want.CROWNLogitUB[j]) {
								t.Errorf("%s sample %d logit %d: [%v, %v], reference [%v, %v]", name, i, j, s.LogitLB[j], s.LogitUB[j], want.CROWNLogitLB[j], want.CROWNLogitUB[j])
							}
						}
					}
				}
			}
			if rep.Verified != verified {
				t.Errorf("%s: verified %d, samples say %d", name, rep.Verified, verified)
			}
		}
	}
}

func jsonNum(v float64) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestEvalJSONMatchesReference(t *testing.T) {
	ref := sharedtest.LoadReference(t, "oval_cifar_deep")
	code, out, errs := cli(t, "eval", "--model", sharedtest.Path(t, "models", "oval_cifar_deep.onnx"),
		"--data", sharedtest.Path(t, "data", "cifar_sdp_X.npy"), "--labels", sharedtest.Path(t, "data", "cifar_sdp_y.npy"),
		"--count", "5", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var rep certify.EvalReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	correct := 0
	for i, s := range rep.Samples {
		for j, v := range ref.Samples[i].Logits {
			if !near(s.Logits[j], v) {
				t.Errorf("sample %d logit %d = %v, reference %v", i, j, s.Logits[j], v)
			}
		}
		if s.Pred == s.Label {
			correct++
		}
	}
	if rep.Accuracy != float64(correct)/5 {
		t.Errorf("accuracy %v, want %v", rep.Accuracy, float64(correct)/5)
	}
}

// TestBadInput checks that every kind of bad input ends in a one-line error naming
// the problem and a non-zero exit, never a panic.
func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	model := sharedtest.Path(t, "models", "mnist_6_100.onnx")
	X := sharedtest.Path(t, "data", "mnist_eran_X.npy")
	y := sharedtest.Path(t, "data", "mnist_eran_y.npy")
	mb, err := os.ReadFile(model)
	if err != nil {
		t.Fatal(err)
	}
	xb, err := os.ReadFile(X)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	flipped := append([]byte(nil), mb...)
	for i := 100; i < len(flipped); i += 997 {
		flipped[i] ^= 0x5a
	}
	cifarX := sharedtest.Path(t, "data", "cifar_sdp_X.npy")
	labels3 := write("labels_big.npy", npyInt64([]int64{7, 2, 42}))
	fixX := func(b []byte) []byte { // header claims 1000 samples; rewrite to 3
		return bytes.Replace(b, []byte("(1000, 1, 28, 28)"), []byte("(3, 1, 28, 28)   "), 1)
	}
	x3 := write("x3.npy", fixX(xb[:128+3*784*4]))
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"missing model", []string{"bounds", "--data", X, "--labels", y, "--eps", "0.01"}, "--model"},
		{"no such file", []string{"bounds", "--model", filepath.Join(dir, "nope.onnx"), "--data", X, "--labels", y, "--eps", "0.01"}, "no such file"},
		{"empty onnx", []string{"bounds", "--model", write("empty.onnx", nil), "--data", X, "--labels", y, "--eps", "0.01"}, "empty"},
		{"truncated onnx", []string{"bounds", "--model", write("trunc.onnx", mb[:len(mb)/2]), "--data", X, "--labels", y, "--eps", "0.01"}, "onnx"},
		{"bit-flipped onnx", []string{"bounds", "--model", write("flip.onnx", flipped), "--data", X, "--labels", y, "--eps", "0.01"}, ""},
		{"not onnx", []string{"eval", "--model", write("text.onnx", []byte("hello, this is not a model\n")), "--data", X, "--labels", y}, ""},
		{"negative eps", []string{"bounds", "--model", model, "--data", X, "--labels", y, "--eps", "-0.1"}, "eps"},
		{"NaN eps", []string{"bounds", "--model", model, "--data", X, "--labels", y, "--eps", "NaN"}, "eps"},
		{"bad method", []string{"bounds", "--model", model, "--data", X, "--labels", y, "--eps", "0.1", "--method", "magic"}, "method"},
		{"shape mismatch", []string{"bounds", "--model", model, "--data", cifarX, "--labels", sharedtest.Path(t, "data", "cifar_sdp_y.npy"), "--eps", "0.1"}, "shape"},
		{"label count", []string{"eval", "--model", model, "--data", X, "--labels", sharedtest.Path(t, "data", "cifar_sdp_y.npy")}, "labels"},
		{"label out of range", []string{"bounds", "--model", model, "--data", x3, "--labels", labels3, "--eps", "0.01"}, "42"},
		{"truncated npy", []string{"eval", "--model", model, "--data", write("trunc.npy", xb[:5000]), "--labels", y}, "trunc"},
		{"empty npy", []string{"eval", "--model", model, "--data", write("empty.npy", nil), "--labels", y}, ""},
		{"start out of range", []string{"eval", "--model", model, "--data", X, "--labels", y, "--start", "5000"}, "start"},
		{"unknown flag", []string{"bounds", "--frobnicate"}, ""},
		{"unknown command", []string{"frobnicate"}, "unknown command"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, errs := cli(t, c.args...)
			if code == 0 {
				t.Fatalf("exit 0, want an error")
			}
			if c.want != "" && !strings.Contains(strings.ToLower(errs), strings.ToLower(c.want)) {
				t.Errorf("stderr %q does not mention %q", errs, c.want)
			}
			t.Logf("%s", strings.TrimSpace(errs))
			if strings.Contains(errs, "panic") || strings.Contains(errs, "goroutine") {
				t.Errorf("panic: %s", errs)
			}
		})
	}
}

// npyInt64 writes a 1-D int64 .npy file.
func npyInt64(v []int64) []byte {
	hdr := "{'descr': '<i8', 'fortran_order': False, 'shape': (" + itoa(len(v)) + ",), }"
	for (10+len(hdr)+1)%64 != 0 {
		hdr += " "
	}
	hdr += "\n"
	b := []byte("\x93NUMPY\x01\x00")
	b = append(b, byte(len(hdr)), byte(len(hdr)>>8))
	b = append(b, hdr...)
	for _, x := range v {
		for k := 0; k < 8; k++ {
			b = append(b, byte(uint64(x)>>(8*k)))
		}
	}
	return b
}

func itoa(i int) string { return strings.TrimSpace(jsonNum(float64(i))) }
