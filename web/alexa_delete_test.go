package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// Deleting the account removes the Alexa link too: no OAuth record of the person stays in the
// store, and the tokens stop working.
func TestDeleteAccountRemovesAlexaLink(t *testing.T) {
	a := newAlexaEnv(t)
	uid := a.signIn()
	tok := a.link()
	if !a.linked(tok.AccessToken) {
		t.Fatal("the fresh link does not work")
	}
	resp, body := a.postForm("/data/delete", url.Values{"confirm": {"delete"}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `id="deleted"`) {
		t.Fatalf("delete = %d\n%s", resp.StatusCode, body)
	}
	if a.linked(tok.AccessToken) {
		t.Error("the Alexa access token still works after the account was deleted")
	}
	for k, v := range a.records() {
		if strings.Contains(k, uid) || strings.Contains(v, uid) {
			t.Errorf("after delete the store still holds %q = %q", k, v)
		}
	}
}
