package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/dontinterrupt/dontinterrupt/internal/presence"
	"github.com/dontinterrupt/dontinterrupt/internal/provider"
)

// poller is the reference strategy, what the peers do: every person's calendar is polled every
// interval (60 s) with events.list for the events happening now, and the status is written
// when what it should be changes: set (no expiration) when an event starts, set again when
// another event follows back to back, cleared when it ends. It writes the status only (no Do
// Not Disturb), keeps its people and tokens in memory, and simply tries again at its next poll
// after an error (a 429 included).
type poller struct {
	w        *world
	interval time.Duration
	now      func() time.Time
	states   []pollState
}

type pollState struct {
	p   *simPerson
	cur string // what we last wrote: "" (nothing), or kind:eventID
}

func newPoller(w *world, interval time.Duration) *poller {
	pl := &poller{w: w, interval: interval, now: w.cfg.now}
	pl.states = make([]pollState, len(w.people))
	for i, p := range w.people {
		pl.states[i] = pollState{p: p}
	}
	return pl
}

// phase is when in each interval the person is polled, in whole seconds (spread evenly).
func (pl *poller) phase(i int) time.Duration {
	secs := int(pl.interval / time.Second)
	return time.Duration(i*secs/max(len(pl.states), 1)) * time.Second
}

// due returns the indexes of the people polled at second t (a whole second).
func (pl *poller) due(t time.Time) []int {
	secs := int64(pl.interval / time.Second)
	s := t.Unix() % secs
	var out []int
	n := len(pl.states)
	// phase(i) = i*secs/n seconds: the i with floor(i*secs/n) == s.
	lo := int((s*int64(n) + secs - 1) / secs)
	hi := int(((s+1)*int64(n) + secs - 1) / secs)
	for i := lo; i < hi && i < n; i++ {
		out = append(out, i)
	}
	return out
}

type listedEvent struct {
	ID           string `json:"id"`
	Status       string `json:"status"`
	EventType    string `json:"eventType"`
	Transparency string `json:"transparency"`
}

// poll polls one person and writes their status if it changed.
func (pl *poller) poll(ctx context.Context, i int) error {
	st := &pl.states[i]
	p := st.p
	now := pl.now()
	if !now.Before(p.gExpiry.Add(-time.Minute)) {
		cred, err := pl.w.gc.Refresh(ctx, provider.Credential{AccessToken: p.gAccess, RefreshToken: p.gRefresh, Expiry: p.gExpiry}, now)
		if err != nil {
			return err
		}
		p.gAccess, p.gExpiry = cred.AccessToken, cred.Expiry
	}
	q := url.Values{
		"timeMin":      {now.UTC().Format(time.RFC3339)},
		"timeMax":      {now.Add(time.Second).UTC().Format(time.RFC3339)},
		"singleEvents": {"true"},
		"fields":       {"items(id,status,eventType,transparency)"},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, pl.w.gsrv.URL+"/calendar/v3/calendars/primary/events?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+p.gAccess)
	resp, err := pl.w.hc.Do(req)
	if err != nil {
		return err
	}
	var body struct {
		Items []listedEvent `json:"items"`
	}
	err = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("events.list: HTTP %d", resp.StatusCode)
	}
	want, status := "", presence.SlackStatus{}
	rank := 0
	for _, ev := range body.Items {
		if ev.Status == "cancelled" || ev.Transparency == "transparent" {
			continue
		}
		r, s := 1, presence.SlackStatus{Text: "In a meeting", Emoji: ":spiral_calendar_pad:"}
		switch ev.EventType {
		case "outOfOffice":
			r, s = 3, presence.SlackStatus{Text: "Out of office", Emoji: ":palm_tree:"}
		case "focusTime":
			r, s = 2, presence.SlackStatus{Text: "Focusing", Emoji: ":headphones:"}
		}
		if r > rank {
			rank, want, status = r, ev.EventType+":"+ev.ID, s
		}
	}
	if want == st.cur {
		return nil
	}
	if err := pl.w.sc.SetStatus(ctx, provider.Credential{AccessToken: p.slackToken}, status); err != nil {
		return err
	}
	st.cur = want
	return nil
}

// pollAll polls the people in idx with up to workers at once and waits for them.
func (pl *poller) pollAll(ctx context.Context, idx []int, workers int, errs *int64, mu *sync.Mutex) {
	var wg sync.WaitGroup
	ch := make(chan int)
	for range min(workers, len(idx)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range ch {
				if err := pl.poll(ctx, i); err != nil {
					mu.Lock()
					*errs++
					mu.Unlock()
				}
			}
		}()
	}
	for _, i := range idx {
		ch <- i
	}
	close(ch)
	wg.Wait()
}
