package google

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"google.golang.org/api/calendar/v3"

	"github.com/dontinterrupt/dontinterrupt/internal/provider"
)

// DefaultChannelTTL is the lifetime asked for a push channel when Config.ChannelTTL is zero.
// Google may grant less; the expiration it answers is what counts.
const DefaultChannelTTL = 7 * 24 * time.Hour

// Channel is a push notification channel on one calendar's events (events.watch).
type Channel struct {
	// ID is ours: a random UUID, at most 64 characters as Google requires. Notifications carry
	// it in X-Goog-Channel-ID.
	ID string
	// ResourceID is Google's ID of the watched resource; stopping the channel needs it.
	ResourceID string
	// Expiry is when Google stops sending: the expiration it answered.
	Expiry time.Time
}

// Watch asks Google to POST a notification to notifyURL (https, on a domain verified for the
// project) whenever an event of the calendar ("primary" or a calendar ID) is created, changed
// or deleted. Every notification carries token in X-Goog-Channel-Token. The channel lives
// Config.ChannelTTL (params.ttl) or less, as Google decides; it cannot be renewed, only
// replaced by a new one before it expires (and the old one stopped with StopWatch).
//
// Errors: a rate limit is a *provider.RateLimitedError; Google refusing the address (not
// https, domain not verified) is a 4xx *googleapi.Error, wrapped.
func (c *Client) Watch(ctx context.Context, cred provider.Credential, calendarID, notifyURL, token string, now time.Time) (Channel, error) {
	if calendarID == "" {
		calendarID = "primary"
	}
	ttl := c.cfg.ChannelTTL
	if ttl <= 0 {
		ttl = DefaultChannelTTL
	}
	req := &calendar.Channel{
		Id:      newChannelID(),
		Type:    "web_hook",
		Address: notifyURL,
		Token:   token,
		Params:  map[string]string{"ttl": strconv.FormatInt(int64(ttl/time.Second), 10)},
	}
	var got *calendar.Channel
	err := c.withToken(ctx, cred, now, func(accessToken string) error {
		svc, err := c.calendarService(ctx, accessToken)
		if err != nil {
			return err
		}
		got, err = svc.Events.Watch(calendarID, req).Context(ctx).Do()
		return err
	})
	if err != nil {
		return Channel{}, fmt.Errorf("google: events.watch: %w", apiError(err, now, "events.watch"))
	}
	if got.Id != req.Id || got.ResourceId == "" {
		return Channel{}, errors.New("google: events.watch: the answer names another channel or no resource")
	}
	ch := Channel{ID: got.Id, ResourceID: got.ResourceId, Expiry: now.Add(ttl)}
	if got.Expiration > 0 {
		ch.Expiry = time.UnixMilli(got.Expiration).UTC()
	}
	return ch, nil
}

// StopWatch stops a channel (channels.stop), for a disconnect or once a newer channel replaced
// it. A channel Google does not know (expired, stopped already) is not an error.
func (c *Client) StopWatch(ctx context.Context, cred provider.Credential, channelID, resourceID string) error {
	now := c.cfg.Now()
	err := c.withToken(ctx, cred, now, func(accessToken string) error {
		svc, err := c.calendarService(ctx, accessToken)
		if err != nil {
			return err
		}
		return svc.Channels.Stop(&calendar.Channel{Id: channelID, ResourceId: resourceID}).Context(ctx).Do()
	})
	if err != nil && isStatus(err, http.StatusNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("google: channels.stop: %w", apiError(err, now, "channels.stop"))
	}
	return nil
}

// withToken runs call with cred's access token and, when Google answers 401 and there is a
// refresh token, once more with a refreshed one (not returned: the caller refreshes by expiry
// as usual). A refused refresh is the *provider.RevokedError.
func (c *Client) withToken(ctx context.Context, cred provider.Credential, now time.Time, call func(accessToken string) error) error {
	err := call(cred.AccessToken)
	if err == nil || !isStatus(err, http.StatusUnauthorized) || cred.RefreshToken == "" {
		return err
	}
	fresh, rerr := c.Refresh(ctx, cred, now)
	if rerr != nil {
		if _, ok := provider.RevokedReason(rerr); ok {
			return rerr
		}
		return err
	}
	return call(fresh.AccessToken)
}

// newChannelID returns a random (version 4) UUID, the channel ID form Google recommends.
func newChannelID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
