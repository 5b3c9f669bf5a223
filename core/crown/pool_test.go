package crown

import (
	"context"
	"fmt"
	"sync"
	"testing"
)

// Backward and adjoint passes recycle their row matrices through a shared pool. A
// matrix handed back while still in use would be overwritten by another computation:
// bounds computed concurrently (CROWN with threads, α-CROWN, several models at once)
// must equal the same bounds computed alone.
func TestPooledBuffersConcurrent(t *testing.T) {
	type job struct {
		name string
		opts Options
	}
	jobs := []job{
		{"cifar_cnn_a_adv", Options{Method: CROWN}},
		{"mnist_cnn_a_adv", Options{Method: CROWN, Threads: 2}},
		{"mnist_6_100", Options{Method: AlphaCROWN, Iterations: 5}},
		{"oval_cifar_deep", Options{Method: CROWN, Upper: true}},
		{"cifar_conv_small_graft50", Options{Method: AlphaCROWN, Iterations: 3}},
	}
	type in struct {
		lo, hi, C []float64
		m         *refModel
	}
	inputs := make([]in, len(jobs))
	want := make([]string, len(jobs))
	for i, j := range jobs {
		m := loadRef(t, j.name)
		s := m.ref.Samples[2]
		lo, hi := box(m.X.Sample(s.Index), m.ref.Eps)
		C := marginSpec(s.Label, m.net.OutSize())
		inputs[i] = in{lo, hi, C, m}
		r, err := Bound(context.Background(), m.net, lo, hi, C, j.opts)
		if err != nil {
			t.Fatal(err)
		}
		want[i] = fmt.Sprint(r.Lower, r.Upper, r.Unstable)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 4*len(jobs))
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for rep := 0; rep < 2; rep++ {
				for k := range jobs {
					i := (k + g) % len(jobs)
					x := inputs[i]
					r, err := Bound(context.Background(), x.m.net, x.lo, x.hi, x.C, jobs[i].opts)
					if err != nil {
						errs <- err.Error()
						return
					}
					if got := fmt.Sprint(r.Lower, r.Upper, r.Unstable); got != want[i] {
						errs <- fmt.Sprintf("%s: concurrently %s, alone %s", jobs[i].name, got, want[i])
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
