package cli

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"tlsgate/internal/config"
)

// TestReopenWritesBufferedLines: on SIGUSR1 the lines logged before it go to the file
// logrotate renamed, those after it to the new one, none lost: the buffer is flushed
// before the file is reopened.
func TestReopenWritesBufferedLines(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "tlsgate.log")
	log, out, err := openLog(config.Log{File: path}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 { // the first goes out at once, the rest wait for the next flush
		log.Info("before", "i", i)
	}
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := out.Reopen(); err != nil {
		t.Fatal(err)
	}
	log.Info("after")
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	old, _ := os.ReadFile(path + ".1")
	cur, _ := os.ReadFile(path)
	if n := strings.Count(string(old), `"msg":"before"`); n != 100 || strings.Contains(string(old), "after") {
		t.Errorf("renamed file has %d of 100 lines from before the reopen (and after: %v)", n, strings.Contains(string(old), "after"))
	}
	if got := string(cur); strings.Contains(got, "before") || !strings.Contains(got, `"msg":"after"`) {
		t.Errorf("new file: %q", got)
	}
	for i := range 100 {
		if !strings.Contains(string(old), fmt.Sprintf(`"i":%d}`, i)) {
			t.Fatalf("line %d lost", i)
		}
	}
}
