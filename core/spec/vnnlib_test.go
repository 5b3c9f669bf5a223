package spec

import (
	"bytes"
	"encoding/csv"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/graftcert/graftcert/internal/sharedtest"
)

func parse(t *testing.T, src string, nIn, nOut int) *VNNLIB {
	t.Helper()
	v, err := ParseVNNLIBBytes([]byte(src), nIn, nOut)
	if err != nil {
		t.Fatalf("%v\n%s", err, src)
	}
	return v
}

func vnnlibFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(sharedtest.Path(t, "vnncomp", "*", "vnnlib", "*.vnnlib"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no vnnlib files: %v", err)
	}
	return files
}

// e returns the row Y_a − Y_b ≤ 0 over n outputs, i.e. "Y_a <= Y_b".
func e(n, a, b int) Row {
	c := make([]float64, n)
	c[a], c[b] = 1, -1
	return Row{C: c}
}

func rowsEqual(a, b []Row) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].D != b[i].D || len(a[i].C) != len(b[i].C) {
			return false
		}
		for j := range a[i].C {
			if a[i].C[j] != b[i].C[j] {
				return false
			}
		}
	}
	return true
}

// Every shared VNNLIB file parses; its declarations give the counts, and every case
// has a finite, non-empty box and rows over all outputs.
func TestSharedVNNLIBParse(t *testing.T) {
	wantIn := map[string]int{"acasxu": 5, "mnist_fc": 784, "oval21": 3072}
	wantOut := map[string]int{"acasxu": 5, "mnist_fc": 10, "oval21": 10}
	for _, f := range vnnlibFiles(t) {
		bench := filepath.Base(filepath.Dir(filepath.Dir(f)))
		v, err := ParseVNNLIBFile(f, wantIn[bench], wantOut[bench])
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		for ci, c := range v.Cases {
			for i := range c.Lo {
				if !(c.Lo[i] <= c.Hi[i]) || math.IsInf(c.Lo[i], 0) || math.IsInf(c.Hi[i], 0) {
					t.Errorf("%s case %d X_%d: [%v, %v]", f, ci, i, c.Lo[i], c.Hi[i])
				}
			}
			if len(c.Out) == 0 {
				t.Errorf("%s case %d has no output rows", f, ci)
			}
			for _, r := range c.Out {
				if len(r.C) != v.NumOutputs {
					t.Errorf("%s case %d: row of %d coefficients", f, ci, len(r.C))
				}
			}
		}
	}
}

