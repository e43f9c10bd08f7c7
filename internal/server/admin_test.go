package server_test

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tlsgate/internal/certfile"
	"tlsgate/internal/pki"
	"tlsgate/internal/pkitest"
	"tlsgate/internal/porttest"
	"tlsgate/internal/server"
)

const adminToken = "0123456789abcdef-test-token"

func adminEnv(t *testing.T) *env {
	return newEnv(t, pki.ECDSAP256, func(e *env) (string, string) {
		pkitest.Write(t, e.dir, "admin.token", []byte(adminToken+"\n"))
		e.top = "admin: {listen: 127.0.0.1:0, token_file: admin.token}"
		return "", ""
	})
}

// call makes an admin API request and decodes the JSON answer.
func (e *env) call(method, path string, body any, token string) (int, map[string]any) {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "http://"+e.srv.AdminAddr().String()+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out any
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &out); err != nil {
		e.t.Fatalf("%s %s: %d %q", method, path, resp.StatusCode, raw)
	}
	if m, ok := out.(map[string]any); ok {
		return resp.StatusCode, m
	}
	return resp.StatusCode, map[string]any{"list": out}
}

// serverCN dials a listener and returns the CN of the certificate it presents.
func (e *env) serverCN(id string) string {
	e.t.Helper()
	c, err := tls.Dial("tcp", e.addr(id), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		e.t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].Subject.CommonName
}

func TestAdminAuth(t *testing.T) {
	e := adminEnv(t)
	for _, tok := range []string{"", "wrong-token-wrong-token"} {
		if code, _ := e.call("GET", "/api/v1/listeners", nil, tok); code != http.StatusUnauthorized {
			t.Fatalf("token %q: %d, want 401", tok, code)
		}
	}
	if code, body := e.call("GET", "/api/v1/listeners", nil, adminToken); code != http.StatusOK || !strings.Contains(toJSON(body), `"id":"mutual"`) {
		t.Fatalf("%d %v", code, body)
	}
}

func toJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

// TestAdminCertificateSwap uploads a certificate, points a listener at it, keeps an open
// connection served through the change, persists it (with a backup) so a restart keeps
// it, and rejects an invalid change without applying anything.
func TestAdminCertificateSwap(t *testing.T) {
	e := adminEnv(t)
	tr := &http.Transport{TLSClientConfig: e.tlsConfig(tls.VersionTLS13, nil)}
	defer tr.CloseIdleConnections()
	keepAlive := &http.Client{Transport: tr}
	if resp, err := keepAlive.Get("https://" + e.addr("one_way") + "/"); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}
	leaf := e.ca.Issue("new-site", pkitest.Server("localhost", "127.0.0.1"))
	kp, _ := certfile.EncodeKeyPEM(leaf.Key)
	code, body := e.call("POST", "/api/v1/certificates", map[string]any{"id": "site2", "cert": string(certfile.EncodePEM(leaf.Cert)), "key": string(kp)}, adminToken)
	if code != http.StatusCreated {
		t.Fatalf("upload: %d %v", code, body)
	}
	if code, _ := e.call("POST", "/api/v1/certificates", map[string]any{"id": "site2", "cert": string(certfile.EncodePEM(leaf.Cert)), "key": string(kp)}, adminToken); code != http.StatusConflict {
		t.Fatalf("second upload: %d, want 409", code)
	}
	_, l := e.call("GET", "/api/v1/listeners/one_way", nil, adminToken)
	l["ssl"].(map[string]any)["server_certificates"] = []string{"site2"}
	if code, body := e.call("PUT", "/api/v1/listeners/one_way", l, adminToken); code != http.StatusOK {
		t.Fatalf("replace listener: %d %v", code, body)
	}
	if cn := e.serverCN("one_way"); cn != "new-site" {
		t.Fatalf("listener presents %q after the change", cn)
	}
	// The keep-alive connection from before the change is still served.
	if resp, err := keepAlive.Get("https://" + e.addr("one_way") + "/"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("open connection dropped: %v", err)
	} else {
		resp.Body.Close()
	}
	before, _ := os.ReadFile(e.cfgPath)
	if _, err := os.Stat(e.cfgPath + ".1"); err != nil {
		t.Fatal("no backup of the previous config")
	}
	l["target_group"] = "nowhere"
	code, body = e.call("PUT", "/api/v1/listeners/one_way", l, adminToken)
	if code != http.StatusBadRequest || !strings.Contains(toJSON(body), `unknown target group \"nowhere\"`) {
		t.Fatalf("invalid change: %d %v", code, body)
	}
	if after, _ := os.ReadFile(e.cfgPath); !bytes.Equal(before, after) {
		t.Fatal("a rejected change was written")
	}
	// A restart from the file keeps the change.
	s2 := server.New(server.Options{ConfigPath: e.cfgPath, Listen: nil})
	if _, err := server.Check(e.cfgPath); err != nil {
		t.Fatal(err)
	}
	cfg, err := s2.Config()
	if err != nil {
		t.Fatal(err)
	}
	for _, lc := range cfg.Listeners {
		if lc.ID == "one_way" && lc.SSL.ServerCertificates[0] != "site2" {
			t.Fatalf("persisted listener %+v", lc.SSL)
		}
	}
	if _, err := os.Stat(filepath.Join(e.dir, "certs")); err != nil {
		t.Fatal("uploaded files not under certs/")
	}
}

