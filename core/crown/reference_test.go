package crown

import (
	"context"
	"fmt"
	"math"
	"os"
	"testing"

	"github.com/graftcert/graftcert/core/data"
	"github.com/graftcert/graftcert/core/nn"
	"github.com/graftcert/graftcert/core/onnx"
	"github.com/graftcert/graftcert/internal/sharedtest"
)

// full reports whether the exhaustive suites run (make test-full).
func full() bool { return os.Getenv("GRAFTCERT_FULL") != "" }

type refModel struct {
	net *nn.Network
	ref *sharedtest.Reference
	X   *data.Array
}

func loadRef(t testing.TB, name string) *refModel {
	t.Helper()
	net, err := onnx.DecodeFile(sharedtest.Path(t, "models", name+".onnx"))
	if err != nil {
		t.Fatal(err)
	}
	ref := sharedtest.LoadReference(t, name)
	X, err := data.ReadNPYFile(sharedtest.Path(t, "data", ref.Dataset+"_X.npy"))
	if err != nil {
		t.Fatal(err)
	}
	return &refModel{net: net, ref: ref, X: X}
}

// marginSpec is the reference's specification: rows e_label − e_j, j ≠ label.
func marginSpec(label, classes int) []float64 {
	var C []float64
	for j := 0; j < classes; j++ {
		if j == label {
			continue
		}
		row := make([]float64, classes)
		row[label], row[j] = 1, -1
		C = append(C, row...)
	}
	return C
}

func box(x []float64, eps float64) (lo, hi []float64) {
	lo = make([]float64, len(x))
	hi = make([]float64, len(x))
	for i, v := range x {
		lo[i] = math.Min(1, math.Max(0, v-eps))
		hi[i] = math.Min(1, math.Max(0, v+eps))
	}
	return
}

func close4(got, want float64) bool {
	return math.Abs(got-want) <= math.Max(1e-4, 1e-4*math.Abs(want))
}

func checkVec(t *testing.T, what string, got, want []float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d values, reference has %d", what, len(got), len(want))
		return
	}
	for i := range want {
		if !close4(got[i], want[i]) {
			t.Errorf("%s[%d] = %.6f, reference %.6f", what, i, got[i], want[i])
		}
	}
}

// TestReferenceIBPCROWN matches IBP and CROWN bounds and unstable counts with
// auto_LiRPA's on samples 0–4 of every shared model.
func TestReferenceIBPCROWN(t *testing.T) {
	for _, name := range sharedtest.Models {
		t.Run(name, func(t *testing.T) {
			m := loadRef(t, name)
			ctx := context.Background()
			for _, s := range m.ref.Samples {
				x := m.X.Sample(s.Index)
				lo, hi := box(x, m.ref.Eps)
				C := marginSpec(s.Label, m.net.OutSize())
				tag := fmt.Sprintf("sample %d", s.Index)
				ibp, err := Bound(ctx, m.net, lo, hi, C, Options{Method: IBP})
				if err != nil {
					t.Fatal(err)
				}
				checkVec(t, tag+" ibp_margin_lb", ibp.Lower, s.IBPMarginLB)
				cr, err := Bound(ctx, m.net, lo, hi, C, Options{Method: CROWN})
				if err != nil {
					t.Fatal(err)
				}
				checkVec(t, tag+" crown_margin_lb", cr.Lower, s.CROWNMarginLB)
				if fmt.Sprint(cr.Unstable) != fmt.Sprint(s.CROWNUnstablePerReLU) {
					t.Errorf("%s unstable %v, reference %v", tag, cr.Unstable, s.CROWNUnstablePerReLU)
				}
				if s.CROWNLogitLB != nil {
					lg, err := Bound(ctx, m.net, lo, hi, nil, Options{Method: CROWN, Upper: true})
					if err != nil {
						t.Fatal(err)
					}
					checkVec(t, tag+" crown_logit_lb", lg.Lower, s.CROWNLogitLB)
					checkVec(t, tag+" crown_logit_ub", lg.Upper, s.CROWNLogitUB)
				}
			}
		})
	}
}

