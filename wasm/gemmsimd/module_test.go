//go:build !(js && wasm)

package gemmsimd

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// The generator writes Module's bytes, the same on every run, and they start as a
// WebAssembly module that imports env.mem and exports block, concretize, relax and
// pack.
func TestGeneratorDeterministic(t *testing.T) {
	m := Module()
	if !bytes.Equal(m, Module()) {
		t.Fatal("two calls of Module differ")
	}
	if !bytes.HasPrefix(m, []byte("\x00asm\x01\x00\x00\x00")) {
		t.Fatalf("no WebAssembly header: % x", m[:8])
	}
	for _, s := range []string{"\x03env\x03mem\x02\x00\x01", "\x05block\x00\x00", "\x0aconcretize\x00\x01", "\x05relax\x00\x02", "\x04pack\x00\x03"} {
		if !bytes.Contains(m, []byte(s)) {
			t.Errorf("module lacks %q", s)
		}
	}
	dir := t.TempDir()
	var outs [][]byte
	for i := 0; i < 2; i++ {
		out := filepath.Join(dir, "gemm.wasm")
		cmd := exec.Command("go", "run", "./gen", "-o", out)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go run ./gen: %v\n%s", err, b)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, b)
		os.Remove(out)
	}
	if !bytes.Equal(outs[0], m) || !bytes.Equal(outs[1], m) {
		t.Fatal("the generator's output differs from Module() or between runs")
	}
}

func TestLEB128(t *testing.T) {
	for _, c := range []struct {
		v    uint32
		want string
	}{{0, "\x00"}, {127, "\x7f"}, {128, "\x80\x01"}, {240, "\xf0\x01"}, {624485, "\xe5\x8e\x26"}} {
		if got := string(uleb(c.v)); got != c.want {
			t.Errorf("uleb(%d) = % x, want % x", c.v, got, c.want)
		}
	}
	for _, c := range []struct {
		v    int32
		want string
	}{{0, "\x00"}, {2, "\x02"}, {-2, "\x7e"}, {63, "\x3f"}, {64, "\xc0\x00"}, {-64, "\x40"}, {-65, "\xbf\x7f"}, {-123456, "\xc0\xbb\x78"}} {
		if got := string(sleb(c.v)); got != c.want {
			t.Errorf("sleb(%d) = % x, want % x", c.v, got, c.want)
		}
	}
}

// nodeRun validates the module with node's WebAssembly and runs block on each case,
// returning C after each call (as hexadecimal bit patterns). The cases are laid out in one memory at 8-byte
// aligned addresses, as Go's float64 slices are.
const nodeRun = `
const inp = JSON.parse(require("fs").readFileSync(0, "utf8"));
const bytes = Buffer.from(inp.module, "base64");
if (!WebAssembly.validate(bytes)) { console.log("invalid"); process.exit(3); }
const mem = new WebAssembly.Memory({ initial: 1 });
const block = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { mem } }).exports.block;
const out = inp.cases.map((c) => {
  const need = 8 * (1 + c.a.length + c.b.length + c.c.length);
  if (mem.buffer.byteLength < need) mem.grow(Math.ceil((need - mem.buffer.byteLength) / 65536));
  const f = new Float64Array(mem.buffer);
  const a = 1, b = a + c.a.length, cc = b + c.b.length;
  f.set(c.a, a); f.set(c.b, b); f.set(c.c, cc);
  block(c.kb, c.mt, c.nt, 8 * a, 8 * b, 8 * cc, c.ldc, c.alpha, c.accum ? 1 : 0);
  // As bit patterns: JSON would turn -0 into 0.
  return Array.from(new BigUint64Array(mem.buffer, 8 * cc, c.c.length), (x) => x.toString(16));
});
console.log(JSON.stringify(out));
`

type nodeCase struct {
	KB, MT, NT, LDC int
	Alpha           float64
	Accum           bool
	A, B, C         []float64
}

func (c nodeCase) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]any{"kb": c.KB, "mt": c.MT, "nt": c.NT, "ldc": c.LDC, "alpha": c.Alpha, "accum": c.Accum,
		"a": c.A, "b": c.B, "c": c.C})
}

