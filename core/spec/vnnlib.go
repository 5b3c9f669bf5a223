package spec

import (
	"bytes"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
)

// Errors wrapped by the VNNLIB and counterexample parsers, for errors.Is.
var (
	// ErrSyntax: unbalanced parentheses, a malformed form or numeral.
	ErrSyntax = errors.New("syntax error")
	// ErrUnknownOperator: an operator or command the parser does not know or support.
	ErrUnknownOperator = errors.New("unknown operator")
	// ErrUndeclared: a symbol used before (or without) its declare-const.
	ErrUndeclared = errors.New("undeclared variable")
	// ErrDeclaration: a bad, duplicate or missing declaration, or declared counts that
	// differ from the network's.
	ErrDeclaration = errors.New("bad declaration")
	// ErrNonLinear: a product of two variables, or a division by a variable or zero.
	ErrNonLinear = errors.New("non-linear term")
	// ErrNotBox: a linear constraint that is neither a bound on one input nor a
	// constraint on outputs only (it mixes X and Y, or ties inputs together).
	ErrNotBox = errors.New("constraint is not an input bound or an output constraint")
	// ErrUnbounded: an input variable lacks a lower or an upper bound in some case.
	ErrUnbounded = errors.New("unbounded input")
	// ErrEmptyBox: an input's lower bound exceeds its upper bound.
	ErrEmptyBox = errors.New("empty input box")
	// ErrTooManyCases: distributing and/or into a disjunction of cases exceeds the caps.
	ErrTooManyCases = errors.New("too many cases")
	// ErrNoCases: the unsafe set is empty as written (every case contains a false
	// constant constraint); refused rather than reported as trivially safe.
	ErrNoCases = errors.New("no cases")
)

// Caps on the normal form, so a small hostile file cannot ask for unbounded memory.
const (
	// MaxCases is the most cases (disjuncts after distribution) a specification may
	// have.
	MaxCases = 1 << 16
	// maxAtoms caps the constraints summed over the conjunctions that distributing
	// and over or creates (constraints written once in the file are not capped: they
	// cost input bytes).
	maxAtoms = 1 << 20
	// maxRows caps the output rows summed over all cases.
	maxRows = 1 << 20
	// maxFloats caps the float64s allocated for the cases' own input boxes, and for
	// their own rows' coefficients.
	maxFloats = 1 << 22
	// maxIndex caps a declared variable's index.
	maxIndex = 1 << 24
)

// Row is one linear output constraint Σ_j C[j]·Y_j ≤ D.
type Row struct {
	C []float64 // one coefficient per output
	D float64
}

// Case is one disjunct of the unsafe set: the inputs in the box [Lo, Hi] whose outputs
// satisfy every row of Out. An empty Out means every output is unsafe.
type Case struct {
	Lo, Hi []float64
	Out    []Row
}

// VNNLIB is a parsed VNNLIB specification in normal form: the unsafe set is the union
// of Cases. A verifier proves the property (unsat) by showing every case infeasible and
// refutes it (sat) with an input in some case's box whose output meets all its rows.
//
// Cases that share an input box may share the Lo and Hi slices; treat them as
// read-only.
type VNNLIB struct {
	NumInputs, NumOutputs int
	Cases                 []Case
}

// Group is a set of cases with the same input box: unsafe are the inputs in [Lo, Hi]
// whose output satisfies every row of at least one Out[k]. One bound computation over
// the box serves every disjunct.
type Group struct {
	Lo, Hi []float64
	Out    [][]Row
}

// Violated reports whether y satisfies every row of the case, compared exactly (no
// tolerance), i.e. whether y is an unsafe output. It is false when len(y) differs from
// the rows' length or y holds NaN.
func (c Case) Violated(y []float64) bool { return allRows(c.Out, y) }

func allRows(rows []Row, y []float64) bool {
	for _, r := range rows {
		if len(r.C) != len(y) {
			return false
		}
		s := 0.0
		for j, c := range r.C {
			if c != 0 {
				s += c * y[j]
			}
		}
		if !(s <= r.D) {
			return false
		}
	}
	return true
}

// Contains reports whether Lo−tol ≤ x ≤ Hi+tol elementwise (false on a length mismatch
// or NaN).
func (c Case) Contains(x []float64, tol float64) bool { return inBox(c.Lo, c.Hi, x, tol) }

