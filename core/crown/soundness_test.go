package crown

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/graftcert/graftcert/internal/sharedtest"
)

// TestSoundnessShared samples points in the eps box of a sample of every shared model —
// box corners, points on faces and uniform interior points — and checks every margin
// C·f(x) lies within the IBP, CROWN and α-CROWN bounds (logits too, for CROWN).
func TestSoundnessShared(t *testing.T) {
	points := 1000
	if full() {
		points = 20000
	}
	for mi, name := range sharedtest.Models {
		t.Run(name, func(t *testing.T) {
			m := loadRef(t, name)
			rng := rand.New(rand.NewPCG(uint64(mi), 99))
			s := m.ref.Samples[mi%len(m.ref.Samples)]
			x := m.X.Sample(s.Index)
			lo, hi := box(x, m.ref.Eps)
			k := m.net.OutSize()
			C := marginSpec(s.Label, k)
			methods := []Method{IBP, CROWN}
			if full() || mi%4 == 0 {
				methods = append(methods, AlphaCROWN)
			}
			var bounds []*Result
			for _, meth := range methods {
				r, err := Bound(context.Background(), m.net, lo, hi, C, Options{Method: meth, Upper: true, Iterations: 5})
				if err != nil {
					t.Fatal(err)
				}
				bounds = append(bounds, r)
			}
			logits, err := Bound(context.Background(), m.net, lo, hi, nil, Options{Method: CROWN, Upper: true})
			if err != nil {
				t.Fatal(err)
			}
			n := len(x)
			const batch = 250
			X := make([]float64, batch*n)
			for done := 0; done < points; done += batch {
				for b := 0; b < batch; b++ {
					p := X[b*n : (b+1)*n]
					kind := (done + b) % 3
					for i := range p {
						switch {
						case kind == 0 || kind == 1 && rng.IntN(4) != 0: // corners, faces
							if rng.IntN(2) == 0 {
								p[i] = lo[i]
							} else {
								p[i] = hi[i]
							}
						default:
							p[i] = lo[i] + rng.Float64()*(hi[i]-lo[i])
						}
					}
				}
				Y := m.net.ForwardBatch(X, batch)
				for b := 0; b < batch; b++ {
					y := Y[b*k : (b+1)*k]
					for j, v := range y {
						if v < logits.Lower[j] || v > logits.Upper[j] {
							t.Fatalf("logit %d = %v outside CROWN [%v, %v]", j, v, logits.Lower[j], logits.Upper[j])
						}
					}
					row := 0
					for j := 0; j < k; j++ {
						if j == s.Label {
							continue
						}
						margin := y[s.Label] - y[j]
						for mi, r := range bounds {
							if margin < r.Lower[row] || margin > r.Upper[row] {
								t.Fatalf("%s: margin %d = %v outside [%v, %v]", methods[mi], row, margin, r.Lower[row], r.Upper[row])
							}
						}
						row++
					}
				}
			}
		})
	}
}
