package skill

import (
	"encoding/json"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
)

type languageModel struct {
	InvocationName string `json:"invocationName"`
	Intents        []struct {
		Name  string `json:"name"`
		Slots []struct {
			Name string `json:"name"`
			Type string `json:"type"`
		} `json:"slots"`
		Samples []string `json:"samples"`
	} `json:"intents"`
	Types []struct {
		Name string `json:"name"`
	} `json:"types"`
}

func readJSON(t *testing.T, name string, v any) {
	t.Helper()
	b, err := Files.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// Built-in slot types the model may use.
var builtinSlotTypes = map[string]bool{"AMAZON.DURATION": true, "AMAZON.TIME": true, "AMAZON.DATE": true, "AMAZON.NUMBER": true}

// Intents the skill's handler serves; each model must declare exactly these.
var wantIntents = []string{
	"StartFocusIntent", "EndFocusIntent", "PauseIntent", "ResumeIntent", "StatusIntent",
	"AMAZON.HelpIntent", "AMAZON.StopIntent", "AMAZON.CancelIntent", "AMAZON.FallbackIntent", "AMAZON.NavigateHomeIntent",
}

func TestInteractionModels(t *testing.T) {
	slotRef := regexp.MustCompile(`\{([^{}]*)\}`)
	// Amazon allows letters, spaces, apostrophes, periods and slot
	// references in samples; no digits (numbers must be spelled out).
	sampleChars := regexp.MustCompile(`^[A-Za-z' .{}]+$`)
	for _, loc := range Locales {
		t.Run(loc, func(t *testing.T) {
			var m struct {
				InteractionModel struct {
					LanguageModel languageModel `json:"languageModel"`
				} `json:"interactionModel"`
			}
			readJSON(t, "interactionModels/custom/"+loc+".json", &m)
			lm := m.InteractionModel.LanguageModel
			if lm.InvocationName != "don't interrupt" {
				t.Errorf("invocation name %q", lm.InvocationName)
			}
			if lm.InvocationName != strings.ToLower(lm.InvocationName) {
				t.Errorf("invocation name must be lower case")
			}
			custom := map[string]bool{}
			for _, ty := range lm.Types {
				custom[ty.Name] = true
			}
			var names []string
			seen := map[string]string{}
			for _, in := range lm.Intents {
				names = append(names, in.Name)
				slots := map[string]string{}
				for _, s := range in.Slots {
					if !builtinSlotTypes[s.Type] && !custom[s.Type] {
						t.Errorf("%s: slot %s has unknown type %s", in.Name, s.Name, s.Type)
					}
					slots[s.Name] = s.Type
				}
				if !strings.HasPrefix(in.Name, "AMAZON.") && len(in.Samples) == 0 {
					t.Errorf("%s has no utterances", in.Name)
				}
				if in.Name == "AMAZON.FallbackIntent" && len(in.Samples) != 0 {
					t.Errorf("AMAZON.FallbackIntent must not have samples")
				}
				used := map[string]bool{}
				for _, s := range in.Samples {
					if !sampleChars.MatchString(s) {
						t.Errorf("%s: sample %q has characters Amazon refuses", in.Name, s)
					}
					key := strings.ToLower(s)
					if other, dup := seen[key]; dup {
						t.Errorf("sample %q in both %s and %s", s, other, in.Name)
					}
					seen[key] = in.Name
					for _, ref := range slotRef.FindAllStringSubmatch(s, -1) {
						if _, ok := slots[ref[1]]; !ok {
							t.Errorf("%s: sample %q names undeclared slot %q", in.Name, s, ref[1])
						}
						used[ref[1]] = true
					}
				}
				for name := range slots {
					if !used[name] {
						t.Errorf("%s: slot %s used by no sample", in.Name, name)
					}
				}
			}
			slices.Sort(names)
			want := slices.Clone(wantIntents)
			slices.Sort(want)
			if !slices.Equal(names, want) {
				t.Errorf("intents %v, want %v", names, want)
			}
		})
	}
	if len(Locales) != 2 {
		t.Fatalf("locales %v", Locales)
	}
	a, _ := Files.ReadFile("interactionModels/custom/en-US.json")
	b, _ := Files.ReadFile("interactionModels/custom/en-GB.json")
	if string(a) != string(b) {
		t.Log("en-US and en-GB models differ (allowed, but keep the intents in step)")
	}
}

func TestStartFocusSlots(t *testing.T) {
	var m struct {
		InteractionModel struct {
			LanguageModel languageModel `json:"languageModel"`
		} `json:"interactionModel"`
	}
	readJSON(t, "interactionModels/custom/en-US.json", &m)
	for _, in := range m.InteractionModel.LanguageModel.Intents {
		if in.Name != "StartFocusIntent" {
			continue
		}
		got := map[string]string{}
		for _, s := range in.Slots {
			got[s.Name] = s.Type
		}
		if got["duration"] != "AMAZON.DURATION" || got["until"] != "AMAZON.TIME" {
			t.Errorf("StartFocusIntent slots %v", got)
		}
		for _, want := range []string{"I'm focusing for {duration}", "focus until {until}"} {
			if !slices.Contains(in.Samples, want) {
				t.Errorf("StartFocusIntent lacks %q", want)
			}
		}
		return
	}
	t.Fatal("no StartFocusIntent")
}

func checkURL(t *testing.T, what, raw, wantPath string) {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if u.Scheme != "https" || u.Host != Placeholder || u.Path != wantPath || u.RawQuery != "" {
		t.Errorf("%s = %q, want https://%s%s", what, raw, Placeholder, wantPath)
	}
}

func TestManifest(t *testing.T) {
	var m struct {
		Manifest struct {
			ManifestVersion       string `json:"manifestVersion"`
			PublishingInformation struct {
				Locales map[string]struct {
					Name           string   `json:"name"`
					ExamplePhrases []string `json:"examplePhrases"`
				} `json:"locales"`
			} `json:"publishingInformation"`
			APIs struct {
				Custom struct {
					Endpoint struct {
						URI                string `json:"uri"`
						SSLCertificateType string `json:"sslCertificateType"`
					} `json:"endpoint"`
				} `json:"custom"`
			} `json:"apis"`
		} `json:"manifest"`
	}
	b, err := Files.ReadFile("skill.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m.Manifest.ManifestVersion != "1.0" {
		t.Errorf("manifestVersion %q", m.Manifest.ManifestVersion)
	}
	ep := m.Manifest.APIs.Custom.Endpoint
	checkURL(t, "endpoint uri", ep.URI, "/alexa")
	if !slices.Contains([]string{"Trusted", "Wildcard", "SelfSigned"}, ep.SSLCertificateType) {
		t.Errorf("sslCertificateType %q", ep.SSLCertificateType)
	}
	for _, loc := range Locales {
		l, ok := m.Manifest.PublishingInformation.Locales[loc]
		if !ok || l.Name == "" || len(l.ExamplePhrases) == 0 {
			t.Errorf("publishing information for %s missing", loc)
		}
		for _, p := range l.ExamplePhrases {
			if !strings.Contains(p, "don't interrupt") {
				t.Errorf("example phrase %q does not name the invocation", p)
			}
		}
	}

	var al struct {
		AccountLinkingRequest struct {
			Type                            string   `json:"type"`
			AuthorizationURL                string   `json:"authorizationUrl"`
			AccessTokenURL                  string   `json:"accessTokenUrl"`
			AccessTokenScheme               string   `json:"accessTokenScheme"`
			ClientID                        string   `json:"clientId"`
			ClientSecret                    string   `json:"clientSecret"`
			Scopes                          []string `json:"scopes"`
			Domains                         []string `json:"domains"`
			DefaultTokenExpirationInSeconds int      `json:"defaultTokenExpirationInSeconds"`
			SkipOnEnablement                bool     `json:"skipOnEnablement"`
		} `json:"accountLinkingRequest"`
	}
	readJSON(t, "accountLinking.json", &al)
	r := al.AccountLinkingRequest
	if r.Type != "AUTH_CODE" {
		t.Errorf("type %q", r.Type)
	}
	checkURL(t, "authorizationUrl", r.AuthorizationURL, "/oauth/authorize")
	checkURL(t, "accessTokenUrl", r.AccessTokenURL, "/oauth/token")
	if r.AccessTokenScheme != "HTTP_BASIC" {
		t.Errorf("accessTokenScheme %q", r.AccessTokenScheme)
	}
	if !slices.Equal(r.Scopes, []string{"status"}) {
		t.Errorf("scopes %v", r.Scopes)
	}
	if len(r.Domains) == 0 || len(r.Domains) > 15 {
		t.Errorf("domains %v (1 to 15)", r.Domains)
	}
}