func inBox(lo, hi, x []float64, tol float64) bool {
	if len(x) != len(lo) {
		return false
	}
	for i, v := range x {
		if !(v >= lo[i]-tol && v <= hi[i]+tol) {
			return false
		}
	}
	return true
}

// Violated reports whether y satisfies all rows of at least one disjunct.
func (g Group) Violated(y []float64) bool {
	for _, rows := range g.Out {
		if allRows(rows, y) {
			return true
		}
	}
	return false
}

// Contains is Case.Contains for the group's box.
func (g Group) Contains(x []float64, tol float64) bool { return inBox(g.Lo, g.Hi, x, tol) }

// IsCounterexample reports whether (x, y) lies in the unsafe set: some case's box holds
// x (within tol) and y satisfies all of that case's rows exactly. It checks the claim
// as stated; that y = f(x) is for the caller to establish.
func (v *VNNLIB) IsCounterexample(x, y []float64, tol float64) bool {
	for _, c := range v.Cases {
		if c.Contains(x, tol) && c.Violated(y) {
			return true
		}
	}
	return false
}

// Groups merges the cases that have identical input boxes (bit for bit), in order of
// first appearance, keeping each case's rows as one disjunct.
func (v *VNNLIB) Groups() []Group {
	seed := maphash.MakeSeed()
	index := map[uint64][]int{}
	var groups []Group
next:
	for _, c := range v.Cases {
		var h maphash.Hash
		h.SetSeed(seed)
		var b [8]byte
		for i := range c.Lo {
			putBits(&b, c.Lo[i])
			h.Write(b[:])
			putBits(&b, c.Hi[i])
			h.Write(b[:])
		}
		k := h.Sum64()
		for _, gi := range index[k] {
			g := &groups[gi]
			if sameBits(g.Lo, c.Lo) && sameBits(g.Hi, c.Hi) {
				g.Out = append(g.Out, c.Out)
				continue next
			}
		}
		index[k] = append(index[k], len(groups))
		groups = append(groups, Group{Lo: c.Lo, Hi: c.Hi, Out: [][]Row{c.Out}})
	}
	return groups
}

func putBits(b *[8]byte, f float64) {
	u := math.Float64bits(f)
	for i := range b {
		b[i] = byte(u >> (8 * i))
	}
}

func sameBits(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	if len(a) > 0 && &a[0] == &b[0] {
		return true
	}
	for i := range a {
		if math.Float64bits(a[i]) != math.Float64bits(b[i]) {
			return false
		}
	}
	return true
}

// ParseVNNLIB reads a VNNLIB specification and normalises it (see VNNLIB). nIn and
// nOut are the network's input and output sizes; the declared X_i and Y_j must number
// exactly that many (pass 0 to take the counts from the declarations).
//
// Accepted, per the VNN-COMP subset of SMT-LIB: `;` comments; (declare-const X_i Real)
// and (declare-const Y_j Real) (also the equivalent (declare-fun X_i () Real)), indices
// contiguous from 0; (assert F) where F nests (and F...), (or F...), true, false and the
// comparisons <=, >=, <, >, = over linear terms; a term is a numeral (decimal, integer
// or exponent notation), a declared variable, (+ t...), (- t...), (* c... t) with at most
// one non-constant factor, or (/ t c...) with non-zero constant divisors. The commands
// check-sat, get-model, exit, set-logic, set-info and set-option are ignored.
//
// Semantics: the conjunction of all asserts describes the unsafe set. It is distributed
// into a disjunction of cases (the first assert's disjuncts vary slowest). Every
// comparison must be a bound on a single input (c·X_i + k ≤ 0 with c ≠ 0) or a
// constraint on outputs only (giving a Row); strict comparisons are read as non-strict,
// i.e. the unsafe set is replaced by its closure. That is the convention of VNN-COMP's
// tools: it can only add boundary points to the unsafe set, so a proof of unsat stays
// sound, and a counterexample that meets a row with equality must be re-checked by the
// caller if strictness matters. Constant comparisons evaluate to true or false.
//
// Every input must have a finite lower and upper bound in every case (ErrUnbounded),
// with lower ≤ upper (ErrEmptyBox). Errors carry the line number where one applies.
func ParseVNNLIB(r io.Reader, nIn, nOut int) (*VNNLIB, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("vnnlib: %w", err)
	}
	return ParseVNNLIBBytes(b, nIn, nOut)
}

