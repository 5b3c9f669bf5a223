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

// chainConc is chainConcGo, in assembly where the CPU has AVX2.
func chainConc(s *sparseConv, x, mid, rad, mx []float64, out *[3 * sparseBlock]float64) {
	n := len(s.out)
	if !sparseAsm || n == 0 {
		chainConcGo(s, x, mid, rad, mx, out)
		return
	}
	if len(s.ptr) != n+1 || len(mid) < n || len(rad) < n || len(mx) < n || len(x) < len(s.in)*sparseBlock || int(s.ptr[n]) > len(s.src) || len(s.w) < len(s.src) {
		panic("crown: chainConc operands too short")
	}
	chainConcAVX2(n, &s.ptr[0], &s.src[0], &s.w[0], &x[0], &mid[0], &rad[0], &mx[0], &out[0])
}

// chainRelax is chainRelaxGo, in assembly where the CPU has AVX2.
func chainRelax(s *sparseConv, x, y []float64, rbm *[2 * sparseBlock]float64) {
	n := len(s.out)
	lt := s.lineTable()
	if !sparseAsm || n == 0 {
		chainRelaxGo(s, lt, x, y, rbm)
		return
	}
	if len(s.ptr) != n+1 || len(y) < n*sparseBlock || len(lt) < 8*n || len(x) < len(s.in)*sparseBlock || int(s.ptr[n]) > len(s.src) || len(s.w) < len(s.src) {
		panic("crown: chainRelax operands too short")
	}
	chainRelaxAVX2(n, &s.ptr[0], &s.src[0], &s.w[0], &x[0], &lt[0], &y[0], &rbm[0])
}

//go:noescape
func sparseAcc8AVX2(n int, idx *int32, w, x, acc *float64)

//go:noescape
func chainConcAVX2(nout int, ptr, src *int32, w, x, mid, rad, mx, out *float64)

//go:noescape
func chainRelaxAVX2(nout int, ptr, src *int32, w, x, lines, y, rbm *float64)
