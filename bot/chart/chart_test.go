package chart

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/png"
	"math"
	"strings"
	"testing"
	"time"
)

var detected = time.Date(2026, 11, 27, 9, 40, 0, 0, time.UTC)

// spike is 40 minutes of one-minute points: healthy, then p95 and errors jump at detection.
func spike() []Point {
	var pts []Point
	for i := -30; i <= 10; i++ {
		p := Point{At: detected.Add(time.Duration(i) * time.Minute), P95Ms: 180, ErrorRate: 0.004}
		if i >= 0 {
			p.P95Ms, p.ErrorRate = 2800, 0.19
		}
		pts = append(pts, p)
	}
	return pts
}

func decode(t *testing.T, b []byte) image.Image {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("output is not a PNG: %v", err)
	}
	if got := img.Bounds().Size(); got != image.Pt(Width, Height) {
		t.Fatalf("image is %v, want %dx%d", got, Width, Height)
	}
	return img
}

// countColor counts pixels close to c.
func countColor(img image.Image, c color.RGBA) int {
	n := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if near(r>>8, c.R) && near(g>>8, c.G) && near(bl>>8, c.B) {
				n++
			}
		}
	}
	return n
}

func near(v uint32, want uint8) bool { return math.Abs(float64(v)-float64(want)) < 24 }

func TestRender(t *testing.T) {
	tests := []struct {
		name   string
		series Series
		// wantMarker says whether the detection line must be drawn.
		wantMarker bool
	}{
		{"incident", Series{Title: "checkout — INC-7F3", Points: spike(), DetectedAt: detected}, true},
		{"no detection time", Series{Title: "checkout", Points: spike()}, false},
		{"detection outside the window", Series{Title: "checkout", Points: spike(), DetectedAt: detected.Add(-2 * time.Hour)}, false},
		{"single point", Series{Title: "checkout", Points: []Point{{At: detected, P95Ms: 900, ErrorRate: 0.5}}, DetectedAt: detected}, true},
		{"all zero", Series{Title: "idle", Points: []Point{{At: detected}, {At: detected.Add(time.Minute)}}}, false},
		{"out of order and not finite points", Series{Title: "checkout", Points: append([]Point{
			{At: detected.Add(3 * time.Minute), P95Ms: math.NaN(), ErrorRate: 0.1},
			{At: detected.Add(4 * time.Minute), P95Ms: 100, ErrorRate: math.Inf(1)},
		}, reversed(spike())...), DetectedAt: detected}, true},
		{"hostile title", Series{
			Title:  "<b>x</b><script>alert(1)</script> &amp; \x00\x1b[31m\n\u202eRTL مرحبا שלום 🔥🚨 " + strings.Repeat("W", 5000) + "\xff\xfe",
			Points: spike(), DetectedAt: detected,
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Render(tt.series)
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			img := decode(t, b)
			if n := countColor(img, latencyColor); n < 30 {
				t.Errorf("latency line: %d pixels of its colour, want a visible line", n)
			}
			if n := countColor(img, errorColor); n < 30 {
				t.Errorf("error-rate line: %d pixels of its colour, want a visible line", n)
			}
			marker := countColor(img, detectedColor)
			if tt.wantMarker && marker < 100 {
				t.Errorf("detection marker: %d pixels of its colour, want a dashed line on both panels", marker)
			}
			if !tt.wantMarker && marker > 40 {
				t.Errorf("detection marker drawn (%d pixels) though the detection is not in the window", marker)
			}
		})
	}
}

func reversed(p []Point) []Point {
	out := make([]Point, len(p))
	for i := range p {
		out[len(p)-1-i] = p[i]
	}
	return out
}

func TestRenderNothingToPlot(t *testing.T) {
	tests := []struct {
		name   string
		points []Point
	}{
		{"empty", nil},
		{"only NaN", []Point{{At: detected, P95Ms: math.NaN()}}},
		{"no times", []Point{{P95Ms: 100, ErrorRate: 0.1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Render(Series{Title: "checkout", Points: tt.points, DetectedAt: detected})
			if !errors.Is(err, ErrNoPoints) {
				t.Fatalf("Render = %d bytes, %v; want ErrNoPoints", len(b), err)
			}
		})
	}
}

func TestRenderShowsOnlyTheLastHalfHour(t *testing.T) {
	// An enormous p95 two hours before the window must not squash the window's scale:
	// if it were plotted the healthy and the spike levels would be indistinguishable.
	old := Point{At: detected.Add(-2 * time.Hour), P95Ms: 1e9, ErrorRate: 0.9}
	with, err := Render(Series{Title: "checkout", Points: append([]Point{old}, spike()...), DetectedAt: detected})
	if err != nil {
		t.Fatal(err)
	}
	without, err := Render(Series{Title: "checkout", Points: spike(), DetectedAt: detected})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(with, without) {
		t.Error("a point older than the window changed the picture")
	}
}

func TestCleanTitle(t *testing.T) {
	tests := []struct{ in, want string }{
		{"checkout — INC-7F3", "checkout — INC-7F3"},
		{"a\nb\r\nc\td\x00e", "a b c d e"},
		{"bad \xff utf8", "bad \uFFFD utf8"},
		{strings.Repeat("x", 200), strings.Repeat("x", maxTitle-1) + "…"},
		{"   ", ""},
	}
	for _, tt := range tests {
		if got := cleanTitle(tt.in); got != tt.want {
			t.Errorf("cleanTitle(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