// ParseVNNLIBFile is ParseVNNLIB on the file at path; errors name the path.
func ParseVNNLIBFile(path string, nIn, nOut int) (*VNNLIB, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	v, err := ParseVNNLIBBytes(b, nIn, nOut)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

// ParseVNNLIBBytes is ParseVNNLIB on a specification held in memory.
func ParseVNNLIBBytes(src []byte, nIn, nOut int) (*VNNLIB, error) {
	if nIn < 0 || nOut < 0 {
		return nil, fmt.Errorf("vnnlib: %w: nIn %d, nOut %d", ErrArg, nIn, nOut)
	}
	forms, err := parseSexps(src)
	if err != nil {
		return nil, err
	}
	p := &vparser{}
	var common []atom     // from asserts that are a single conjunction
	var disjunctive []dnf // from asserts with several disjuncts
	for _, f := range forms {
		op, ok := f.head()
		if !ok {
			return nil, fmt.Errorf("vnnlib: line %d: %w: top level must be commands like (assert ...), got %s", f.line, ErrSyntax, f)
		}
		switch op {
		case "declare-const", "declare-fun":
			if err := p.declare(f, op); err != nil {
				return nil, err
			}
		case "assert":
			if len(f.list) != 2 {
				return nil, fmt.Errorf("vnnlib: line %d: %w: assert takes one formula, got %d", f.line, ErrSyntax, len(f.list)-1)
			}
			d, err := p.formula(f.list[1])
			if err != nil {
				return nil, err
			}
			if len(d) == 1 {
				common = append(common, d[0]...)
			} else {
				disjunctive = append(disjunctive, d)
			}
		case "check-sat", "get-model", "exit", "set-logic", "set-info", "set-option":
		default:
			return nil, fmt.Errorf("vnnlib: line %d: %w: command %q", f.line, ErrUnknownOperator, op)
		}
	}
	nx, err := p.count(p.xDecl, "X", nIn)
	if err != nil {
		return nil, err
	}
	ny, err := p.count(p.yDecl, "Y", nOut)
	if err != nil {
		return nil, err
	}
	conj := dnf{nil}
	for _, d := range disjunctive {
		if conj, err = product(conj, d); err != nil {
			return nil, err
		}
	}
	if len(conj) == 0 {
		return nil, fmt.Errorf("vnnlib: %w: every case contains a constraint that is false, so the unsafe set is empty as written", ErrNoCases)
	}
	return build(nx, ny, common, conj)
}

// build turns the distributed conjunctions into cases.
func build(nx, ny int, common []atom, conj dnf) (*VNNLIB, error) {
	v := &VNNLIB{NumInputs: nx, NumOutputs: ny}
	baseLo, baseHi := make([]float64, nx), make([]float64, nx)
	for i := range baseLo {
		baseLo[i], baseHi[i] = math.Inf(-1), math.Inf(1)
	}
	var baseRows []Row
	apply := func(lo, hi []float64, rows []Row, atoms []atom) []Row {
		for _, a := range atoms {
			if a.bound {
				if a.upper {
					hi[a.idx] = math.Min(hi[a.idx], a.val)
				} else {
					lo[a.idx] = math.Max(lo[a.idx], a.val)
				}
			} else {
				c := make([]float64, ny)
				for _, t := range a.terms {
					c[t.idx] = t.c
				}
				rows = append(rows, Row{C: c, D: a.d})
			}
		}
		return rows
	}
	baseRows = apply(baseLo, baseHi, baseRows, common)
	own, rows, floats := 0, 0, 0
	for _, c := range conj {
		if hasBound(c) {
			own++
		}
		rows += len(baseRows)
		for _, a := range c {
			if !a.bound {
				rows++
				floats += ny
			}
		}
	}
	switch {
	case own > 0 && own*nx > maxFloats:
		return nil, fmt.Errorf("vnnlib: %w: %d cases with their own box of %d inputs", ErrTooManyCases, own, nx)
	case rows > maxRows || floats > maxFloats:
		return nil, fmt.Errorf("vnnlib: %w: %d output rows over the cases", ErrTooManyCases, rows)
	}
	baseChecked := false
	for ci, c := range conj {
		lo, hi := baseLo, baseHi
		if hasBound(c) {
			lo, hi = append([]float64(nil), baseLo...), append([]float64(nil), baseHi...)
		}
		rows := apply(lo, hi, append([]Row(nil), baseRows...), c)
		if shared := !hasBound(c); !shared || !baseChecked {
			baseChecked = baseChecked || shared
			if err := checkBox(lo, hi, ci, len(conj), common, c); err != nil {
				return nil, err
			}
		}
		v.Cases = append(v.Cases, Case{Lo: lo, Hi: hi, Out: rows})
	}
	return v, nil
}

func hasBound(c []atom) bool {
	for _, a := range c {
		if a.bound {
			return true
		}
	}
	return false
}

// checkBox reports the first input without both bounds, or with lower > upper (naming
// the lines of the two bounds).
func checkBox(lo, hi []float64, ci, n int, common, own []atom) error {
	where := ""
	if n > 1 {
		where = fmt.Sprintf(" in case %d of %d", ci, n)
	}
	for i := range lo {
		switch {
		case math.IsInf(lo[i], -1) && math.IsInf(hi[i], 1):
			return fmt.Errorf("vnnlib: %w: X_%d has no lower and no upper bound%s", ErrUnbounded, i, where)
		case math.IsInf(lo[i], -1):
			return fmt.Errorf("vnnlib: %w: X_%d has no lower bound%s", ErrUnbounded, i, where)
		case math.IsInf(hi[i], 1):
			return fmt.Errorf("vnnlib: %w: X_%d has no upper bound%s", ErrUnbounded, i, where)
		case lo[i] > hi[i]:
			loLine, hiLine := 0, 0
			for _, list := range [][]atom{common, own} {
				for _, a := range list {
					if a.bound && a.idx == i {
						if a.upper && a.val == hi[i] && hiLine == 0 {
							hiLine = a.line
						}
						if !a.upper && a.val == lo[i] && loLine == 0 {
							loLine = a.line
						}
					}
				}
			}
			return fmt.Errorf("vnnlib: line %d: %w: X_%d has lower bound %v (line %d) above its upper bound %v (line %d)%s",
				max(loLine, hiLine), ErrEmptyBox, i, lo[i], loLine, hi[i], hiLine, where)
		}
	}
	return nil
}

// term is one coefficient of a linear expression.
type term struct {
	out bool // Y (true) or X (false)
	idx int
	c   float64
}

// lin is Σ terms + k.
type lin struct {
	terms []term
	k     float64
}

// atom is one normalised comparison: a bound on one input, or an output row.
type atom struct {
	line  int
	bound bool
	// bound: X_idx ≤ val (upper) or X_idx ≥ val.
	idx   int
	upper bool
	val   float64
	// row: Σ terms (all outputs) ≤ d.
	terms []term
	d     float64
}

// dnf is a disjunction of conjunctions; nil (no disjunct) is false and dnf{nil} (one
// empty conjunction) is true.
type dnf [][]atom

// product distributes a conjunction of two DNFs. The result owns fresh slices.
func product(a, b dnf) (dnf, error) {
	if len(a) != 0 && len(b) > MaxCases/len(a) {
		return nil, fmt.Errorf("vnnlib: %w: distributing and over or gives more than %d cases", ErrTooManyCases, MaxCases)
	}
	total := 0
	for _, x := range a {
		for _, y := range b {
			total += len(x) + len(y)
			if total > maxAtoms {
				return nil, fmt.Errorf("vnnlib: %w: distributing and over or gives more than %d constraints", ErrTooManyCases, maxAtoms)
			}
		}
	}
	out := make(dnf, 0, len(a)*len(b))
	for _, x := range a {
		for _, y := range b {
			c := make([]atom, 0, len(x)+len(y))
			out = append(out, append(append(c, x...), y...))
		}
	}
	return out, nil
}

type vparser struct {
	xDecl, yDecl []bool
}

func (p *vparser) declare(f *sexp, op string) error {
	var name, typ *sexp
	switch {
	case op == "declare-const" && len(f.list) == 3:
		name, typ = f.list[1], f.list[2]
	case op == "declare-fun" && len(f.list) == 4 && f.list[2].isList && len(f.list[2].list) == 0:
		name, typ = f.list[1], f.list[3]
	default:
		return fmt.Errorf("vnnlib: line %d: %w: want (declare-const NAME Real), got %s", f.line, ErrSyntax, f)
	}
	if typ.isList || typ.atom != "Real" {
		return fmt.Errorf("vnnlib: line %d: %w: %s has sort %s, want Real", f.line, ErrDeclaration, name, typ)
	}
	out, idx, ok := varName(name)
	if !ok {
		return fmt.Errorf("vnnlib: line %d: %w: variable %s is not named X_i or Y_j", f.line, ErrDeclaration, name)
	}
	if idx >= maxIndex {
		return fmt.Errorf("vnnlib: line %d: %w: index of %s is too large", f.line, ErrDeclaration, name)
	}
	decl := &p.xDecl
	if out {
		decl = &p.yDecl
	}
	for len(*decl) <= idx {
		*decl = append(*decl, false)
	}
	if (*decl)[idx] {
		return fmt.Errorf("vnnlib: line %d: %w: %s declared twice", f.line, ErrDeclaration, name.atom)
	}
	(*decl)[idx] = true
	return nil
}

// count checks that the declared indices are 0..n-1 and n matches want (if want > 0).
func (p *vparser) count(decl []bool, prefix string, want int) (int, error) {
	for i, d := range decl {
		if !d {
			return 0, fmt.Errorf("vnnlib: %w: %s_%d is declared but %s_%d is not", ErrDeclaration, prefix, len(decl)-1, prefix, i)
		}
	}
	if len(decl) == 0 {
		return 0, fmt.Errorf("vnnlib: %w: no %s_i variables declared", ErrDeclaration, prefix)
	}
	if want > 0 && len(decl) != want {
		return 0, fmt.Errorf("vnnlib: %w: %d %s variables declared, the network has %d", ErrDeclaration, len(decl), prefix, want)
	}
	return len(decl), nil
}

// varName parses X_i or Y_j with a canonical decimal index.
func varName(s *sexp) (out bool, idx int, ok bool) {
	if s.isList || len(s.atom) < 3 || s.atom[1] != '_' || (s.atom[0] != 'X' && s.atom[0] != 'Y') {
		return false, 0, false
	}
	digits := s.atom[2:]
	if len(digits) > 9 || (len(digits) > 1 && digits[0] == '0') {
		return false, 0, false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return false, 0, false
		}
	}
	n, _ := strconv.Atoi(digits)
	return s.atom[0] == 'Y', n, true
}

