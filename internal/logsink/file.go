package logsink

import (
	"fmt"
	"os"
	"sync"
)

// File is a log file opened for appending that can be reopened in place: logrotate
// renames the file, then signals (SIGUSR1), and the next lines go to a new file under the
// old name, as nginx's USR1 does.
type File struct {
	path string
	mu   sync.Mutex
	f    *os.File
}

// OpenFile opens path for appending, creating it with mode 0640.
func OpenFile(path string) (*File, error) {
	f, err := open(path)
	if err != nil {
		return nil, err
	}
	return &File{path: path, f: f}, nil
}

func open(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("opening log file: %w", err)
	}
	return f, nil
}

// Write appends p to the current file.
func (f *File) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.f.Write(p)
}

// Reopen opens the path again and closes the previous file. When the path cannot be
// opened the previous file stays in use and the error is returned: lines go on to the
// renamed file rather than nowhere.
func (f *File) Reopen() error {
	nf, err := open(f.path)
	if err != nil {
		return err
	}
	f.mu.Lock()
	old := f.f
	f.f = nf
	f.mu.Unlock()
	return old.Close()
}

// Close closes the file.
func (f *File) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.f.Close()
}
