package e2e

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// repoPath is a path into the repository as docs and comments write it: a top-level
// directory of the repo followed by more path.
var repoPath = regexp.MustCompile("(?:^|[\\s`(\"'])((?:internal|contrib|bench|e2e|cmd|\\.ci)/[A-Za-z0-9_./-]*[A-Za-z0-9_])")

// mdPath is a path to a markdown file (a doc pointing to another doc).
var mdPath = regexp.MustCompile("(?:^|[\\s`(\"'])((?:\\.\\./)*[A-Za-z0-9_-]+/[A-Za-z0-9_./-]*\\.md)\\b")

// mdLink is a relative markdown link.
var mdLink = regexp.MustCompile(`\]\(([^)#:]+)(?:#[^)]*)?\)`)

// TestDocsPointIntoTheRepo: every repository path a doc or comment names, and every
// relative markdown link, exists, so no doc sends a reader to a file that is not there.
func TestDocsPointIntoTheRepo(t *testing.T) {
	root := ".."
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && d.Name() != ".ci" && path != root || d.Name() == "testdata" || d.Name() == "results") {
			return filepath.SkipDir
		}
		if d.IsDir() || !(strings.HasSuffix(path, ".go") || strings.HasSuffix(path, ".md") || d.Name() == "Makefile") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range repoPath.FindAllStringSubmatch(string(b), -1) {
			p := strings.TrimSuffix(m[1], ".")
			if strings.ContainsAny(p, "*") || strings.HasSuffix(p, "/...") {
				continue
			}
			if _, err := os.Stat(filepath.Join(root, p)); err != nil {
				t.Errorf("%s names %s, which is not in the repository", path, p)
			}
		}
		for _, m := range mdPath.FindAllStringSubmatch(string(b), -1) {
			_, errRoot := os.Stat(filepath.Join(root, m[1]))
			_, errHere := os.Stat(filepath.Join(filepath.Dir(path), m[1]))
			if errRoot != nil && errHere != nil {
				t.Errorf("%s names %s, which is not in the repository", path, m[1])
			}
		}
		if strings.HasSuffix(path, ".md") {
			for _, m := range mdLink.FindAllStringSubmatch(string(b), -1) {
				if _, err := os.Stat(filepath.Join(filepath.Dir(path), m[1])); err != nil {
					t.Errorf("%s links to %s, which is not in the repository", path, m[1])
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