// formula converts a boolean formula to DNF.
func (p *vparser) formula(s *sexp) (dnf, error) {
	if !s.isList {
		switch s.atom {
		case "true":
			return dnf{nil}, nil
		case "false":
			return nil, nil
		}
		return nil, fmt.Errorf("vnnlib: line %d: %w: want a formula, got %q", s.line, ErrSyntax, s.atom)
	}
	op, ok := s.head()
	if !ok {
		return nil, fmt.Errorf("vnnlib: line %d: %w: want (operator ...), got %s", s.line, ErrSyntax, s)
	}
	args := s.list[1:]
	switch op {
	case "and":
		out := dnf{nil}
		for _, a := range args {
			d, err := p.formula(a)
			if err != nil {
				return nil, err
			}
			if len(d) == 1 && len(out) > 0 {
				// The common case, a plain conjunction: extend each disjunct in place
				// (out's slices are its own) instead of copying them per operand.
				atoms := 0
				for _, c := range out {
					atoms += len(c) + len(d[0])
				}
				if atoms > maxAtoms {
					return nil, fmt.Errorf("vnnlib: line %d: %w: more than %d constraints", s.line, ErrTooManyCases, maxAtoms)
				}
				for i := range out {
					out[i] = append(out[i], d[0]...)
				}
				continue
			}
			if out, err = product(out, d); err != nil {
				return nil, fmt.Errorf("%w (line %d)", err, s.line)
			}
		}
		return out, nil
	case "or":
		var out dnf
		atoms := 0
		for _, a := range args {
			d, err := p.formula(a)
			if err != nil {
				return nil, err
			}
			for _, c := range d {
				atoms += len(c)
			}
			if len(out)+len(d) > MaxCases || atoms > maxAtoms {
				return nil, fmt.Errorf("vnnlib: line %d: %w: more than %d cases", s.line, ErrTooManyCases, MaxCases)
			}
			out = append(out, d...)
		}
		return out, nil
	case "<=", ">=", "<", ">", "=":
		if len(args) < 2 {
			return nil, fmt.Errorf("vnnlib: line %d: %w: %s needs at least 2 operands", s.line, ErrSyntax, op)
		}
		terms := make([]lin, len(args))
		for i, a := range args {
			var err error
			if terms[i], err = p.term(a); err != nil {
				return nil, err
			}
		}
		var conj []atom
		for i := 0; i+1 < len(terms); i++ {
			a, b := terms[i], terms[i+1]
			var les []lin // each means expression ≤ 0
			switch op {
			case "<=", "<":
				les = []lin{sub(a, b)}
			case ">=", ">":
				les = []lin{sub(b, a)}
			case "=":
				les = []lin{sub(a, b), sub(b, a)}
			}
			for _, l := range les {
				at, truth, err := normalise(l, s.line)
				if err != nil {
					return nil, err
				}
				switch truth {
				case -1:
					return nil, nil // false: this conjunction has no disjunct
				case 0:
					conj = append(conj, at)
				}
			}
		}
		return dnf{conj}, nil
	}
	return nil, fmt.Errorf("vnnlib: line %d: %w: %q in a formula (supported: and or <= >= < > = true false)", s.line, ErrUnknownOperator, op)
}

