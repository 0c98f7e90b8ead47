package web

import (
	"context"
	"crypto/rand"
	"log/slog"
	"net/http"
	"time"
)

// requestIDHeader carries a request's ID: taken from the request when it is a short safe
// token (a proxy's), otherwise made up; always set on the response.
const requestIDHeader = "X-Request-Id"

type loggerKey struct{}

// requestIDs gives every request an ID and a logger carrying it, and logs one line per request
// with no personal data: method, route pattern (never the path or query, which can hold
// identifiers and OAuth codes), status, duration and request ID.
func (s *Server) requestIDs(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get(requestIDHeader)
		if !safeRequestID(id) {
			id = rand.Text()
		}
		w.Header().Set(requestIDHeader, id)
		log := s.log.With("request_id", id)
		r = r.WithContext(context.WithValue(r.Context(), loggerKey{}, log))
		rec := &statusRecorder{ResponseWriter: w}
		defer func() {
			// The mux records the matched pattern on r (the same request it was handed).
			route := r.Pattern
			if route == "" {
				route = "unmatched"
			}
			level := slog.LevelInfo
			switch route {
			case "GET /healthz", "GET /readyz", "GET /metrics":
				level = slog.LevelDebug // probes and scrapes: every few seconds
			}
			if rec.status >= 500 {
				level = slog.LevelWarn
			}
			status := rec.status
			if status == 0 {
				status = http.StatusOK
			}
			log.Log(r.Context(), level, "request", "method", r.Method, "route", route,
				"status", status, "duration", time.Since(start))
		}()
		next.ServeHTTP(rec, r)
	})
}

// safeRequestID reports whether a client's request ID can be used as is: 1 to 64 letters,
// digits, '-', '_' or '.'.
func safeRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range []byte(id) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return true
}

// logger returns the logger of the request ctx belongs to (with its request ID), or the
// server's.
func (s *Server) logger(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(loggerKey{}).(*slog.Logger); ok {
		return l
	}
	return s.log
}

// statusRecorder remembers the status a handler answered.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (w *statusRecorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusRecorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer (flush, deadlines).
func (w *statusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }
