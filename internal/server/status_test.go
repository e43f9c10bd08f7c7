package server_test

import (
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"tlsgate/internal/status"
)

// getStatus reads GET /api/v1/status (with query q).
func (e *env) getStatus(q string) *status.View {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+e.srv.AdminAddr().String()+"/api/v1/status"+q, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var v status.View
	if resp.StatusCode != http.StatusOK || json.Unmarshal(raw, &v) != nil {
		e.t.Fatalf("status: %d %s", resp.StatusCode, raw)
	}
	return &v
}

// TestStatus: after a good client, a revoked one and one without a certificate on the
// mutual listener, GET /api/v1/status shows the listeners with their handshake counts,
// the clients, the refusals with the reason table's fix, and the certificates and CRLs.
func TestStatus(t *testing.T) {
	e := adminEnv(t)
	good := e.ca.Issue("good-client")
	if _, err := e.get("mutual", tls.VersionTLS13, new(good.TLS()), nil, false); err != nil {
		t.Fatal(err)
	}
	// The refusals are recorded before their log lines are written, and after the
	// server's alert: the client sees its refusal before the server records it, so each
	// refusal's line is awaited before the next client starts (the order is checked).
	if _, err := e.get("mutual", tls.VersionTLS12, new(e.revoked.TLS()), nil, false); err == nil {
		t.Fatal("revoked client served")
	}
	e.sink.Next(t, map[string]any{"msg": "handshake", "reason": "revoked"})
	if _, err := e.get("mutual", tls.VersionTLS12, nil, nil, false); err == nil {
		t.Fatal("client without a certificate served")
	}
	e.sink.Next(t, map[string]any{"msg": "handshake", "reason": "no_client_cert"})

	v := e.getStatus("")
	var mutual *status.Listener
	for i := range v.Listeners {
		if v.Listeners[i].ID == "mutual" {
			mutual = &v.Listeners[i]
		}
	}
	if mutual == nil || mutual.Mode != "mutual" || mutual.Address != e.addr("mutual") || mutual.Protocol != "https" {
		t.Fatalf("mutual listener: %+v", mutual)
	}
	if h := mutual.Handshakes.Last5; h.Success != 1 || h.Failure != 2 || h.ByReason["revoked"] != 1 || h.ByReason["no_client_cert"] != 1 {
		t.Errorf("mutual handshakes: %+v", h)
	}
	if len(v.Refusals) != 2 || v.Refusals[0].Reason != "no_client_cert" || v.Refusals[1].Reason != "revoked" ||
		v.Refusals[1].Subject != "CN=revoked" || !strings.Contains(v.Refusals[1].Fix, "new certificate") {
		t.Errorf("refusals: %+v", v.Refusals)
	}
	verdicts := map[string]string{}
	for _, c := range v.Clients {
		verdicts[c.CommonName] = c.LastVerdict
	}
	if verdicts["good-client"] != "ok" || verdicts["revoked"] != "revoked" || len(verdicts) != 2 {
		t.Errorf("clients: %v", verdicts)
	}
	serial := strings.ToUpper(good.Cert.SerialNumber.Text(16))
	if found := e.getStatus("?q=" + serial).Clients; len(found) != 1 || found[0].CommonName != "good-client" {
		t.Errorf("search by serial %s: %+v", serial, found)
	}
	if len(v.Certificates) != 1 || v.Certificates[0].ID != "site" || !strings.Contains(strings.Join(v.Certificates[0].SANs, " "), "localhost") {
		t.Errorf("certificates: %+v", v.Certificates)
	}
	if len(v.CABundles) != 1 || len(v.CABundles[0].CRLs) != 2 || v.CABundles[0].CRLs[0].Source != "ca.crl" || v.CABundles[0].CRLs[0].NextUpdate.IsZero() {
		t.Errorf("CA bundles: %+v", v.CABundles)
	}
	if len(v.TargetGroups) != 2 || v.TargetGroups[0].Targets[0].Health != "up" {
		t.Errorf("target groups: %+v", v.TargetGroups)
	}
	if v.Bounds["clients"] != status.MaxClients || v.Bounds["refusals"] != status.MaxRefusals {
		t.Errorf("bounds: %v", v.Bounds)
	}
}
