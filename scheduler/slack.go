package scheduler

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/dontinterrupt/dontinterrupt/internal/presence"
	"github.com/dontinterrupt/dontinterrupt/internal/provider"
	"github.com/dontinterrupt/dontinterrupt/internal/store"
)

// Target names in the store, per Slack connection: "slack:status:" + connection ID, and so on.
const (
	targetSlackStatus   = "slack:status"
	targetSlackDND      = "slack:dnd"
	targetSlackPresence = "slack:presence"
)

// slackWritten is what we last wrote to one Slack target (the store's TargetState.Written).
type slackWritten struct {
	Status presence.SlackStatus `json:"status,omitzero"`
	// Sent is a status we sent whose answer never came (a timeout, a broken connection): Slack
	// may have applied it. A status shown like it is ours, not one the person set by hand.
	Sent presence.SlackStatus `json:"sent,omitzero"`
	// Skipped is the desired status we did not write because the person had set their own:
	// remembered so the next reconcile of the same block does not read Slack again.
	Skipped presence.SlackStatus `json:"skipped,omitzero"`
	DND     presence.SlackDND    `json:"dnd,omitzero"`
	// DNDSent is the end of a snooze we asked for whose answer never came (see Sent).
	DNDSent time.Time     `json:"dnd_sent,omitzero"`
	Away    bool          `json:"away,omitempty"`
	Kind    presence.Kind `json:"kind,omitempty"`
}

// slackReconciler reconciles one Slack connection of one person.
type slackReconciler struct {
	s    *Scheduler
	api  *answeredSlack
	u    store.User
	c    *store.Connection
	cred provider.Credential
	now  time.Time
}

// reconcileSlack makes the connection's status, DND and presence match want, writing only what
// differs from what we last wrote; it returns when it needs to run again (a retry), or zero.
//
// A run can stop between a provider write and the store update that records it (a crash, a
// store outage). The next run then finds a record that says the write has not been made; the
// status and DND steps read Slack before writing anyway (to leave the person's own status
// alone), and when Slack already shows exactly what they would write, they adopt it as
// written instead of writing it again (see adopted).
func (s *Scheduler) reconcileSlack(ctx context.Context, u store.User, c *store.Connection, want presence.DesiredState, now time.Time) time.Time {
	cred, err := s.credential(ctx, c, s.slack.Refresh, now)
	if err != nil {
		return s.retryAt(ctx, c, string(want.Kind), "slack", err, now)
	}
	r := &slackReconciler{s: s, api: &answeredSlack{SlackAPI: s.slack}, u: u, c: c, cred: cred, now: now}
	if want.Paused {
		return time.Time{} // automation paused: touch nothing
	}
	var retry time.Time
	failed := false
	for _, step := range []struct {
		target string
		fn     func(context.Context, presence.DesiredState, *store.TargetState) error
	}{
		{targetSlackStatus, r.status},
		{targetSlackDND, r.dnd},
		{targetSlackPresence, r.presence},
	} {
		key := step.target + ":" + c.ID
		ts, err := s.st.GetTargetState(ctx, u.ID, key)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			s.log.Error("read target state", "user", u.ID, "target", key, "err", err)
			continue
		}
		ts.UserID, ts.Target = u.ID, key
		before := string(ts.Written) + string(ts.Replaced)
		err = r.withRetryOnExpiry(ctx, func() error { return step.fn(ctx, want, &ts) })
		if after := string(ts.Written) + string(ts.Replaced); after != before {
			ts.WrittenAt = now
			if perr := s.st.PutTargetState(ctx, ts); perr != nil {
				s.log.Error("store target state", "user", u.ID, "target", key, "err", perr)
			}
		}
		if err != nil {
			t := s.retryAt(ctx, c, string(want.Kind), step.target, err, now)
			if c.Health != store.HealthOK {
				return time.Time{}
			}
			if retry.IsZero() || t.Before(retry) {
				retry = t
			}
			failed = true
			if provider.TimedOut(err) {
				break // Slack does not answer: the other steps wait for the retry (see retryAt)
			}
			continue
		}
	}
	// The backoff starts over only when every step went well and Slack answered at least
	// one call: a step with nothing to do after one that failed, or a run with nothing to do
	// at all (a block that ended during an outage), must not reset it (the retries would
	// never slow down).
	if !failed && r.api.answered {
		s.succeeded(c.ID)
	}
	return retry
}

