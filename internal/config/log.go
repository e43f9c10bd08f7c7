package config

import (
	"fmt"
	"strconv"
)

// Log configures tlsgate's own log: its level, format, destination, and which access
// lines (one per connection, request or failed handshake) are written. The serve flags
// --log-level, --log-format, --log-access and --log-file override these fields.
type Log struct {
	// Level is the lowest level written: debug, info, warn or error. Default info.
	// Access lines are info, or warn when they carry a failure.
	Level string `yaml:"level,omitempty" json:"level,omitempty"`
	// Format is json (one JSON object a line) or text (slog's key=value). Default json.
	Format string `yaml:"format,omitempty" json:"format,omitempty"`
	// Access picks the access lines written: all, errors (a failure: a handshake
	// refused, an error, a refusal reason or a 5xx status, as HAProxy's
	// dontlog-normal), off, or a sample rate in (0, 1] such as 0.1: that share of the
	// lines without a failure, and every line with one. Default all.
	Access string `yaml:"access,omitempty" json:"access,omitempty"`
	// File is the log file, opened for appending and reopened on SIGUSR1 (for
	// logrotate). Default: standard error.
	File string `yaml:"file,omitempty" json:"file,omitempty"`
}

// Log levels, formats and access settings.
const (
	LogJSON      = "json"
	LogText      = "text"
	AccessAll    = "all"
	AccessErrors = "errors"
	AccessOff    = "off"
)

// ParseAccess reads a log.access value: the share of lines without a failure that are
// written (1 for all, 0 for errors and off) and whether lines with one are (false only
// for off). The empty string is all.
func ParseAccess(s string) (sample float64, failures bool, err error) {
	switch s {
	case "", AccessAll:
		return 1, true, nil
	case AccessErrors:
		return 0, true, nil
	case AccessOff:
		return 0, false, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || !(f > 0 && f <= 1) {
		return 0, false, fmt.Errorf("%q is not all, errors, off or a sample rate in (0, 1] such as 0.1", s)
	}
	return f, true, nil
}

// CheckLog returns the problem with each log setting, by the field's name (level,
// format, access); the cli uses it for the flags too.
func CheckLog(l Log) map[string]string {
	ps := map[string]string{}
	switch l.Level {
	case "", "debug", "info", "warn", "error":
	default:
		ps["level"] = fmt.Sprintf("%q is not debug, info, warn or error", l.Level)
	}
	switch l.Format {
	case "", LogJSON, LogText:
	default:
		ps["format"] = fmt.Sprintf("%q is not json or text", l.Format)
	}
	if _, _, err := ParseAccess(l.Access); err != nil {
		ps["access"] = err.Error()
	}
	return ps
}

func (v *validator) log(l Log) {
	for _, f := range []string{"level", "format", "access"} {
		if msg, ok := CheckLog(l)[f]; ok {
			v.add("log."+f, "%s", msg)
		}
	}
}
