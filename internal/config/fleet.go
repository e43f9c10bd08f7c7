package config

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
)

// Fleet makes this file a node config: the listeners, certificates and target groups
// come from a fleet revision stored in etcd (package fleet), and this file holds only
// admin: and fleet:.
type Fleet struct {
	// Etcd lists the etcd endpoints (host:port).
	Etcd []string `yaml:"etcd,omitempty" json:"etcd,omitempty"`
	// Prefix is the etcd key prefix of the fleet, e.g. /tlsgate/edge.
	Prefix string `yaml:"prefix,omitempty" json:"prefix,omitempty"`
	// Instance names this node in status. Default: the host name.
	Instance string `yaml:"instance,omitempty" json:"instance,omitempty"`
	// CacheDir keeps the last applied revision (still encrypted), so a node restarted
	// while etcd is down serves it. Relative to this file. Default .tlsgate-fleet-cache.
	CacheDir string `yaml:"cache_dir,omitempty" json:"cache_dir,omitempty"`
	// KeyFile holds the 32-byte key that seals private keys and ticket keys in etcd;
	// the same on every node. Required.
	KeyFile string `yaml:"key_file,omitempty" json:"key_file,omitempty"`
	// Bind replaces the host of every listener's listen address (the port is kept).
	Bind string `yaml:"bind,omitempty" json:"bind,omitempty"`
	// CA, Cert and Key are PEM files for TLS to etcd (Cert and Key for client auth).
	CA   string `yaml:"ca,omitempty" json:"ca,omitempty"`
	Cert string `yaml:"cert,omitempty" json:"cert,omitempty"`
	Key  string `yaml:"key,omitempty" json:"key,omitempty"`
	// Username and PasswordFile authenticate to etcd.
	Username     string `yaml:"username,omitempty" json:"username,omitempty"`
	PasswordFile string `yaml:"password_file,omitempty" json:"password_file,omitempty"`
}

// DefaultFleetCacheDir is fleet.cache_dir when not set.
const DefaultFleetCacheDir = ".tlsgate-fleet-cache"

func (f *Fleet) setDefaults() {
	if f == nil {
		return
	}
	if f.Instance == "" {
		f.Instance, _ = os.Hostname()
	}
	if f.CacheDir == "" {
		f.CacheDir = DefaultFleetCacheDir
	}
}

// fleet checks the fleet section, and that a node config holds nothing the fleet
// provides (a listener here would silently never be served).
func (v *validator) fleet(c *Config) {
	f := c.Fleet
	if f == nil {
		return
	}
	for _, s := range []struct {
		name string
		n    int
	}{{"listeners", len(c.Listeners)}, {"certificates", len(c.Certificates)}, {"target_groups", len(c.TargetGroups)}} {
		if s.n > 0 {
			v.add(s.name, "a node config with fleet: takes its %s from the fleet (tlsgate fleet push); remove them here", s.name)
		}
	}
	if len(f.Etcd) == 0 {
		v.add("fleet.etcd", "required: at least one etcd endpoint host:port")
	}
	for i, e := range f.Etcd {
		v.addr(fmt.Sprintf("fleet.etcd[%d]", i), e, false)
	}
	if !strings.HasPrefix(f.Prefix, "/") || strings.HasSuffix(f.Prefix, "/") {
		v.add("fleet.prefix", "must start with / and not end with / (e.g. /tlsgate/edge)")
	}
	if f.KeyFile == "" {
		v.add("fleet.key_file", "required: a file of 32 random bytes, the same on every node")
	}
	if f.Bind != "" {
		if _, err := netip.ParseAddr(f.Bind); err != nil {
			v.add("fleet.bind", "%q is not an IP address", f.Bind)
		}
	}
	if (f.Cert == "") != (f.Key == "") {
		v.add("fleet.cert", "cert and key go together")
	}
	if (f.Username == "") != (f.PasswordFile == "") {
		v.add("fleet.username", "username and password_file go together")
	}
}

// adminCerts is the certificates admin.ssl may name: a node config's admin.ssl names
// the fleet's certificates, which it does not hold; they are checked when the node
// builds the fleet's revision with its admin section (a wrong id fails the start).
func adminCerts(c *Config, certs map[string]*Certificate) map[string]*Certificate {
	s := c.Admin.SSL
	if c.Fleet == nil || s == nil {
		return certs
	}
	fleet := map[string]*Certificate{}
	for _, id := range s.ServerCertificates {
		fleet[id] = &Certificate{ID: id, Cert: id}
	}
	if s.CACertificate != "" {
		fleet[s.CACertificate] = &Certificate{ID: s.CACertificate, CA: s.CACertificate}
	}
	return fleet
}
