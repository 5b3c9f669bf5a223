package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/graftcert/graftcert/internal/sharedtest"
)

func TestShardSpec(t *testing.T) {
	for _, bad := range []string{"", "1", "3/3", "-1/2", "0/0", "a/b", "1/2/3", "2/-1"} {
		var s shardSpec
		if err := s.Set(bad); err == nil {
			t.Errorf("--shard %q accepted as %v", bad, s)
		}
	}
	var s shardSpec
	if err := s.Set("1/3"); err != nil || s != (shardSpec{1, 3}) {
		t.Fatalf("1/3 → %v, %v", s, err)
	}
	items := []int{10, 11, 12, 13, 14, 15, 16}
	var all []int
	for i := 0; i < 3; i++ {
		got := shardItems(shardSpec{i, 3}, items)
		want := [][]int{{10, 13, 16}, {11, 14}, {12, 15}}[i]
		if !reflect.DeepEqual(got, want) {
			t.Errorf("shard %d/3 of %v = %v, want %v", i, items, got, want)
		}
		all = append(all, got...)
	}
	if len(all) != len(items) {
		t.Errorf("shards hold %d items, want %d", len(all), len(items))
	}
	if got := shardItems(shardSpec{}, items); !reflect.DeepEqual(got, items) {
		t.Errorf("no shard = %v", got)
	}
}

// withoutTiming drops every "seconds" member, at any depth.
func withoutTiming(v any) any {
	switch v := v.(type) {
	case map[string]any:
		delete(v, "seconds")
		for k, x := range v {
			v[k] = withoutTiming(x)
		}
	case []any:
		for i, x := range v {
			v[i] = withoutTiming(x)
		}
	}
	return v
}

func decodeJSON(t *testing.T, s string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("bad JSON: %v\n%s", err, s)
	}
	return v
}

// Sharding 100 samples three ways and merging gives the unsharded report exactly,
// timing aside, and the same bytes once the timing is equalised.
func TestShardMergeEqualsUnsharded(t *testing.T) {
	base := []string{"bounds", "--model", sharedtest.Path(t, "models", "mnist_6_100.onnx"),
		"--data", sharedtest.Path(t, "data", "mnist_eran_X.npy"), "--labels", sharedtest.Path(t, "data", "mnist_eran_y.npy"),
		"--eps", "0.026", "--method", "crown", "--start", "3", "--count", "100", "--json"}
	code, whole, errs := cli(t, base...)
	if code != 0 {
		t.Fatalf("unsharded run: %d %s", code, errs)
	}
	dir := t.TempDir()
	const n = 3
	var files []string
	for i := 0; i < n; i++ {
		f := filepath.Join(dir, "shard-"+string(rune('0'+i))+".json")
		args := append(append([]string{}, base...), "--shard", string(rune('0'+i))+"/3", "--out", f)
		if code, out, errs := cli(t, args...); code != 0 || out != "" {
			t.Fatalf("shard %d: code %d, stdout %q, stderr %s", i, code, out, errs)
		}
		files = append(files, f)
	}
	// The shards hold the round-robin split of the positions.
	var sh struct {
		Total   int `json:"total"`
		Samples []struct {
			Index int `json:"index"`
		} `json:"samples"`
	}
	b, _ := os.ReadFile(files[1])
	if err := json.Unmarshal(b, &sh); err != nil {
		t.Fatal(err)
	}
	if sh.Total != 33 || sh.Samples[0].Index != 4 || sh.Samples[1].Index != 7 || sh.Samples[32].Index != 100 {
		t.Errorf("shard 1/3 of samples 3..102: total %d, indices %d, %d, …, %d; want 33, 4, 7, …, 100",
			sh.Total, sh.Samples[0].Index, sh.Samples[1].Index, sh.Samples[len(sh.Samples)-1].Index)
	}
	// Merge in a shuffled order: JSON merging does not depend on it.
	code, merged, errs := cli(t, "merge", files[2], files[0], files[1])
	if code != 0 {
		t.Fatalf("merge: %d %s", code, errs)
	}
	if !reflect.DeepEqual(withoutTiming(decodeJSON(t, merged)), withoutTiming(decodeJSON(t, whole))) {
		t.Fatalf("merged shards differ from the unsharded run (timing aside)\nmerged: %.500s\nwhole: %.500s", merged, whole)
	}
	// Field order and number formatting too: equal byte for byte after zeroing timing.
	if zeroSeconds(merged) != zeroSeconds(whole) {
		t.Errorf("merged output is not formatted like the unsharded one")
	}
}

// zeroSeconds replaces the value of every "seconds" line of indented JSON.
func zeroSeconds(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if k := strings.Index(l, `"seconds": `); k >= 0 {
			end := ""
			if strings.HasSuffix(l, ",") {
				end = ","
			}
			lines[i] = l[:k] + `"seconds": 0` + end
		}
	}
	return strings.Join(lines, "\n")
}

