package alexafake

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/dontinterrupt/dontinterrupt/integrations/alexa"
)

// Defaults of Options.
const (
	DefaultSkillID = "amzn1.ask.skill.00000000-0000-4000-8000-000000000001"
	DefaultUserID  = "amzn1.ask.account.SANDBOXUSER0000000000000000000001"
	DefaultLocale  = "en-US"
	// DefaultCertLifetime is how long the signing certificate stays valid
	// after New (Amazon's are issued for about a year).
	DefaultCertLifetime = 365 * 24 * time.Hour
)

// CertKind picks the certificate a request is signed with. Every kind has
// its own URL under https://s3.amazonaws.com/echo.api/, where Fetch serves
// its chain, so only the certificate checks can refuse it.
type CertKind int

// The certificates the fake holds.
const (
	// CertGood is valid, has the SAN echo-api.amazon.com and chains to
	// Roots through the intermediate.
	CertGood CertKind = iota
	// CertExpired expired a day before New.
	CertExpired
	// CertNoSAN is valid and chains to Roots but its SAN is
	// www.example.com.
	CertNoSAN
	// CertUntrusted is valid with the right SAN but issued by a root that
	// is not in Roots.
	CertUntrusted
)

var certFiles = map[CertKind]string{
	CertGood:      "echo-api-cert.pem",
	CertExpired:   "echo-api-cert-expired.pem",
	CertNoSAN:     "echo-api-cert-nosan.pem",
	CertUntrusted: "echo-api-cert-untrusted.pem",
}

// Options configure a Fake. The zero value is usable.
type Options struct {
	// SkillID is the application ID the envelopes carry (DefaultSkillID
	// when empty).
	SkillID string
	// UserID is the Alexa user of Intent and SessionEnded (DefaultUserID
	// when empty).
	UserID string
	// Locale of the requests (DefaultLocale when empty).
	Locale string
	// Now is the clock (nil: time.Now). Request timestamps and certificate
	// dates follow it.
	Now func() time.Time
	// CertLifetime is how long after New the signing certificates stay
	// valid (DefaultCertLifetime when 0).
	CertLifetime time.Duration
	// Client sends requests to the skill endpoint (nil: a client with
	// Alexa's 8-second timeout). Its transport is used as is, so an
	// httptest TLS server's Client works.
	Client *http.Client
	// BeforeSend, when set, sees every request just before it is sent and
	// may change it (a test hook).
	BeforeSend func(*http.Request)
}

// Fake plays Alexa. Create it with New; it is safe for concurrent use.
type Fake struct {
	opts   Options
	now    func() time.Time
	client *http.Client
	key    *rsa.PrivateKey
	roots  *x509.CertPool
	chains map[string][]byte // canonical URL → PEM chain

	mu         sync.Mutex
	fetches    map[string]int
	deliveries []Delivery
	linked     *linkState
}

// Delivery is one request the fake sent to the skill. It holds no tokens.
type Delivery struct {
	URL          string
	Type         string // request.type
	Intent       string // request.intent.name, "" for other types
	Slots        map[string]string
	Linked       bool // whether the envelope carried an access token
	Time         time.Time
	Status       int
	CertChainURL string
}

// New returns a fake Alexa with freshly generated certificates.
func New(opts Options) *Fake {
	if opts.SkillID == "" {
		opts.SkillID = DefaultSkillID
	}
	if opts.UserID == "" {
		opts.UserID = DefaultUserID
	}
	if opts.Locale == "" {
		opts.Locale = DefaultLocale
	}
	if opts.CertLifetime <= 0 {
		opts.CertLifetime = DefaultCertLifetime
	}
	f := &Fake{opts: opts, now: opts.Now, client: opts.Client, fetches: map[string]int{}}
	if f.now == nil {
		f.now = time.Now
	}
	if f.client == nil {
		f.client = &http.Client{Timeout: 8 * time.Second}
	}
	f.key = signingKey()
	f.buildCerts(f.now())
	return f
}

// signingKey is one RSA key per process: generating RSA keys is slow, and
// the signing certificates differ in what the verifier checks, not in keys.
var signingKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic("alexafake: generating the RSA key: " + err.Error())
	}
	return k
})

