package alexa

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync"
	"time"
)

// Request headers Alexa signs with.
const (
	HeaderSignature    = "Signature-256"
	HeaderCertChainURL = "SignatureCertChainUrl"
)

// What Amazon's certificate URL and signing certificate must look like.
const (
	CertHost       = "s3.amazonaws.com"
	CertPathPrefix = "/echo.api/"
	// SigningSAN is the DNS name the signing certificate must carry.
	SigningSAN = "echo-api.amazon.com"
)

// Timestamp tolerances.
const (
	// TimestampTolerance is how far a request's timestamp may be from now,
	// either way (Amazon's maximum).
	TimestampTolerance = 150 * time.Second
	// SkillEventTolerance is the tolerance for AlexaSkillEvent.* requests,
	// which Alexa may deliver late.
	SkillEventTolerance = time.Hour
)

// Limits of the certificate cache and fetcher.
const (
	// DefaultCacheSize is how many certificate URLs a Verifier remembers
	// when CacheSize is 0 (Alexa uses one at a time, two while rotating).
	DefaultCacheSize = 8
	// MaxCertChainBytes is the largest PEM chain the default fetcher reads.
	MaxCertChainBytes = 64 << 10
	// FetchTimeout bounds the default fetcher.
	FetchTimeout = 10 * time.Second
)

// The kinds of verification failure. Every error from Verifier.Verify wraps
// exactly one of them; answer all with 400 Bad Request.
var (
	// ErrMissingHeaders: Signature-256 or SignatureCertChainUrl is absent.
	ErrMissingHeaders = errors.New("alexa: missing signature headers")
	// ErrCertURL: SignatureCertChainUrl is not an https URL on
	// s3.amazonaws.com (port 443) under /echo.api/.
	ErrCertURL = errors.New("alexa: certificate chain URL refused")
	// ErrCertInvalid: the chain could not be fetched or parsed, the signing
	// certificate is outside its validity dates, lacks the
	// echo-api.amazon.com SAN, or does not chain to a trusted root.
	ErrCertInvalid = errors.New("alexa: signing certificate refused")
	// ErrSignature: Signature-256 is not base64 or does not match the body.
	ErrSignature = errors.New("alexa: signature does not match the body")
	// ErrTimestamp: request.timestamp is too far from now.
	ErrTimestamp = errors.New("alexa: request timestamp outside the allowed window")
	// ErrSkillID: the request is for another skill (or no skill ID is
	// configured).
	ErrSkillID = errors.New("alexa: request is not for this skill")
	// ErrMalformed: the body is not a request envelope (see ParseRequest).
	ErrMalformed = errors.New("alexa: malformed request")
)

// Verifier checks that a request comes from Alexa and is for our skill.
// Set the fields before the first Verify and do not change them after; a
// Verifier is safe for concurrent use. Use it by pointer (it holds the
// certificate cache).
type Verifier struct {
	// SkillID is our skill's application ID (amzn1.ask.skill.…). Empty
	// refuses every request with ErrSkillID.
	SkillID string
	// Roots are the trusted root CAs; nil means the system's roots (in
	// production, Amazon's chain goes to a public CA).
	Roots *x509.CertPool
	// Fetch downloads the PEM chain at a certificate URL that passed the
	// URL rules; it is given the normalised URL
	// (https://s3.amazonaws.com/echo.api/…). Nil means an HTTP GET with
	// FetchTimeout, no redirects, at most MaxCertChainBytes.
	Fetch func(ctx context.Context, url string) ([]byte, error)
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// CacheSize bounds the certificate cache (0: DefaultCacheSize).
	CacheSize int

	mu    sync.Mutex
	cache map[string]cachedChain
	seq   uint64
}

type cachedChain struct {
	leaf          *x509.Certificate
	intermediates *x509.CertPool
	seq           uint64 // insertion order, for eviction
}