// normalise turns l ≤ 0 into an atom; truth is +1 (constant true), -1 (constant false)
// or 0 (an atom).
func normalise(l lin, line int) (atom, int, error) {
	var nx, ny int
	for _, t := range l.terms {
		if t.out {
			ny++
		} else {
			nx++
		}
	}
	switch {
	case nx == 0 && ny == 0:
		if l.k <= 0 {
			return atom{}, 1, nil
		}
		return atom{}, -1, nil
	case nx > 0 && ny > 0:
		return atom{}, 0, fmt.Errorf("vnnlib: line %d: %w: it mixes inputs and outputs", line, ErrNotBox)
	case nx > 1:
		return atom{}, 0, fmt.Errorf("vnnlib: line %d: %w: it ties %d inputs together", line, ErrNotBox, nx)
	case nx == 1:
		t := l.terms[0]
		val := -l.k / t.c
		if math.IsInf(val, 0) || math.IsNaN(val) {
			return atom{}, 0, fmt.Errorf("vnnlib: line %d: %w: bound on X_%d is not finite", line, ErrSyntax, t.idx)
		}
		if val == 0 {
			val = 0 // no -0 bounds
		}
		return atom{line: line, bound: true, idx: t.idx, upper: t.c > 0, val: val}, 0, nil
	}
	d := -l.k
	if d == 0 {
		d = 0
	}
	return atom{line: line, terms: l.terms, d: d}, 0, nil
}

