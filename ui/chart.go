package main

import (
	"fmt"
	"math"
)

// The page draws its charts as SVG elements with presentation attributes only (x, y,
// width, height, class): the Content-Security-Policy allows no inline style.

// Bar is one bar of a chart, in SVG user units.
type Bar struct {
	X, Y, W, H float64
	Class      string // CSS class: "pos", "neg", "label", "s0", "s1"
	Text       string // value printed by the bar
	TextX      float64
	TextY      float64
	Tick       string // category label under or beside the bar
	TickX      float64
	TickY      float64
}

// Chart is an SVG chart: its size, bars and the zero line.
type Chart struct {
	Width, Height float64
	ZeroY         float64
	Bars          []Bar
	Title         string
}

// ViewBox is the chart's SVG viewBox attribute.
func (c Chart) ViewBox() string { return fmt.Sprintf("0 0 %g %g", c.Width, c.Height) }

// MarginChart draws the lower bound of each margin f_label − f_j, one bar per class j
// (the label's own slot is marked instead): above zero the class is ruled out, below
// it is not.
func MarginChart(s SampleReport, classes int) Chart {
	const (
		w, h           = 420.0, 190.0
		left, right    = 8.0, 8.0
		top, bottom    = 18.0, 30.0
		plotH          = h - top - bottom
		labelMinHeight = 2.0
	)
	c := Chart{Width: w, Height: h, Title: fmt.Sprintf("margin lower bounds, sample %d (label %d)", s.Index, s.Label)}
	if classes <= 0 {
		return c
	}
	values := make([]float64, classes)
	have := make([]bool, classes)
	r := 0
	for j := 0; j < classes; j++ {
		if j == s.Label {
			continue
		}
		if r < len(s.MarginLB) {
			values[j], have[j] = s.MarginLB[r], true
		}
		r++
	}
	lo, hi := 0.0, 0.0
	for j, v := range values {
		if have[j] {
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
	}
	if hi-lo < 1e-12 {
		hi = lo + 1
	}
	y := func(v float64) float64 { return top + (hi-v)/(hi-lo)*plotH }
	c.ZeroY = y(0)
	slot := (w - left - right) / float64(classes)
	for j := 0; j < classes; j++ {
		x := left + float64(j)*slot
		b := Bar{X: x + slot*0.15, W: slot * 0.7, Tick: fmt.Sprint(j), TickX: x + slot/2, TickY: h - 10}
		switch {
		case j == s.Label:
			b.Class, b.Y, b.H = "label", c.ZeroY-labelMinHeight, 2*labelMinHeight
			b.Text, b.TextX, b.TextY = "label", x+slot/2, c.ZeroY-6
		case have[j]:
			v := values[j]
			b.Y, b.H = y(math.Max(v, 0)), math.Abs(y(v)-y(0))
			b.Class = "neg"
			if v > 0 {
				b.Class = "pos"
			}
			b.Text, b.TextX = compact(v), x+slot/2
			if v > 0 {
				b.TextY = b.Y - 4
			} else {
				b.TextY = b.Y + b.H + 11
			}
		default:
			continue
		}
		c.Bars = append(c.Bars, b)
	}
	return c
}

// UnstableChart draws, per activation layer, the mean number of unstable neurons of
// each series (e.g. before and after grafting) as horizontal bars scaled to the
// layer's neuron count.
func UnstableChart(layers []LayerInfo, series ...[]float64) Chart {
	const (
		w, labelW, rowH, gap = 420.0, 120.0, 14.0, 8.0
	)
	n := len(series)
	if n == 0 {
		n = 1
	}
	h := float64(len(layers))*(float64(n)*rowH+gap) + gap
	c := Chart{Width: w, Height: h, Title: "unstable neurons per layer"}
	plotW := w - labelW - 70
	yy := gap
	for i, l := range layers {
		for k, s := range series {
			v := 0.0
			if i < len(s) {
				v = s[i]
			}
			frac := 0.0
			if l.Neurons > 0 {
				frac = math.Min(1, v/float64(l.Neurons))
			}
			b := Bar{X: labelW, Y: yy, W: math.Max(frac*plotW, 0.5), H: rowH - 2, Class: fmt.Sprintf("s%d", k),
				Text: fmt.Sprintf("%.1f / %d", v, l.Neurons), TextX: labelW + math.Max(frac*plotW, 0.5) + 4, TextY: yy + rowH - 4}
			if k == 0 {
				b.Tick, b.TickX, b.TickY = l.Name, labelW-6, yy+rowH-4
			}
			c.Bars = append(c.Bars, b)
			yy += rowH
		}
		yy += gap
	}
	return c
}

// compact prints a bound with three significant digits.
func compact(v float64) string {
	switch a := math.Abs(v); {
	case a == 0:
		return "0"
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	case a >= 0.01:
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.1e", v)
}
