package spec

import (
	"errors"
	"math"
	"testing"
)

func TestBox(t *testing.T) {
	lo, hi, err := Box([]float64{0, 0.5, 0.99, 1, 0.25}, 0.02)
	if err != nil {
		t.Fatal(err)
	}
	wantLo := []float64{0, 0.48, 0.97, 0.98, 0.23}
	wantHi := []float64{0.02, 0.52, 1, 1, 0.27}
	for i := range wantLo {
		if math.Abs(lo[i]-wantLo[i]) > 1e-15 || math.Abs(hi[i]-wantHi[i]) > 1e-15 {
			t.Errorf("element %d: [%v, %v], want [%v, %v]", i, lo[i], hi[i], wantLo[i], wantHi[i])
		}
	}
	// Clamping must be exact at the pixel range ends.
	if lo[0] != 0 || hi[2] != 1 || hi[3] != 1 {
		t.Errorf("clamped ends not exact: lo[0]=%v hi[2]=%v hi[3]=%v", lo[0], hi[2], hi[3])
	}
	lo, hi, err = Box([]float64{0.3}, 0)
	if err != nil || lo[0] != 0.3 || hi[0] != 0.3 {
		t.Errorf("eps 0: [%v, %v] %v", lo, hi, err)
	}
	lo, hi, err = Box([]float64{0.3}, math.Inf(1))
	if err != nil || lo[0] != 0 || hi[0] != 1 {
		t.Errorf("eps +Inf: [%v, %v] %v", lo, hi, err)
	}
	for _, eps := range []float64{-0.1, math.NaN(), math.Inf(-1)} {
		if _, _, err := Box([]float64{0.5}, eps); !errors.Is(err, ErrArg) {
			t.Errorf("eps %v: %v", eps, err)
		}
	}
	if _, _, err := Box([]float64{0.5, math.NaN()}, 0.1); !errors.Is(err, ErrArg) {
		t.Errorf("NaN sample: %v", err)
	}
}

func TestMargin(t *testing.T) {
	C, err := Margin(2, 4)
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{
		-1, 0, 1, 0,
		0, -1, 1, 0,
		0, 0, 1, -1,
	}
	if len(C) != len(want) {
		t.Fatalf("len %d, want %d", len(C), len(want))
	}
	for i := range want {
		if C[i] != want[i] {
			t.Fatalf("C = %v, want %v", C, want)
		}
	}
	C, _ = Margin(0, 2)
	if len(C) != 2 || C[0] != 1 || C[1] != -1 {
		t.Errorf("Margin(0, 2) = %v", C)
	}
	for _, tc := range [][2]int{{-1, 10}, {10, 10}, {0, 1}, {0, 0}} {
		if _, err := Margin(tc[0], tc[1]); !errors.Is(err, ErrArg) {
			t.Errorf("Margin(%d, %d): %v", tc[0], tc[1], err)
		}
	}
}
