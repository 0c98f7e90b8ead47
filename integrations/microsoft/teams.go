package microsoft

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/microsoft/kiota-abstractions-go/serialization"
	"github.com/microsoftgraph/msgraph-sdk-go/models"
	"github.com/microsoftgraph/msgraph-sdk-go/models/odataerrors"
	"github.com/microsoftgraph/msgraph-sdk-go/users"

	"github.com/dontinterrupt/dontinterrupt/internal/provider"
)

// Presence session lengths Graph accepts (setPresence expirationDuration).
const (
	MinSession = 5 * time.Minute
	MaxSession = 4 * time.Hour
)

// TeamsState is what Teams shows: the aggregated presence and the status message.
type TeamsState struct {
	Availability, Activity string
	Message                string
	MessageExpiry          time.Time // zero: no expiry
}

// Teams reads the person's presence and status message.
func (c *Client) Teams(ctx context.Context, cred provider.Credential) (TeamsState, error) {
	g, err := c.graph(cred.AccessToken)
	if err != nil {
		return TeamsState{}, err
	}
	p, err := g.Me().Presence().Get(ctx, nil)
	if err != nil {
		return TeamsState{}, mapErr("presence", err)
	}
	st := TeamsState{Availability: deref(p.GetAvailability()), Activity: deref(p.GetActivity())}
	if sm := p.GetStatusMessage(); sm != nil {
		if m := sm.GetMessage(); m != nil {
			st.Message = deref(m.GetContent())
		}
		if exp, ok := graphTime(sm.GetExpiryDateTime()); ok {
			st.MessageExpiry = exp
		}
	}
	return st, nil
}

// SetPresence sets our app's presence session for d (clamped to 5 minutes–4 hours; the
// scheduler renews longer blocks).
func (c *Client) SetPresence(ctx context.Context, cred provider.Credential, availability, activity string, d time.Duration) (time.Duration, error) {
	d = min(max(d, MinSession), MaxSession).Round(time.Second)
	g, err := c.graph(cred.AccessToken)
	if err != nil {
		return 0, err
	}
	body := users.NewItemPresenceSetPresencePostRequestBody()
	id := c.cfg.ClientID
	body.SetSessionId(&id)
	body.SetAvailability(&availability)
	body.SetActivity(&activity)
	secs := int(d / time.Second)
	body.SetExpirationDuration(serialization.NewDuration(0, 0, 0, secs/3600, secs%3600/60, secs%60, 0))
	if err := g.Me().Presence().SetPresence().Post(ctx, body, nil); err != nil {
		return 0, mapErr("setPresence", err)
	}
	return d, nil
}

// ClearPresence ends our app's presence session (none is fine).
func (c *Client) ClearPresence(ctx context.Context, cred provider.Credential) error {
	g, err := c.graph(cred.AccessToken)
	if err != nil {
		return err
	}
	body := users.NewItemPresenceClearPresencePostRequestBody()
	id := c.cfg.ClientID
	body.SetSessionId(&id)
	if err := g.Me().Presence().ClearPresence().Post(ctx, body, nil); err != nil {
		var oe *odataerrors.ODataError
		if errors.As(err, &oe) && oe.ResponseStatusCode == http.StatusNotFound {
			return nil
		}
		return mapErr("clearPresence", err)
	}
	return nil
}

// SetStatusMessage sets the status message until expiry (zero: no expiry); an empty text clears
// it.
func (c *Client) SetStatusMessage(ctx context.Context, cred provider.Credential, text string, expiry time.Time) error {
	g, err := c.graph(cred.AccessToken)
	if err != nil {
		return err
	}
	msg := models.NewPresenceStatusMessage()
	item := models.NewItemBody()
	item.SetContent(&text)
	ct := models.TEXT_BODYTYPE
	item.SetContentType(&ct)
	msg.SetMessage(item)
	if !expiry.IsZero() {
		dt := models.NewDateTimeTimeZone()
		s := expiry.UTC().Format("2006-01-02T15:04:05.0000000")
		utc := "UTC"
		dt.SetDateTime(&s)
		dt.SetTimeZone(&utc)
		msg.SetExpiryDateTime(dt)
	}
	body := users.NewItemPresenceSetStatusMessagePostRequestBody()
	body.SetStatusMessage(msg)
	if err := g.Me().Presence().SetStatusMessage().Post(ctx, body, nil); err != nil {
		return mapErr("setStatusMessage", err)
	}
	return nil
}
