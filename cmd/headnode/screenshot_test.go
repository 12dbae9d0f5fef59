package main

import (
	"image/png"
	"os"
	"testing"
)

// checkScreenshot asserts that a PNG was rendered at the window size and is
// not blank: the health banner, cards and text make many distinct colours.
func checkScreenshot(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot is not a PNG: %v", err)
	}
	b := img.Bounds()
	if b.Dx() != 1200 || b.Dy() != 900 {
		t.Errorf("screenshot is %dx%d, want 1200x900", b.Dx(), b.Dy())
	}
	colours := map[uint32]bool{}
	green := 0
	for y := b.Min.Y; y < b.Max.Y; y += 3 {
		for x := b.Min.X; x < b.Max.X; x += 3 {
			r, g, bl, _ := img.At(x, y).RGBA()
			colours[(r>>11)<<10|(g>>11)<<5|bl>>11] = true
			// The "ok" badge colour, #1b7f3b.
			if r>>8 < 0x40 && g>>8 > 0x60 && g>>8 < 0xa0 && bl>>8 < 0x60 {
				green++
			}
		}
	}
	if len(colours) < 20 {
		t.Errorf("screenshot has %d colours; the page did not render", len(colours))
	}
	if green == 0 {
		t.Error("screenshot shows no green ok badge")
	}
	t.Logf("screenshot %dx%d, %d distinct colours, %d ok-green samples", b.Dx(), b.Dy(), len(colours), green)
}
