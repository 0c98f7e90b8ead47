package microsoft

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/microsoftgraph/msgraph-sdk-go/models"
	"github.com/microsoftgraph/msgraph-sdk-go/models/odataerrors"

	"github.com/dontinterrupt/dontinterrupt/internal/provider"
)

// SubscriptionLifetime is how long an Outlook event subscription is asked for: under the
// 4,230 minutes older Graph documents allow (newer ones allow more), renewed well before.
const SubscriptionLifetime = 70 * time.Hour

// Subscribe asks Graph to notify notifyURL of changes to the person's events. Graph first
// checks the URL with a validation handshake (our /webhooks/microsoft answers it).
func (c *Client) Subscribe(ctx context.Context, cred provider.Credential, notifyURL, clientState string, now time.Time) (id string, expiry time.Time, err error) {
	g, err := c.graph(cred.AccessToken)
	if err != nil {
		return "", time.Time{}, err
	}
	sub := models.NewSubscription()
	change, resource := "created,updated,deleted", "me/events"
	exp := now.Add(SubscriptionLifetime).UTC().Truncate(time.Second)
	sub.SetChangeType(&change)
	sub.SetResource(&resource)
	sub.SetNotificationUrl(&notifyURL)
	sub.SetClientState(&clientState)
	sub.SetExpirationDateTime(&exp)
	got, err := g.Subscriptions().Post(ctx, sub, nil)
	if err != nil {
		return "", time.Time{}, mapErr("create subscription", err)
	}
	if got.GetId() == nil {
		return "", time.Time{}, errors.New("microsoft: create subscription: no ID in the answer")
	}
	if e := got.GetExpirationDateTime(); e != nil {
		exp = e.UTC()
	}
	return *got.GetId(), exp, nil
}

// Renew extends a subscription; ErrSubscriptionGone means it no longer exists (subscribe
// again).
func (c *Client) Renew(ctx context.Context, cred provider.Credential, id string, now time.Time) (time.Time, error) {
	g, err := c.graph(cred.AccessToken)
	if err != nil {
		return time.Time{}, err
	}
	sub := models.NewSubscription()
	exp := now.Add(SubscriptionLifetime).UTC().Truncate(time.Second)
	sub.SetExpirationDateTime(&exp)
	got, err := g.Subscriptions().BySubscriptionId(id).Patch(ctx, sub, nil)
	if err != nil {
		var oe *odataerrors.ODataError
		if errors.As(err, &oe) && oe.ResponseStatusCode == http.StatusNotFound {
			return time.Time{}, ErrSubscriptionGone
		}
		return time.Time{}, mapErr("renew subscription", err)
	}
	if e := got.GetExpirationDateTime(); e != nil {
		exp = e.UTC()
	}
	return exp, nil
}

// ErrSubscriptionGone: the subscription does not exist any more.
var ErrSubscriptionGone = errors.New("microsoft: subscription no longer exists")

// Unsubscribe deletes a subscription (disconnect); a missing one is fine.
func (c *Client) Unsubscribe(ctx context.Context, cred provider.Credential, id string) error {
	g, err := c.graph(cred.AccessToken)
	if err != nil {
		return err
	}
	if err := g.Subscriptions().BySubscriptionId(id).Delete(ctx, nil); err != nil {
		var oe *odataerrors.ODataError
		if errors.As(err, &oe) && oe.ResponseStatusCode == http.StatusNotFound {
			return nil
		}
		return mapErr("delete subscription", err)
	}
	return nil
}