// sub returns a − b in canonical form.
func sub(a, b lin) lin {
	t := make([]term, 0, len(a.terms)+len(b.terms))
	t = append(t, a.terms...)
	for _, x := range b.terms {
		t = append(t, term{x.out, x.idx, -x.c})
	}
	return canon(lin{terms: t, k: a.k - b.k})
}

// canon sorts terms by variable, merges duplicates and drops zero coefficients.
func canon(l lin) lin {
	sort.SliceStable(l.terms, func(i, j int) bool {
		a, b := l.terms[i], l.terms[j]
		if a.out != b.out {
			return !a.out
		}
		return a.idx < b.idx
	})
	out := l.terms[:0]
	for _, t := range l.terms {
		if n := len(out); n > 0 && out[n-1].out == t.out && out[n-1].idx == t.idx {
			out[n-1].c += t.c
			continue
		}
		out = append(out, t)
	}
	kept := out[:0]
	for _, t := range out {
		if t.c != 0 {
			kept = append(kept, t)
		}
	}
	l.terms = kept
	return l
}

// term evaluates a linear term.
func (p *vparser) term(s *sexp) (lin, error) {
	if !s.isList {
		if v, ok, err := number(s); ok || err != nil {
			return lin{k: v}, err
		}
		out, idx, ok := varName(s)
		decl := p.xDecl
		if out {
			decl = p.yDecl
		}
		if !ok || idx >= len(decl) || !decl[idx] {
			return lin{}, fmt.Errorf("vnnlib: line %d: %w: %q", s.line, ErrUndeclared, s.atom)
		}
		return lin{terms: []term{{out, idx, 1}}}, nil
	}
	op, ok := s.head()
	if !ok {
		return lin{}, fmt.Errorf("vnnlib: line %d: %w: want a term, got %s", s.line, ErrSyntax, s)
	}
	args := s.list[1:]
	if len(args) == 0 {
		return lin{}, fmt.Errorf("vnnlib: line %d: %w: %s without operands", s.line, ErrSyntax, op)
	}
	vals := make([]lin, len(args))
	for i, a := range args {
		var err error
		if vals[i], err = p.term(a); err != nil {
			return lin{}, err
		}
	}
	var out lin
	switch op {
	case "+":
		for _, v := range vals {
			out.terms = append(out.terms, v.terms...)
			out.k += v.k
		}
		out = canon(out)
	case "-":
		if len(vals) == 1 {
			out = sub(lin{}, vals[0])
		} else {
			out = vals[0]
			for _, v := range vals[1:] {
				out = sub(out, v)
			}
		}
	case "*":
		out = lin{k: 1}
		for _, v := range vals {
			switch {
			case len(v.terms) == 0:
				out = scale(out, v.k)
			case len(out.terms) == 0:
				out = scale(v, out.k)
			default:
				return lin{}, fmt.Errorf("vnnlib: line %d: %w: product of two variable terms", s.line, ErrNonLinear)
			}
		}
		out = canon(out)
	case "/":
		out = vals[0]
		for _, v := range vals[1:] {
			if len(v.terms) != 0 || v.k == 0 {
				return lin{}, fmt.Errorf("vnnlib: line %d: %w: division by a variable or by zero", s.line, ErrNonLinear)
			}
			out = scale(out, 1/v.k)
		}
		out = canon(out)
	default:
		return lin{}, fmt.Errorf("vnnlib: line %d: %w: %q in a term (supported: + - * /)", s.line, ErrUnknownOperator, op)
	}
	if err := finite(out, s.line); err != nil {
		return lin{}, err
	}
	return out, nil
}

