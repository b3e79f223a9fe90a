// Package chart renders the picture on an incident card: a service's p95 latency and 5xx
// error rate over the last half hour, with the moment the incident was detected marked,
// as a PNG the chat adapters attach to the card.
//
// It draws with gonum.org/v1/plot (vg/vgimg) in-process: no external renderer, no network.
package chart

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"image"
	"image/color"
	"math"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Size of the rendered image in pixels.
const (
	Width  = 800
	Height = 400
)

// Window is how much history the chart shows, ending at the newest point.
const Window = 30 * time.Minute

// maxTitle bounds the title, in characters, so that a hostile or careless one cannot
// push the panels off the image.
const maxTitle = 80

// ErrNoPoints: nothing in the series can be plotted.
var ErrNoPoints = errors.New("chart: no points to plot")

// Point is one observation of a service.
type Point struct {
	At time.Time
	// P95Ms is the 95th percentile latency in milliseconds.
	P95Ms float64
	// ErrorRate is the share of 5xx responses, a fraction from 0 to 1 (as the SDK reports
	// it); the chart shows it as a percentage.
	ErrorRate float64
}

// Series is what one chart shows.
type Series struct {
	// Title is shown above the panels (typically "checkout — INC-7F3"). It is plain text.
	Title  string
	Points []Point
	// DetectedAt, when inside the window, is marked on both panels.
	DetectedAt time.Time
	// Window is the most history shown, ending at the newest point; default Window.
	// The time axis spans the points that exist within it (a demo with two minutes of
	// data shows two minutes), with a small margin.
	Window time.Duration
	// Width and Height of the image in pixels; default Width×Height. Text keeps its size,
	// so a small chart stays legible shown at its own size.
	Width, Height int
}

// Minimal sizes of an image.
const (
	minWidth  = 200
	minHeight = 150
)

var (
	latencyColor  = color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}
	errorColor    = color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}
	detectedColor = color.RGBA{R: 0x94, G: 0x67, B: 0xbd, A: 0xff}
)

// Render draws s as a PNG (Width×Height unless s says otherwise): p95 latency (ms) in
// the upper panel, 5xx error rate (%) in the lower one, both over the points within the
// Window that ends at the newest one, with a dashed line where the incident was
// detected. A stretch without points (longer than gapAfter the usual spacing) is left
// blank, not bridged by a straight line. Points that are not finite numbers are left
// out; a series with nothing left to plot is ErrNoPoints.
func Render(s Series) ([]byte, error) {
	pts := usable(s.Points)
	if len(pts) == 0 {
		return nil, ErrNoPoints
	}
	end := pts[0].At
	for _, p := range pts {
		if p.At.After(end) {
			end = p.At
		}
	}
	window := s.Window
	if window <= 0 {
		window = Window
	}
	start := end.Add(-window)
	var latency, errs plotter.XYs
	first := end
	for _, p := range pts {
		if p.At.Before(start) {
			continue
		}
		if p.At.Before(first) {
			first = p.At
		}
		x := unixSeconds(p.At)
		latency = append(latency, plotter.XY{X: x, Y: p.P95Ms})
		errs = append(errs, plotter.XY{X: x, Y: 100 * p.ErrorRate})
	}
	sortByX(latency)
	sortByX(errs)

	var marker *time.Time
	if !s.DetectedAt.IsZero() && !s.DetectedAt.Before(start) && !s.DetectedAt.After(end) {
		marker = &s.DetectedAt
	}
	from, to := Span(first, end, marker)

	w, h := s.Width, s.Height
	if w <= 0 || h <= 0 {
		w, h = Width, Height
	}
	w, h = max(w, minWidth), max(h, minHeight)
	top, err := panel(latency, "p95 (ms)", latencyColor, from, to, marker, w)
	if err != nil {
		return nil, fmt.Errorf("chart: latency panel: %w", err)
	}
	top.Title.Text = cleanTitle(s.Title)
	top.X.Tick.Label.Color = color.Transparent // the lower panel carries the times
	bottom, err := panel(errs, "5xx errors (%)", errorColor, from, to, marker, w)
	if err != nil {
		return nil, fmt.Errorf("chart: error panel: %w", err)
	}
	bottom.X.Label.Text = "time (UTC)"

	img := image.NewRGBA(image.Rect(0, 0, w, h))
	c := vgimg.NewWith(vgimg.UseImage(img))
	dc := draw.New(c)
	tiles := draw.Tiles{Rows: 2, Cols: 1, PadTop: vg.Points(4), PadBottom: vg.Points(4), PadLeft: vg.Points(6), PadRight: vg.Points(12)}
	canvases := plot.Align([][]*plot.Plot{{top}, {bottom}}, tiles, dc)
	top.Draw(canvases[0][0])
	bottom.Draw(canvases[1][0])

	var buf bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: c}).WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("chart: encode png: %w", err)
	}
	return buf.Bytes(), nil
}

// Span is the time axis of a chart whose points run from first to last (and whose
// detection marker, if any, is within them): the points' span and a margin of 5% on
// each side (at least 2 s; a lone point gets a minute around it).
func Span(first, last time.Time, marker *time.Time) (from, to time.Time) {
	if marker != nil && marker.Before(first) {
		first = *marker
	}
	if marker != nil && marker.After(last) {
		last = *marker
	}
	span := last.Sub(first)
	if span <= 0 {
		return first.Add(-30 * time.Second), last.Add(30 * time.Second)
	}
	margin := max(span/20, 2*time.Second)
	return first.Add(-margin), last.Add(margin)
}

// gapAfter: consecutive points further apart than gapAfter times the usual spacing (the
// median one, at least a second) are not joined.
const gapAfter = 3