// TestAdminDenylist refuses a certificate at once by serial — new handshakes and the
// TCP SSL relay it has open — then lets it in again.
func TestAdminDenylist(t *testing.T) {
	e := adminEnv(t)
	alice := e.ca.Issue("alice")
	relay, err := tls.Dial("tcp", e.addr("tcpssl"), e.tlsConfig(tls.VersionTLS13, new(alice.TLS())))
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	if _, err := relay.Write([]byte("ping\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := bufio.NewReader(relay).ReadString('\n'); err != nil {
		t.Fatalf("relay before the denial: %v", err)
	}
	serial := strings.ToUpper(alice.Cert.SerialNumber.Text(16))
	if code, body := e.call("POST", "/api/v1/denylist", map[string]any{"serial": serial}, adminToken); code != http.StatusCreated {
		t.Fatalf("%d %v", code, body)
	}
	if err := relay.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, relay); err != nil {
		if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
			t.Fatal("the denied certificate's open relay stayed open")
		}
	}
	if _, err := e.get("mutual", tls.VersionTLS13, new(alice.TLS()), nil, false); err == nil {
		t.Fatal("denied certificate served")
	}
	if line := e.sink.Next(t, map[string]any{"msg": "handshake", "listener": "mutual", "client_subject": "CN=alice"}); line["reason"] != "denied" {
		t.Fatalf("line %v", line)
	}
	// Deleted in lower case while the entry was written in upper case: the same serial.
	if code, _ := e.call("DELETE", "/api/v1/denylist/"+strings.ToLower(serial), nil, adminToken); code != http.StatusOK {
		t.Fatalf("undeny: %d", code)
	}
	if _, err := e.get("mutual", tls.VersionTLS13, new(alice.TLS()), nil, false); err != nil {
		t.Fatalf("after removal: %v", err)
	}
}

func TestAdminTargets(t *testing.T) {
	e := adminEnv(t)
	dead := porttest.Dead(t)
	if code, body := e.call("POST", "/api/v1/target_groups/web/targets", map[string]any{"address": dead, "weight": 0}, adminToken); code != http.StatusCreated {
		t.Fatalf("%d %v", code, body)
	}
	_, g := e.call("GET", "/api/v1/target_groups/web", nil, adminToken)
	if n := len(g["targets"].([]any)); n != 2 {
		t.Fatalf("%d targets", n)
	}
	if code, _ := e.call("DELETE", "/api/v1/target_groups/web/targets/"+dead, nil, adminToken); code != http.StatusOK {
		t.Fatalf("delete: %d", code)
	}
	if code, _ := e.call("DELETE", "/api/v1/target_groups/web", nil, adminToken); code != http.StatusBadRequest {
		t.Fatalf("deleting a group listeners use: %d, want 400", code)
	}
	if code, _ := e.call("GET", "/api/v1/listeners/nope", nil, adminToken); code != http.StatusNotFound {
		t.Fatalf("%d, want 404", code)
	}
}

// TestAdminMutualTLS: with admin.ssl the admin listener requires a client certificate
// from its CA, and may then listen beyond loopback without a token.
func TestAdminMutualTLS(t *testing.T) {
	e := newEnv(t, pki.ECDSAP256, func(e *env) (string, string) {
		e.top = "admin: {listen: 127.0.0.1:0, ssl: {mode: mutual, server_certificates: [site], ca_certificate: clients}}"
		return "", ""
	})
	get := func(cert *tls.Certificate) (int, error) {
		tr := &http.Transport{TLSClientConfig: e.tlsConfig(tls.VersionTLS13, cert)}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr}).Get("https://" + e.srv.AdminAddr().String() + "/api/v1/listeners")
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	if _, err := get(nil); err == nil {
		t.Fatal("admin API served without a client certificate")
	}
	if code, err := get(new(e.ca.Issue("operator").TLS())); err != nil || code != http.StatusOK {
		t.Fatalf("operator: %d %v", code, err)
	}
	if _, err := server.Check(e.cfgPath); err != nil {
		t.Fatal(err)
	}
}