func (v *Verifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

// Verify checks a request the way Amazon requires of a skill hosted as a
// web service, in this order: the Signature-256 and SignatureCertChainUrl
// headers are present; the certificate URL passes CheckCertURL; the PEM
// chain at that URL (cached by URL until the signing certificate's
// NotAfter) holds a signing certificate valid now, with the SAN
// echo-api.amazon.com, that chains to Roots through the intermediates of
// the PEM; Signature-256 is its RSA PKCS #1 v1.5 SHA-256 signature over the
// raw body; the body is a request envelope (ParseRequest) whose timestamp
// is within TimestampTolerance of now (SkillEventTolerance for skill
// events); and its application ID is SkillID.
//
// It returns the parsed request. Errors wrap one of ErrMissingHeaders,
// ErrCertURL, ErrCertInvalid, ErrSignature, ErrMalformed, ErrTimestamp and
// ErrSkillID, and never quote the body.
func (v *Verifier) Verify(ctx context.Context, header http.Header, body []byte) (Request, error) {
	sig := strings.TrimSpace(header.Get(HeaderSignature))
	certURL := strings.TrimSpace(header.Get(HeaderCertChainURL))
	switch {
	case sig == "" && certURL == "":
		return Request{}, fmt.Errorf("%w: %s and %s", ErrMissingHeaders, HeaderSignature, HeaderCertChainURL)
	case sig == "":
		return Request{}, fmt.Errorf("%w: %s", ErrMissingHeaders, HeaderSignature)
	case certURL == "":
		return Request{}, fmt.Errorf("%w: %s", ErrMissingHeaders, HeaderCertChainURL)
	}
	canonical, err := CheckCertURL(certURL)
	if err != nil {
		return Request{}, err
	}
	now := v.now()
	leaf, err := v.chain(ctx, canonical, now)
	if err != nil {
		return Request{}, err
	}
	rawSig, err := base64.StdEncoding.DecodeString(sig)
	if err != nil {
		return Request{}, fmt.Errorf("%w: %s is not base64", ErrSignature, HeaderSignature)
	}
	pub := leaf.PublicKey.(*rsa.PublicKey) // checked in chain
	digest := sha256.Sum256(body)
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], rawSig); err != nil {
		return Request{}, fmt.Errorf("%w", ErrSignature)
	}
	req, err := ParseRequest(body)
	if err != nil {
		return Request{}, err
	}
	tolerance := TimestampTolerance
	if strings.HasPrefix(req.Request.Type, TypeSkillEventPrefix) {
		tolerance = SkillEventTolerance
	}
	if d := now.Sub(req.Request.Timestamp); d > tolerance || d < -tolerance {
		return Request{}, fmt.Errorf("%w: %s from now (max %s)", ErrTimestamp, d.Round(time.Second), tolerance)
	}
	if v.SkillID == "" {
		return Request{}, fmt.Errorf("%w: no skill ID configured", ErrSkillID)
	}
	if req.ApplicationID() != v.SkillID {
		return Request{}, fmt.Errorf("%w: application ID differs from the configured skill ID", ErrSkillID)
	}
	return req, nil
}

// CheckCertURL applies Amazon's rules to a SignatureCertChainUrl: scheme
// https and host s3.amazonaws.com (both case-insensitive), port 443 if one
// is given, no user info, query or fragment, and a path that, once
// normalised (path.Clean), starts with /echo.api/ (case-sensitive). So
// https://s3.amazonaws.com:443/echo.api/../echo.api/echo-api-cert.pem
// passes and https://s3.amazonaws.com/echo.api/../x does not. It returns
// the normalised URL (https://s3.amazonaws.com/echo.api/…), which is what
// is fetched and the cache key. Errors wrap ErrCertURL.
func CheckCertURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("%w: not a URL", ErrCertURL)
	}
	if !strings.EqualFold(u.Scheme, "https") {
		return "", fmt.Errorf("%w: scheme %q, want https", ErrCertURL, u.Scheme)
	}
	if u.Opaque != "" || u.User != nil {
		return "", fmt.Errorf("%w: not a plain https URL", ErrCertURL)
	}
	if !strings.EqualFold(u.Hostname(), CertHost) {
		return "", fmt.Errorf("%w: host %q, want %s", ErrCertURL, u.Hostname(), CertHost)
	}
	if p := u.Port(); p != "" && p != "443" {
		return "", fmt.Errorf("%w: port %s, want 443", ErrCertURL, p)
	}
	if strings.HasSuffix(u.Host, ":") {
		return "", fmt.Errorf("%w: empty port", ErrCertURL)
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.RawFragment != "" {
		return "", fmt.Errorf("%w: query or fragment not allowed", ErrCertURL)
	}
	if u.Path == "" || !strings.HasPrefix(u.Path, "/") {
		return "", fmt.Errorf("%w: no path", ErrCertURL)
	}
	clean := path.Clean(u.Path)
	if !strings.HasPrefix(clean, CertPathPrefix) || len(clean) == len(CertPathPrefix) {
		return "", fmt.Errorf("%w: path is not under %s", ErrCertURL, CertPathPrefix)
	}
	return (&url.URL{Scheme: "https", Host: CertHost, Path: clean}).String(), nil
}

