//go:build !amd64 || purego

package crown

const sparseAsm = false

func sparseAcc8(idx []int32, w, x []float64, acc *[sparseBlock]float64) {
	sparseAccGo(idx, w, x, acc)
}

func chainConc(s *sparseConv, x, mid, rad, mx []float64, out *[3 * sparseBlock]float64) {
	chainConcGo(s, x, mid, rad, mx, out)
}

func chainRelax(s *sparseConv, x, y []float64, rbm *[2 * sparseBlock]float64) {
	chainRelaxGo(s, s.lineTable(), x, y, rbm)
}
