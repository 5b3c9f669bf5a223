package train

import (
	"fmt"

	"gonum.org/v1/gonum/blas/blas64"

	"github.com/graftcert/graftcert/core/nn"
)

// Tape is a batched forward pass kept for the backward pass: the input of every layer
// (Acts[i], n samples contiguous) and the output Acts[len(Layers)], plus the patch
// matrices of convolution inputs. A Tape's buffers are reused by the next pass that is
// given it, so passes allocate only while a tape grows.
type Tape struct {
	N    int
	Acts [][]float64

	bufs  [][]float64 // backing storage of Acts (Reshape outputs alias their input)
	cols  [][]float64 // per layer: im2col of a Conv2d input
	tmp   []float64   // conv forward product
	adj   [2][]float64
	dyr   []float64
	dcols []float64
}

// Output returns the network output of the pass (n × OutSize).
func (t *Tape) Output() []float64 { return t.Acts[len(t.Acts)-1] }

func grow(b []float64, n int) []float64 {
	if cap(b) < n {
		return make([]float64, n)
	}
	return b[:n]
}

func (t *Tape) reset(net *nn.Network, n int) {
	L := len(net.Layers)
	t.N = n
	if len(t.Acts) != L+1 {
		t.Acts = make([][]float64, L+1)
		t.bufs = make([][]float64, L+1)
		t.cols = make([][]float64, L)
	}
}

// plan is what the passes need to know about a network beyond its layers.
type plan struct {
	net        *nn.Network
	pw, pb     []int // parameter indices per layer; nil means no parameters wanted
	firstParam int
	maxSize    int
}

func planFor(net *nn.Network) plan {
	p := plan{net: net, firstParam: len(net.Layers)}
	for _, s := range net.Shapes {
		p.maxSize = max(p.maxSize, s.Size())
	}
	return p
}

func (m *Model) plan() plan {
	return plan{net: m.Net, pw: m.pw, pb: m.pb, firstParam: m.firstParam, maxSize: m.maxSize}
}

// forward runs n samples through net and records them on t. x is copied.
func forward(net *nn.Network, t *Tape, x []float64, n int) {
	t.reset(net, n)
	in0 := n * net.InSize()
	t.bufs[0] = grow(t.bufs[0], in0)
	copy(t.bufs[0], x[:in0])
	t.Acts[0] = t.bufs[0]
	for i, l := range net.Layers {
		in := t.Acts[i]
		size := n * net.Shapes[i+1].Size()
		if _, ok := l.(*nn.Reshape); ok {
			t.Acts[i+1] = in[:size]
			continue
		}
		t.bufs[i+1] = grow(t.bufs[i+1], size)
		out := t.bufs[i+1]
		switch l := l.(type) {
		case *nn.Conv2d:
			t.cols[i] = grow(t.cols[i], convK(l)*n*convHW(l))
			t.tmp = grow(t.tmp, size)
			convForward(l, in, n, out, t.cols[i], t.tmp, true)
		case *nn.Dense:
			beta := 0.0
			if l.B != nil {
				for s := 0; s < n; s++ {
					copy(out[s*l.Out:(s+1)*l.Out], l.B)
				}
				beta = 1
			}
			gemm(false, true, 1,
				blas64.General{Rows: n, Cols: l.In, Stride: l.In, Data: in},
				blas64.General{Rows: l.Out, Cols: l.In, Stride: l.In, Data: l.W},
				beta, blas64.General{Rows: n, Cols: l.Out, Stride: l.Out, Data: out})
		default:
			l.Forward(in, out, n)
		}
		t.Acts[i+1] = out
	}
}