// want is the tile product as core/blas's Go kernel computes it: sums from +0 over k
// in order, each product rounded (the conversion keeps Go from fusing it into an FMA
// on the platforms that have one), then alpha·s or C + alpha·s.
func (c nodeCase) want() []float64 {
	out := append([]float64(nil), c.C...)
	for it := 0; it < c.MT; it++ {
		for jt := 0; jt < c.NT; jt++ {
			for r := 0; r < 4; r++ {
				for j := 0; j < 4; j++ {
					s := 0.0
					for p := 0; p < c.KB; p++ {
						s += float64(c.A[it*4*c.KB+4*p+r] * c.B[jt*4*c.KB+4*p+j])
					}
					x := &out[(4*it+r)*c.LDC+4*jt+j]
					if c.Accum {
						*x += float64(c.Alpha * s)
					} else {
						*x = float64(c.Alpha * s)
					}
				}
			}
		}
	}
	return out
}

// Under node (skipped without it), the module validates, and block computes what the
// Go kernel does, bit for bit: one tile, odd depths (the unrolled loop's remainder),
// several tiles each way with a C stride wider than the block, accum and not, an
// empty block that must write nothing, and sums of -0 products.
func TestModuleUnderNode(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed")
	}
	rng := rand.New(rand.NewPCG(41, 42))
	vals := func(n int) []float64 {
		v := make([]float64, n)
		for i := range v {
			v[i] = rng.NormFloat64()
		}
		return v
	}
	var cases []nodeCase
	for _, s := range [][6]float64{{1, 1, 1, 4, 1, 0}, {2, 1, 1, 4, -1, 1}, {7, 2, 3, 13, -0.5, 1}, {256, 3, 2, 8, 2, 0}, {33, 5, 4, 19, 0.75, 1}, {5, 0, 2, 8, 1, 1}} {
		c := nodeCase{KB: int(s[0]), MT: int(s[1]), NT: int(s[2]), LDC: int(s[3]), Alpha: s[4], Accum: s[5] == 1}
		c.A, c.B, c.C = vals(4*c.MT*c.KB), vals(4*c.NT*c.KB), vals(max(4*c.MT, 1)*c.LDC)
		cases = append(cases, c)
	}
	// Every product -0: the sums start at +0, as the Go kernel's do, so C is +0.
	negZero := nodeCase{KB: 3, MT: 1, NT: 1, LDC: 4, Alpha: 1, A: make([]float64, 12), B: vals(12), C: vals(16)}
	for i := range negZero.A {
		negZero.A[i] = math.Copysign(0, -1)
		negZero.B[i] = math.Abs(negZero.B[i])
	}
	cases = append(cases, negZero)
	in, err := json.Marshal(map[string]any{"module": base64.StdEncoding.EncodeToString(Module()), "cases": cases})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, "-e", nodeRun)
	cmd.Stdin = bytes.NewReader(in)
	out, err := cmd.Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 3 {
			t.Fatal("node: WebAssembly.validate rejects the module")
		}
		t.Fatalf("node: %v\n%s", err, out)
	}
	var got [][]string
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("node's output: %v\n%s", err, out)
	}
	if len(got) != len(cases) {
		t.Fatalf("node returned %d results for %d cases", len(got), len(cases))
	}
	for i, c := range cases {
		want := c.want()
		if len(got[i]) != len(want) {
			t.Fatalf("case %d: %d values back, want %d", i, len(got[i]), len(want))
		}
		for j := range want {
			bits, err := strconv.ParseUint(got[i][j], 16, 64)
			if err != nil {
				t.Fatal(err)
			}
			if g := math.Float64frombits(bits); bits != math.Float64bits(want[j]) {
				t.Errorf("case %d (kb %d, %d×%d tiles, accum %v): C[%d] = %v (%#x), want %v (%#x)", i, c.KB, c.MT, c.NT, c.Accum, j,
					g, bits, want[j], math.Float64bits(want[j]))
				break
			}
		}
	}
}
