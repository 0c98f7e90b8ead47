package graphfake

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Kinds of [Delivery].
const (
	DeliveryValidation   = "validation"
	DeliveryNotification = "notification"
	DeliveryLifecycle    = "lifecycle"
)

// Subscription is a change notification subscription, as tests see it.
type Subscription struct {
	ID string
	// Resource is the resource as the client gave it ("me/events").
	Resource string
	// UserID is the object ID of the mailbox the resource names.
	UserID   string
	TenantID string
	// ApplicationID is the app that created it; CreatorID the signed-in
	// user.
	ApplicationID            string
	CreatorID                string
	ChangeType               string
	NotificationURL          string
	LifecycleNotificationURL string
	ClientState              string
	Expires                  time.Time
}

// Delivery is one request the fake sent to a webhook: a validation
// handshake, a change notification or a lifecycle notification.
type Delivery struct {
	// Kind is DeliveryValidation, DeliveryNotification or
	// DeliveryLifecycle.
	Kind           string
	SubscriptionID string // empty for a validation that preceded creation
	// URL is the notification or lifecycle URL (for validations without
	// the validationToken parameter).
	URL            string
	ChangeType     string
	Resource       string
	LifecycleEvent string
	// Payload is the JSON body sent (nil for validations).
	Payload json.RawMessage
	// Status is the HTTP status the endpoint answered, 0 when it did not
	// answer in time (see Err).
	Status int
	// Err says why a delivery or validation failed; empty on success.
	Err string
	// Time is the fake clock's time when the delivery was made.
	Time time.Time
}

type subscription struct {
	Subscription
	changeTypes []string
}

func (s *Server) subscriptionRoute(r *http.Request, rest []string) (string, handlerFunc) {
	if len(rest) > 0 && rest[len(rest)-1] == "" {
		rest = rest[:len(rest)-1]
	}
	var name string
	var h func(http.ResponseWriter, *http.Request, *accessToken, string)
	switch {
	case len(rest) == 0 && r.Method == http.MethodPost:
		name, h = EndpointSubscriptionCreate, s.handleSubscriptionCreate
	case len(rest) == 0 && r.Method == http.MethodGet:
		name, h = EndpointSubscriptionList, s.handleSubscriptionList
	case len(rest) == 1 && r.Method == http.MethodGet:
		name, h = EndpointSubscriptionGet, s.handleSubscriptionGet
	case len(rest) == 1 && r.Method == http.MethodPatch:
		name, h = EndpointSubscriptionUpdate, s.handleSubscriptionUpdate
	case len(rest) == 1 && r.Method == http.MethodDelete:
		name, h = EndpointSubscriptionDelete, s.handleSubscriptionDelete
	case len(rest) <= 1:
		return EndpointUnknown, s.graphMethodNotAllowed
	default:
		return EndpointUnknown, s.segmentNotFound(rest[len(rest)-1])
	}
	id := ""
	if len(rest) == 1 {
		id = rest[0]
	}
	return name, func(w http.ResponseWriter, r *http.Request, info *reqInfo) {
		at, status, code, msg := s.authenticate(r)
		if at == nil {
			s.unauthorized(w, r, status, code, msg)
			return
		}
		info.user = at.grant.oid
		h(w, r, at, id)
	}
}

type subscriptionBody struct {
	ChangeType               string `json:"changeType"`
	NotificationURL          string `json:"notificationUrl"`
	LifecycleNotificationURL string `json:"lifecycleNotificationUrl"`
	Resource                 string `json:"resource"`
	ExpirationDateTime       string `json:"expirationDateTime"`
	ClientState              string `json:"clientState"`
	IncludeResourceData      bool   `json:"includeResourceData"`
}

// parseEventResource resolves "me/events", "/users/{id}/events" and their
// "/calendar/events" forms to a user key.
func parseEventResource(res string) (string, bool) {
	seg := strings.Split(strings.Trim(res, "/"), "/")
	lower := make([]string, len(seg))
	for i, x := range seg {
		lower[i] = strings.ToLower(x)
	}
	var key string
	var tail []string
	switch {
	case len(seg) >= 2 && lower[0] == "me":
		key, tail = "me", lower[1:]
	case len(seg) >= 3 && lower[0] == "users" && seg[1] != "":
		key, tail = seg[1], lower[2:]
	default:
		return "", false
	}
	switch strings.Join(tail, "/") {
	case "events", "calendar/events":
		return key, true
	}
	return "", false
}