func (f *Fake) buildCerts(now time.Time) {
	root, rootKey := newCA("Alexa Fake Root CA", nil, nil, now)
	inter, interKey := newCA("Alexa Fake Intermediate CA", root, rootKey, now)
	untrustedRoot, untrustedKey := newCA("Alexa Fake Untrusted Root", nil, nil, now)
	f.roots = x509.NewCertPool()
	f.roots.AddCert(root)

	leaf := func(san string, notBefore, notAfter time.Time, issuer *x509.Certificate, issuerKey crypto.Signer) []byte {
		tmpl := &x509.Certificate{
			SerialNumber: serial(),
			Subject:      pkix.Name{CommonName: san},
			DNSNames:     []string{san},
			NotBefore:    notBefore,
			NotAfter:     notAfter,
			KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
			ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, &f.key.PublicKey, issuerKey)
		if err != nil {
			panic("alexafake: creating a certificate: " + err.Error())
		}
		return der
	}
	valid, until := now.Add(-time.Hour), now.Add(f.opts.CertLifetime)
	pemOf := func(ders ...[]byte) []byte {
		var b bytes.Buffer
		for _, d := range ders {
			_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: d})
		}
		return b.Bytes()
	}
	f.chains = map[string][]byte{
		certURL(CertGood):      pemOf(leaf(alexa.SigningSAN, valid, until, inter, interKey), inter.Raw),
		certURL(CertExpired):   pemOf(leaf(alexa.SigningSAN, now.Add(-2*365*24*time.Hour), now.Add(-24*time.Hour), inter, interKey), inter.Raw),
		certURL(CertNoSAN):     pemOf(leaf("www.example.com", valid, until, inter, interKey), inter.Raw),
		certURL(CertUntrusted): pemOf(leaf(alexa.SigningSAN, valid, until, untrustedRoot, untrustedKey), untrustedRoot.Raw),
	}
}

func newCA(name string, parent *x509.Certificate, parentKey crypto.Signer, now time.Time) (*x509.Certificate, crypto.Signer) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic("alexafake: generating a CA key: " + err.Error())
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"dontinterrupt tests"}},
		NotBefore:             now.Add(-10 * 365 * 24 * time.Hour),
		NotAfter:              now.Add(20 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	} else {
		tmpl.MaxPathLenZero = true
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		panic("alexafake: creating a CA: " + err.Error())
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		panic("alexafake: parsing a CA: " + err.Error())
	}
	return cert, key
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err)
	}
	return n
}

func certURL(k CertKind) string {
	return "https://" + alexa.CertHost + alexa.CertPathPrefix + certFiles[k]
}

// SkillID is the application ID the fake's envelopes carry.
func (f *Fake) SkillID() string { return f.opts.SkillID }

// UserID is the fake's Alexa user ID.
func (f *Fake) UserID() string { return f.opts.UserID }

// Roots is the pool holding the fake's root CA, for alexa.Verifier.Roots.
func (f *Fake) Roots() *x509.CertPool { return f.roots }

// CertChainURL is the SignatureCertChainUrl of well-signed requests:
// https://s3.amazonaws.com/echo.api/echo-api-cert.pem.
func (f *Fake) CertChainURL() string { return certURL(CertGood) }

// CertURL is the URL where the chain of certificate kind k is served.
func (f *Fake) CertURL(k CertKind) string { return certURL(k) }

// ErrNotFound is what Fetch returns for a URL that holds no chain, as S3
// would answer 403/404.
var ErrNotFound = errors.New("alexafake: no certificate chain at that URL (S3 would answer 404)")

// Fetch serves the PEM chain (signing certificate first, then the
// intermediate) at url, for alexa.Verifier.Fetch. The URL is normalised
// first (host case, :443, dot segments), as the verifier does. It never
// touches the network and counts its calls (see Fetches).
func (f *Fake) Fetch(ctx context.Context, rawURL string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	key := rawURL
	if u, err := url.Parse(rawURL); err == nil {
		key = strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Hostname()) + path.Clean("/"+u.Path)
	}
	f.mu.Lock()
	f.fetches[key]++
	f.mu.Unlock()
	b, ok := f.chains[key]
	if !ok {
		return nil, ErrNotFound
	}
	return bytes.Clone(b), nil
}

// Fetches is how many times Fetch was called, for all URLs.
func (f *Fake) Fetches() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.fetches {
		n += c
	}
	return n
}

// Deliveries is every request Send has made, oldest first.
func (f *Fake) Deliveries() []Delivery {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Delivery(nil), f.deliveries...)
}

// ---- envelopes ----

func randomID(prefix string) string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	h := hex.EncodeToString(b)
	return prefix + h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func (f *Fake) envelope(userID, accessToken, typ string) alexa.Request {
	app := alexa.Application{ApplicationID: f.opts.SkillID}
	user := alexa.User{UserID: userID, AccessToken: accessToken}
	return alexa.Request{
		Version: "1.0",
		Session: &alexa.Session{
			New:         true,
			SessionID:   randomID("amzn1.echo-api.session."),
			Application: app,
			Attributes:  map[string]any{},
			User:        user,
		},
		Context: alexa.Context{System: alexa.System{
			Application: app,
			User:        user,
			Device: &alexa.Device{
				DeviceID:            "amzn1.ask.device.SANDBOXDEVICE0001",
				SupportedInterfaces: map[string]any{},
			},
			APIEndpoint:    "https://api.amazonalexa.com",
			APIAccessToken: "fake-api-access-token",
		}},
		Request: alexa.Body{
			Type:      typ,
			RequestID: randomID("amzn1.echo-api.request."),
			Timestamp: f.now().UTC().Truncate(time.Second),
			Locale:    f.opts.Locale,
		},
	}
}

