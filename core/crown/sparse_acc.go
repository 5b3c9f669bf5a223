package crown

// sparseAccGo is sparseAcc8 in Go: acc[t] = Σ_e w[e]·x[8·idx[e]+t] for t < 8, the
// entries of even e summed apart from those of odd e and the two sums added at the
// end (two add chains, which the assembly version runs side by side), each product
// rounded before it is added. Both versions give the same values bit for bit.
func sparseAccGo(idx []int32, w, x []float64, acc *[sparseBlock]float64) {
	w = w[:len(idx)]
	var ev, od [sparseBlock]float64
	for half, s := range []*[sparseBlock]float64{&ev, &od} {
		var a0, a1, a2, a3, a4, a5, a6, a7 float64
		for e := half; e < len(idx); e += 2 {
			v := (*[sparseBlock]float64)(x[int(idx[e])*sparseBlock:])
			we := w[e]
			a0 += float64(we * v[0])
			a1 += float64(we * v[1])
			a2 += float64(we * v[2])
			a3 += float64(we * v[3])
			a4 += float64(we * v[4])
			a5 += float64(we * v[5])
			a6 += float64(we * v[6])
			a7 += float64(we * v[7])
		}
		*s = [sparseBlock]float64{a0, a1, a2, a3, a4, a5, a6, a7}
	}
	for t := range acc {
		acc[t] = ev[t] + od[t]
	}
}