// checkWebhookURL returns why raw cannot be a notification URL, or "".
func (s *Server) checkWebhookURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return "The notification URL must be an absolute https URL."
	}
	if u.Scheme != "https" && !s.opts.AllowHTTPWebhooks {
		return "Subscription validation request failed. Notification URL must use https."
	}
	return ""
}

// handleSubscriptionCreate serves POST /subscriptions: it checks the
// request, runs the validation handshake against notificationUrl (and
// lifecycleNotificationUrl) and answers 201 with the subscription.
func (s *Server) handleSubscriptionCreate(w http.ResponseWriter, r *http.Request, at *accessToken, _ string) {
	var body subscriptionBody
	if !s.readBody(w, r, &body) {
		return
	}
	bad := func(code, msg string) { s.graphError(w, r, http.StatusBadRequest, code, msg) }
	var changeTypes []string
	for ct := range strings.SplitSeq(body.ChangeType, ",") {
		ct = strings.TrimSpace(ct)
		if ct != "created" && ct != "updated" && ct != "deleted" {
			bad(CodeInvalidRequest, "changeType must be a comma-separated list of created, updated and deleted.")
			return
		}
		changeTypes = append(changeTypes, ct)
	}
	if body.NotificationURL == "" {
		bad(CodeInvalidRequest, "notificationUrl is required.")
		return
	}
	for _, u := range []string{body.NotificationURL, body.LifecycleNotificationURL} {
		if u == "" {
			continue
		}
		if msg := s.checkWebhookURL(u); msg != "" {
			bad(CodeValidationError, msg)
			return
		}
	}
	if len(body.ClientState) > 128 {
		bad(CodeInvalidRequest, "clientState must be at most 128 characters.")
		return
	}
	if body.IncludeResourceData {
		bad(CodeInvalidRequest, "graphfake does not support rich notifications (includeResourceData).")
		return
	}
	key, ok := parseEventResource(body.Resource)
	if !ok {
		bad(CodeInvalidRequest, "graphfake supports subscriptions to me/events and users/{id}/events only; got '"+body.Resource+"'.")
		return
	}
	now := s.now()
	exp, err := parseGraphTime(body.ExpirationDateTime, time.UTC)
	if err != nil {
		bad(CodeInvalidRequest, "expirationDateTime is required and must be an ISO 8601 date and time.")
		return
	}
	if msg := s.checkExpiry(exp, now); msg != "" {
		bad(CodeInvalidRequest, msg)
		return
	}
	s.mu.Lock()
	caller := s.users[at.grant.oid]
	target := caller
	if key != "me" {
		target = s.lookupUserLocked(key)
	}
	s.mu.Unlock()
	if target == nil || caller == nil || target.tid != caller.tid {
		s.graphError(w, r, http.StatusNotFound, CodeRequestResourceNotFound, "Resource '"+key+"' does not exist.")
		return
	}
	if target != caller || !slices.ContainsFunc(scopesCalendarRead, at.has) {
		s.graphError(w, r, http.StatusForbidden, CodeForbidden, "Operation: Create; Exception: [Status Code: Forbidden; Reason: Access is denied. Check credentials and try again.]")
		return
	}
	for _, u := range []string{body.NotificationURL, body.LifecycleNotificationURL} {
		if u == "" {
			continue
		}
		if msg := s.validateWebhook(r.Context(), u); msg != "" {
			bad(CodeValidationError, msg)
			return
		}
	}
	sub := &subscription{
		Subscription: Subscription{
			ID:                       newGUID(),
			Resource:                 body.Resource,
			UserID:                   target.oid,
			TenantID:                 target.tid,
			ApplicationID:            at.grant.clientID,
			CreatorID:                caller.oid,
			ChangeType:               strings.Join(changeTypes, ","),
			NotificationURL:          body.NotificationURL,
			LifecycleNotificationURL: body.LifecycleNotificationURL,
			ClientState:              body.ClientState,
			Expires:                  exp,
		},
		changeTypes: changeTypes,
	}
	s.mu.Lock()
	s.subs[sub.ID] = sub
	s.subOrder = append(s.subOrder, sub.ID)
	out := s.subscriptionJSON(s.baseLocked(r), sub)
	s.mu.Unlock()
	w.Header().Set("Location", s.base(r)+"/v1.0/subscriptions/"+sub.ID)
	writeJSON(w, http.StatusCreated, out)
}

