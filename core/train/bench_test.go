package train

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"
)

// BenchmarkTrainStep measures training throughput on MNIST-shaped random data with the
// paper's recipe (FGSM-RS + GradAlign λ 0.2, batch 128) for the mlp-6x100 and
// cnn-small shapes, on 1 and 2 workers. The samples/s metric divided by the workers is
// the per-core speed.
func BenchmarkTrainStep(b *testing.B) {
	for _, arch := range []string{"mlp-6x100", "cnn-small"} {
		for _, workers := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/workers=%d", arch, workers), func(b *testing.B) {
				net, err := Architecture(arch, 1)
				if err != nil {
					b.Fatal(err)
				}
				const n = 1280
				rng := rand.New(rand.NewPCG(1, 1))
				data := Data{X: randVec(rng, n*784, 0, 1), Labels: make([]int, n)}
				for i := range data.Labels {
					data.Labels[i] = rng.IntN(10)
				}
				o := DefaultTrain(0.1)
				o.Epochs = 1
				o.Workers = workers
				if c := os.Getenv("CHUNK"); c != "" {
					o.Chunk, _ = strconv.Atoi(c)
				}
				o.Weights.LR, o.Biases.LR = 0.01, 0.01
				b.ResetTimer()
				start := time.Now()
				for i := 0; i < b.N; i++ {
					if _, err := Train(context.Background(), net, data, o, nil); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N*n)/time.Since(start).Seconds(), "samples/s")
			})
		}
	}
}

// BenchmarkInputGradient measures one single-sample input gradient (forward + backward),
// the inner step of a PGD attack.
func BenchmarkInputGradient(b *testing.B) {
	for _, arch := range []string{"mlp-6x100", "cnn-small"} {
		b.Run(arch, func(b *testing.B) {
			net, err := Architecture(arch, 1)
			if err != nil {
				b.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(1, 1))
			x := randVec(rng, 784, 0, 1)
			c := randVec(rng, 10, -1, 1)
			dst := make([]float64, 784)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if err := InputGradientTo(dst, net, x, c); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
