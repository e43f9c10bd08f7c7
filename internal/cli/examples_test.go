package cli

import (
	"strings"
	"testing"
)

// helpExamples walks the command tree through --help, as a user reads it, and returns
// every example command line: indented lines starting with "tlsgate " in a command's
// description or its Examples section (not its Usage line).
func helpExamples(t *testing.T) [][]string {
	t.Helper()
	var out [][]string
	seen := map[string]bool{}
	var walk func(path []string)
	walk = func(path []string) {
		code, help, stderr := run(append(append([]string{}, path...), "--help")...)
		if code != 0 {
			t.Fatalf("%v --help: exit %d: %s", path, code, stderr)
		}
		section := "description"
		for line := range strings.SplitSeq(help, "\n") {
			switch {
			case strings.HasSuffix(line, ":") && !strings.HasPrefix(line, " "):
				section = strings.TrimSuffix(line, ":")
			case section == "Available Commands" && strings.HasPrefix(line, "  "):
				if name := strings.Fields(line)[0]; name != "help" && name != "completion" {
					walk(append(append([]string{}, path...), name))
				}
			case (section == "description" || section == "Examples") && strings.HasPrefix(line, "  tlsgate "):
				if ex := strings.TrimSpace(line); !seen[ex] {
					seen[ex] = true
					out = append(out, splitWords(t, strings.TrimPrefix(ex, "tlsgate ")))
				}
			}
		}
	}
	walk(nil)
	return out
}

// splitWords splits a command line as a POSIX shell would for the quoting the examples
// use: words separated by spaces, "double" or 'single' quotes keep spaces.
func splitWords(t *testing.T, s string) []string {
	var words []string
	var b strings.Builder
	quote, in := rune(0), false
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			b.WriteRune(r)
		case r == '"' || r == '\'':
			quote, in = r, true
		case r == ' ':
			if in {
				words = append(words, b.String())
				b.Reset()
				in = false
			}
		default:
			b.WriteRune(r)
			in = true
		}
	}
	if quote != 0 {
		t.Fatalf("unbalanced quote in example %q", s)
	}
	if in {
		words = append(words, b.String())
	}
	return words
}

// TestHelpExamples: every example in --help parses as printed (flags and subcommands
// exist: cobra answers --help after parsing them), and the pki examples, which need no
// server, run as printed, in order, in an empty directory.
func TestHelpExamples(t *testing.T) {
	t.Chdir(t.TempDir())
	examples := helpExamples(t)
	if len(examples) < 5 {
		t.Fatalf("found %d examples: %v", len(examples), examples)
	}
	for _, ex := range examples {
		if code, _, stderr := run(append(append([]string{}, ex...), "--help")...); code != 0 {
			t.Errorf("tlsgate %s: does not parse: exit %d: %s", strings.Join(ex, " "), code, stderr)
		}
	}
	for _, ex := range examples {
		if ex[0] != "pki" {
			continue
		}
		if code, _, stderr := run(ex...); code != 0 {
			t.Errorf("tlsgate %s: exit %d: %s", strings.Join(ex, " "), code, stderr)
		}
	}
}