func writeFiles(t *testing.T, contents ...string) []string {
	t.Helper()
	dir := t.TempDir()
	var files []string
	for i, c := range contents {
		f := filepath.Join(dir, "f"+string(rune('a'+i)))
		if err := os.WriteFile(f, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	return files
}

func TestMergeJSONCountsAndErrors(t *testing.T) {
	a := `{"verified": 1, "falsified": 0, "unknown": 1, "misclassified": 0, "total": 2, "seconds": 3.5, "samples": [{"index": 0, "result": "verified", "seconds": 1}, {"index": 2, "result": "unknown", "seconds": 2.5}]}`
	b := `{"verified": 0, "falsified": 1, "unknown": 0, "misclassified": 0, "total": 1, "seconds": 4.25, "samples": [{"index": 1, "result": "falsified", "seconds": 4.25}]}`
	files := writeFiles(t, a, b)
	code, out, errs := cli(t, append([]string{"merge"}, files...)...)
	if code != 0 {
		t.Fatalf("merge: %d %s", code, errs)
	}
	var got struct {
		Verified, Falsified, Unknown, Total int
		Seconds                             float64
		Samples                             []struct{ Index int }
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	if got.Verified != 1 || got.Falsified != 1 || got.Unknown != 1 || got.Total != 3 || got.Seconds != 4.25 ||
		len(got.Samples) != 3 || got.Samples[0].Index != 0 || got.Samples[1].Index != 1 || got.Samples[2].Index != 2 {
		t.Errorf("merged verify reports: %+v", got)
	}
	for _, c := range []struct {
		name  string
		files []string
		want  string
	}{
		{"overlap", writeFiles(t, a, a), "overlapping"},
		{"different eps", writeFiles(t, `{"eps": 0.1, "total": 0, "samples": []}`, `{"eps": 0.2, "total": 0, "samples": []}`), "eps"},
		{"no samples", writeFiles(t, `{"result": "unsat", "seconds": 1}`), "samples"},
		{"total mismatch", writeFiles(t, `{"total": 2, "samples": [{"index": 0}]}`), "totals"},
		{"json and csv", writeFiles(t, `{"total": 0, "samples": []}`, "onnx,vnnlib,result,seconds\n"), "mixes"},
		{"not json", writeFiles(t, `{"total": 0, "samples": [`), ""},
	} {
		code, _, errs := cli(t, append([]string{"merge"}, c.files...)...)
		if code == 0 || !strings.Contains(errs, c.want) {
			t.Errorf("%s: code %d, stderr %q, want an error containing %q", c.name, code, errs, c.want)
		}
	}
}

func TestMergeCSV(t *testing.T) {
	h := "onnx,vnnlib,result,seconds\n"
	// Five instances split round-robin over two shards.
	s0 := h + "a.onnx,p0.vnnlib,unsat,1.5\na.onnx,p2.vnnlib,sat,0.25\nb.onnx,p4.vnnlib,timeout,60\n"
	s1 := h + "a.onnx,p1.vnnlib,unknown,2\nb.onnx,p3.vnnlib,unsat,3\n"
	want := h + "a.onnx,p0.vnnlib,unsat,1.5\na.onnx,p1.vnnlib,unknown,2\na.onnx,p2.vnnlib,sat,0.25\nb.onnx,p3.vnnlib,unsat,3\nb.onnx,p4.vnnlib,timeout,60\n"
	files := writeFiles(t, s0, s1)
	if code, out, errs := cli(t, append([]string{"merge"}, files...)...); code != 0 || out != want {
		t.Errorf("interleaved merge: code %d %s\n%s", code, errs, out)
	}
	// Wrong order is detected by the shard sizes…
	if code, _, errs := cli(t, "merge", files[1], files[0]); code == 0 || !strings.Contains(errs, "shard order") {
		t.Errorf("swapped shards: code %d, %s", code, errs)
	}
	// …and --instances orders rows whatever the file order.
	inst := writeFiles(t, "a.onnx,p0.vnnlib,60\na.onnx,p1.vnnlib,60\na.onnx,p2.vnnlib,60\nb.onnx,p3.vnnlib,60\nb.onnx,p4.vnnlib,60\n")[0]
	if code, out, errs := cli(t, "merge", "--instances", inst, files[1], files[0]); code != 0 || out != want {
		t.Errorf("--instances merge: code %d %s\n%s", code, errs, out)
	}
	if code, _, errs := cli(t, "merge", "--instances", inst, files[0]); code == 0 || !strings.Contains(errs, "missing") {
		t.Errorf("missing shard with --instances: code %d, %s", code, errs)
	}
	bad := writeFiles(t, "onnx,vnnlib,result\n")[0]
	if code, _, errs := cli(t, "merge", files[0], bad); code == 0 || !strings.Contains(errs, "header") {
		t.Errorf("header mismatch: code %d, %s", code, errs)
	}
}
