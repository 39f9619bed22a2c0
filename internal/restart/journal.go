package restart

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Journal reads a unit's output with journalctl.
type Journal struct {
	// Dir is the journal folder of a mounted image or sandbox
	// (<root>/var/log/journal), passed as journalctl -D; empty reads the
	// host's journal.
	Dir string
	// Command runs journalctl; tests replace it. Nil runs the real binary.
	Command func(ctx context.Context, args ...string) ([]byte, error)
}

// HostJournal returns the journal reader for a root: the host's journal for
// "/", the root's own var/log/journal when it has one, and nil otherwise,
// because the host's journal contains nothing about a sandbox's services.
func HostJournal(root string) *Journal {
	if root == "" || root == "/" {
		return &Journal{}
	}
	dir := filepath.Join(root, "var/log/journal")
	if st, err := os.Stat(dir); err == nil && st.IsDir() {
		return &Journal{Dir: dir}
	}
	return nil
}

// Tail returns up to n lines the unit logged since the given time. A
// journal without entries, or a host without journalctl, gives no lines and
// no error.
func (j *Journal) Tail(ctx context.Context, unit string, since time.Time, n int) (LogTail, error) {
	args := []string{"--no-pager", "--quiet", "--output=short-iso", "--unit=" + unit, "--lines=" + strconv.Itoa(n)}
	if !since.IsZero() {
		args = append(args, "--since=@"+strconv.FormatInt(since.Unix(), 10))
	}
	if j.Dir != "" {
		args = append(args, "--directory="+j.Dir)
	}
	source := "journalctl -u " + unit
	run := j.Command
	if run == nil {
		run = runJournalctl
	}
	out, err := run(ctx, args...)
	if errors.Is(err, exec.ErrNotFound) {
		return LogTail{}, nil
	}
	if err != nil {
		return LogTail{Source: source}, fmt.Errorf("read the journal of %s: %w", unit, err)
	}
	return LogTail{Source: source, Lines: lastLines(out, n)}, nil
}

func runJournalctl(ctx context.Context, args ...string) ([]byte, error) {
	path, err := exec.LookPath("journalctl")
	if err != nil {
		return nil, exec.ErrNotFound
	}
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return out, fmt.Errorf("%w: %s", err, msg)
		}
		return out, err
	}
	return out, nil
}

// lastLines returns the last n non-empty lines of text.
func lastLines(text []byte, n int) []string {
	var lines []string
	for _, line := range strings.Split(string(text), "\n") {
		line = strings.TrimRight(line, "\r")
		if strings.TrimSpace(line) != "" {
			lines = append(lines, line)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines
}