func scale(l lin, c float64) lin {
	t := make([]term, len(l.terms))
	for i, x := range l.terms {
		t[i] = term{x.out, x.idx, x.c * c}
	}
	return lin{terms: t, k: l.k * c}
}

func finite(l lin, line int) error {
	bad := math.IsInf(l.k, 0) || math.IsNaN(l.k)
	for _, t := range l.terms {
		bad = bad || math.IsInf(t.c, 0) || math.IsNaN(t.c)
	}
	if bad {
		return fmt.Errorf("vnnlib: line %d: %w: arithmetic overflows float64", line, ErrSyntax)
	}
	return nil
}

// number parses a numeral: optional sign, digits with an optional fraction, optional
// exponent. ok is false for symbols (which do not start with a digit, sign or '.').
func number(s *sexp) (v float64, ok bool, err error) {
	a := s.atom
	if a == "" {
		return 0, false, nil
	}
	c := a[0]
	if !(c >= '0' && c <= '9') && c != '-' && c != '+' && c != '.' {
		return 0, false, nil
	}
	if (c == '-' || c == '+') && len(a) == 1 {
		return 0, false, nil // the operator symbol in the wrong place
	}
	if !isDecimal(a) {
		return 0, true, fmt.Errorf("vnnlib: line %d: %w: bad number %q", s.line, ErrSyntax, a)
	}
	v, err = strconv.ParseFloat(a, 64)
	if err != nil || math.IsInf(v, 0) {
		return 0, true, fmt.Errorf("vnnlib: line %d: %w: number %q is out of float64 range", s.line, ErrSyntax, a)
	}
	return v, true, nil
}

