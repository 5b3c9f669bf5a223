//go:build amd64 && !purego

package crown

import "golang.org/x/sys/cpu"

var sparseAsm = cpu.X86.HasAVX2

// sparseAcc8 is sparseAccGo, in AVX2 assembly where the CPU has it. Every idx[e] must
// be below len(x)/8: sparseConv builds its entries so.
func sparseAcc8(idx []int32, w, x []float64, acc *[sparseBlock]float64) {
	if !sparseAsm {
		sparseAccGo(idx, w, x, acc)
		return
	}
	if len(w) < len(idx) {
		panic("crown: sparseAcc8 has fewer weights than entries")
	}
	if len(idx) == 0 {
		*acc = [sparseBlock]float64{}
		return
	}
	sparseAcc8AVX2(len(idx), &idx[0], &w[0], &x[0], &acc[0])
}

//go:noescape
func sparseAcc8AVX2(n int, idx *int32, w, x, acc *float64)