// tangentForward pushes the input direction v through the network linearised at the
// primal pass pr: linear layers without their biases, activations with pr's pattern
// (grafted neurons by their slope), normalisation by its scale. The result on t is the
// Jacobian-vector product J(x)·v at every layer.
func tangentForward(net *nn.Network, pr, t *Tape, v []float64) error {
	n := pr.N
	t.reset(net, n)
	in0 := n * net.InSize()
	t.bufs[0] = grow(t.bufs[0], in0)
	copy(t.bufs[0], v[:in0])
	t.Acts[0] = t.bufs[0]
	for i, l := range net.Layers {
		in := t.Acts[i]
		size := n * net.Shapes[i+1].Size()
		if _, ok := l.(*nn.Reshape); ok {
			t.Acts[i+1] = in[:size]
			continue
		}
		t.bufs[i+1] = grow(t.bufs[i+1], size)
		out := t.bufs[i+1]
		t.Acts[i+1] = out
		switch l := l.(type) {
		case *nn.Dense:
			gemm(false, true, 1,
				blas64.General{Rows: n, Cols: l.In, Stride: l.In, Data: in},
				blas64.General{Rows: l.Out, Cols: l.In, Stride: l.In, Data: l.W},
				0, blas64.General{Rows: n, Cols: l.Out, Stride: l.Out, Data: out})
		case *nn.Conv2d:
			t.cols[i] = grow(t.cols[i], convK(l)*n*convHW(l))
			t.tmp = grow(t.tmp, size)
			convForward(l, in, n, out, t.cols[i], t.tmp, false)
		case *nn.ReLU:
			pat := pr.Acts[i]
			for j, x := range in {
				if pat[j] > 0 {
					out[j] = x
				} else {
					out[j] = 0
				}
			}
		case *nn.MaskedReLU:
			pat := pr.Acts[i]
			for s := 0; s < n; s++ {
				o := s * l.N
				for j := 0; j < l.N; j++ {
					switch {
					case l.Mask[j] != 0:
						out[o+j] = l.Slope[j] * in[o+j]
					case pat[o+j] > 0:
						out[o+j] = in[o+j]
					default:
						out[o+j] = 0
					}
				}
			}
		case *nn.Affine:
			for s := 0; s < n; s++ {
				o := s * l.N
				for j := 0; j < l.N; j++ {
					x := in[o+j]
					if l.Scale != nil {
						x *= l.Scale[j]
					}
					out[o+j] = x
				}
			}
		default:
			return fmt.Errorf("train: layer %d %q: cannot differentiate layer type %s", i, l.Name(), l.Kind())
		}
	}
	return nil
}

// pass says what a backward pass computes.
type pass struct {
	grad   *Grad // accumulate parameter gradients (nil: none)
	noBias bool  // leave out biases and intercepts (tangent pass)
	// wantIn is the lowest layer whose input gradient is wanted: 0 for the network
	// input, len(Layers) for none.
	wantIn int
	// hook, if set, sees the gradient with respect to the input of every layer i ≥
	// wantIn, n samples contiguous, valid only during the call.
	hook func(layer int, dIn []float64)
}