// answeredSlack notes whether any call of one run succeeded.
type answeredSlack struct {
	SlackAPI
	answered bool
}

func (a *answeredSlack) note(err error) {
	if err == nil {
		a.answered = true
	}
}

func (a *answeredSlack) Status(ctx context.Context, cred provider.Credential) (presence.SlackStatus, error) {
	st, err := a.SlackAPI.Status(ctx, cred)
	a.note(err)
	return st, err
}

func (a *answeredSlack) SetStatus(ctx context.Context, cred provider.Credential, st presence.SlackStatus) error {
	err := a.SlackAPI.SetStatus(ctx, cred, st)
	a.note(err)
	return err
}

func (a *answeredSlack) DND(ctx context.Context, cred provider.Credential) (presence.SlackDND, error) {
	d, err := a.SlackAPI.DND(ctx, cred)
	a.note(err)
	return d, err
}

func (a *answeredSlack) Snooze(ctx context.Context, cred provider.Credential, until, now time.Time) (time.Time, error) {
	end, err := a.SlackAPI.Snooze(ctx, cred, until, now)
	a.note(err)
	return end, err
}

func (a *answeredSlack) EndSnooze(ctx context.Context, cred provider.Credential) error {
	err := a.SlackAPI.EndSnooze(ctx, cred)
	a.note(err)
	return err
}

func (a *answeredSlack) SetAway(ctx context.Context, cred provider.Credential, away bool) error {
	err := a.SlackAPI.SetAway(ctx, cred, away)
	a.note(err)
	return err
}

// withRetryOnExpiry runs fn, and once more after a token refresh if Slack says the token expired.
func (r *slackReconciler) withRetryOnExpiry(ctx context.Context, fn func() error) error {
	err := fn()
	if reason, ok := provider.RevokedReason(err); ok && reason == "token_expired" && r.cred.RefreshToken != "" {
		cred, rerr := r.s.refresh(ctx, r.c, r.cred, r.s.slack.Refresh, r.now)
		if rerr != nil {
			return rerr
		}
		r.cred = cred
		return fn()
	}
	return err
}

// adopted logs that target already showed what this run would have written.
func (r *slackReconciler) adopted(target string) {
	r.s.log.Info("provider already shows the wanted state; recorded it without writing", "user", r.u.ID, "connection", r.c.ID, "target", target)
}

// sameSecond reports whether a and b are the same instant to the second (providers keep
// expirations in whole seconds), or both zero.
func sameSecond(a, b time.Time) bool {
	if a.IsZero() || b.IsZero() {
		return a.IsZero() && b.IsZero()
	}
	return a.Unix() == b.Unix()
}

func decodeWritten(ts *store.TargetState) slackWritten {
	var w slackWritten
	if len(ts.Written) > 0 {
		json.Unmarshal(ts.Written, &w)
	}
	return w
}

func encodeWritten(ts *store.TargetState, w slackWritten) {
	b, _ := json.Marshal(w)
	ts.Written = b
}

func sameStatus(a, b presence.SlackStatus) bool {
	return a.Text == b.Text && a.Emoji == b.Emoji && a.Expiration.Equal(b.Expiration)
}

// slackDefaultEmoji is the emoji Slack shows with a status set with text and no emoji.
const slackDefaultEmoji = ":speech_balloon:"

// sameShown reports whether a and b look the same in Slack, expiration aside. Slack stores its
// default emoji with a status set with text only (a rule may have no emoji), so an empty emoji
// with text equals that default: otherwise our own status, read back, would look like one the
// person set by hand, and we would neither clear it when a block ends early nor update it.
func sameShown(a, b presence.SlackStatus) bool {
	return a.Text == b.Text && shownEmoji(a) == shownEmoji(b)
}

