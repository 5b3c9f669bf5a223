package experiment

import (
	"bytes"
	"errors"
	"fmt"
	"image/color"
	"math"
	"os"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

// Colours: one per model kind, so both figures read alike.
var (
	colBaseline = color.RGBA{R: 90, G: 90, B: 90, A: 255}
	colPruned   = color.RGBA{R: 214, G: 96, B: 77, A: 255}
	colGrafted  = color.RGBA{R: 44, G: 123, B: 182, A: 255}
)

// series returns the (ratio, value) points of a kind, the baseline as ratio 0 (nothing is
// grafted or pruned there), skipping rows where value reports no measurement.
func series(res *Result, kind string, value func(*Row) (float64, bool)) plotter.XYs {
	var pts plotter.XYs
	if b := res.Find("baseline", 0); b != nil {
		if v, ok := value(b); ok {
			pts = append(pts, plotter.XY{X: 0, Y: v})
		}
	}
	for i := range res.Rows {
		r := &res.Rows[i]
		if r.Kind != kind {
			continue
		}
		if v, ok := value(r); ok {
			pts = append(pts, plotter.XY{X: r.Ratio, Y: v})
		}
	}
	return pts
}

// VerifiedPlot draws verified accuracy (every verifier the run has) and clean accuracy
// against the ratio for grafted and pruned models into an SVG file.
func VerifiedPlot(res *Result, path string) error {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%s, MNIST, ε = %g", res.Arch, res.Eps)
	p.X.Label.Text = "ratio of neurons grafted / pruned (0 = baseline)"
	p.Y.Label.Text = "accuracy on the test images (%)"
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = 0, 1, 0, 100
	if k := len(res.Protocol.Ratios); k > 0 {
		p.X.Max = math.Min(1, math.Ceil(10*res.Protocol.Ratios[k-1]+0.5)/10)
	}
	leg := plot.NewLegend()
	p.Add(plotter.NewGrid())
	type metric struct {
		name  string
		dash  []vg.Length
		shape draw.GlyphDrawer
		value func(*Row) (float64, bool)
	}
	metrics := []metric{
		{"clean", []vg.Length{vg.Points(1), vg.Points(3)}, draw.CircleGlyph{}, func(r *Row) (float64, bool) { return 100 * r.Clean.Rate(), r.Clean.Total > 0 }},
		{"verified, CROWN", []vg.Length{vg.Points(6), vg.Points(3)}, draw.TriangleGlyph{}, func(r *Row) (float64, bool) { return 100 * r.CROWN.Rate(), r.CROWN != nil }},
		{"verified, α-CROWN", []vg.Length{vg.Points(8), vg.Points(2), vg.Points(2), vg.Points(2)}, draw.SquareGlyph{}, func(r *Row) (float64, bool) { return 100 * r.Alpha.Rate(), r.Alpha != nil }},
		{"verified, complete", nil, draw.PyramidGlyph{}, func(r *Row) (float64, bool) { return 100 * r.Complete.Rate(), r.Complete != nil }},
	}
	n := 0
	for _, kind := range []string{"grafted", "pruned"} {
		col := colGrafted
		if kind == "pruned" {
			col = colPruned
		}
		for _, m := range metrics {
			pts := series(res, kind, m.value)
			if len(pts) == 0 {
				continue
			}
			l, s, err := plotter.NewLinePoints(pts)
			if err != nil {
				return fmt.Errorf("experiment: plot: %w", err)
			}
			l.Color, l.Dashes, l.Width = col, m.dash, vg.Points(1.2)
			s.Color, s.Shape, s.Radius = col, m.shape, vg.Points(2.5)
			p.Add(l, s)
			leg.Add(kind+", "+m.name, l, s)
			n++
		}
	}
	if n == 0 {
		return errors.New("experiment: plot: no measurements to draw")
	}
	return saveSVG(p, &leg, 8.8*vg.Inch, 4.5*vg.Inch, path)
}

// UnstablePlot draws, per activation layer, the mean number of CROWN-unstable neurons of
// the baseline and of the grafted and pruned models (at most three ratios of each, those
// nearest 0.3, 0.5 and 0.7) as grouped bars into an SVG file.
func UnstablePlot(res *Result, path string) error {
	var rows []*Row
	if b := res.Find("baseline", 0); b != nil && b.CROWN != nil {
		rows = append(rows, b)
	}
	for _, kind := range []string{"pruned", "grafted"} {
		seen := map[*Row]bool{}
		want := []float64{0.3, 0.5, 0.7}
		if kind == "pruned" {
			want = []float64{0.5}
		}
		for _, r := range want {
			if row := nearest(res, kind, r); row != nil && row.CROWN != nil && !seen[row] {
				seen[row] = true
				rows = append(rows, row)
			}
		}
	}
	if len(rows) == 0 || len(res.Layers) == 0 {
		return errors.New("experiment: plot: no CROWN measurements to draw")
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Unstable neurons under CROWN, %s, ε = %g (mean per test image)", res.Arch, res.Eps)
	p.Y.Label.Text = "unstable neurons"
	p.Y.Min = 0
	leg := plot.NewLegend()
	p.Add(plotter.NewGrid())
	top := 0.0
	width := vg.Points(math.Max(4, math.Min(14, 60/float64(len(rows)))))
	for k, r := range rows {
		vals := make(plotter.Values, len(res.Layers))
		copy(vals, r.CROWN.Unstable)
		bars, err := plotter.NewBarChart(vals, width)
		if err != nil {
			return fmt.Errorf("experiment: plot: %w", err)
		}
		bars.LineStyle.Width = 0
		bars.Color = shade(r)
		bars.Offset = vg.Length(float64(k)-float64(len(rows)-1)/2) * width
		p.Add(bars)
		label := r.Kind
		if r.Kind != "baseline" {
			label = fmt.Sprintf("%s %g", r.Kind, r.Ratio)
		}
		leg.Add(label, bars)
		for _, v := range vals {
			top = math.Max(top, v)
		}
	}
	p.NominalX(res.Layers...)
	// Room for the outer bars of the first and last groups, and above the tallest bar.
	p.X.Min, p.X.Max = -0.6, float64(len(res.Layers))-0.4
	p.Y.Max = math.Max(1, top*1.08)
	return saveSVG(p, &leg, 8.8*vg.Inch, 4.5*vg.Inch, path)
}

// shade colours a bar by kind, lighter for lower ratios.
func shade(r *Row) color.Color {
	switch r.Kind {
	case "baseline":
		return colBaseline
	case "pruned":
		return colPruned
	}
	f := 1 - r.Ratio // 0.7 → darkest
	mix := func(c uint8) uint8 { return uint8(float64(c) + (255-float64(c))*f*0.8) }
	return color.RGBA{R: mix(colGrafted.R), G: mix(colGrafted.G), B: mix(colGrafted.B), A: 255}
}

// legendWidth is the strip right of the plot area that holds the legend.
const legendWidth = 2.6 * vg.Inch

// saveSVG draws p with leg to the right of it (legends inside the plot area hide data).
func saveSVG(p *plot.Plot, leg *plot.Legend, w, h vg.Length, path string) error {
	c := vgsvg.New(w, h)
	dc := draw.New(c)
	p.Draw(draw.Crop(dc, 0, -legendWidth, 0, 0))
	leg.Top, leg.Left = true, true
	leg.YOffs = -p.Title.TextStyle.Height(p.Title.Text) - p.Title.Padding
	leg.Draw(draw.Crop(dc, w-legendWidth+vg.Points(6), 0, 0, 0))
	var buf bytes.Buffer
	if _, err := c.WriteTo(&buf); err != nil {
		return fmt.Errorf("experiment: plot: %w", err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("experiment: %w", err)
	}
	return nil
}