// TestReferenceAlphaCROWN checks α-CROWN matches or beats auto_LiRPA's α-CROWN on the
// models that have the reference (two samples per model; all five with
// GRAFTCERT_FULL), and never falls below CROWN.
func TestReferenceAlphaCROWN(t *testing.T) {
	for _, name := range sharedtest.Models {
		t.Run(name, func(t *testing.T) {
			m := loadRef(t, name)
			if m.ref.Samples[0].AlphaCROWNMarginLB == nil {
				t.Skip("no alpha_crown_margin_lb in the reference")
			}
			samples := m.ref.Samples
			if !full() {
				samples = samples[:2]
			}
			for _, s := range samples {
				x := m.X.Sample(s.Index)
				lo, hi := box(x, m.ref.Eps)
				C := marginSpec(s.Label, m.net.OutSize())
				cr, err := Bound(context.Background(), m.net, lo, hi, C, Options{Method: CROWN})
				if err != nil {
					t.Fatal(err)
				}
				al, err := Bound(context.Background(), m.net, lo, hi, C, Options{Method: AlphaCROWN})
				if err != nil {
					t.Fatal(err)
				}
				sum, refSum := 0.0, 0.0
				for i, want := range s.AlphaCROWNMarginLB {
					got := al.Lower[i]
					sum += got
					refSum += want
					if got < want-math.Max(1e-3*math.Abs(want), 1e-4) {
						t.Errorf("sample %d row %d: α-CROWN %.6f below reference %.6f", s.Index, i, got, want)
					}
					if got < cr.Lower[i] {
						t.Errorf("sample %d row %d: α-CROWN %.6f below CROWN %.6f", s.Index, i, got, cr.Lower[i])
					}
				}
				if sum < refSum {
					t.Errorf("sample %d: α-CROWN sum %.6f below reference sum %.6f", s.Index, sum, refSum)
				}
				t.Logf("sample %d: sum %.4f, reference %.4f, CROWN %.4f", s.Index, sum, refSum, sumOf(cr.Lower))
			}
		})
	}
}

func sumOf(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s
}

// TestAlphaStopWhenPositive: a sample CROWN already verifies stops α-CROWN after its
// first pass, which equals CROWN (the reference values), still verified.
func TestAlphaStopWhenPositive(t *testing.T) {
	m := loadRef(t, "mnist_6_100")
	s := m.ref.Samples[0]
	lo, hi := box(m.X.Sample(s.Index), m.ref.Eps)
	r, err := Bound(context.Background(), m.net, lo, hi, marginSpec(s.Label, 10), Options{Method: AlphaCROWN, StopWhenPositive: true})
	if err != nil {
		t.Fatal(err)
	}
	checkVec(t, "early-stopped α-CROWN", r.Lower, s.CROWNMarginLB)
}

// TestThreadsIdentical: splitting a start node's rows over goroutines changes nothing.
func TestThreadsIdentical(t *testing.T) {
	for _, name := range []string{"mnist_9_100", "cifar_cnn_a_adv", "oval_cifar_deep"} {
		m := loadRef(t, name)
		s := m.ref.Samples[1]
		lo, hi := box(m.X.Sample(s.Index), m.ref.Eps)
		C := marginSpec(s.Label, 10)
		one, err := Bound(context.Background(), m.net, lo, hi, C, Options{Method: CROWN})
		if err != nil {
			t.Fatal(err)
		}
		four, err := Bound(context.Background(), m.net, lo, hi, C, Options{Method: CROWN, Threads: 4})
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(one.Lower, one.Unstable) != fmt.Sprint(four.Lower, four.Unstable) {
			t.Errorf("%s: 1 thread %v %v, 4 threads %v %v", name, one.Lower, one.Unstable, four.Lower, four.Unstable)
		}
	}
}
