package faulttest_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dontinterrupt/dontinterrupt/internal/faulttest"
)

// backend is a provider stand-in that counts the requests it served.
type backend struct{ served atomic.Int32 }

func (b *backend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.served.Add(1)
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"ok":true}`)
}

func newServer(t *testing.T) (*httptest.Server, *faulttest.Injector, *backend) {
	t.Helper()
	b := &backend{}
	in := faulttest.New(b)
	srv := httptest.NewServer(in)
	t.Cleanup(srv.Close)
	t.Cleanup(in.Clear) // runs first: hanging requests return before the server waits for them
	return srv, in, b
}

func get(t *testing.T, c *http.Client, u string) (*http.Response, string, error) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}

func TestStatusFaults(t *testing.T) {
	srv, in, b := newServer(t)
	in.Inject(faulttest.RateLimited("7"), faulttest.Prefix("/api/"))
	in.Inject(faulttest.RateLimited(""), faulttest.Prefix("/v2/"))
	in.Inject(faulttest.Status(http.StatusServiceUnavailable), faulttest.Prefix("/v1.0/"))

	for _, c := range []struct {
		path       string
		status     int
		retryAfter string
	}{
		{"/api/users.profile.set", http.StatusTooManyRequests, "7"},
		{"/v2/users/me/meetings", http.StatusTooManyRequests, ""},
		{"/v1.0/me/presence", http.StatusServiceUnavailable, ""},
		{"/other", http.StatusOK, ""},
	} {
		resp, body, err := get(t, srv.Client(), srv.URL+c.path)
		if err != nil {
			t.Fatalf("GET %s: %v", c.path, err)
		}
		if resp.StatusCode != c.status || resp.Header.Get("Retry-After") != c.retryAfter {
			t.Errorf("GET %s: %d Retry-After %q, want %d %q", c.path, resp.StatusCode, resp.Header.Get("Retry-After"), c.status, c.retryAfter)
		}
		if !json.Valid([]byte(body)) {
			t.Errorf("GET %s: body %q is not JSON", c.path, body)
		}
	}
	if n := b.served.Load(); n != 1 {
		t.Errorf("the backend served %d requests, want only the unfaulted one", n)
	}
	if n := in.Faulted(); n != 3 {
		t.Errorf("Faulted() = %d, want 3", n)
	}
	in.Clear()
	if resp, _, err := get(t, srv.Client(), srv.URL+"/api/users.profile.set"); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("after Clear: %v %v, want 200", resp, err)
	}
}

func TestTimesAndSecret(t *testing.T) {
	srv, in, b := newServer(t)
	in.Times(2, faulttest.Status(http.StatusInternalServerError), faulttest.Secret("tok-ada"))

	post := func(token string) int {
		resp, err := srv.Client().PostForm(srv.URL+"/api/users.profile.set", url.Values{"token": {token}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	bearer := func(token string) int {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v2/users/me", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := post("tok-grace"); got != http.StatusOK {
		t.Errorf("another person's request: %d, want 200", got)
	}
	if got := post("tok-ada"); got != http.StatusInternalServerError {
		t.Errorf("form token: %d, want 500", got)
	}
	if got := bearer("tok-ada"); got != http.StatusInternalServerError {
		t.Errorf("bearer token: %d, want 500", got)
	}
	if got := bearer("tok-ada"); got != http.StatusOK {
		t.Errorf("third request: %d, want 200 (the fault was for two)", got)
	}
	if n := b.served.Load(); n != 2 {
		t.Errorf("the backend served %d requests, want 2", n)
	}
}

func TestHangEndsWithTheClientsTimeout(t *testing.T) {
	srv, in, b := newServer(t)
	in.Inject(faulttest.Hang())
	c := srv.Client()
	c.Timeout = 200 * time.Millisecond
	start := time.Now()
	_, _, err := get(t, c, srv.URL+"/calendar/v3/calendars/primary/events")
	took := time.Since(start)
	var ne interface{ Timeout() bool }
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("GET: %v, want a timeout", err)
	}
	if took < c.Timeout || took > c.Timeout+5*time.Second {
		t.Errorf("the client gave up after %s, want about %s", took, c.Timeout)
	}
	// The handler returned once the client went away.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for in.Hanging() != 0 {
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatal("the hanging handler did not return after the client gave up")
		}
	}
	if n := b.served.Load(); n != 0 {
		t.Errorf("the backend served %d requests, want 0", n)
	}
}

func TestHangReleasedByClear(t *testing.T) {
	srv, in, _ := newServer(t)
	in.Inject(faulttest.Hang(), faulttest.Prefix("/slow"))
	done := make(chan error, 1)
	go func() {
		resp, _, err := get(t, srv.Client(), srv.URL+"/slow")
		if err == nil && resp.StatusCode != http.StatusServiceUnavailable {
			err = errors.New("released with HTTP " + resp.Status + ", want 503")
		}
		done <- err
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := in.WaitHanging(ctx, 1); err != nil {
		t.Fatal(err)
	}
	in.Clear()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("GET after Clear: %v, want an answer", err)
		}
	case <-ctx.Done():
		t.Fatal("Clear did not release the hanging request")
	}
}

func TestReset(t *testing.T) {
	for _, served := range []bool{false, true} {
		srv, in, b := newServer(t)
		f := faulttest.Reset()
		if served {
			f = f.AfterServing()
		}
		in.Inject(f)
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/users.profile.set", strings.NewReader("a=b"))
		resp, err := srv.Client().Do(req)
		if err == nil {
			resp.Body.Close()
			t.Fatalf("%s: got HTTP %d, want an error", f, resp.StatusCode)
		}
		want := int32(0)
		if served {
			want = 1
		}
		if n := b.served.Load(); n != want {
			t.Errorf("%s: the backend served %d requests, want %d", f, n, want)
		}
	}
}

func TestMalformed(t *testing.T) {
	srv, in, b := newServer(t)
	in.Inject(faulttest.Malformed().AfterServing())
	resp, body, err := get(t, srv.Client(), srv.URL+"/v1.0/me/presence")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET: %v %v, want 200", resp, err)
	}
	var v any
	if err := json.Unmarshal([]byte(body), &v); err == nil {
		t.Errorf("body %q is valid JSON", body)
	}
	if n := b.served.Load(); n != 1 {
		t.Errorf("the backend served %d requests, want 1 (Served)", n)
	}
}