// The acasxu properties, transcribed by hand from the files: per case, the rows
// "Y_a <= Y_b" as pairs, and the bounds of X_2.
func TestACASXuProperties(t *testing.T) {
	type pairs [][2]int
	for _, tc := range []struct {
		prop   int
		cases  []pairs
		x2     [2]float64
		groups int
	}{
		{2, []pairs{{{1, 0}, {2, 0}, {3, 0}, {4, 0}}}, [2]float64{-0.5, 0.5}, 1},
		{3, []pairs{{{0, 1}, {0, 2}, {0, 3}, {0, 4}}}, [2]float64{0.493380324, 0.5}, 1},
		{4, []pairs{{{0, 1}, {0, 2}, {0, 3}, {0, 4}}}, [2]float64{0, 0}, 1},
		{5, []pairs{{{0, 4}}, {{1, 4}}, {{2, 4}}, {{3, 4}}}, [2]float64{-0.499999896, -0.499204121}, 1},
		{6, []pairs{{{1, 0}}, {{2, 0}}, {{3, 0}}, {{4, 0}}, {{1, 0}}, {{2, 0}}, {{3, 0}}, {{4, 0}}}, [2]float64{-0.499999896, -0.499204121}, 2},
		{7, []pairs{{{3, 0}, {3, 1}, {3, 2}}, {{4, 0}, {4, 1}, {4, 2}}}, [2]float64{-0.499999896, 0.499999896}, 1},
		{8, []pairs{{{2, 0}, {2, 1}}, {{3, 0}, {3, 1}}, {{4, 0}, {4, 1}}}, [2]float64{-0.015915494, 0.015915494}, 1},
		{9, []pairs{{{0, 3}}, {{1, 3}}, {{2, 3}}, {{4, 3}}}, [2]float64{-0.499999896, -0.498408347}, 1},
		{10, []pairs{{{1, 0}}, {{2, 0}}, {{3, 0}}, {{4, 0}}}, [2]float64{-0.499999896, -0.498408347}, 1},
	} {
		path := sharedtest.Path(t, "vnncomp", "acasxu", "vnnlib", "prop_"+strconv.Itoa(tc.prop)+".vnnlib")
		v, err := ParseVNNLIBFile(path, 5, 5)
		if err != nil {
			t.Fatal(err)
		}
		if len(v.Cases) != len(tc.cases) {
			t.Errorf("prop_%d: %d cases, want %d", tc.prop, len(v.Cases), len(tc.cases))
			continue
		}
		for ci, c := range v.Cases {
			var want []Row
			for _, p := range tc.cases[ci] {
				want = append(want, e(5, p[0], p[1]))
			}
			if !rowsEqual(c.Out, want) {
				t.Errorf("prop_%d case %d: rows %v, want %v", tc.prop, ci, c.Out, want)
			}
			if c.Lo[2] != tc.x2[0] || c.Hi[2] != tc.x2[1] {
				t.Errorf("prop_%d case %d: X_2 in [%v, %v], want %v", tc.prop, ci, c.Lo[2], c.Hi[2], tc.x2)
			}
		}
		if g := v.Groups(); len(g) != tc.groups {
			t.Errorf("prop_%d: %d groups, want %d", tc.prop, len(g), tc.groups)
		}
	}

	// Property 1: one case, one row: Y_0 >= 3.991125645861615, i.e. -Y_0 <= -3.99...
	v, err := ParseVNNLIBFile(sharedtest.Path(t, "vnncomp", "acasxu", "vnnlib", "prop_1.vnnlib"), 5, 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Cases) != 1 || !rowsEqual(v.Cases[0].Out, []Row{{C: []float64{-1, 0, 0, 0, 0}, D: -3.991125645861615}}) {
		t.Errorf("prop_1: %+v", v.Cases)
	}
	wantLo := []float64{0.6, -0.5, -0.5, 0.45, -0.5}
	wantHi := []float64{0.679857769, 0.5, 0.5, 0.5, -0.45}
	for i := range wantLo {
		if v.Cases[0].Lo[i] != wantLo[i] || v.Cases[0].Hi[i] != wantHi[i] {
			t.Errorf("prop_1 X_%d: [%v, %v], want [%v, %v]", i, v.Cases[0].Lo[i], v.Cases[0].Hi[i], wantLo[i], wantHi[i])
		}
	}

	// Property 6: two input boxes (X_1 positive or negative), each with the 4
	// disjuncts of "COC is not minimal".
	v, err = ParseVNNLIBFile(sharedtest.Path(t, "vnncomp", "acasxu", "vnnlib", "prop_6.vnnlib"), 5, 5)
	if err != nil {
		t.Fatal(err)
	}
	g := v.Groups()
	if len(g) != 2 {
		t.Fatalf("prop_6: %d groups", len(g))
	}
	boxes := [2][2][5]float64{
		{{-0.129289109, 0.11140846, -0.499999896, -0.5, -0.5}, {0.700434925, 0.499999896, -0.499204121, 0.5, 0.5}},
		{{-0.129289109, -0.499999896, -0.499999896, -0.5, -0.5}, {0.700434925, -0.11140846, -0.499204121, 0.5, 0.5}},
	}
	for k := range g {
		if len(g[k].Out) != 4 {
			t.Errorf("prop_6 group %d: %d disjuncts", k, len(g[k].Out))
		}
		for i := 0; i < 5; i++ {
			if g[k].Lo[i] != boxes[k][0][i] || g[k].Hi[i] != boxes[k][1][i] {
				t.Errorf("prop_6 group %d X_%d: [%v, %v], want [%v, %v]", k, i, g[k].Lo[i], g[k].Hi[i], boxes[k][0][i], boxes[k][1][i])
			}
		}
	}
}