// segments splits xys (sorted by X) where the data has a gap.
func segments(xys plotter.XYs) []plotter.XYs {
	if len(xys) < 2 {
		return []plotter.XYs{xys}
	}
	steps := make([]float64, 0, len(xys)-1)
	for i := 1; i < len(xys); i++ {
		steps = append(steps, xys[i].X-xys[i-1].X)
	}
	slices.Sort(steps)
	limit := gapAfter * math.Max(steps[len(steps)/2], 1)
	var out []plotter.XYs
	begin := 0
	for i := 1; i < len(xys); i++ {
		if xys[i].X-xys[i-1].X > limit {
			out = append(out, xys[begin:i])
			begin = i
		}
	}
	return append(out, xys[begin:])
}

// panel builds one plot: a line over [start, end] and, when marker is set, the
// detection line.
func panel(xys plotter.XYs, label string, c color.Color, start, end time.Time, marker *time.Time, width int) (*plot.Plot, error) {
	p := plot.New()
	p.Y.Label.Text = label
	p.X.Min, p.X.Max = unixSeconds(start), unixSeconds(end)
	step := tickStep(end.Sub(start), max(2, width/labelWidth))
	format := "15:04"
	if step < time.Minute {
		format = "15:04:05"
	}
	p.X.Tick.Marker = plot.TimeTicks{Ticker: clockTicks{step: step}, Format: format}
	p.Y.Min = 0
	maxY := 0.0
	for _, xy := range xys {
		maxY = math.Max(maxY, xy.Y)
	}
	if maxY <= 0 {
		maxY = 1
	}
	p.Y.Max = maxY * 1.25 // headroom for the detection label
	p.Add(plotter.NewGrid())

	for _, seg := range segments(xys) {
		if len(seg) == 1 { // a line needs two points; show a lone one as a dot
			dot, err := plotter.NewScatter(seg)
			if err != nil {
				return nil, fmt.Errorf("point: %w", err)
			}
			dot.Color = c
			dot.Shape = draw.CircleGlyph{}
			dot.Radius = vg.Points(3)
			p.Add(dot)
			continue
		}
		line, err := plotter.NewLine(seg)
		if err != nil {
			return nil, fmt.Errorf("line: %w", err)
		}
		line.Color = c
		line.Width = vg.Points(2)
		p.Add(line)
	}

	if marker != nil {
		x := unixSeconds(*marker)
		mark, err := plotter.NewLine(plotter.XYs{{X: x, Y: 0}, {X: x, Y: p.Y.Max}})
		if err != nil {
			return nil, fmt.Errorf("detection marker: %w", err)
		}
		mark.Color = detectedColor
		mark.Width = vg.Points(1.5)
		mark.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
		p.Add(mark)
		labels, err := plotter.NewLabels(plotter.XYLabels{
			XYs:    plotter.XYs{{X: x, Y: p.Y.Max}},
			Labels: []string{" detected " + marker.UTC().Format("15:04")},
		})
		if err != nil {
			return nil, fmt.Errorf("detection label: %w", err)
		}
		for i := range labels.TextStyle {
			labels.TextStyle[i].Color = detectedColor
			labels.TextStyle[i].YAlign = draw.YTop
		}
		p.Add(labels)
	}
	return p, nil
}

// usable drops points without a time or with a value that is not a finite number, and
// clamps negative values (which no measurement can have) to zero.
func usable(points []Point) []Point {
	var out []Point
	for _, p := range points {
		if p.At.IsZero() || !finite(p.P95Ms) || !finite(p.ErrorRate) {
			continue
		}
		p.P95Ms = math.Max(p.P95Ms, 0)
		p.ErrorRate = math.Max(p.ErrorRate, 0)
		out = append(out, p)
	}
	return out
}

// labelWidth is the room, in pixels, one time label needs on the axis ("15:04:05" and a
// gap), so a narrow chart gets fewer labels rather than overlapping ones.
const labelWidth = 120

// tickStep is the spacing of labelled ticks for an axis of span d: the smallest clock
// step that gives at most n labels.
func tickStep(d time.Duration, n int) time.Duration {
	for _, s := range []time.Duration{5 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second, time.Minute,
		2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute} {
		if int(d/s) <= n-1 {
			return s
		}
	}
	return time.Hour
}

// clockTicks puts a labelled tick every step, on whole multiples of it, and a small one
// every fifth of it, so the time axis reads like a clock.
type clockTicks struct{ step time.Duration }

func (c clockTicks) Ticks(minX, maxX float64) []plot.Tick {
	major := c.step.Seconds()
	minor := major / 5
	var ticks []plot.Tick
	for m := math.Ceil(minX / minor); m*minor <= maxX; m++ {
		t := plot.Tick{Value: m * minor}
		if math.Mod(m, 5) == 0 {
			t.Label = "major" // TimeTicks replaces a non-empty label with the formatted time
		}
		ticks = append(ticks, t)
	}
	return ticks
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

func unixSeconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

func sortByX(xys plotter.XYs) {
	slices.SortStableFunc(xys, func(a, b plotter.XY) int { return cmp.Compare(a.X, b.X) })
}

// cleanTitle makes a title safe to draw on one line: invalid UTF-8 replaced, control
// characters (newlines included) turned into spaces, runs of spaces collapsed, and the
// result cut to maxTitle characters with an ellipsis.
func cleanTitle(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Zl, r) || unicode.Is(unicode.Zp, r) {
			return ' '
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) > maxTitle {
		r := []rune(s)
		s = strings.TrimSpace(string(r[:maxTitle-1])) + "…"
	}
	return s
}
