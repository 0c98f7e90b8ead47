package googlefake_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"google.golang.org/api/calendar/v3"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"

	"github.com/dontinterrupt/dontinterrupt/integrations/google/googlefake"
)

// A grant from IssueGrant reads the calendar and refreshes like one from the consent flow;
// OnCall sees every call while CallLogLimit < 0 keeps no log.
func TestIssueGrantAndOnCall(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 12, 9, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	seen := map[string]int{}
	f := googlefake.New(googlefake.Options{
		Now:          func() time.Time { return now },
		CallLogLimit: -1,
		OnCall: func(c googlefake.Call) {
			mu.Lock()
			seen[c.Endpoint+" "+http.StatusText(c.Status)]++
			mu.Unlock()
		},
	})
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	f.SetBaseURL(srv.URL)
	f.AddAccount("sub-1", "ada@sandbox.invalid", "Ada")
	f.AddEvent("sub-1", "primary", googlefake.Event{Summary: "Standup", Start: now, End: now.Add(30 * time.Minute)})
	access, refresh, exp := f.IssueGrant("sub-1", googlefake.ScopeCalendarReadonly)
	if access == "" || refresh == "" || !exp.Equal(now.Add(time.Hour)) {
		t.Fatalf("IssueGrant = %q, %q, %v", access, refresh, exp)
	}
	ctx := context.Background()
	svc, err := calendar.NewService(ctx, option.WithEndpoint(srv.URL+"/calendar/v3/"),
		option.WithHTTPClient(oauth2.NewClient(ctx, oauth2.StaticTokenSource(&oauth2.Token{AccessToken: access}))))
	if err != nil {
		t.Fatal(err)
	}
	evs, err := svc.Events.List("primary").Do()
	if err != nil || len(evs.Items) != 1 {
		t.Fatalf("events.list with the issued token: %v, %d items", err, len(evs.Items))
	}
	conf := &oauth2.Config{ClientID: f.ClientID(), ClientSecret: f.ClientSecret(), Endpoint: oauth2.Endpoint{TokenURL: srv.URL + "/token"}}
	tok, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: refresh, Expiry: now.Add(-time.Second)}).Token()
	if err != nil || tok.AccessToken == "" || tok.AccessToken == access {
		t.Fatalf("refresh: %v (token %v)", err, tok)
	}
	if id, _ := tok.Extra("id_token").(string); id != "" {
		t.Errorf("a grant without openid refreshed with an ID token")
	}
	mu.Lock()
	defer mu.Unlock()
	if seen["calendar.events.list OK"] != 1 || seen["oauth2.token OK"] != 1 {
		t.Errorf("OnCall saw %v, want one events.list and one token call", seen)
	}
	if n := len(f.Calls()); n != 0 {
		t.Errorf("CallLogLimit -1: the log has %d calls", n)
	}
}

// Only the last few sync tokens of a calendar stay valid: an old one answers 410, as Google's
// expired tokens do.
func TestOldSyncTokensExpire(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 12, 9, 0, 0, 0, time.UTC)
	f := googlefake.New(googlefake.Options{Now: func() time.Time { return now }})
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	f.SetBaseURL(srv.URL)
	f.AddAccount("sub-1", "ada@sandbox.invalid", "Ada")
	access, _, _ := f.IssueGrant("sub-1", googlefake.ScopeCalendarReadonly)
	ctx := context.Background()
	svc, err := calendar.NewService(ctx, option.WithEndpoint(srv.URL+"/calendar/v3/"),
		option.WithHTTPClient(oauth2.NewClient(ctx, oauth2.StaticTokenSource(&oauth2.Token{AccessToken: access}))))
	if err != nil {
		t.Fatal(err)
	}
	list, err := svc.Events.List("primary").Do()
	if err != nil {
		t.Fatal(err)
	}
	first := list.NextSyncToken
	tok := first
	for i := range 10 {
		f.AddEvent("sub-1", "primary", googlefake.Event{Summary: "x", Start: now.Add(time.Duration(i) * time.Hour), End: now.Add(time.Duration(i)*time.Hour + 30*time.Minute)})
		list, err := svc.Events.List("primary").SyncToken(tok).Do()
		if err != nil {
			t.Fatalf("sync %d with the latest token: %v", i+1, err)
		}
		tok = list.NextSyncToken
	}
	_, err = svc.Events.List("primary").SyncToken(first).Do()
	var gerr *googleapi.Error
	if !errors.As(err, &gerr) || gerr.Code != http.StatusGone {
		t.Fatalf("sync with a token ten changes old: %v, want 410", err)
	}
	if _, err := svc.Events.List("primary").SyncToken(tok).Do(); err != nil {
		t.Fatalf("the latest token: %v", err)
	}
}
