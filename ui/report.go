package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strings"
)

// SampleReport is one sample's result as the worker sends it: the JSON of
// certify.SampleReport, the `graftcert bounds --json` contract.
type SampleReport struct {
	Index    int       `json:"index"`
	Label    int       `json:"label"`
	Pred     int       `json:"pred"`
	MarginLB []float64 `json:"margin_lb"`
	Unstable []int     `json:"unstable"`
	Verified bool      `json:"verified"`
	Seconds  float64   `json:"seconds"`
	LogitLB  []float64 `json:"logit_lb,omitempty"`
	LogitUB  []float64 `json:"logit_ub,omitempty"`

	// Complete verification (method "bab") has a verdict instead of margin bounds:
	// verified, falsified, unknown or misclassified, as `graftcert verify --data`.
	Result         string    `json:"result,omitempty"`
	Counterexample []float64 `json:"counterexample,omitempty"`
	Domains        int       `json:"domains,omitempty"`
}

// Sample is a finished sample as the page keeps it: the parsed report, its JSON as
// the worker wrote it (exported unchanged) and the worker that computed it.
type Sample struct {
	R      SampleReport
	Raw    json.RawMessage
	Worker int
}

// MinMargin is the smallest margin lower bound (the sample is verified when it is
// positive and the prediction is right).
func (s SampleReport) MinMargin() float64 {
	m := math.Inf(1)
	for _, v := range s.MarginLB {
		m = math.Min(m, v)
	}
	return m
}

// Verdict is the word the results table shows.
func (s SampleReport) Verdict() string {
	switch {
	case s.Result != "":
		return s.Result
	case s.Pred != s.Label:
		return "misclassified"
	case s.Verified:
		return "verified"
	}
	return "not verified"
}

// reportJSON writes the run as `graftcert bounds --json` does (same keys, order and
// indentation), with each sample's JSON exactly as the worker produced it.
func reportJSON(model, method string, eps float64, samples []Sample, seconds float64) (string, error) {
	type report struct {
		Model    string            `json:"model"`
		Method   string            `json:"method"`
		Eps      float64           `json:"eps"`
		Verified int               `json:"verified"`
		Total    int               `json:"total"`
		Seconds  float64           `json:"seconds"`
		Samples  []json.RawMessage `json:"samples"`
	}
	r := report{Model: model, Method: method, Eps: eps, Total: len(samples), Seconds: seconds,
		Samples: make([]json.RawMessage, len(samples))}
	for i, s := range samples {
		if s.R.Verified {
			r.Verified++
		}
		r.Samples[i] = s.Raw
	}
	b, err := json.Marshal(r)
	if err != nil {
		return "", err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return "", err
	}
	out.WriteByte('\n')
	return out.String(), nil
}

// verifyReportJSON writes a complete-verification run as `graftcert verify --data
// --json` does.
func verifyReportJSON(samples []Sample, seconds float64) (string, error) {
	type sample struct {
		Index          int       `json:"index"`
		Label          int       `json:"label"`
		Pred           int       `json:"pred"`
		Result         string    `json:"result"`
		Seconds        float64   `json:"seconds"`
		Counterexample []float64 `json:"counterexample"`
	}
	type report struct {
		Verified      int      `json:"verified"`
		Falsified     int      `json:"falsified"`
		Unknown       int      `json:"unknown"`
		Misclassified int      `json:"misclassified"`
		Total         int      `json:"total"`
		Seconds       float64  `json:"seconds"`
		Samples       []sample `json:"samples"`
	}
	r := report{Total: len(samples), Seconds: seconds, Samples: make([]sample, len(samples))}
	for i, s := range samples {
		switch s.R.Result {
		case "verified":
			r.Verified++
		case "falsified":
			r.Falsified++
		case "misclassified":
			r.Misclassified++
		default:
			r.Unknown++
		}
		r.Samples[i] = sample{s.R.Index, s.R.Label, s.R.Pred, s.R.Result, s.R.Seconds, s.R.Counterexample}
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", err
	}
	return string(b) + "\n", nil
}

// Summary is a model summary as the worker sends it (worker.Summary).
type Summary struct {
	Name           string         `json:"name"`
	Bytes          int            `json:"bytes"`
	Producer       string         `json:"producer"`
	Opset          int64          `json:"opset"`
	Ops            map[string]int `json:"ops"`
	Input          []int          `json:"input"`
	Classes        int            `json:"classes"`
	Params         int            `json:"params"`
	ReLUs          int            `json:"relus"`
	Grafted        int            `json:"grafted"`
	Layers         []LayerInfo    `json:"layers"`
	EstimatedBytes int64          `json:"estimatedBytes"`
	AlphaBytes     int64          `json:"alphaBytes"`
	LimitBytes     int64          `json:"limitBytes"`
}

// LayerInfo is one row of the model summary.
type LayerInfo struct {
	Name    string `json:"name"`
	Kind    string `json:"kind"`
	Out     []int  `json:"out"`
	Params  int    `json:"params"`
	Neurons int    `json:"neurons"`
	Grafted int    `json:"grafted"`
}

// ActivationLayers lists the activation layers (the ones unstable counts refer to).
func (s *Summary) ActivationLayers() []LayerInfo {
	var out []LayerInfo
	for _, l := range s.Layers {
		if l.Neurons > 0 {
			out = append(out, l)
		}
	}
	return out
}

// ShapeString prints a shape as (1,28,28).
func ShapeString(s []int) string {
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = fmt.Sprint(d)
	}
	return "(" + strings.Join(parts, ",") + ")"
}

// FormatBytes prints a byte count in binary units.
func FormatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, u := float64(n), "B"
	for _, s := range []string{"KiB", "MiB", "GiB", "TiB"} {
		if v < unit {
			break
		}
		v, u = v/unit, s
	}
	return fmt.Sprintf("%.1f %s", v, u)
}

// FormatCount prints an integer with thousands separators.
func FormatCount(n int) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return "-" + FormatCount(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// Percent prints k/n as a percentage with one decimal.
func Percent(k, n int) string {
	if n == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(k)/float64(n))
}

// Stats summarises finished samples.
type Stats struct {
	Total, Verified, Correct int
	// MeanUnstable is the mean number of unstable neurons per activation layer.
	MeanUnstable []float64
	MeanSeconds  float64
}

// Summarize computes Stats over the finished samples.
func Summarize(samples []Sample) Stats {
	var st Stats
	for _, s := range samples {
		st.Total++
		if s.R.Verified {
			st.Verified++
		}
		if s.R.Pred == s.R.Label {
			st.Correct++
		}
		for j, u := range s.R.Unstable {
			for len(st.MeanUnstable) <= j {
				st.MeanUnstable = append(st.MeanUnstable, 0)
			}
			st.MeanUnstable[j] += float64(u)
		}
		st.MeanSeconds += s.R.Seconds
	}
	if st.Total > 0 {
		for j := range st.MeanUnstable {
			st.MeanUnstable[j] /= float64(st.Total)
		}
		st.MeanSeconds /= float64(st.Total)
	}
	return st
}

// TotalUnstable is the sum of MeanUnstable over layers.
func (st Stats) TotalUnstable() float64 {
	t := 0.0
	for _, u := range st.MeanUnstable {
		t += u
	}
	return t
}