// TestAdminRejectedUploadLeavesNoFiles: an upload the config rejects writes nothing.
func TestAdminRejectedUploadLeavesNoFiles(t *testing.T) {
	e := adminEnv(t)
	code, body := e.call("POST", "/api/v1/certificates", map[string]any{"id": "junk", "ca": "not a certificate"}, adminToken)
	if code != http.StatusBadRequest || !strings.Contains(toJSON(body), "no certificate found") {
		t.Fatalf("%d %v", code, body)
	}
	entries, _ := os.ReadDir(filepath.Join(e.dir, "certs"))
	if len(entries) != 0 {
		t.Fatalf("files left behind: %v", entries)
	}
}

// TestAdminUnprefixedPaths: issue #6 names the API's resources without /api/v1
// (POST /certificates); they answer there too, behind the same token, and change the
// same configuration.
func TestAdminUnprefixedPaths(t *testing.T) {
	e := adminEnv(t)
	leaf := e.ca.Issue("alias-site", pkitest.Server("localhost"))
	kp, _ := certfile.EncodeKeyPEM(leaf.Key)
	upload := map[string]any{"id": "alias", "cert": string(certfile.EncodePEM(leaf.Cert)), "key": string(kp)}
	if code, _ := e.call("POST", "/certificates", upload, ""); code != http.StatusUnauthorized {
		t.Fatalf("POST /certificates without the token: %d, want 401", code)
	}
	if code, body := e.call("POST", "/certificates", upload, adminToken); code != http.StatusCreated {
		t.Fatalf("POST /certificates: %d %v", code, body)
	}
	if code, body := e.call("GET", "/api/v1/certificates/alias", nil, adminToken); code != http.StatusOK || body["id"] != "alias" {
		t.Fatalf("the upload is not under /api/v1: %d %v", code, body)
	}
	if code, body := e.call("GET", "/listeners/mutual", nil, adminToken); code != http.StatusOK || body["id"] != "mutual" {
		t.Fatalf("GET /listeners/mutual: %d %v", code, body)
	}
	if code, body := e.call("GET", "/target_groups", nil, adminToken); code != http.StatusOK || len(body["list"].([]any)) == 0 {
		t.Fatalf("GET /target_groups: %d %v", code, body)
	}
	if code, body := e.call("POST", "/denylist", map[string]any{"serial": "0A0B"}, adminToken); code != http.StatusCreated {
		t.Fatalf("POST /denylist: %d %v", code, body)
	}
	if code, _ := e.call("DELETE", "/denylist/0A0B", nil, adminToken); code != http.StatusOK {
		t.Fatalf("DELETE /denylist/0A0B: %d", code)
	}
	if code, _ := e.call("DELETE", "/certificates/alias", nil, adminToken); code != http.StatusOK {
		t.Fatalf("DELETE /certificates/alias: %d", code)
	}
	if code, _ := e.call("GET", "/api/v1/certificates/alias", nil, adminToken); code != http.StatusNotFound {
		t.Fatalf("after DELETE /certificates/alias: %d, want 404", code)
	}
}

// TestAdminTargetReadReplace: a group's targets are listed, read and replaced one by one
// (issue #6: list/get/create/replace/delete targets), not only added and removed.
func TestAdminTargetReadReplace(t *testing.T) {
	e := adminEnv(t)
	dead := porttest.Dead(t)
	base := "/api/v1/target_groups/web/targets"
	if code, body := e.call("POST", base, map[string]any{"address": dead, "weight": 5}, adminToken); code != http.StatusCreated {
		t.Fatalf("add: %d %v", code, body)
	}
	if code, body := e.call("GET", base, nil, adminToken); code != http.StatusOK || len(body["list"].([]any)) != 2 || !strings.Contains(toJSON(body), dead) {
		t.Fatalf("list: %d %v", code, body)
	}
	if code, body := e.call("GET", base+"/"+dead, nil, adminToken); code != http.StatusOK || body["weight"] != 5.0 {
		t.Fatalf("get: %d %v, want weight 5", code, body)
	}
	if code, body := e.call("PUT", base+"/"+dead, map[string]any{"weight": 0}, adminToken); code != http.StatusOK {
		t.Fatalf("replace: %d %v", code, body)
	}
	if code, body := e.call("GET", base+"/"+dead, nil, adminToken); code != http.StatusOK || body["weight"] != 0.0 {
		t.Fatalf("after replace: %d %v, want weight 0", code, body)
	}
	if code, _ := e.call("PUT", base+"/"+dead, map[string]any{"address": "127.0.0.1:1", "weight": 1}, adminToken); code != http.StatusBadRequest {
		t.Fatalf("replace under another address: %d, want 400", code)
	}
	if code, _ := e.call("PUT", base+"/127.0.0.1:1", map[string]any{"weight": 1}, adminToken); code != http.StatusNotFound {
		t.Fatalf("replace of no target: %d, want 404", code)
	}
	if code, _ := e.call("GET", "/api/v1/target_groups/nope/targets", nil, adminToken); code != http.StatusNotFound {
		t.Fatalf("targets of no group: %d, want 404", code)
	}
}
