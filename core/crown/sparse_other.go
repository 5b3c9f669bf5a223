//go:build !amd64 || purego

package crown

const sparseAsm = false

func sparseAcc8(idx []int32, w, x []float64, acc *[sparseBlock]float64) {
	sparseAccGo(idx, w, x, acc)
}
