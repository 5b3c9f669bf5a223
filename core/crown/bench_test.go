package crown

import (
	"context"
	"testing"
)

func benchModel(b *testing.B, name string, m Method) {
	rm := loadRef(b, name)
	s := rm.ref.Samples[0]
	lo, hi := box(rm.X.Sample(s.Index), rm.ref.Eps)
	C := marginSpec(s.Label, rm.net.OutSize())
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Bound(context.Background(), rm.net, lo, hi, C, Options{Method: m}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCROWN_mnist_6_100(b *testing.B)      { benchModel(b, "mnist_6_100", CROWN) }
func BenchmarkCROWN_mnist_9_200(b *testing.B)      { benchModel(b, "mnist_9_200", CROWN) }
func BenchmarkCROWN_mnist_conv_small(b *testing.B) { benchModel(b, "mnist_conv_small", CROWN) }
func BenchmarkCROWN_cifar_cnn_a_mix(b *testing.B)  { benchModel(b, "cifar_cnn_a_mix", CROWN) }
func BenchmarkCROWN_cifar_conv_small(b *testing.B) { benchModel(b, "cifar_conv_small", CROWN) }
func BenchmarkCROWN_oval_cifar_deep(b *testing.B)  { benchModel(b, "oval_cifar_deep", CROWN) }
func BenchmarkAlpha_mnist_6_100(b *testing.B)      { benchModel(b, "mnist_6_100", AlphaCROWN) }
func BenchmarkAlpha_cifar_cnn_a_mix(b *testing.B)  { benchModel(b, "cifar_cnn_a_mix", AlphaCROWN) }
func BenchmarkCROWN_cifar_cnn_a_adv(b *testing.B)  { benchModel(b, "cifar_cnn_a_adv", CROWN) }
func BenchmarkCROWN_mnist_cnn_a_adv(b *testing.B)  { benchModel(b, "mnist_cnn_a_adv", CROWN) }
