package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

func init() {
	register("merge", "combine the outputs of sharded runs (--shard i/n) into one", runMerge)
}

// runMerge combines shard outputs into the output of the unsharded run.
//
// JSON reports (bounds --json, verify --json over a data set): the samples of all
// shards, ordered by index; the counts (verified, falsified, unknown, misclassified,
// total) summed; "seconds" the largest shard's, i.e. the wall time of shards run side
// by side; every other field must agree between shards. CSV results (vnncomp): rows
// put back in instances.csv order, either from --instances or, without it, by
// interleaving the files taken as shards 0, 1, …, n−1 in the order given (row k of the
// whole from file k mod n).
func runMerge(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("merge", stderr)
	out := fs.String("out", "", "write the merged output to `file` instead of stdout")
	instances := fs.String("instances", "", "for CSV results: order rows as in this instances.csv `file`")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: graftcert merge [--out FILE] [--instances instances.csv] SHARD_FILE...")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	files := fs.Args()
	if len(files) == 0 {
		return errors.New("no shard files given")
	}
	contents := make([][]byte, len(files))
	for i, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		contents[i] = b
	}
	isJSON := func(b []byte) bool {
		t := bytes.TrimLeft(b, " \t\r\n\ufeff")
		return len(t) > 0 && t[0] == '{'
	}
	kind := isJSON(contents[0])
	for i, b := range contents {
		if isJSON(b) != kind {
			return fmt.Errorf("%s: mixes JSON and CSV shard files", files[i])
		}
	}
	if kind {
		merged, err := mergeJSON(files, contents)
		if err != nil {
			return err
		}
		return outputTo(*out, stdout, func(w io.Writer) error { return writeJSON(w, merged) })
	}
	var order [][2]string
	if *instances != "" {
		var err error
		if order, err = readInstanceOrder(*instances); err != nil {
			return err
		}
	}
	rows, err := mergeCSV(files, contents, order)
	if err != nil {
		return err
	}
	return outputTo(*out, stdout, func(w io.Writer) error {
		cw := csv.NewWriter(w)
		cw.WriteAll(rows)
		return cw.Error()
	})
}

// field is one member of a JSON object, in file order.
type field struct {
	Key string
	Val json.RawMessage
}

// object is a JSON object that keeps its members' order, so the merged report prints
// like the unsharded one.
type object []field

func (o object) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, f := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(f.Key)
		b.Write(k)
		b.WriteByte(':')
		b.Write(f.Val)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func (o object) get(key string) (json.RawMessage, bool) {
	for _, f := range o {
		if f.Key == key {
			return f.Val, true
		}
	}
	return nil, false
}

func parseObject(b []byte) (object, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	t, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := t.(json.Delim); !ok || d != '{' {
		return nil, errors.New("not a JSON object")
	}
	var o object
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		k, _ := t.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		if seen[k] {
			return nil, fmt.Errorf("key %q appears twice", k)
		}
		seen[k] = true
		o = append(o, field{k, v})
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("data after the JSON object")
	}
	return o, nil
}

// Counts summed over shards.
var mergeCounts = map[string]bool{"verified": true, "falsified": true, "unknown": true, "misclassified": true, "total": true}

func mergeJSON(files []string, contents [][]byte) (object, error) {
	var first object
	type sample struct {
		index int
		raw   json.RawMessage
		file  string
	}
	var samples []sample
	counts := map[string]int64{}
	var seconds float64
	for i, b := range contents {
		o, err := parseObject(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", files[i], err)
		}
		raw, ok := o.get("samples")
		if !ok {
			return nil, fmt.Errorf("%s: no \"samples\": not the report of a sharded run (bounds or verify over a data set)", files[i])
		}
		var ss []json.RawMessage
		if err := json.Unmarshal(raw, &ss); err != nil {
			return nil, fmt.Errorf("%s: \"samples\": %w", files[i], err)
		}
		for _, s := range ss {
			var head struct {
				Index *int `json:"index"`
			}
			if err := json.Unmarshal(s, &head); err != nil || head.Index == nil {
				return nil, fmt.Errorf("%s: a sample has no integer \"index\"", files[i])
			}
			samples = append(samples, sample{*head.Index, s, files[i]})
		}
		if i == 0 {
			first = o
		} else if len(o) != len(first) {
			return nil, fmt.Errorf("%s: has fields %v, %s has %v", files[i], keys(o), files[0], keys(first))
		}
		for _, f := range o {
			switch {
			case f.Key == "samples":
			case f.Key == "seconds":
				var s float64
				if err := json.Unmarshal(f.Val, &s); err != nil {
					return nil, fmt.Errorf("%s: \"seconds\": %w", files[i], err)
				}
				seconds = max(seconds, s)
			case mergeCounts[f.Key]:
				var n int64
				if err := json.Unmarshal(f.Val, &n); err != nil {
					return nil, fmt.Errorf("%s: %q is not an integer count", files[i], f.Key)
				}
				counts[f.Key] += n
			default:
				want, ok := first.get(f.Key)
				if !ok {
					return nil, fmt.Errorf("%s: field %q is not in %s", files[i], f.Key, files[0])
				}
				if !jsonEqual(want, f.Val) {
					return nil, fmt.Errorf("%s: %q is %s, %s has %s: not shards of one run", files[i], f.Key, compact(f.Val), files[0], compact(want))
				}
			}
		}
	}
	sort.SliceStable(samples, func(a, b int) bool { return samples[a].index < samples[b].index })
	for k := 1; k < len(samples); k++ {
		if samples[k].index == samples[k-1].index {
			return nil, fmt.Errorf("sample %d is in both %s and %s: overlapping shards", samples[k].index, samples[k-1].file, samples[k].file)
		}
	}
	if t, ok := counts["total"]; ok && t != int64(len(samples)) {
		return nil, fmt.Errorf("the shards' totals add up to %d but they hold %d samples", t, len(samples))
	}
	out := make(object, len(first))
	for i, f := range first {
		out[i] = f
		switch {
		case f.Key == "samples":
			raws := make([]json.RawMessage, len(samples))
			for k, s := range samples {
				raws[k] = s.raw
			}
			if len(raws) == 0 {
				out[i].Val = json.RawMessage("[]")
			} else {
				b, _ := json.Marshal(raws)
				out[i].Val = b
			}
		case f.Key == "seconds":
			b, _ := json.Marshal(seconds)
			out[i].Val = b
		case mergeCounts[f.Key]:
			b, _ := json.Marshal(counts[f.Key])
			out[i].Val = b
		}
	}
	return out, nil
}

