package probe

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// Target is what to probe.
type Target struct {
	Host string // host name or IP, without brackets
	Port string
	// HTTPS is true for https:// URLs: probe sends a GET for Path and reports the status.
	HTTPS bool
	Path  string
}

// Addr is host:port.
func (t Target) Addr() string { return net.JoinHostPort(t.Host, t.Port) }

// ParseTarget accepts https://host[:port][/path] and host:port (TCP SSL).
func ParseTarget(s string) (Target, error) {
	if s == "" {
		return Target{}, errors.New("empty target: give https://host[:port]/path or host:port")
	}
	if strings.Contains(s, "://") {
		u, err := url.Parse(s)
		if err != nil {
			return Target{}, fmt.Errorf("target %q: %w", s, err)
		}
		if u.Scheme != "https" {
			return Target{}, fmt.Errorf("target %q: scheme %q is not probed (want https://… or host:port)", s, u.Scheme)
		}
		if u.Hostname() == "" {
			return Target{}, fmt.Errorf("target %q: no host", s)
		}
		t := Target{Host: u.Hostname(), Port: u.Port(), HTTPS: true, Path: u.RequestURI()}
		if t.Port == "" {
			t.Port = "443"
		}
		return t, validPort(s, t.Port)
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" {
		return Target{}, fmt.Errorf("target %q: want https://host[:port]/path or host:port", s)
	}
	return Target{Host: host, Port: port}, validPort(s, port)
}

func validPort(s, p string) error {
	if p == "" || len(p) > 5 || strings.Trim(p, "0123456789") != "" {
		return fmt.Errorf("target %q: bad port %q", s, p)
	}
	return nil
}
