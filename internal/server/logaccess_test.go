package server_test

import (
	"bytes"
	"crypto/tls"
	"io"
	"net/http"
	"os"
	"testing"
	"time"

	"tlsgate/internal/pki"
)

// TestLogAccess: log.access errors writes only lines with a failure, off none, all every
// one, and a reload changes it.
func TestLogAccess(t *testing.T) {
	e := newEnv(t, pki.ECDSAP256, func(e *env) (string, string) {
		e.top = "log: {access: errors}"
		return "", ""
	})
	tr := &http.Transport{TLSClientConfig: e.tlsConfig(tls.VersionTLS13, nil)}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	get := func(path string, want int) {
		t.Helper()
		resp, err := client.Get("https://" + e.addr("one_way") + path)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("GET %s: %d, want %d", path, resp.StatusCode, want)
		}
	}
	setAccess := func(from, to string) {
		t.Helper()
		b, err := os.ReadFile(e.cfgPath)
		if err != nil {
			t.Fatal(err)
		}
		e.writeFile("tlsgate.yaml", bytes.Replace(b, []byte("access: "+from), []byte("access: "+to), 1))
		if err := e.waitReload(); err != nil {
			t.Fatal(err)
		}
	}
	get("/ok1", http.StatusOK)
	get("/bad/../1", http.StatusBadRequest)
	if l := e.sink.Next(t, map[string]any{"msg": "request"}); l["path"] != "/bad/../1" {
		t.Errorf("access errors: first request line is %v, want the failed request's", l)
	}
	setAccess("errors", "off")
	get("/ok2", http.StatusOK)
	get("/bad/../2", http.StatusBadRequest)
	setAccess("off", "all")
	get("/ok3", http.StatusOK)
	if l := e.sink.Next(t, map[string]any{"msg": "request"}); l["path"] != "/ok3" {
		t.Errorf("access off then all: next request line is %v, want /ok3's", l)
	}
}
