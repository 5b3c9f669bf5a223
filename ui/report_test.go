package main

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/graftcert/graftcert/core/bab"
	"github.com/graftcert/graftcert/core/certify"
)

// The page's report is `graftcert bounds --json` byte for byte (same keys, order,
// indentation and numbers) when given the worker's sample JSON.
func TestReportJSONIsTheCLIFormat(t *testing.T) {
	cs := []certify.SampleReport{
		{Index: 3, Label: 1, Pred: 1, MarginLB: []float64{0.125, -2.5e-7, 3}, Unstable: []int{4, 0}, Verified: false, Seconds: 0.25},
		{Index: 4, Label: 0, Pred: 0, MarginLB: []float64{1, 2, 1.0000000000000002}, Unstable: []int{0, 0}, Verified: true, Seconds: 0.5},
	}
	want := &certify.Report{Model: "mnist_6_100", Method: "crown", Eps: 0.026, Verified: 1, Total: 2, Seconds: 1.5, Samples: cs}
	wb, err := json.MarshalIndent(want, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	var samples []Sample
	for _, s := range cs {
		raw, _ := json.Marshal(s)
		var r SampleReport
		if err := json.Unmarshal(raw, &r); err != nil {
			t.Fatal(err)
		}
		samples = append(samples, Sample{R: r, Raw: raw})
	}
	got, err := reportJSON("mnist_6_100", "crown", 0.026, samples, 1.5)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(wb)+"\n" {
		t.Errorf("report differs from the CLI's:\n%s\nwant\n%s", got, wb)
	}
	// The page's sample type reads every field the CLI writes.
	var back certify.SampleReport
	b, _ := json.Marshal(samples[0].R)
	if err := json.Unmarshal(b, &back); err != nil || back.Index != 3 || back.MarginLB[1] != -2.5e-7 || back.Unstable[0] != 4 {
		t.Errorf("round trip: %+v, %v", back, err)
	}
}

func TestSummarize(t *testing.T) {
	ss := []Sample{
		{R: SampleReport{Label: 1, Pred: 1, Verified: true, Unstable: []int{2, 4}, Seconds: 1}},
		{R: SampleReport{Label: 1, Pred: 2, Unstable: []int{4, 0}, Seconds: 3}},
		{R: SampleReport{Label: 0, Pred: 0, Unstable: []int{0, 2}, Seconds: 2}},
	}
	st := Summarize(ss)
	if st.Total != 3 || st.Verified != 1 || st.Correct != 2 || st.MeanSeconds != 2 {
		t.Errorf("%+v", st)
	}
	if st.MeanUnstable[0] != 2 || st.MeanUnstable[1] != 2 || st.TotalUnstable() != 4 {
		t.Errorf("mean unstable %v", st.MeanUnstable)
	}
	if v := (SampleReport{Label: 1, Pred: 2}).Verdict(); v != "misclassified" {
		t.Error(v)
	}
	if m := (SampleReport{MarginLB: []float64{3, -1, 2}}).MinMargin(); m != -1 {
		t.Error(m)
	}
}

func TestFormat(t *testing.T) {
	for _, c := range []struct {
		got, want string
	}{
		{FormatCount(119910), "119,910"}, {FormatCount(500), "500"}, {FormatCount(-1234567), "-1,234,567"},
		{FormatBytes(1536 << 20), "1.5 GiB"}, {FormatBytes(512), "512 B"}, {FormatBytes(3 << 20), "3.0 MiB"},
		{Percent(1, 3), "33.3%"}, {Percent(0, 0), "–"}, {ShapeString([]int{1, 28, 28}), "(1,28,28)"},
		{compact(27.621597), "27.6"}, {compact(-0.0002), "-2.0e-04"}, {compact(-135.8), "-136"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

// The margin chart puts row r of the margin matrix at class r (r < label) or r+1,
// above the zero line when positive, with heights proportional to the bounds.
func TestMarginChart(t *testing.T) {
	s := SampleReport{Index: 0, Label: 2, MarginLB: []float64{4, -2, 1}} // classes 0, 1, 3
	c := MarginChart(s, 4)
	if len(c.Bars) != 4 {
		t.Fatalf("%d bars", len(c.Bars))
	}
	byTick := map[string]Bar{}
	for _, b := range c.Bars {
		byTick[b.Tick] = b
	}
	if byTick["2"].Class != "label" {
		t.Errorf("label slot %+v", byTick["2"])
	}
	b0, b1, b3 := byTick["0"], byTick["1"], byTick["3"]
	if b0.Class != "pos" || b1.Class != "neg" || b3.Class != "pos" {
		t.Errorf("classes %s %s %s", b0.Class, b1.Class, b3.Class)
	}
	// Positive bars end at the zero line, negative ones start there.
	if math.Abs(b0.Y+b0.H-c.ZeroY) > 1e-9 || math.Abs(b1.Y-c.ZeroY) > 1e-9 {
		t.Errorf("zero line %v: bar 0 %+v, bar 1 %+v", c.ZeroY, b0, b1)
	}
	// Heights in proportion 4 : 2 : 1.
	if math.Abs(b0.H/b1.H-2) > 1e-9 || math.Abs(b0.H/b3.H-4) > 1e-9 {
		t.Errorf("heights %v %v %v", b0.H, b1.H, b3.H)
	}
	if !(b0.X < b1.X && b1.X < byTick["2"].X && byTick["2"].X < b3.X) {
		t.Error("bars not in class order")
	}
	if c.ViewBox() != "0 0 420 190" {
		t.Error(c.ViewBox())
	}
}

func TestUnstableChart(t *testing.T) {
	layers := []LayerInfo{{Name: "relu1", Neurons: 100}, {Name: "relu2", Neurons: 50}}
	c := UnstableChart(layers, []float64{50, 50}, []float64{25, 0})
	if len(c.Bars) != 4 {
		t.Fatalf("%d bars", len(c.Bars))
	}
	// Grouped by layer: relu1 before, relu1 after, relu2 before, relu2 after.
	full := c.Bars[2].W // relu2 before: 50 of 50
	if math.Abs(c.Bars[0].W-full/2) > 1e-9 || math.Abs(c.Bars[1].W-full/4) > 1e-9 {
		t.Errorf("widths %v %v %v", c.Bars[0].W, c.Bars[1].W, c.Bars[2].W)
	}
	if c.Bars[0].Class != "s0" || c.Bars[1].Class != "s1" || c.Bars[0].Tick != "relu1" || c.Bars[1].Tick != "" || c.Bars[2].Tick != "relu2" {
		t.Errorf("%+v", c.Bars[:2])
	}
	if !strings.Contains(c.Bars[3].Text, "0.0 / 50") {
		t.Error(c.Bars[3].Text)
	}
}

// A complete-verification run exports `graftcert verify --data --json`.
func TestVerifyReportJSONIsTheCLIFormat(t *testing.T) {
	cs := []bab.SampleReport{
		{Index: 0, Label: 7, Pred: 7, Result: bab.Verified, Seconds: 1.5},
		{Index: 1, Label: 2, Pred: 2, Result: bab.Falsified, Seconds: 0.25, Counterexample: []float64{0.5, 0.125}},
		{Index: 8, Label: 5, Pred: 6, Result: bab.Misclassified},
		{Index: 9, Label: 9, Pred: 9, Result: bab.Undecided, Seconds: 60},
	}
	want := &bab.ClassReport{Verified: 1, Falsified: 1, Unknown: 1, Misclassified: 1, Total: 4, Seconds: 62, Samples: cs}
	wb, _ := json.MarshalIndent(want, "", "  ")
	var samples []Sample
	for _, s := range cs {
		samples = append(samples, Sample{R: SampleReport{Index: s.Index, Label: s.Label, Pred: s.Pred, Result: s.Result,
			Seconds: s.Seconds, Counterexample: s.Counterexample, Verified: s.Result == bab.Verified}})
	}
	got, err := verifyReportJSON(samples, 62)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(wb)+"\n" {
		t.Errorf("got\n%s\nwant\n%s", got, wb)
	}
	if samples[1].R.Verdict() != "falsified" {
		t.Error(samples[1].R.Verdict())
	}
}