func TestTestBenchmarkProperties(t *testing.T) {
	dir := sharedtest.Path(t, "vnncomp", "test", "vnnlib")
	// test_tiny and test_small put the input bounds inside the disjunct.
	for _, name := range []string{"test_tiny", "test_small", "test_nano"} {
		v, err := ParseVNNLIBFile(filepath.Join(dir, name+".vnnlib"), 1, 1)
		if err != nil {
			t.Fatal(err)
		}
		want := Row{C: []float64{-1}, D: -100} // Y_0 >= 100
		if name == "test_nano" {
			want = Row{C: []float64{1}, D: -1} // Y_0 <= -1
		}
		if len(v.Cases) != 1 || v.Cases[0].Lo[0] != -1 || v.Cases[0].Hi[0] != 1 || !rowsEqual(v.Cases[0].Out, []Row{want}) {
			t.Errorf("%s: %+v", name, v.Cases)
		}
	}
	v, err := ParseVNNLIBFile(filepath.Join(dir, "test_prop.vnnlib"), 5, 5)
	if err != nil {
		t.Fatal(err)
	}
	want := []Row{e(5, 0, 1), e(5, 0, 2), e(5, 0, 3), e(5, 0, 4)}
	if len(v.Cases) != 1 || !rowsEqual(v.Cases[0].Out, want) {
		t.Errorf("test_prop: %+v", v.Cases)
	}
	if v.Cases[0].Lo[0] != -0.30353115613746867 || v.Cases[0].Hi[0] != -0.29855281193475053 {
		t.Errorf("test_prop X_0: [%v, %v]", v.Cases[0].Lo[0], v.Cases[0].Hi[0])
	}
}

// oval21 and mnist_fc: one input box, 9 disjuncts "some other class j scores at least
// as high as the label". The label is read from the file independently of the parser:
// from mnist_fc's comment, and for oval21 as the Y index common to all its constraints.
func TestClassificationProperties(t *testing.T) {
	labelRe := regexp.MustCompile(`label: (\d+)`)
	pairRe := regexp.MustCompile(`\((<=|>=) Y_(\d+) Y_(\d+)\)`)
	for _, bench := range []string{"oval21", "mnist_fc"} {
		files, _ := filepath.Glob(sharedtest.Path(t, "vnncomp", bench, "vnnlib", "*.vnnlib"))
		for _, f := range files {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			label := -1
			if m := labelRe.FindSubmatch(src); bench == "mnist_fc" && m != nil {
				label, _ = strconv.Atoi(string(m[1]))
			}
			if bench == "oval21" {
				m := pairRe.FindSubmatch(src)
				label, _ = strconv.Atoi(string(m[2])) // (<= Y_label Y_j)
			}
			v, err := ParseVNNLIBBytes(src, 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(v.Cases) != 9 || len(v.Groups()) != 1 {
				t.Errorf("%s: %d cases, %d groups", f, len(v.Cases), len(v.Groups()))
				continue
			}
			r := 0
			for j := 0; j < 10; j++ {
				if j == label {
					continue
				}
				if want := e(10, label, j); !rowsEqual(v.Cases[r].Out, []Row{want}) {
					t.Errorf("%s case %d: %v, want %v", filepath.Base(f), r, v.Cases[r].Out, want)
				}
				r++
			}
		}
	}
	v, err := ParseVNNLIBFile(sharedtest.Path(t, "vnncomp", "mnist_fc", "vnnlib", "prop_0_0.03.vnnlib"), 784, 10)
	if err != nil {
		t.Fatal(err)
	}
	if c := v.Cases[0]; c.Lo[783] != 0 || c.Hi[783] != 0.029999999329447746 {
		t.Errorf("mnist_fc prop_0 X_783: [%v, %v]", c.Lo[783], c.Hi[783])
	}
	v, err = ParseVNNLIBFile(sharedtest.Path(t, "vnncomp", "oval21", "vnnlib", "cifar_base_kw-img590-eps0.03228758169934641.vnnlib"), 3072, 10)
	if err != nil {
		t.Fatal(err)
	}
	if c := v.Cases[8]; c.Lo[3071] != 1.5553232431411743 || c.Hi[3071] != 1.842324137687683 {
		t.Errorf("oval21 img590 X_3071: [%v, %v]", c.Lo[3071], c.Hi[3071])
	}
}

func readCSV(t *testing.T, path string) []map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = -1
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]string
	for _, rec := range recs[1:] {
		m := map[string]string{}
		for i, h := range recs[0] {
			if i < len(rec) {
				m[h] = rec[i]
			}
		}
		out = append(out, m)
	}
	return out
}