// Launch is a LaunchRequest ("Alexa, open don't interrupt") from userID
// ("" for the fake's user); accessToken "" means an unlinked account.
func (f *Fake) Launch(userID, accessToken string) alexa.Request {
	if userID == "" {
		userID = f.opts.UserID
	}
	return f.envelope(userID, accessToken, alexa.TypeLaunch)
}

// Intent is an IntentRequest for the named intent from the fake's user.
// Each slot is sent with its value; a slot whose value is "" is sent
// unfilled (no value), as Alexa sends slots the person did not fill.
// accessToken "" means an unlinked account.
func (f *Fake) Intent(name string, slots map[string]string, accessToken string) alexa.Request {
	e := f.envelope(f.opts.UserID, accessToken, alexa.TypeIntent)
	e.Request.DialogState = ""
	in := &alexa.Intent{Name: name, ConfirmationStatus: "NONE"}
	if len(slots) > 0 {
		in.Slots = make(map[string]alexa.Slot, len(slots))
		for k, v := range slots {
			in.Slots[k] = alexa.Slot{Name: k, Value: v, ConfirmationStatus: "NONE"}
		}
	}
	e.Request.Intent = in
	return e
}

// SessionEnded is a SessionEndedRequest with the given reason
// (USER_INITIATED when empty); an ERROR reason carries an error object.
func (f *Fake) SessionEnded(reason string) alexa.Request {
	if reason == "" {
		reason = alexa.ReasonUserInitiated
	}
	e := f.envelope(f.opts.UserID, "", alexa.TypeSessionEnded)
	e.Session.New = false
	e.Request.Reason = reason
	if reason == alexa.ReasonError {
		e.Request.Error = &alexa.RequestError{Type: "INVALID_RESPONSE", Message: "the skill's response was invalid"}
	}
	return e
}

// ---- sending ----

// SendOption changes how Send builds, signs or sends a request; the
// options make the broken requests the verifier must refuse.
type SendOption func(*sendConfig)

type sendConfig struct {
	skillID    *string
	offset     time.Duration
	timestamp  time.Time
	signedBody []byte
	certURL    string
	cert       CertKind
	omit       map[string]bool
	body       []byte
}

// WithSkillID sends the envelope for another skill (both application IDs).
func WithSkillID(id string) SendOption { return func(c *sendConfig) { c.skillID = &id } }

// WithTimestampOffset stamps the request at now+d instead of now
// (-151*time.Second is a stale request).
func WithTimestampOffset(d time.Duration) SendOption { return func(c *sendConfig) { c.offset = d } }

// WithTimestamp stamps the request at t.
func WithTimestamp(t time.Time) SendOption { return func(c *sendConfig) { c.timestamp = t } }

// WithSignedBody signs b instead of the body sent (a body changed after
// signing).
func WithSignedBody(b []byte) SendOption { return func(c *sendConfig) { c.signedBody = b } }

// WithCertURL sends u as SignatureCertChainUrl (the signature is still the
// good certificate's, unless WithCert says otherwise).
func WithCertURL(u string) SendOption { return func(c *sendConfig) { c.certURL = u } }

// WithCert signs with certificate k and points SignatureCertChainUrl at
// its chain.
func WithCert(k CertKind) SendOption { return func(c *sendConfig) { c.cert = k } }

// WithoutHeader leaves out a header (alexa.HeaderSignature or
// alexa.HeaderCertChainURL).
func WithoutHeader(name string) SendOption {
	return func(c *sendConfig) {
		if c.omit == nil {
			c.omit = map[string]bool{}
		}
		c.omit[http.CanonicalHeaderKey(name)] = true
	}
}

// WithBody sends raw bytes (signed) instead of the encoded envelope; the
// envelope passed to Send only names the delivery.
func WithBody(raw []byte) SendOption { return func(c *sendConfig) { c.body = raw } }

// Result is the skill's answer to one request.
type Result struct {
	// Status is the HTTP status the endpoint answered.
	Status int
	// Header and Body are the answer's headers and body (at most 64 KB).
	Header http.Header
	Body   []byte
	// Response is the decoded answer when Status is 200.
	Response alexa.ResponseEnvelope
}

// Speech is what Alexa would say: the output speech's text or SSML.
func (r Result) Speech() string {
	if s := r.Response.Response.OutputSpeech; s != nil {
		if s.Type == alexa.SpeechSSML {
			return s.SSML
		}
		return s.Text
	}
	return ""
}

// Card is the answer's card, nil when there is none.
func (r Result) Card() *alexa.Card { return r.Response.Response.Card }