// shownEmoji is the emoji Slack shows for s.
func shownEmoji(s presence.SlackStatus) string {
	if s.Emoji == "" && s.Text != "" {
		return slackDefaultEmoji
	}
	return s.Emoji
}

// expired reports whether a status with this expiration has been cleared by Slack by now.
func expired(s presence.SlackStatus, now time.Time) bool {
	return !s.Expiration.IsZero() && !s.Expiration.After(now)
}

// status reconciles the custom status. Rules:
//   - write only what differs from what we last wrote;
//   - when Slack already shows the status we would write (an earlier run wrote it and
//     stopped before recording it), record it without writing;
//   - before replacing a status, read it: a status that is not ours was set by the person and
//     is left alone when their rule says so (and the activity log says why);
//   - when our block ends and we had replaced the person's status, restore it with its
//     original expiration if it has not expired;
//   - at a block's normal end write nothing: the expiration we set clears it.
func (r *slackReconciler) status(ctx context.Context, want presence.DesiredState, ts *store.TargetState) error {
	w := decodeWritten(ts)
	d := want.SlackStatus
	ours, sent := w.Status, w.Sent
	if expired(ours, r.now) {
		ours = presence.SlackStatus{}
	}
	if expired(sent, r.now) {
		sent = presence.SlackStatus{}
	}
	if !d.IsZero() {
		if sameStatus(d, ours) || sameStatus(d, w.Skipped) {
			return nil
		}
		cur, err := r.api.Status(ctx, r.cred)
		if err != nil {
			return err
		}
		if sameShown(cur, d) && sameSecond(cur.Expiration, d.Expiration) {
			// Slack shows exactly this status, expiration to the second: an earlier run wrote
			// it and stopped before recording it, or its answer was lost. A status set by hand
			// cannot carry our expiration by chance, so this is ours: record it, do not write
			// it again.
			w.Status, w.Sent, w.Skipped, w.Kind = d, presence.SlackStatus{}, presence.SlackStatus{}, want.Kind
			encodeWritten(ts, w)
			r.adopted(targetSlackStatus)
			return nil
		}
		mine := (!ours.IsZero() && sameShown(cur, ours)) || (!sent.IsZero() && sameShown(cur, sent))
		if !cur.IsZero() && !mine {
			if r.u.Rules.LeaveOwnStatus {
				w.Skipped, w.Status, w.Sent, w.Kind = d, presence.SlackStatus{}, presence.SlackStatus{}, want.Kind
				encodeWritten(ts, w)
				r.s.activity(ctx, r.u.ID, store.Activity{At: r.now, Kind: string(want.Kind), Target: targetSlackStatus, Outcome: "skipped", Reason: "left your own status"})
				return nil
			}
			sealed, err := r.sealReplaced(cur)
			if err != nil {
				return err
			}
			ts.Replaced = sealed
			// Keep theirs before replacing it: a run that stops after the write (and whose
			// successor adopts our status) must still be able to put theirs back.
			if err := r.s.st.PutTargetState(ctx, *ts); err != nil {
				return err
			}
		}
		// Until the answer comes, what we sent may be what Slack shows (kept in the store
		// even when the call fails).
		w.Sent = d
		encodeWritten(ts, w)
		if err := r.api.SetStatus(ctx, r.cred, d); err != nil {
			return err
		}
		w.Status, w.Sent, w.Skipped, w.Kind = d, presence.SlackStatus{}, presence.SlackStatus{}, want.Kind
		encodeWritten(ts, w)
		r.s.activity(ctx, r.u.ID, store.Activity{At: r.now, Kind: string(want.Kind), Target: targetSlackStatus, Outcome: "set", Reason: "from " + want.Cause})
		return nil
	}

	// Nothing wanted: undo ours, restore theirs.
	hadSkip := !w.Skipped.IsZero()
	if ours.IsZero() && sent.IsZero() && len(ts.Replaced) == 0 {
		if hadSkip || !w.Status.IsZero() || !w.Sent.IsZero() {
			encodeWritten(ts, slackWritten{})
		}
		return nil
	}
	// (Reading is needed to undo ours or to restore theirs.)
	cur, err := r.api.Status(ctx, r.cred)
	if err != nil {
		return err
	}
	// Ours is what we wrote, even if its expiration has just passed: Slack clears an expired
	// status on its own clock, so at the very second of the end it may still show it. A
	// status we sent without an answer counts too.
	written := w.Status
	stillOurs := (!written.IsZero() && sameShown(cur, written)) || (!w.Sent.IsZero() && sameShown(cur, w.Sent))
	if written.IsZero() {
		written = w.Sent
	}
	if !written.IsZero() && !stillOurs && !cur.IsZero() {
		// The person changed it meanwhile: theirs now, and nothing to restore over it.
		ts.Replaced = nil
		encodeWritten(ts, slackWritten{})
		return nil
	}
	restore, hasRestore, err := r.openReplaced(ts.Replaced)
	if err != nil {
		r.s.log.Warn("cannot open the replaced status; not restoring it", "user", r.u.ID, "err", err)
	}
	if hasRestore && expired(restore, r.now) {
		hasRestore = false
	}
	switch {
	case hasRestore && (stillOurs || cur.IsZero()):
		if err := r.api.SetStatus(ctx, r.cred, restore); err != nil {
			return err
		}
		r.s.activity(ctx, r.u.ID, store.Activity{At: r.now, Kind: string(w.Kind), Target: targetSlackStatus, Outcome: "restored", Reason: "your own status, as before"})
	case stillOurs && (!ours.IsZero() || !sent.IsZero()):
		// Ours has not expired yet (the block ended early): clear it. An expired one clears
		// itself: no write.
		if err := r.api.SetStatus(ctx, r.cred, presence.SlackStatus{}); err != nil {
			return err
		}
		r.s.activity(ctx, r.u.ID, store.Activity{At: r.now, Kind: string(w.Kind), Target: targetSlackStatus, Outcome: "cleared", Reason: "block ended early"})
	}
	ts.Replaced = nil
	encodeWritten(ts, slackWritten{})
	return nil
}