// Every witness of a sat instance parses, lies in its instance's input box and
// satisfies the unsafe output constraints as given.
func TestWitnesses(t *testing.T) {
	n := 0
	for _, bench := range []string{"acasxu", "mnist_fc", "oval21", "test"} {
		dir := sharedtest.Path(t, "vnncomp", bench)
		expected := map[string]string{}
		for _, r := range readCSV(t, filepath.Join(dir, "expected.csv")) {
			expected[r["onnx"]+","+r["vnnlib"]] = r["expected"]
		}
		for _, r := range readCSV(t, filepath.Join(dir, "witness.csv")) {
			if got := expected[r["onnx"]+","+r["vnnlib"]]; got != "sat" {
				t.Errorf("%s: witness for an instance whose verdict is %q", r["witness"], got)
			}
			v, err := ParseVNNLIBFile(filepath.Join(dir, r["vnnlib"]), 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(filepath.Join(dir, r["witness"]))
			if err != nil {
				t.Fatal(err)
			}
			x, y, err := ParseCounterexampleBytes(b)
			if err != nil {
				t.Errorf("%s: %v", r["witness"], err)
				continue
			}
			if len(x) != v.NumInputs || len(y) != v.NumOutputs {
				t.Errorf("%s: %d inputs, %d outputs; spec has %d, %d", r["witness"], len(x), len(y), v.NumInputs, v.NumOutputs)
				continue
			}
			if !v.IsCounterexample(x, y, 0) {
				t.Errorf("%s: not a counterexample of %s", r["witness"], r["vnnlib"])
			}
			// The same check through the grouped form.
			found := false
			for _, g := range v.Groups() {
				found = found || (g.Contains(x, 0) && g.Violated(y))
			}
			if !found {
				t.Errorf("%s: no group holds it", r["witness"])
			}
			// Format and re-parse: same values, bit for bit.
			x2, y2, err := ParseCounterexample(strings.NewReader("sat\n" + FormatCounterexample(x, y)))
			if err != nil || !sameBits(x, x2) || !sameBits(y, y2) {
				t.Errorf("%s: format round trip: %v", r["witness"], err)
			}
			n++
		}
	}
	if n != 21 {
		t.Errorf("checked %d witnesses, the README lists 21 sat instances", n)
	}
}

func TestParseHandWritten(t *testing.T) {
	v := parse(t, `; distribution of and over or
(declare-const X_0 Real) (declare-const X_1 Real)
(declare-const Y_0 Real)	(declare-const Y_1 Real)
(assert (<= X_0 1)) (assert (>= X_0 0))
(assert (or (and (<= X_1 1) (>= X_1 0) (<= Y_0 Y_1))
            (and (<= X_1 3) (>= X_1 2))))
(assert (or (>= Y_0 5)
            (and (<= (+ Y_0 (* 2 Y_1)) (- 3)) (< Y_1 1e-1))))
(check-sat)
`, 2, 2)
	type want struct {
		lo, hi []float64
		out    []Row
	}
	rA := Row{C: []float64{1, -1}, D: 0}  // Y_0 <= Y_1
	rB := Row{C: []float64{-1, 0}, D: -5} // Y_0 >= 5
	rC := Row{C: []float64{1, 2}, D: -3}  // Y_0 + 2 Y_1 <= -3
	rD := Row{C: []float64{0, 1}, D: 0.1} // Y_1 < 0.1
	wants := []want{
		{[]float64{0, 0}, []float64{1, 1}, []Row{rA, rB}},
		{[]float64{0, 0}, []float64{1, 1}, []Row{rA, rC, rD}},
		{[]float64{0, 2}, []float64{1, 3}, []Row{rB}},
		{[]float64{0, 2}, []float64{1, 3}, []Row{rC, rD}},
	}
	if len(v.Cases) != len(wants) {
		t.Fatalf("%d cases, want %d", len(v.Cases), len(wants))
	}
	for i, w := range wants {
		c := v.Cases[i]
		if !sameBits(c.Lo, w.lo) || !sameBits(c.Hi, w.hi) || !rowsEqual(c.Out, w.out) {
			t.Errorf("case %d: %+v, want %+v", i, c, w)
		}
	}
	g := v.Groups()
	if len(g) != 2 || len(g[0].Out) != 2 || len(g[1].Out) != 2 || g[1].Lo[1] != 2 {
		t.Errorf("groups: %+v", g)
	}
	// Violated and Contains on hand-picked points of case 1 (Y_0 <= Y_1,
	// Y_0 + 2 Y_1 <= -3, Y_1 <= 0.1).
	c := v.Cases[1]
	for _, tc := range []struct {
		y    []float64
		want bool
	}{
		{[]float64{-4, 0}, true},
		{[]float64{-3.2, 0.1}, true}, // on the boundary of the last two rows
		{[]float64{-3, 0.1}, false},  // -3 + 0.2 > -3
		{[]float64{-4, 0.2}, false},  // Y_1 > 0.1
		{[]float64{-4, math.NaN()}, false},
		{[]float64{-4}, false}, // wrong length
	} {
		if got := c.Violated(tc.y); got != tc.want {
			t.Errorf("Violated(%v) = %v", tc.y, got)
		}
	}
	if !c.Contains([]float64{1, 0}, 0) || c.Contains([]float64{1 + 1e-9, 0}, 0) || !c.Contains([]float64{1 + 1e-9, 0}, 1e-8) {
		t.Error("Contains at the box edge")
	}
	if v.IsCounterexample([]float64{0.5, 2.5}, []float64{6, 0}, 0) != true ||
		v.IsCounterexample([]float64{0.5, 1.5}, []float64{6, 0}, 0) != false {
		t.Error("IsCounterexample")
	}

	// Every term form and comparison operator.
	v = parse(t, `
(declare-fun X_0 () Real) (declare-const X_1 Real) (declare-const X_2 Real) (declare-const X_3 Real)
(declare-const Y_0 Real) (declare-const Y_1 Real)
(assert (= X_0 0.5))
(assert (<= -1 X_1 1.0))
(assert (and (<= (* 2 X_2) 1) (>= (/ X_2 4) -0.25)))
(assert (and (<= (- X_3) 2) (<= (- X_3 1) 0) (<= 0 1) true))
(assert (> Y_0 (- Y_1 Y_0)))
(assert (= Y_1 2.5e1))
(assert (>= (* 0.5 (+ Y_0 Y_0 Y_1 (- Y_1)) 4) +1E-2))
`, 4, 2)
	if len(v.Cases) != 1 {
		t.Fatalf("%d cases", len(v.Cases))
	}
	c = v.Cases[0]
	if !sameBits(c.Lo, []float64{0.5, -1, -1, -2}) || !sameBits(c.Hi, []float64{0.5, 1, 0.5, 1}) {
		t.Errorf("box [%v, %v]", c.Lo, c.Hi)
	}
	wantRows := []Row{
		{C: []float64{-2, 1}, D: 0},     // Y_1 - 2 Y_0 <= 0
		{C: []float64{0, 1}, D: 25},     // Y_1 <= 25
		{C: []float64{0, -1}, D: -25},   // Y_1 >= 25
		{C: []float64{-4, 0}, D: -0.01}, // 0.01 - 4 Y_0 <= 0
	}
	if !rowsEqual(c.Out, wantRows) {
		t.Errorf("rows %v, want %v", c.Out, wantRows)
	}

	// A disjunct with only input bounds is unsafe for every output; a disjunct with a
	// false constant drops out.
	v = parse(t, `(declare-const X_0 Real) (declare-const Y_0 Real)
(assert (or (and (>= X_0 0) (<= X_0 1)) (and (>= X_0 2) (<= X_0 3) (<= 1 0) (<= Y_0 0))))`, 1, 1)
	if len(v.Cases) != 1 || len(v.Cases[0].Out) != 0 || !v.Cases[0].Violated([]float64{123}) || v.Cases[0].Hi[0] != 1 {
		t.Errorf("input-only disjunct: %+v", v.Cases)
	}
}

func TestParseVNNLIBErrors(t *testing.T) {
	const decl = "(declare-const X_0 Real)\n(declare-const X_1 Real)\n(declare-const Y_0 Real)\n"
	const box = "(assert (>= X_0 0))\n(assert (<= X_0 1))\n(assert (>= X_1 0))\n(assert (<= X_1 1))\n"
	prop6, err := os.ReadFile(sharedtest.Path(t, "vnncomp", "acasxu", "vnnlib", "prop_6.vnnlib"))
	if err != nil {
		t.Fatal(err)
	}
	testProp, err := os.ReadFile(sharedtest.Path(t, "vnncomp", "test", "vnnlib", "test_prop.vnnlib"))
	if err != nil {
		t.Fatal(err)
	}
	replace := func(src []byte, old, new string) string {
		if !bytes.Contains(src, []byte(old)) {
			t.Fatalf("%q not in file", old)
		}
		return strings.Replace(string(src), old, new, 1)
	}
	manyOr := decl + box
	for i := 0; i < 17; i++ {
		manyOr += "(assert (or (<= Y_0 1) (>= Y_0 2)))\n"
	}
	for _, tc := range []struct {
		name      string
		src       string
		nIn, nOut int
		want      error
		msg       string
	}{
		{"empty", "", 0, 0, ErrDeclaration, "no X_i variables declared"},
		{"unclosed", decl + box + "(assert (<= Y_0 1)\n", 0, 0, ErrSyntax, "line 8: syntax error: '(' opened here is never closed"},
		{"extra paren", decl + box + "(assert (<= Y_0 1)))\n", 0, 0, ErrSyntax, "line 8: syntax error: unbalanced ')'"},
		{"truncated file", string(prop6[:bytes.Index(prop6, []byte("(>= X_1 0.1114"))]), 0, 0, ErrSyntax, "line 28: syntax error: '(' opened here is never closed"},
		{"unknown formula op", decl + box + "(assert (xor (<= Y_0 1) (>= Y_0 2)))", 0, 0, ErrUnknownOperator, `line 8: unknown operator: "xor"`},
		{"not", decl + box + "(assert (not (<= Y_0 1)))", 0, 0, ErrUnknownOperator, `"not"`},
		{"unknown term op", decl + box + "(assert (<= (max Y_0 1) 0))", 0, 0, ErrUnknownOperator, `line 8: unknown operator: "max"`},
		{"unknown command", decl + box + "(define-fun f () Real 1)", 0, 0, ErrUnknownOperator, `command "define-fun"`},
		{"undeclared", decl + box + "(assert (<= Y_1 0))", 0, 0, ErrUndeclared, `line 8: undeclared variable: "Y_1"`},
		{"use before declaration", "(declare-const X_0 Real)\n(assert (<= Y_0 0))\n(declare-const Y_0 Real)", 0, 0, ErrUndeclared, "line 2"},
		{"unknown symbol", decl + box + "(assert (<= Y_0 pi))", 0, 0, ErrUndeclared, `"pi"`},
		{"product of variables", decl + box + "(assert (<= (* Y_0 Y_0) 1))", 0, 0, ErrNonLinear, "line 8"},
		{"division by variable", decl + box + "(assert (<= (/ 1 Y_0) 1))", 0, 0, ErrNonLinear, "line 8"},
		{"division by zero", decl + box + "(assert (<= (/ Y_0 0) 1))", 0, 0, ErrNonLinear, "line 8"},
		{"mixed", decl + box + "(assert (<= X_0 Y_0))", 0, 0, ErrNotBox, "line 8: constraint is not an input bound or an output constraint: it mixes inputs and outputs"},
		{"two inputs", decl + box + "(assert (<= (+ X_0 X_1) 1))", 0, 0, ErrNotBox, "ties 2 inputs"},
		{"no upper bound", decl + "(assert (>= X_0 0))\n(assert (<= X_0 1))\n(assert (>= X_1 0))\n(assert (<= Y_0 0))", 0, 0, ErrUnbounded, "X_1 has no upper bound"},
		{"no bounds", decl + "(assert (>= X_0 0))\n(assert (<= X_0 1))\n(assert (<= Y_0 0))", 0, 0, ErrUnbounded, "X_1 has no lower and no upper bound"},
		{"unbounded in one case", decl + "(assert (>= X_0 0))\n(assert (<= X_0 1))\n(assert (or (and (>= X_1 0) (<= X_1 1)) (>= X_1 2)))\n(assert (<= Y_0 0))", 0, 0, ErrUnbounded, "X_1 has no upper bound in case 1 of 2"},
		{"empty box", decl + box + "(assert (>= X_1 2))\n(assert (<= Y_0 0))", 0, 0, ErrEmptyBox, "line 8: empty input box: X_1 has lower bound 2 (line 8) above its upper bound 1 (line 7)"},
		{"nIn mismatch", string(prop6), 6, 5, ErrDeclaration, "5 X variables declared, the network has 6"},
		{"nOut mismatch", string(prop6), 5, 4, ErrDeclaration, "5 Y variables declared, the network has 4"},
		{"gap", "(declare-const X_0 Real)(declare-const X_2 Real)(declare-const Y_0 Real)", 0, 0, ErrDeclaration, "X_2 is declared but X_1 is not"},
		{"duplicate", "(declare-const X_0 Real)\n(declare-const X_0 Real)", 0, 0, ErrDeclaration, "line 2: bad declaration: X_0 declared twice"},
		{"bad sort", "(declare-const X_0 Int)", 0, 0, ErrDeclaration, "sort Int"},
		{"bad name", "(declare-const Z_0 Real)", 0, 0, ErrDeclaration, "not named X_i or Y_j"},
		{"leading zero", "(declare-const X_01 Real)", 0, 0, ErrDeclaration, "not named"},
		{"bad declare", "(declare-const X_0)", 0, 0, ErrSyntax, "want (declare-const NAME Real)"},
		{"bad number", decl + box + "(assert (<= Y_0 1.2.3))", 0, 0, ErrSyntax, `line 8: syntax error: bad number "1.2.3"`},
		{"hex number", decl + box + "(assert (<= Y_0 0x10))", 0, 0, ErrSyntax, `bad number "0x10"`},
		{"huge number", decl + box + "(assert (<= Y_0 1e999))", 0, 0, ErrSyntax, "out of float64 range"},
		{"overflow", decl + box + "(assert (<= (* 1e300 1e300 Y_0) 1))", 0, 0, ErrSyntax, "overflows"},
		{"too many cases", manyOr, 0, 0, ErrTooManyCases, "more than 65536 cases"},
		{"no cases", decl + box + "(assert (<= 1 0))", 0, 0, ErrNoCases, "empty as written"},
		{"quoted symbol", "(declare-const |X_0| Real)", 0, 0, ErrSyntax, "quoted symbols"},
		{"assert arity", decl + box + "(assert (<= Y_0 1) (<= Y_0 2))", 0, 0, ErrSyntax, "assert takes one formula"},
		{"comparison arity", decl + box + "(assert (<= Y_0))", 0, 0, ErrSyntax, "at least 2 operands"},
		{"bare atom", decl + box + "X_0", 0, 0, ErrSyntax, "top level"},
		{"deep nesting", decl + "(assert " + strings.Repeat("(and ", 300) + strings.Repeat(")", 301), 0, 0, ErrSyntax, "nesting deeper than 256"},
		// Single-byte corruptions of a real file.
		{"flipped operator", replace(testProp, "(<= X_0", "(<! X_0"), 0, 0, ErrUnknownOperator, `line 17: unknown operator: "<!"`},
		{"flipped sort", replace(testProp, "X_3 Real", "X_3 Reak"), 0, 0, ErrDeclaration, "line 6"},
		{"flipped digit", replace(testProp, "-0.29855281193475053", "-0.2985528119347505S"), 0, 0, ErrSyntax, "line 17: syntax error: bad number"},
		{"flipped paren", replace(testProp, "(assert (<= Y_0 Y_4))", "(assert (<= Y_0 Y_4)("), 0, 0, ErrSyntax, "never closed"},
		{"flipped name", replace(testProp, "(<= Y_0 Y_4)", "(<= Y_0 Y_5)"), 0, 0, ErrUndeclared, `"Y_5"`},
	} {
		_, err := ParseVNNLIBBytes([]byte(tc.src), tc.nIn, tc.nOut)
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: got %v\nwant %v containing %q", tc.name, err, tc.want, tc.msg)
		}
	}
	if _, err := ParseVNNLIBFile(filepath.Join(t.TempDir(), "none.vnnlib"), 0, 0); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

// Every single-bit corruption of a small real file either parses or fails with one of
// the package's errors; none panics.
func TestParseVNNLIBBitFlips(t *testing.T) {
	src, err := os.ReadFile(sharedtest.Path(t, "vnncomp", "test", "vnnlib", "test_prop.vnnlib"))
	if err != nil {
		t.Fatal(err)
	}
	known := []error{ErrSyntax, ErrUnknownOperator, ErrUndeclared, ErrDeclaration, ErrNonLinear,
		ErrNotBox, ErrUnbounded, ErrEmptyBox, ErrTooManyCases, ErrNoCases}
	failed := 0
	for i := range src {
		for bit := 0; bit < 8; bit++ {
			b := append([]byte(nil), src...)
			b[i] ^= 1 << bit
			_, err := ParseVNNLIBBytes(b, 5, 5)
			if err == nil {
				continue
			}
			failed++
			ok := false
			for _, k := range known {
				ok = ok || errors.Is(err, k)
			}
			if !ok {
				t.Fatalf("flip byte %d bit %d: unclassified error %v", i, bit, err)
			}
		}
	}
	t.Logf("%d of %d single-bit flips rejected", failed, 8*len(src))
}

func TestFormatCounterexample(t *testing.T) {
	got := FormatCounterexample([]float64{0.1, -2}, []float64{1e-7})
	want := "((X_0 0.1)\n (X_1 -2)\n (Y_0 1e-07))\n"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	x := make([]float64, 50)
	y := make([]float64, 7)
	for i := range x {
		x[i] = rng.NormFloat64() * math.Pow(10, float64(rng.IntN(40)-20))
	}
	for i := range y {
		y[i] = rng.Float64() - 0.5
	}
	x[3], y[2] = math.SmallestNonzeroFloat64, -math.MaxFloat64
	x2, y2, err := ParseCounterexample(strings.NewReader(FormatCounterexample(x, y)))
	if err != nil || !sameBits(x, x2) || !sameBits(y, y2) {
		t.Errorf("round trip: %v", err)
	}
}

func TestParseCounterexample(t *testing.T) {
	x, y, err := ParseCounterexample(strings.NewReader("sat\n; comment\n((Y_0 3)\t(X_1 (- 0.5)) (X_0 -5.2e-05) (Y_1 +2.))"))
	if err != nil || !sameBits(x, []float64{-5.2e-05, -0.5}) || !sameBits(y, []float64{3, 2}) {
		t.Errorf("got %v %v %v", x, y, err)
	}
	if _, _, err := ParseCounterexample(strings.NewReader("violated\n((X_0 1))")); err != nil {
		t.Errorf("2021 result word: %v", err)
	}
	for _, tc := range []struct{ src, msg string }{
		{"", "want one list"},
		{"unsat", "want one list"},
		{"((X_0 1) (X_0 2))", "X_0 given twice"},
		{"((X_0 1) (X_2 2))", "X_1 is missing"},
		{"((X_0 1) (Y_1 2))", "Y_0 is missing"},
		{"((Y_0 1))", "no X_i values"},
		{"((Z_0 1))", "not X_i or Y_j"},
		{"((X_0 Y_0))", "undeclared"},
		{"((X_0 1 2))", "want (NAME value)"},
		{"((X_0 1)", "never closed"},
		{"((X_0 abc))", "undeclared"},
		{"((X_0 1e999))", "out of float64 range"},
		{"((X_0 1)) ((X_1 2))", "want one list"},
	} {
		_, _, err := ParseCounterexample(strings.NewReader(tc.src))
		if err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%q: got %v, want %q", tc.src, err, tc.msg)
		}
	}
}
