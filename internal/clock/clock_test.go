package clock

import (
	"testing"
	"time"
)

func TestFakeTimersFireInOrderWhenDue(t *testing.T) {
	start := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	f := NewFake(start)
	t1 := f.NewTimer(2 * time.Second)
	t2 := f.NewTimer(time.Second)
	if next, ok := f.NextDeadline(); !ok || !next.Equal(start.Add(time.Second)) {
		t.Fatalf("NextDeadline = %v %v", next, ok)
	}
	f.Advance(500 * time.Millisecond)
	select {
	case <-t2.C():
		t.Fatal("t2 fired early")
	default:
	}
	f.Advance(500 * time.Millisecond)
	if got := <-t2.C(); !got.Equal(start.Add(time.Second)) {
		t.Fatalf("t2 fired at %v", got)
	}
	select {
	case <-t1.C():
		t.Fatal("t1 fired early")
	default:
	}
	if !t1.Stop() {
		t.Fatal("Stop of a pending timer = false")
	}
	f.Advance(time.Hour)
	select {
	case <-t1.C():
		t.Fatal("stopped timer fired")
	default:
	}
	t1.Reset(time.Minute)
	f.Advance(time.Minute)
	if got := <-t1.C(); !got.Equal(start.Add(time.Hour + time.Second + time.Minute)) {
		t.Fatalf("reset timer fired at %v", got)
	}
}

func TestFakeTimerChanged(t *testing.T) {
	f := NewFake(time.Unix(0, 0))
	ch := f.TimerChanged()
	go f.NewTimer(time.Second)
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("TimerChanged not signalled")
	}
	if f.NewTimer(0) == nil {
		t.Fatal("nil timer")
	}
}