func (s *Server) checkExpiry(exp, now time.Time) string {
	if !exp.After(now) {
		return "Subscription expiration must be in the future."
	}
	if exp.Sub(now) > s.opts.MaxSubscriptionLifetime {
		return fmt.Sprintf("Subscription expiration can only be %d minutes in the future.", int(s.opts.MaxSubscriptionLifetime/time.Minute))
	}
	return ""
}

// validateWebhook runs the validation handshake against rawURL and returns
// an error message, or "" when the endpoint echoed the token correctly.
func (s *Server) validateWebhook(ctx context.Context, rawURL string) string {
	token := "Validation: Testing client application reachability for subscription Request-Id: " + newGUID()
	u, _ := url.Parse(rawURL)
	q := u.Query()
	q.Set("validationToken", token)
	u.RawQuery = q.Encode()
	d := Delivery{Kind: DeliveryValidation, URL: rawURL, Time: s.now()}
	msg := func() string {
		ctx, cancel := context.WithTimeout(ctx, s.opts.ValidationTimeout)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), http.NoBody)
		if err != nil {
			return "Subscription validation request failed. " + err.Error()
		}
		req.Header.Set("Content-Type", "text/plain; charset=utf-8")
		resp, err := s.client.Do(req)
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				d.Err = "timeout"
				return "Subscription validation request timed out."
			}
			d.Err = "request failed"
			return "Subscription validation request failed. Notification endpoint must respond with 200 OK to validation request."
		}
		defer resp.Body.Close()
		d.Status = resp.StatusCode
		got, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
		switch {
		case err != nil:
			d.Err = "reading the answer failed"
			return "Subscription validation request failed. Notification endpoint must respond with 200 OK to validation request."
		case resp.StatusCode != http.StatusOK:
			d.Err = "status " + resp.Status
			return "Subscription validation request failed. Notification endpoint must respond with 200 OK to validation request."
		case !strings.HasPrefix(strings.ToLower(resp.Header.Get("Content-Type")), "text/plain"):
			d.Err = "content type " + resp.Header.Get("Content-Type")
			return "Subscription validation request failed. Response must have Content-Type text/plain."
		case string(got) != token:
			d.Err = "token mismatch"
			return "Subscription validation request failed. Response must exactly match validationToken query parameter."
		}
		return ""
	}()
	s.recordDelivery(d)
	s.logger.LogAttrs(ctx, slog.LevelDebug, "graphfake validation", slog.Int("status", d.Status), slog.String("err", d.Err))
	return msg
}

func (s *Server) recordDelivery(d Delivery) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deliveries = append(s.deliveries, d)
	s.wakeLocked()
}

// liveSubLocked returns the subscription id if it exists, has not expired
// and belongs to the caller's app and user.
func (s *Server) liveSubLocked(id string, at *accessToken) *subscription {
	sub := s.subs[id]
	if sub == nil {
		return nil
	}
	if !s.now().Before(sub.Expires) {
		s.removeSubLocked(id)
		return nil
	}
	if !strings.EqualFold(sub.ApplicationID, at.grant.clientID) || sub.CreatorID != at.grant.oid {
		return nil
	}
	return sub
}

func (s *Server) removeSubLocked(id string) {
	delete(s.subs, id)
	s.subOrder = slices.DeleteFunc(s.subOrder, func(x string) bool { return x == id })
}

func (s *Server) subscriptionNotFound(w http.ResponseWriter, r *http.Request, id string) {
	s.graphError(w, r, http.StatusNotFound, CodeResourceNotFound, "The object was not found. Subscription '"+id+"' does not exist or has expired.")
}

