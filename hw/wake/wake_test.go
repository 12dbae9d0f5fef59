package wake

import (
	"testing"
	"testing/synctest"
	"time"
)

func TestNext(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse("15:04:05.000", s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, c := range []struct {
		now  string
		d    time.Duration
		want string
	}{
		{"10:00:00.000", time.Second, "10:00:01.000"},
		{"10:00:00.300", time.Second, "10:00:01.000"},
		{"10:00:00.600", time.Second, "10:00:01.000"},
		{"10:00:00.990", time.Second, "10:00:02.000"}, // a timer firing just early
		{"10:00:03.000", 5 * time.Second, "10:00:05.000"},
		{"10:00:04.999", 5 * time.Second, "10:00:10.000"},
		{"10:00:00.050", 200 * time.Millisecond, "10:00:00.200"},
		{"10:00:00.190", 200 * time.Millisecond, "10:00:00.400"},
	} {
		if got := Next(at(c.now), c.d).Format("15:04:05.000"); got != c.want {
			t.Errorf("Next(%s, %v) = %s, want %s", c.now, c.d, got, c.want)
		}
	}
}

// Tickers started at different moments, of 1 s and 5 s, tick on the same
// instants: whole seconds; the 5 s one on every fifth.
func TestTickersShareTheBeat(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		time.Sleep(123 * time.Millisecond)
		one := NewTicker(time.Second)
		defer one.Stop()
		time.Sleep(2345 * time.Millisecond)
		five := NewTicker(5 * time.Second)
		defer five.Stop()
		var ones, fives []time.Time
		for len(fives) < 3 {
			select {
			case v := <-one.C:
				ones = append(ones, v)
			case v := <-five.C:
				fives = append(fives, v)
			}
		}
		for _, v := range append(ones, fives...) {
			if v.Truncate(time.Second) != v {
				t.Errorf("tick at %v, not on a whole second", v.Format("15:04:05.000"))
			}
		}
		for _, v := range fives {
			if v.Second()%5 != 0 {
				t.Errorf("5 s tick at %v", v.Format("15:04:05.000"))
			}
		}
		if len(ones) < 10 {
			t.Errorf("%d 1 s ticks beside three 5 s ones", len(ones))
		}
	})
}

// Stop: no tick afterwards; Reset: the new period, on its beat.
func TestStopAndReset(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		k := NewTicker(time.Second)
		<-k.C
		k.Stop()
		time.Sleep(3 * time.Second)
		select {
		case v := <-k.C:
			t.Fatalf("tick at %v after Stop", v)
		default:
		}
		time.Sleep(500 * time.Millisecond)
		k.Reset(2 * time.Second)
		v := <-k.C
		if v.Second()%2 != 0 || v.Truncate(time.Second) != v {
			t.Errorf("after Reset(2s), tick at %v", v.Format("15:04:05.000"))
		}
		k.Stop()
	})
}