// EndsSession reports whether the answer ends the session.
func (r Result) EndsSession() bool {
	e := r.Response.Response.ShouldEndSession
	return e == nil || *e
}

// ErrBadResponse means the skill answered 200 with something Alexa would
// reject: not JSON, not a response envelope, or beyond Amazon's limits.
var ErrBadResponse = errors.New("alexafake: the skill's answer would be rejected by Alexa")

// Send signs env as Alexa does and POSTs it to endpointURL: the body is the
// JSON encoding of env, restamped at the fake clock's now (to the second),
// Signature-256 is base64(RSA-SHA256(body)) with the signing key and
// SignatureCertChainUrl names the chain. Options change that for refusal
// tests. A non-200 answer is not an error (Result.Status says it); a 200
// whose body Alexa would reject is ErrBadResponse, with the Result.
func (f *Fake) Send(ctx context.Context, endpointURL string, env alexa.Request, opts ...SendOption) (Result, error) {
	var c sendConfig
	for _, o := range opts {
		o(&c)
	}
	if c.skillID != nil {
		env.Context.System.Application.ApplicationID = *c.skillID
		if env.Session != nil {
			env.Session.Application.ApplicationID = *c.skillID
		}
	}
	switch {
	case !c.timestamp.IsZero():
		env.Request.Timestamp = c.timestamp.UTC()
	default:
		env.Request.Timestamp = f.now().Add(c.offset).UTC().Truncate(time.Second)
	}
	body := c.body
	if body == nil {
		var err error
		body, err = json.Marshal(env)
		if err != nil {
			return Result{}, fmt.Errorf("alexafake: encoding the envelope: %w", err)
		}
	}
	signed := body
	if c.signedBody != nil {
		signed = c.signedBody
	}
	digest := sha256.Sum256(signed)
	sig, err := rsa.SignPKCS1v15(rand.Reader, f.key, crypto.SHA256, digest[:])
	if err != nil {
		return Result{}, fmt.Errorf("alexafake: signing: %w", err)
	}
	chainURL := certURL(c.cert)
	if c.certURL != "" {
		chainURL = c.certURL
	}

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpointURL, bytes.NewReader(body))
	if err != nil {
		return Result{}, fmt.Errorf("alexafake: %w", err)
	}
	req.Header.Set("Content-Type", "application/json;charset=UTF-8")
	req.Header.Set("User-Agent", "Apache-HttpClient/UNAVAILABLE (Java/1.8.0_alexafake)")
	if !c.omit[http.CanonicalHeaderKey(alexa.HeaderSignature)] {
		req.Header.Set(alexa.HeaderSignature, base64.StdEncoding.EncodeToString(sig))
	}
	if !c.omit[http.CanonicalHeaderKey(alexa.HeaderCertChainURL)] {
		req.Header.Set(alexa.HeaderCertChainURL, chainURL)
	}
	if f.opts.BeforeSend != nil {
		f.opts.BeforeSend(req)
	}

	d := Delivery{URL: endpointURL, Type: env.Request.Type, Time: f.now(), Linked: env.AccessToken() != "", CertChainURL: chainURL}
	if env.Request.Intent != nil {
		d.Intent = env.Request.Intent.Name
		for k, s := range env.Request.Intent.Slots {
			if d.Slots == nil {
				d.Slots = map[string]string{}
			}
			d.Slots[k] = s.Value
		}
	}
	resp, err := f.client.Do(req)
	if err != nil {
		f.record(d)
		return Result{}, fmt.Errorf("alexafake: POST: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	d.Status = resp.StatusCode
	f.record(d)
	res := Result{Status: resp.StatusCode, Header: resp.Header, Body: raw}
	if err != nil {
		return res, fmt.Errorf("alexafake: reading the answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return res, nil
	}
	if len(raw) > alexa.MaxResponseBytes {
		return res, fmt.Errorf("%w: %d bytes (max %d)", ErrBadResponse, len(raw), alexa.MaxResponseBytes)
	}
	if err := json.Unmarshal(raw, &res.Response); err != nil {
		return res, fmt.Errorf("%w: not JSON: %v", ErrBadResponse, err)
	}
	if res.Response.Version == "" {
		return res, fmt.Errorf("%w: no version", ErrBadResponse)
	}
	if err := res.Response.Check(); err != nil {
		return res, fmt.Errorf("%w: %v", ErrBadResponse, err)
	}
	if env.Request.Type == alexa.TypeSessionEnded && res.Response.Response.OutputSpeech != nil {
		return res, fmt.Errorf("%w: speech in answer to a SessionEndedRequest", ErrBadResponse)
	}
	return res, nil
}

func (f *Fake) record(d Delivery) {
	f.mu.Lock()
	f.deliveries = append(f.deliveries, d)
	f.mu.Unlock()
}
