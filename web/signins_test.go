package web_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/dontinterrupt/dontinterrupt/integrations/microsoft/graphfake"
)

// One account can hold several sign-in identities: signed in with Google, linking Microsoft
// adds the identity to the same account, and either signs in to it afterwards.
func TestLinkSecondSignIn(t *testing.T) {
	t.Parallel()
	m := &msSide{}
	e := newEnv(t, envOptions{configure: m.configure})
	ctx := t.Context()
	uid := e.signIn()
	code, body := e.get("/")
	wantPage(t, "dashboard", code, body, http.StatusOK, "Sign-in methods", "Google (linked)", `href="/signin/microsoft"`)

	code, body = e.get("/signin/microsoft")
	wantPage(t, "link Microsoft", code, body, http.StatusOK, "Your dashboard", "Microsoft (linked)")
	id, err := e.st.GetIdentity(ctx, "microsoft", graphfake.DefaultTenantID+"/"+graphfake.DefaultOID)
	if err != nil || id.UserID != uid {
		t.Fatalf("microsoft identity = %+v, %v; want it on the same account %s", id, err, uid)
	}
	ids, _ := e.st.ListIdentities(ctx, uid)
	if len(ids) != 2 {
		t.Fatalf("identities = %+v, want Google and Microsoft", ids)
	}

	// Signed out, Microsoft alone reaches the same account.
	resp, _ := e.postForm("/signout", nil)
	resp.Body.Close()
	code, body = e.get("/signin/microsoft")
	if code != http.StatusOK || !strings.Contains(body, "Google (linked)") || !strings.Contains(body, "Microsoft (linked)") {
		t.Fatalf("signing in with Microsoft after linking: %d\n%s", code, body)
	}
}
