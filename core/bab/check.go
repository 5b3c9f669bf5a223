package bab

import (
	"math"

	"github.com/graftcert/graftcert/core/nn"
	"github.com/graftcert/graftcert/core/spec"
)

// problem is one input box with the conjunctions of output rows that make an output
// unsafe there: an input of the box is a counterexample when its output meets every
// row of at least one conjunction.
type problem struct {
	lo, hi []float64
	disj   [][]spec.Row
}

// violated reports the first conjunction that y meets (−1 if none).
func (p *problem) violated(y []float64) int {
	for k, rows := range p.disj {
		if (spec.Case{Out: rows}).Violated(y) {
			return k
		}
	}
	return -1
}

// confirm turns a candidate input into a confirmed counterexample, or reports that it
// is none. The input is first moved to the nearest float32 values inside the box
// (coordinate by coordinate; where the box holds no float32 the float64 value stays),
// so that the reported point survives the float32 conversion every ONNX runtime makes.
// It is a counterexample when it lies in the box and both the float64 forward pass
// and a forward pass that rounds every layer's output to float32 violate one
// conjunction. The reported output is the float64 pass's.
func confirm(net *nn.Network, p *problem, x []float64) (*Counterexample, bool) {
	if len(x) != len(p.lo) {
		return nil, false
	}
	x32 := make([]float64, len(x))
	for i, v := range x {
		x32[i] = toFloat32In(v, p.lo[i], p.hi[i])
	}
	if !(spec.Case{Lo: p.lo, Hi: p.hi}).Contains(x32, 0) {
		return nil, false
	}
	y := net.Forward(x32)
	for _, v := range y {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, false
		}
	}
	if p.violated(y) < 0 || p.violated(forward32(net, x32)) < 0 {
		return nil, false
	}
	return &Counterexample{X: x32, Y: y}, true
}

// toFloat32In returns the float32 value nearest v clamped to [lo, hi], moved inside
// the interval if rounding left it outside; v clamped when no float32 lies inside.
func toFloat32In(v, lo, hi float64) float64 {
	v = min(hi, max(lo, v))
	f := float32(v)
	if float64(f) < lo {
		f = math.Nextafter32(f, float32(math.Inf(1)))
	}
	if float64(f) > hi {
		f = math.Nextafter32(f, float32(math.Inf(-1)))
	}
	if float64(f) < lo || float64(f) > hi {
		return v
	}
	return float64(f)
}

// forward32 runs one sample with every layer's output rounded to float32: a stand-in
// for the float32 inference of an ONNX runtime.
func forward32(net *nn.Network, x []float64) []float64 {
	cur := make([]float64, len(x))
	for i, v := range x {
		cur[i] = float64(float32(v))
	}
	for i, l := range net.Layers {
		out := make([]float64, net.Shapes[i+1].Size())
		l.Forward(cur, out, 1)
		for j, v := range out {
			out[j] = float64(float32(v))
		}
		cur = out
	}
	return cur
}