// chain returns the signing certificate at canonical after checking it
// against now, fetching and caching the chain when needed.
func (v *Verifier) chain(ctx context.Context, canonical string, now time.Time) (*x509.Certificate, error) {
	v.mu.Lock()
	c, ok := v.cache[canonical]
	if ok && !now.Before(c.leaf.NotAfter) {
		delete(v.cache, canonical)
		ok = false
	}
	v.mu.Unlock()
	if ok {
		if err := v.checkLeaf(c, now); err != nil {
			return nil, err
		}
		return c.leaf, nil
	}

	fetch := v.Fetch
	if fetch == nil {
		fetch = defaultFetch
	}
	pemBytes, err := fetch(ctx, canonical)
	if err != nil {
		return nil, fmt.Errorf("%w: fetching the chain: %v", ErrCertInvalid, err)
	}
	c, err = parseChain(pemBytes)
	if err != nil {
		return nil, err
	}
	if err := v.checkLeaf(c, now); err != nil {
		return nil, err
	}
	v.store(canonical, c, now)
	return c.leaf, nil
}

// store caches a chain that passed the checks, evicting expired entries,
// then the oldest, to stay within the cache size.
func (v *Verifier) store(key string, c cachedChain, now time.Time) {
	size := v.CacheSize
	if size <= 0 {
		size = DefaultCacheSize
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.cache == nil {
		v.cache = make(map[string]cachedChain)
	}
	for k, e := range v.cache {
		if !now.Before(e.leaf.NotAfter) {
			delete(v.cache, k)
		}
	}
	for len(v.cache) >= size {
		var oldest string
		for k, e := range v.cache {
			if oldest == "" || e.seq < v.cache[oldest].seq {
				oldest = k
			}
		}
		delete(v.cache, oldest)
	}
	v.seq++
	c.seq = v.seq
	v.cache[key] = c
}

func parseChain(pemBytes []byte) (cachedChain, error) {
	var certs []*x509.Certificate
	rest := pemBytes
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return cachedChain{}, fmt.Errorf("%w: PEM block %q in the chain", ErrCertInvalid, block.Type)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return cachedChain{}, fmt.Errorf("%w: parsing certificate %d: %v", ErrCertInvalid, len(certs)+1, err)
		}
		certs = append(certs, cert)
	}
	if len(certs) == 0 {
		return cachedChain{}, fmt.Errorf("%w: no certificate in the chain", ErrCertInvalid)
	}
	if _, ok := certs[0].PublicKey.(*rsa.PublicKey); !ok {
		return cachedChain{}, fmt.Errorf("%w: signing certificate has no RSA key", ErrCertInvalid)
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	return cachedChain{leaf: certs[0], intermediates: inter}, nil
}

// checkLeaf checks the signing certificate's dates, SAN and chain.
func (v *Verifier) checkLeaf(c cachedChain, now time.Time) error {
	leaf := c.leaf
	if now.Before(leaf.NotBefore) {
		return fmt.Errorf("%w: signing certificate not valid before %s", ErrCertInvalid, leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	if now.After(leaf.NotAfter) {
		return fmt.Errorf("%w: signing certificate expired at %s", ErrCertInvalid, leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	hasSAN := false
	for _, n := range leaf.DNSNames {
		if strings.EqualFold(n, SigningSAN) {
			hasSAN = true
			break
		}
	}
	if !hasSAN {
		return fmt.Errorf("%w: signing certificate lacks the SAN %s", ErrCertInvalid, SigningSAN)
	}
	_, err := leaf.Verify(x509.VerifyOptions{
		Roots:         v.Roots,
		Intermediates: c.intermediates,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		return fmt.Errorf("%w: %v", ErrCertInvalid, err)
	}
	return nil
}

var fetchClient = &http.Client{
	Timeout: FetchTimeout,
	CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	},
}

// defaultFetch GETs the chain from S3.
func defaultFetch(ctx context.Context, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := fetchClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET answered %s", resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxCertChainBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxCertChainBytes {
		return nil, fmt.Errorf("chain larger than %d bytes", MaxCertChainBytes)
	}
	return b, nil
}
