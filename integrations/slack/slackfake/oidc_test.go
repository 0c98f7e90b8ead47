package slackfake

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/slack-go/slack"
)

func TestOpenIDConnectToken(t *testing.T) {
	f := newFixture(t, Options{})
	f.srv.AutoApprove("U0001")
	code := func(scope string) string {
		q := url.Values{"client_id": {f.srv.ClientID()}, "response_type": {"code"}, "scope": {scope},
			"redirect_uri": {redirectURI}, "state": {"s"}, "nonce": {"n1"}}
		resp, err := f.noRedirects().Get(f.hs.URL + "/openid/connect/authorize?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if loc == nil || loc.Query().Get("code") == "" {
			t.Fatalf("authorize: HTTP %d %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		return loc.Query().Get("code")
	}

	// slack-go's own exchange reads the answer.
	resp, err := slack.GetOpenIDConnectToken(f.hs.Client(), f.srv.ClientID(), f.srv.ClientSecret(), code("openid email"), redirectURI, f.oauthURL())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(resp.AccessToken, "xoxp-") || resp.TokenType != "Bearer" {
		t.Fatalf("answer %+v", resp)
	}
	parts := strings.Split(resp.IdToken, ".")
	if len(parts) != 3 {
		t.Fatalf("id_token %q", resp.IdToken)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var claims map[string]any
	if err := json.Unmarshal(raw, &claims); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{"iss": f.hs.URL, "aud": f.srv.ClientID(), "sub": "U0001", "nonce": "n1",
		"https://slack.com/user_id": "U0001", "https://slack.com/team_id": "T0001", "email": "ada@t0001.slack.example"} {
		if claims[k] != want {
			t.Errorf("claim %s = %v, want %v", k, claims[k], want)
		}
	}
	info, err := f.client(resp.AccessToken).GetOpenIDConnectUserInfo()
	if err != nil || info.Sub != "U0001" || info.TeamID != "T0001" {
		t.Fatalf("userInfo %+v, %v", info, err)
	}

	// Without the email scope there is no e-mail address.
	resp, err = slack.GetOpenIDConnectToken(f.hs.Client(), f.srv.ClientID(), f.srv.ClientSecret(), code("openid"), redirectURI, f.oauthURL())
	if err != nil {
		t.Fatal(err)
	}
	raw, _ = base64.RawURLEncoding.DecodeString(strings.Split(resp.IdToken, ".")[1])
	if strings.Contains(string(raw), "email") {
		t.Errorf("ID token without the email scope: %s", raw)
	}

	// An OIDC code is not an OAuth v2 code, and errors come as ok:false.
	_, err = slack.GetOAuthV2Response(f.hs.Client(), f.srv.ClientID(), f.srv.ClientSecret(), code("openid"), redirectURI, f.oauthURL())
	if err == nil || !strings.Contains(err.Error(), "invalid_code") {
		t.Errorf("oauth.v2.access with an OIDC code: %v", err)
	}
	_, err = slack.GetOpenIDConnectToken(f.hs.Client(), f.srv.ClientID(), "wrong", code("openid"), redirectURI, f.oauthURL())
	if err == nil || !strings.Contains(err.Error(), "bad_client_secret") {
		t.Errorf("wrong secret: %v", err)
	}
	_, err = slack.GetOpenIDConnectToken(f.hs.Client(), f.srv.ClientID(), f.srv.ClientSecret(), code("openid"), "https://elsewhere.example/cb", f.oauthURL())
	if err == nil || !strings.Contains(err.Error(), "bad_redirect_uri") {
		t.Errorf("wrong redirect_uri: %v", err)
	}
}

func TestOpenIDAuthorizeRefusals(t *testing.T) {
	f := newFixture(t, Options{})
	base := url.Values{"client_id": {f.srv.ClientID()}, "response_type": {"code"}, "scope": {"openid"}, "redirect_uri": {redirectURI}}
	for name, change := range map[string]url.Values{
		"no openid scope": {"scope": {"profile"}},
		"unknown scope":   {"scope": {"openid users:write"}},
		"token flow":      {"response_type": {"token"}},
		"unknown client":  {"client_id": {"1.2"}},
	} {
		q := url.Values{}
		for k, v := range base {
			q[k] = v
		}
		for k, v := range change {
			q[k] = v
		}
		resp, err := f.noRedirects().Get(f.hs.URL + "/openid/connect/authorize?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: HTTP %d", name, resp.StatusCode)
		}
	}
}