// replacedStatus is the person's own status we replaced, sealed by the vault.
type replacedStatus struct {
	Text       string    `json:"text"`
	Emoji      string    `json:"emoji"`
	Expiration time.Time `json:"expiration,omitzero"`
}

func (r *slackReconciler) sealReplaced(s presence.SlackStatus) ([]byte, error) {
	b, _ := json.Marshal(replacedStatus{Text: s.Text, Emoji: s.Emoji, Expiration: s.Expiration})
	return r.s.vault.Seal(b, r.u.ID, r.c.ID, "replaced-status")
}

func (r *slackReconciler) openReplaced(blob []byte) (presence.SlackStatus, bool, error) {
	if len(blob) == 0 {
		return presence.SlackStatus{}, false, nil
	}
	b, err := r.s.vault.Open(blob, r.u.ID, r.c.ID, "replaced-status")
	if err != nil {
		return presence.SlackStatus{}, false, err
	}
	var rs replacedStatus
	if err := json.Unmarshal(b, &rs); err != nil {
		return presence.SlackStatus{}, false, err
	}
	return presence.SlackStatus{Text: rs.Text, Emoji: rs.Emoji, Expiration: rs.Expiration}, true, nil
}

// dnd reconciles the Do Not Disturb snooze: start one when wanted (unless the person's own
// snooze already covers the time, or one ending where ours would is already on: an earlier
// run's, recorded without writing), and end only a snooze we started.
func (r *slackReconciler) dnd(ctx context.Context, want presence.DesiredState, ts *store.TargetState) error {
	w := decodeWritten(ts)
	d := want.SlackDND
	ours := w.DND
	if ours.On && !ours.Until.After(r.now) {
		ours = presence.SlackDND{}
	}
	sent := w.DNDSent // a snooze we asked for whose answer never came
	if !sent.After(r.now) {
		sent = time.Time{}
	}
	// near reports whether a snooze ending at end is (about) one asked to end at until: Slack
	// counts whole minutes from the request.
	near := func(end, until time.Time) bool {
		return !end.Before(until.Add(-time.Minute)) && !end.After(until.Add(time.Minute))
	}
	if d.On {
		// Ours already runs to (about) the wanted end.
		if ours.On && near(ours.Until, d.Until) {
			return nil
		}
		cur, err := r.api.DND(ctx, r.cred)
		if err != nil {
			return err
		}
		if cur.On && !cur.Until.Before(d.Until.Add(-time.Second)) && !cur.Until.After(d.Until.Add(time.Minute)) {
			// A snooze ends where ours would (Slack rounds a snooze up to whole minutes): an
			// earlier run started it and stopped before recording it, or its answer was lost.
			// Record it as ours.
			encodeWritten(ts, slackWritten{DND: cur, Kind: want.Kind})
			r.adopted(targetSlackDND)
			return nil
		}
		if cur.On && !sent.IsZero() && near(cur.Until, sent) {
			// The snooze whose answer was lost went through: it is ours.
			ours = cur
		}
		if cur.On && (!ours.On || !cur.Until.Equal(ours.Until)) && !cur.Until.Before(d.Until) {
			// The person's own snooze already covers the block: leave it.
			encodeWritten(ts, slackWritten{Kind: want.Kind})
			return nil
		}
		// Until the answer comes, the snooze asked for may be running (see slackWritten.Sent).
		encodeWritten(ts, slackWritten{DND: ours, DNDSent: d.Until, Kind: w.Kind})
		end, err := r.api.Snooze(ctx, r.cred, d.Until, r.now)
		if err != nil {
			return err
		}
		encodeWritten(ts, slackWritten{DND: presence.SlackDND{On: true, Until: end}, Kind: want.Kind})
		r.s.activity(ctx, r.u.ID, store.Activity{At: r.now, Kind: string(want.Kind), Target: targetSlackDND, Outcome: "set", Reason: "from " + want.Cause})
		return nil
	}
	if !ours.On && sent.IsZero() {
		if w.DND.On || !w.DNDSent.IsZero() {
			encodeWritten(ts, slackWritten{})
		}
		return nil
	}
	if sent.IsZero() && ours.On && !ours.Until.After(r.now.Add(time.Minute)) {
		// Ours ends by itself within the minute Slack rounds to: no read, no write.
		encodeWritten(ts, slackWritten{})
		return nil
	}
	cur, err := r.api.DND(ctx, r.cred)
	if err != nil {
		return err
	}
	// Slack snoozes in whole minutes, so ours may run up to a minute past the block it was
	// set for (one written ahead of its boundary does): that ends by itself; only one the
	// block outlives by more (it ended early) is ended.
	if cur.On && ((ours.On && cur.Until.Equal(ours.Until)) || (!sent.IsZero() && near(cur.Until, sent))) && cur.Until.After(r.now.Add(time.Minute)) {
		if err := r.api.EndSnooze(ctx, r.cred); err != nil {
			return err
		}
		r.s.activity(ctx, r.u.ID, store.Activity{At: r.now, Kind: string(w.Kind), Target: targetSlackDND, Outcome: "cleared", Reason: "block ended early"})
	}
	encodeWritten(ts, slackWritten{})
	return nil
}

// presence reconciles away/auto presence.
func (r *slackReconciler) presence(ctx context.Context, want presence.DesiredState, ts *store.TargetState) error {
	w := decodeWritten(ts)
	if want.SlackPresence.Away == w.Away {
		return nil
	}
	if err := r.api.SetAway(ctx, r.cred, want.SlackPresence.Away); err != nil {
		return err
	}
	outcome, kind := "set", want.Kind
	if !want.SlackPresence.Away {
		outcome, kind = "cleared", w.Kind
	}
	encodeWritten(ts, slackWritten{Away: want.SlackPresence.Away, Kind: want.Kind})
	r.s.activity(ctx, r.u.ID, store.Activity{At: r.now, Kind: string(kind), Target: targetSlackPresence, Outcome: outcome})
	return nil
}