func keys(o object) []string {
	k := make([]string, len(o))
	for i, f := range o {
		k[i] = f.Key
	}
	return k
}

func compact(b []byte) string {
	var buf bytes.Buffer
	if json.Compact(&buf, b) != nil {
		return string(b)
	}
	return truncateString(buf.String(), 80)
}

func jsonEqual(a, b []byte) bool {
	var x, y bytes.Buffer
	if json.Compact(&x, a) != nil || json.Compact(&y, b) != nil {
		return bytes.Equal(a, b)
	}
	return bytes.Equal(x.Bytes(), y.Bytes())
}

// mergeCSV merges result CSVs that share a header row. order, when given, is the
// (onnx, vnnlib) sequence of instances.csv; otherwise the files are interleaved as
// round-robin shards 0..n−1.
func mergeCSV(files []string, contents [][]byte, order [][2]string) ([][]string, error) {
	var header []string
	tables := make([][][]string, len(files))
	total := 0
	for i, b := range contents {
		r := csv.NewReader(bytes.NewReader(b))
		recs, err := r.ReadAll()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", files[i], err)
		}
		if len(recs) == 0 {
			return nil, fmt.Errorf("%s: empty CSV (want a header row)", files[i])
		}
		if i == 0 {
			header = recs[0]
		} else if strings.Join(recs[0], ",") != strings.Join(header, ",") {
			return nil, fmt.Errorf("%s: header %q differs from %s's %q", files[i], strings.Join(recs[0], ","), files[0], strings.Join(header, ","))
		}
		tables[i] = recs[1:]
		total += len(recs) - 1
	}
	rows := [][]string{header}
	if order != nil {
		col := func(name string) int {
			for i, h := range header {
				if h == name {
					return i
				}
			}
			return -1
		}
		on, vn := col("onnx"), col("vnnlib")
		if on < 0 || vn < 0 {
			return nil, errors.New("--instances needs onnx and vnnlib columns in the results")
		}
		queue := map[[2]string][][]string{}
		for _, t := range tables {
			for _, r := range t {
				k := [2]string{r[on], r[vn]}
				queue[k] = append(queue[k], r)
			}
		}
		for _, k := range order {
			q := queue[k]
			if len(q) == 0 {
				return nil, fmt.Errorf("no result for instance %s, %s: a shard is missing", k[0], k[1])
			}
			rows = append(rows, q[0])
			queue[k] = q[1:]
		}
		if len(rows)-1 != total {
			return nil, fmt.Errorf("%d result rows, but instances.csv lists %d instances", total, len(order))
		}
		return rows, nil
	}
	n := len(tables)
	for i, t := range tables {
		if want := (total - i + n - 1) / n; len(t) != want {
			return nil, fmt.Errorf("%s has %d rows, shard %d of %d of %d rows has %d: give the files in shard order 0..%d, all of them, or use --instances", files[i], len(t), i, n, total, want, n-1)
		}
	}
	for k := 0; k < total; k++ {
		rows = append(rows, tables[k%n][k/n])
	}
	return rows, nil
}

// readInstanceOrder reads the (onnx, vnnlib) pairs of a VNN-COMP instances.csv.
func readInstanceOrder(path string) ([][2]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	r := csv.NewReader(bytes.NewReader(b))
	r.FieldsPerRecord = -1
	recs, err := r.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var order [][2]string
	for i, rec := range recs {
		if len(rec) < 2 {
			if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
				continue
			}
			return nil, fmt.Errorf("%s: line %d: want onnx,vnnlib[,timeout]", path, i+1)
		}
		order = append(order, [2]string{strings.TrimSpace(rec[0]), strings.TrimSpace(rec[1])})
	}
	return order, nil
}
