package config_test

import (
	"errors"
	"strings"
	"testing"

	"tlsgate/internal/config"
)

// TestLogSection: each bad log setting is one problem at its line; good ones load.
func TestLogSection(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"good", "log: {level: debug, format: text, access: 0.1, file: /var/log/tlsgate.log}", nil},
		{"errors", "log:\n  access: errors\n", nil},
		{"bad", "log:\n  level: loud\n  format: xml\n  access: 2\n", []string{
			`t.yaml:2: log.level: "loud" is not debug, info, warn or error`,
			`t.yaml:3: log.format: "xml" is not json or text`,
			`t.yaml:4: log.access: "2" is not all, errors, off or a sample rate in (0, 1] such as 0.1`,
		}},
		{"zero rate", "log: {access: 0}", []string{`log.access: "0" is not all`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Parse([]byte(tc.yaml), "t.yaml")
			ps, _ := errors.AsType[config.Problems](err)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			got := ps.Error()
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("problems:\n%s\nlack %q", got, w)
				}
			}
		})
	}
}

func TestParseAccess(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in       string
		sample   float64
		failures bool
	}{{"", 1, true}, {"all", 1, true}, {"errors", 0, true}, {"off", 0, false}, {"0.25", 0.25, true}, {"1", 1, true}} {
		s, f, err := config.ParseAccess(tc.in)
		if err != nil || s != tc.sample || f != tc.failures {
			t.Errorf("ParseAccess(%q) = %v, %v, %v", tc.in, s, f, err)
		}
	}
	for _, bad := range []string{"0", "-1", "1.5", "NaN", "some"} {
		if _, _, err := config.ParseAccess(bad); err == nil {
			t.Errorf("ParseAccess(%q) accepted", bad)
		}
	}
}
