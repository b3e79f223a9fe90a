package chart

import (
	"bytes"
	"image"
	"image/png"
	"testing"
	"time"
)

// columns returns the leftmost and rightmost x of pixels close to the latency colour,
// and whether column x holds any.
func latencyColumns(t *testing.T, b []byte) (left, right int, has func(x int) bool) {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	bd := img.Bounds()
	cols := map[int]bool{}
	left, right = bd.Max.X, -1
	for x := bd.Min.X; x < bd.Max.X; x++ {
		for y := bd.Min.Y; y < bd.Max.Y/2; y++ { // the upper panel
			r, g, bl, _ := img.At(x, y).RGBA()
			if near(r>>8, latencyColor.R) && near(g>>8, latencyColor.G) && near(bl>>8, latencyColor.B) {
				cols[x] = true
				left, right = min(left, x), max(right, x)
				break
			}
		}
	}
	return left, right, func(x int) bool { return cols[x] }
}

// TestTwoMinutesOfDataFillTheChart: a service watched for two minutes is drawn across
// the chart, not squeezed into the right edge of a half-hour axis.
func TestTwoMinutesOfDataFillTheChart(t *testing.T) {
	t.Parallel()
	var pts []Point
	for i := range 120 {
		pts = append(pts, Point{At: detected.Add(time.Duration(i-100) * time.Second), P95Ms: 100 + float64(i%7)*40, ErrorRate: 0.01})
	}
	b, err := Render(Series{Title: "checkout", Points: pts, DetectedAt: detected})
	if err != nil {
		t.Fatal(err)
	}
	left, right, _ := latencyColumns(t, b)
	if right-left < Width*6/10 {
		t.Fatalf("two minutes of data span %d of %d pixels: the axis is wider than the data", right-left, Width)
	}
	from, to := Span(pts[0].At, pts[len(pts)-1].At, nil)
	if span, data := to.Sub(from), pts[len(pts)-1].At.Sub(pts[0].At); span > data+data/10+4*time.Second {
		t.Fatalf("axis %v for %v of data", span, data)
	}
}

// TestAGapIsLeftBlank: a minute without readings is not drawn as a straight line.
func TestAGapIsLeftBlank(t *testing.T) {
	t.Parallel()
	var pts []Point
	for i := range 180 {
		if i >= 60 && i < 120 {
			continue // nothing was measured for a minute
		}
		pts = append(pts, Point{At: detected.Add(time.Duration(i) * time.Second), P95Ms: 500, ErrorRate: 0.01})
	}
	b, err := Render(Series{Title: "checkout", Points: pts})
	if err != nil {
		t.Fatal(err)
	}
	left, right, has := latencyColumns(t, b)
	mid := (left + right) / 2
	for x := mid - 10; x <= mid+10; x++ {
		if has(x) {
			t.Fatalf("column %d, in the middle of the minute without data, is drawn", x)
		}
	}
	if !has(left+20) || !has(right-20) {
		t.Fatal("the data on both sides of the gap is not drawn")
	}
}

// TestASmallChartIsRenderedAtItsSize: the console's side chart is drawn at the size it is
// shown, so its text keeps its size instead of shrinking with the image.
func TestASmallChartIsRenderedAtItsSize(t *testing.T) {
	t.Parallel()
	b, err := Render(Series{Title: "checkout", Points: spike(), DetectedAt: detected, Width: 320, Height: 240})
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if got := img.Bounds().Size(); got != image.Pt(320, 240) {
		t.Fatalf("image is %v, want 320x240", got)
	}
}

// TestANarrowChartGetsFewerTimeLabels: labels never crowd each other out.
func TestANarrowChartGetsFewerTimeLabels(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		span  time.Duration
		width int
	}{{30 * time.Second, 320}, {30 * time.Second, 800}, {2 * time.Minute, 320}, {30 * time.Minute, 800}, {5 * time.Minute, 320}} {
		step := tickStep(tc.span, max(2, tc.width/labelWidth))
		if labels := int(tc.span / step); (labels+1)*labelWidth > tc.width+labelWidth {
			t.Errorf("%v over %d px: a label every %v gives %d labels of %d px", tc.span, tc.width, step, labels+1, labelWidth)
		}
	}
}