// isDecimal accepts [+-]?(digits[.digits?]|.digits)([eE][+-]?digits)? and nothing else
// (no hex, inf, nan or underscores, which strconv would take).
func isDecimal(a string) bool {
	i := 0
	if i < len(a) && (a[i] == '+' || a[i] == '-') {
		i++
	}
	digits := func() int {
		j := i
		for i < len(a) && a[i] >= '0' && a[i] <= '9' {
			i++
		}
		return i - j
	}
	n := digits()
	if i < len(a) && a[i] == '.' {
		i++
		n += digits()
	}
	if n == 0 {
		return false
	}
	if i < len(a) && (a[i] == 'e' || a[i] == 'E') {
		i++
		if i < len(a) && (a[i] == '+' || a[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(a)
}

// FormatCounterexample writes the VNN-COMP counterexample assignment for input x and
// output y:
//
//	((X_0 v)
//	 (X_1 v)
//	 ...
//	 (Y_0 v)
//	 ...)
//
// followed by a newline. Values use strconv's shortest 'g' formatting, which parses
// back to the same float64 (NaN and ±Inf are written as strconv spells them, which no
// VNNLIB reader accepts; a counterexample never holds them). A result file is "sat\n"
// followed by this text.
func FormatCounterexample(x, y []float64) string {
	var b strings.Builder
	b.WriteByte('(')
	first := true
	put := func(prefix string, vals []float64) {
		for i, v := range vals {
			if !first {
				b.WriteString("\n ")
			}
			first = false
			b.WriteByte('(')
			b.WriteString(prefix)
			b.WriteString(strconv.Itoa(i))
			b.WriteByte(' ')
			b.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
			b.WriteByte(')')
		}
	}
	put("X_", x)
	put("Y_", y)
	b.WriteString(")\n")
	return b.String()
}

// ParseCounterexample reads a counterexample in the format FormatCounterexample writes
// (any whitespace and ';' comments allowed, numbers in any decimal or exponent notation
// or as (- v)), optionally preceded by the result word "sat" (or 2021's "violated") as
// in a VNN-COMP result file. Every X_i and Y_j must appear once, indices contiguous from
// 0; at least one X is required.
func ParseCounterexample(r io.Reader) (x, y []float64, err error) {
	src, err := io.ReadAll(r)
	if err != nil {
		return nil, nil, fmt.Errorf("counterexample: %w", err)
	}
	forms, err := parseSexps(src)
	if err != nil {
		return nil, nil, fmt.Errorf("counterexample: %w", err)
	}
	if len(forms) == 2 && !forms[0].isList && (forms[0].atom == "sat" || forms[0].atom == "violated") {
		forms = forms[1:]
	}
	if len(forms) != 1 || !forms[0].isList {
		return nil, nil, fmt.Errorf("counterexample: %w: want one list ((X_0 v) ...)", ErrSyntax)
	}
	var xs, ys []float64
	var xSet, ySet []bool
	for _, e := range forms[0].list {
		if !e.isList || len(e.list) != 2 {
			return nil, nil, fmt.Errorf("counterexample: line %d: %w: want (NAME value), got %s", e.line, ErrSyntax, e)
		}
		out, idx, ok := varName(e.list[0])
		if !ok || idx >= maxIndex {
			return nil, nil, fmt.Errorf("counterexample: line %d: %w: %s is not X_i or Y_j", e.line, ErrSyntax, e.list[0])
		}
		// Values are constants; the term evaluator accepts (- 0.5) as well as -0.5.
		v, err := (&vparser{}).term(e.list[1])
		if err != nil {
			return nil, nil, fmt.Errorf("counterexample: %w", err)
		}
		if len(v.terms) != 0 {
			return nil, nil, fmt.Errorf("counterexample: line %d: %w: value of %s is not a number", e.line, ErrSyntax, e.list[0].atom)
		}
		vals, set := &xs, &xSet
		if out {
			vals, set = &ys, &ySet
		}
		for len(*vals) <= idx {
			*vals = append(*vals, 0)
			*set = append(*set, false)
		}
		if (*set)[idx] {
			return nil, nil, fmt.Errorf("counterexample: line %d: %w: %s given twice", e.line, ErrSyntax, e.list[0].atom)
		}
		(*vals)[idx], (*set)[idx] = v.k, true
	}
	for _, c := range []struct {
		p   string
		set []bool
	}{{"X", xSet}, {"Y", ySet}} {
		for i, ok := range c.set {
			if !ok {
				return nil, nil, fmt.Errorf("counterexample: %w: %s_%d is missing", ErrSyntax, c.p, i)
			}
		}
	}
	if len(xs) == 0 {
		return nil, nil, fmt.Errorf("counterexample: %w: no X_i values", ErrSyntax)
	}
	return xs, ys, nil
}

// ParseCounterexampleBytes is ParseCounterexample on text held in memory.
func ParseCounterexampleBytes(b []byte) (x, y []float64, err error) {
	return ParseCounterexample(bytes.NewReader(b))
}
