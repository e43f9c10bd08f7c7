package cli

import (
	"cmp"
	"fmt"
	"io"
	"log/slog"
	"sort"

	"github.com/spf13/cobra"

	"tlsgate/internal/config"
	"tlsgate/internal/logsink"
)

// addLogFlags adds the flags overriding the config's log section. access is left out
// where there is no config to apply it to.
func addLogFlags(c *cobra.Command, access bool) {
	c.Flags().String("log-level", "", "lowest level logged: debug, info, warn or error (default info; overrides log.level)")
	c.Flags().String("log-format", "", "json or text (default json; overrides log.format)")
	c.Flags().String("log-file", "", "append the log to this file, reopened on SIGUSR1 (default standard error; overrides log.file)")
	if access {
		c.Flags().String("log-access", "", "access lines: all, errors, off or a sample rate such as 0.1 (default all; overrides log.access)")
	}
	// Shell completion offers the values (tlsgate completion).
	values := map[string][]string{
		"log-level":  {"debug", "info", "warn", "error"},
		"log-format": {config.LogJSON, config.LogText},
		"log-access": {config.AccessAll, config.AccessErrors, config.AccessOff, "0.1"},
	}
	for name, vs := range values {
		if c.Flags().Lookup(name) != nil {
			_ = c.RegisterFlagCompletionFunc(name, cobra.FixedCompletions(vs, cobra.ShellCompDirectiveNoFileComp))
		}
	}
}

// logFlags reads the log flags over the config's settings, rejecting bad values as
// usage errors.
func logFlags(c *cobra.Command, cfg config.Log) (config.Log, error) {
	flag := func(name string) string { v, _ := c.Flags().GetString(name); return v }
	set := config.Log{Level: flag("log-level"), Format: flag("log-format"), Access: flag("log-access"), File: flag("log-file")}
	if ps := config.CheckLog(set); len(ps) > 0 {
		names := make([]string, 0, len(ps))
		for k := range ps {
			names = append(names, k)
		}
		sort.Strings(names)
		return cfg, usageError{fmt.Errorf("%s: --log-%s: %s", c.CommandPath(), names[0], ps[names[0]])}
	}
	return config.Log{
		Level:  cmp.Or(set.Level, cfg.Level),
		Format: cmp.Or(set.Format, cfg.Format),
		Access: cmp.Or(set.Access, cfg.Access),
		File:   cmp.Or(set.File, cfg.File),
	}, nil
}

// logOutput is where the log goes: a buffered writer over standard error or a file.
type logOutput struct {
	buf  *logsink.Writer
	file *logsink.File // nil for standard error
}

// Reopen reopens the log file (SIGUSR1), the lines buffered before it written to the
// old one; a no-op on standard error.
func (o *logOutput) Reopen() error {
	if o.file == nil {
		return nil
	}
	o.buf.Flush()
	return o.file.Reopen()
}

// Close writes what is buffered and closes the file.
func (o *logOutput) Close() error {
	err := o.buf.Close()
	if o.file != nil {
		err = o.file.Close()
	}
	return err
}

// openLog makes the logger for lc (validated): level, format and destination, with
// stderr as the default destination for every command.
func openLog(lc config.Log, stderr io.Writer) (*slog.Logger, *logOutput, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cmp.Or(lc.Level, "info"))); err != nil {
		return nil, nil, fmt.Errorf("log level: %w", err)
	}
	out := &logOutput{}
	w := stderr
	if lc.File != "" {
		f, err := logsink.OpenFile(lc.File)
		if err != nil {
			return nil, nil, err
		}
		out.file, w = f, f
	}
	out.buf = logsink.New(w)
	var h slog.Handler
	if lc.Format == config.LogText {
		h = slog.NewTextHandler(out.buf, &slog.HandlerOptions{Level: level})
	} else {
		h = logsink.NewJSONHandlerLevel(out.buf, level)
	}
	return slog.New(h), out, nil
}
