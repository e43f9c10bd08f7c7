package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// manCmd writes one roff man page per command (section 1), from the cobra tree, for
// `make man`. cobra/doc would do it too, but pulls in go-md2man for the roff; the
// tree's text is plain, so a page is a few lines of roff written here.
func manCmd() *cobra.Command {
	c := &cobra.Command{
		Use:    "man --dir DIR",
		Short:  "Write man pages (section 1) for every command into DIR",
		Hidden: true,
		Args:   noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := requireFlag(c, "dir"); err != nil {
				return err
			}
			dir, _ := c.Flags().GetString("dir")
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			return writeMan(c.Root(), dir)
		},
	}
	c.Flags().String("dir", "", "directory for the pages")
	return c
}

// writeMan writes the page of cmd and of each of its visible subcommands.
func writeMan(cmd *cobra.Command, dir string) error {
	name := strings.ReplaceAll(cmd.CommandPath(), " ", "-")
	if err := os.WriteFile(filepath.Join(dir, name+".1"), []byte(manPage(cmd)), 0o644); err != nil {
		return fmt.Errorf("writing man page: %w", err)
	}
	for _, sub := range cmd.Commands() {
		if !sub.IsAvailableCommand() || sub.IsAdditionalHelpTopicCommand() {
			continue
		}
		if err := writeMan(sub, dir); err != nil {
			return err
		}
	}
	return nil
}

// manPage renders one command as roff: NAME, SYNOPSIS, DESCRIPTION, OPTIONS, SEE ALSO.
func manPage(cmd *cobra.Command) string {
	var b strings.Builder
	name := strings.ReplaceAll(cmd.CommandPath(), " ", "-")
	date := time.Now().UTC().Format("Jan 2006")
	if d := BuildInfo().Date; len(d) >= 10 {
		if t, err := time.Parse(time.DateOnly, d[:10]); err == nil {
			date = t.Format("Jan 2006") // reproducible pages for a stamped build
		}
	}
	fmt.Fprintf(&b, ".TH %q 1 %q \"tlsgate %s\" \"tlsgate manual\"\n", strings.ToUpper(name), date, BuildInfo().Version)
	fmt.Fprintf(&b, ".SH NAME\n%s \\- %s\n", roff(name), roff(cmd.Short))
	fmt.Fprintf(&b, ".SH SYNOPSIS\n.B %s\n", roff(cmd.UseLine()))
	desc := cmd.Long
	if desc == "" {
		desc = cmd.Short
	}
	b.WriteString(".SH DESCRIPTION\n")
	for para := range strings.SplitSeq(desc, "\n\n") {
		fmt.Fprintf(&b, ".PP\n%s\n", roff(para))
	}
	if cmd.Example != "" {
		fmt.Fprintf(&b, ".SH EXAMPLES\n.nf\n%s\n.fi\n", roff(cmd.Example))
	}
	flags := cmd.NonInheritedFlags()
	if flags.HasAvailableFlags() {
		b.WriteString(".SH OPTIONS\n")
		flags.VisitAll(func(f *pflag.Flag) {
			if f.Hidden {
				return
			}
			head := "\\-\\-" + roff(f.Name)
			if f.Shorthand != "" {
				head = "\\-" + f.Shorthand + ", " + head
			}
			if vn, _ := pflag.UnquoteUsage(f); vn != "" {
				head += " " + roff(vn)
			}
			fmt.Fprintf(&b, ".TP\n.B %s\n%s\n", head, roff(f.Usage))
		})
	}
	var see []string
	if cmd.HasParent() {
		see = append(see, strings.ReplaceAll(cmd.Parent().CommandPath(), " ", "-")+"(1)")
	}
	for _, sub := range cmd.Commands() {
		if sub.IsAvailableCommand() && !sub.IsAdditionalHelpTopicCommand() {
			see = append(see, strings.ReplaceAll(sub.CommandPath(), " ", "-")+"(1)")
		}
	}
	if len(see) > 0 {
		fmt.Fprintf(&b, ".SH SEE ALSO\n%s\n", roff(strings.Join(see, ", ")))
	}
	return b.String()
}

// roff escapes text for a man page: backslashes, and a leading . or ' that would read
// as a request.
func roff(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, ".") || strings.HasPrefix(l, "'") {
			lines[i] = `\&` + l
		}
	}
	return strings.Join(lines, "\n")
}