// backward propagates dOut (gradient w.r.t. the output of the pass recorded on t) down
// the network. Activation patterns are read from pat (t itself, except in the tangent
// pass, whose pattern is the primal's). It returns the gradient w.r.t. Acts[wantIn],
// stored in t's scratch and valid until t's next backward pass.
func backward(p plan, t, pat *Tape, dOut []float64, ps pass) ([]float64, error) {
	net := p.net
	L := len(net.Layers)
	n := t.N
	lo := ps.wantIn
	if ps.grad != nil && p.pw != nil {
		lo = min(lo, p.firstParam)
	}
	if lo >= L {
		return nil, nil
	}
	for k := range t.adj {
		t.adj[k] = grow(t.adj[k], n*p.maxSize)
	}
	cur := dOut[:n*net.OutSize()]
	pick := func(size int) []float64 {
		if len(cur) > 0 && &cur[0] == &t.adj[0][0] {
			return t.adj[1][:size]
		}
		return t.adj[0][:size]
	}
	gw := func(i int) []float64 {
		if ps.grad == nil || p.pw == nil || p.pw[i] < 0 {
			return nil
		}
		return ps.grad.G[p.pw[i]]
	}
	gb := func(i int) []float64 {
		if ps.grad == nil || p.pb == nil || p.pb[i] < 0 || ps.noBias {
			return nil
		}
		return ps.grad.G[p.pb[i]]
	}
	for i := L - 1; i >= lo; i-- {
		needIn := i > lo || i == ps.wantIn
		inSize := n * net.Shapes[i].Size()
		x := t.Acts[i]
		var dx []float64
		switch l := net.Layers[i].(type) {
		case *nn.Dense:
			dY := blas64.General{Rows: n, Cols: l.Out, Stride: l.Out, Data: cur}
			if g := gw(i); g != nil {
				gemm(true, false, 1, dY,
					blas64.General{Rows: n, Cols: l.In, Stride: l.In, Data: x},
					1, blas64.General{Rows: l.Out, Cols: l.In, Stride: l.In, Data: g})
			}
			if g := gb(i); g != nil {
				for s := 0; s < n; s++ {
					for o, v := range cur[s*l.Out : (s+1)*l.Out] {
						g[o] += v
					}
				}
			}
			if needIn {
				dx = pick(inSize)
				gemm(false, false, 1, dY,
					blas64.General{Rows: l.Out, Cols: l.In, Stride: l.In, Data: l.W},
					0, blas64.General{Rows: n, Cols: l.In, Stride: l.In, Data: dx})
			}
		case *nn.Conv2d:
			if needIn {
				dx = pick(inSize)
				t.dcols = grow(t.dcols, convK(l)*n*convHW(l))
			}
			t.dyr = grow(t.dyr, n*l.OutSize())
			convBackward(l, cur, n, t.cols[i], gw(i), gb(i), dx, t.dyr, t.dcols)
		case *nn.ReLU:
			if needIn {
				dx = pick(inSize)
				pa := pat.Acts[i]
				for j, v := range cur {
					if pa[j] > 0 {
						dx[j] = v
					} else {
						dx[j] = 0
					}
				}
			}
		case *nn.MaskedReLU:
			gS, gI := gw(i), gb(i)
			if needIn {
				dx = pick(inSize)
			}
			pa := pat.Acts[i]
			for s := 0; s < n; s++ {
				o := s * l.N
				for j := 0; j < l.N; j++ {
					v := cur[o+j]
					if l.Mask[j] != 0 {
						if gS != nil {
							gS[j] += v * x[o+j]
						}
						if gI != nil {
							gI[j] += v
						}
						if dx != nil {
							dx[o+j] = l.Slope[j] * v
						}
					} else if dx != nil {
						if pa[o+j] > 0 {
							dx[o+j] = v
						} else {
							dx[o+j] = 0
						}
					}
				}
			}
		case *nn.Affine:
			if needIn {
				if l.Scale == nil {
					dx = cur
				} else {
					dx = pick(inSize)
					for s := 0; s < n; s++ {
						o := s * l.N
						for j, sc := range l.Scale {
							dx[o+j] = cur[o+j] * sc
						}
					}
				}
			}
		case *nn.Reshape:
			dx = cur[:inSize]
		default:
			return nil, fmt.Errorf("train: layer %d %q: cannot differentiate layer type %s", i, l.Name(), l.Kind())
		}
		if !needIn {
			break
		}
		if ps.hook != nil {
			ps.hook(i, dx)
		}
		cur = dx
	}
	if ps.wantIn >= L {
		return nil, nil
	}
	return cur, nil
}

// Forward runs n samples (x holds n·InSize values) and records the pass on t, which may
// be nil (a new tape is made) or a tape from an earlier pass (its buffers are reused).
func (m *Model) Forward(x []float64, n int, t *Tape) *Tape {
	if t == nil {
		t = new(Tape)
	}
	forward(m.Net, t, x, n)
	return t
}

// Backward propagates dOut, the gradient of some scalar with respect to the outputs of
// the pass on t (n × OutSize), and adds the parameter gradients to g (nil: none). It
// returns a new slice with the gradient with respect to the network input (n × InSize).
func (m *Model) Backward(t *Tape, dOut []float64, g *Grad) ([]float64, error) {
	if len(dOut) < t.N*m.Net.OutSize() {
		return nil, fmt.Errorf("train: dOut has %d values, want %d", len(dOut), t.N*m.Net.OutSize())
	}
	d, err := backward(m.plan(), t, t, dOut, pass{grad: g, wantIn: 0})
	if err != nil {
		return nil, err
	}
	return append([]float64(nil), d...), nil
}

// BackwardEach is Backward that also calls hook, from the last layer down, with the
// gradient with respect to the input of every layer (n samples contiguous; the slice is
// only valid during the call) — e.g. ∂loss/∂pre-activation for the input of an
// activation layer. Parameter gradients go to g if it is non-nil.
func (m *Model) BackwardEach(t *Tape, dOut []float64, g *Grad, hook func(layer int, dIn []float64)) error {
	if len(dOut) < t.N*m.Net.OutSize() {
		return fmt.Errorf("train: dOut has %d values, want %d", len(dOut), t.N*m.Net.OutSize())
	}
	_, err := backward(m.plan(), t, t, dOut, pass{grad: g, wantIn: 0, hook: hook})
	return err
}
