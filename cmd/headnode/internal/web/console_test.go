package web

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/headnode/headnode/cmd/headnode/internal/api"
)

// The page shows the last console lines of a node that is not coming up,
// and only of such a node, escaped as HTML.
func TestPageShowsTheConsoleOfAStuckNode(t *testing.T) {
	now := time.Now()
	s := &api.Status{Consoles: api.Consoles{State: api.ConsolesCapturing, Nodes: []api.NodeConsole{
		{Name: "p1", Device: "/dev/ttyACM0", State: "open", Lines: []api.ConsoleLine{{Time: now, Text: "p1 is fine"}}},
		{Name: "p2", Device: "/dev/ttyACM1", State: "open", Attention: true, Lines: []api.ConsoleLine{
			{Time: now, Text: "console /dev/ttyACM1 opened", Event: true},
			{Time: now, Text: "Kernel panic - not syncing: <script>alert(1)</script>"},
		}},
	}}}
	rec := httptest.NewRecorder()
	Handler(func() *api.Status { return s }).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	page := rec.Body.String()
	for _, want := range []string{"p2 is not coming up; the last lines of its console:", "-- console /dev/ttyACM1 opened --", "Kernel panic - not syncing: &lt;script&gt;alert(1)&lt;/script&gt;", "/dev/ttyACM0"} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	for _, bad := range []string{"p1 is fine", "<script>alert"} {
		if strings.Contains(page, bad) {
			t.Errorf("the page shows %q", bad)
		}
	}
}