func (s *Server) handleSubscriptionGet(w http.ResponseWriter, r *http.Request, at *accessToken, id string) {
	s.mu.Lock()
	sub := s.liveSubLocked(id, at)
	var out map[string]any
	if sub != nil {
		out = s.subscriptionJSON(s.baseLocked(r), sub)
	}
	s.mu.Unlock()
	if sub == nil {
		s.subscriptionNotFound(w, r, id)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleSubscriptionList(w http.ResponseWriter, r *http.Request, at *accessToken, _ string) {
	s.mu.Lock()
	b := s.baseLocked(r)
	value := []any{}
	for _, id := range slices.Clone(s.subOrder) {
		if sub := s.liveSubLocked(id, at); sub != nil {
			value = append(value, s.subscriptionJSON(b, sub))
		}
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"@odata.context": b + "/v1.0/$metadata#subscriptions", "value": value})
}

// handleSubscriptionUpdate serves PATCH /subscriptions/{id} (renewal).
func (s *Server) handleSubscriptionUpdate(w http.ResponseWriter, r *http.Request, at *accessToken, id string) {
	var body struct {
		ExpirationDateTime string `json:"expirationDateTime"`
	}
	if !s.readBody(w, r, &body) {
		return
	}
	exp, err := parseGraphTime(body.ExpirationDateTime, time.UTC)
	if err != nil {
		s.graphError(w, r, http.StatusBadRequest, CodeInvalidRequest, "expirationDateTime must be an ISO 8601 date and time.")
		return
	}
	s.mu.Lock()
	sub := s.liveSubLocked(id, at)
	if sub == nil {
		s.mu.Unlock()
		s.subscriptionNotFound(w, r, id)
		return
	}
	if msg := s.checkExpiry(exp, s.now()); msg != "" {
		s.mu.Unlock()
		s.graphError(w, r, http.StatusBadRequest, CodeInvalidRequest, msg)
		return
	}
	sub.Expires = exp
	out := s.subscriptionJSON(s.baseLocked(r), sub)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleSubscriptionDelete(w http.ResponseWriter, r *http.Request, at *accessToken, id string) {
	s.mu.Lock()
	sub := s.liveSubLocked(id, at)
	if sub != nil {
		s.removeSubLocked(id)
	}
	s.mu.Unlock()
	if sub == nil {
		s.subscriptionNotFound(w, r, id)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// graphInstant formats an instant as Graph writes DateTimeOffset values.
func graphInstant(t time.Time) string { return t.UTC().Format(graphDateTime + "Z") }

func (s *Server) subscriptionJSON(base string, sub *subscription) map[string]any {
	var lifecycle any
	if sub.LifecycleNotificationURL != "" {
		lifecycle = sub.LifecycleNotificationURL
	}
	var clientState any
	if sub.ClientState != "" {
		clientState = sub.ClientState
	}
	return map[string]any{
		"@odata.context":            base + "/v1.0/$metadata#subscriptions/$entity",
		"id":                        sub.ID,
		"resource":                  sub.Resource,
		"applicationId":             sub.ApplicationID,
		"changeType":                sub.ChangeType,
		"clientState":               clientState,
		"notificationUrl":           sub.NotificationURL,
		"notificationQueryOptions":  nil,
		"lifecycleNotificationUrl":  lifecycle,
		"expirationDateTime":        graphInstant(sub.Expires),
		"creatorId":                 sub.CreatorID,
		"includeResourceData":       false,
		"latestSupportedTlsVersion": "v1_2",
		"encryptionCertificate":     nil,
		"encryptionCertificateId":   nil,
		"notificationUrlAppId":      nil,
	}
}

// Subscriptions returns the unexpired subscriptions, oldest first.
func (s *Server) Subscriptions() []Subscription {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	var out []Subscription
	for _, id := range s.subOrder {
		if sub := s.subs[id]; now.Before(sub.Expires) {
			out = append(out, sub.Subscription)
		}
	}
	return out
}

// changeLocked queues change notifications for an event change to every
// unexpired subscription on the mailbox whose changeType includes it
// (unless [Options.ManualNotifications] and the change is not manual). It
// returns how many were queued.
func (s *Server) changeLocked(u *user, eventID, changeType string, manual bool) int {
	if s.closed || (s.opts.ManualNotifications && !manual) {
		return 0
	}
	now := s.now()
	n := 0
	resource := "Users/" + u.oid + "/Events/" + eventID
	var etag string
	if se := u.events[eventID]; se != nil {
		etag = `W/"` + fmt.Sprint(se.seq) + `"`
	}
	for _, id := range s.subOrder {
		sub := s.subs[id]
		if sub.UserID != u.oid || !now.Before(sub.Expires) || !slices.Contains(sub.changeTypes, changeType) {
			continue
		}
		item := map[string]any{
			"subscriptionId":                 sub.ID,
			"subscriptionExpirationDateTime": graphInstant(sub.Expires),
			"changeType":                     changeType,
			"resource":                       resource,
			"resourceData": map[string]any{
				"@odata.type": "#Microsoft.Graph.Event",
				"@odata.id":   resource,
				"@odata.etag": etag,
				"id":          eventID,
			},
			"tenantId": sub.TenantID,
		}
		if sub.ClientState != "" {
			item["clientState"] = sub.ClientState
		}
		payload, _ := json.Marshal(map[string]any{"value": []any{item}})
		d := Delivery{Kind: DeliveryNotification, SubscriptionID: sub.ID, URL: sub.NotificationURL,
			ChangeType: changeType, Resource: resource, Payload: payload}
		s.wg.Add(1)
		go s.deliver(d)
		n++
	}
	return n
}

// Notify sends a change notification (changeType updated) for an event of
// the mailbox to every matching subscription, whatever
// [Options.ManualNotifications] says, and returns how many were queued.
func (s *Server) Notify(oid, eventID string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, err := s.userLocked(oid)
	if err != nil {
		return 0, err
	}
	return s.changeLocked(u, eventID, "updated", true), nil
}

// SendLifecycleNotification posts a lifecycle notification
// (reauthorizationRequired, subscriptionRemoved or missed) for a
// subscription to its lifecycleNotificationUrl. subscriptionRemoved also
// removes the subscription.
func (s *Server) SendLifecycleNotification(subscriptionID, lifecycleEvent string) error {
	switch lifecycleEvent {
	case "reauthorizationRequired", "subscriptionRemoved", "missed":
	default:
		return fmt.Errorf("graphfake: unknown lifecycle event %q", lifecycleEvent)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sub := s.subs[subscriptionID]
	switch {
	case sub == nil:
		return fmt.Errorf("graphfake: no subscription %q", subscriptionID)
	case sub.LifecycleNotificationURL == "":
		return fmt.Errorf("graphfake: subscription %q has no lifecycleNotificationUrl", subscriptionID)
	case s.closed:
		return errors.New("graphfake: closed")
	}
	item := map[string]any{
		"subscriptionId":                 sub.ID,
		"subscriptionExpirationDateTime": graphInstant(sub.Expires),
		"tenantId":                       sub.TenantID,
		"lifecycleEvent":                 lifecycleEvent,
	}
	if sub.ClientState != "" {
		item["clientState"] = sub.ClientState
	}
	payload, _ := json.Marshal(map[string]any{"value": []any{item}})
	if lifecycleEvent == "subscriptionRemoved" {
		s.removeSubLocked(sub.ID)
	}
	s.wg.Add(1)
	go s.deliver(Delivery{Kind: DeliveryLifecycle, SubscriptionID: sub.ID, URL: sub.LifecycleNotificationURL,
		LifecycleEvent: lifecycleEvent, Payload: payload})
	return nil
}

// deliver POSTs d's payload to d.URL once and records the outcome. Graph
// retries failed deliveries for up to four hours; the fake does not.
func (s *Server) deliver(d Delivery) {
	defer s.wg.Done()
	d.Time = s.now()
	ctx, cancel := context.WithTimeout(s.ctx, s.opts.NotificationTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.URL, bytes.NewReader(d.Payload))
	if err == nil {
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
		var resp *http.Response
		resp, err = s.client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			d.Status = resp.StatusCode
			if resp.StatusCode < 200 || resp.StatusCode > 299 {
				d.Err = "status " + resp.Status
			}
		}
	}
	if err != nil {
		d.Err = "request failed"
		if errors.Is(err, context.DeadlineExceeded) {
			d.Err = "timeout"
		}
	}
	s.recordDelivery(d)
	s.logger.LogAttrs(ctx, slog.LevelDebug, "graphfake delivery", slog.String("kind", d.Kind),
		slog.String("subscription", d.SubscriptionID), slog.Int("status", d.Status), slog.String("err", d.Err))
}

// Deliveries returns every webhook delivery (validations, change and
// lifecycle notifications) that has completed, oldest first.
func (s *Server) Deliveries() []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.deliveries)
}

// WaitForDelivery blocks until at least n deliveries of kind have completed
// and returns them, oldest first; or returns ctx's error. It waits on a
// channel, never by polling.
func (s *Server) WaitForDelivery(ctx context.Context, kind string, n int) ([]Delivery, error) {
	for {
		s.mu.Lock()
		var got []Delivery
		for _, d := range s.deliveries {
			if d.Kind == kind {
				got = append(got, d)
			}
		}
		changed := s.changed
		s.mu.Unlock()
		if len(got) >= n {
			return got, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return got, fmt.Errorf("graphfake: waiting for %d %s deliveries (have %d): %w", n, kind, len(got), ctx.Err())
		}
	}
}

// WaitForNotification blocks until at least n change notifications have
// been delivered (answered or failed) and returns them, oldest first.
func (s *Server) WaitForNotification(ctx context.Context, n int) ([]Delivery, error) {
	return s.WaitForDelivery(ctx, DeliveryNotification, n)
}
