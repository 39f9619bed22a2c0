package modules

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// LockMode selects shared locking (readers) or exclusive locking (writers)
// of the state folder.
type LockMode int

const (
	// LockShared lets other readers in and keeps writers out.
	LockShared LockMode = iota
	// LockExclusive keeps every other run out.
	LockExclusive
)

func (m LockMode) String() string {
	if m == LockExclusive {
		return "exclusive"
	}
	return "shared"
}

// LockHeldError is returned when another run held the lock for longer than
// the lock timeout.
type LockHeldError struct {
	Path    string
	Mode    LockMode
	Waited  time.Duration
	Holders []int // PIDs that hold the lock; empty when /proc/locks lists none
}

func (e *LockHeldError) Error() string {
	return fmt.Sprintf("lock %s held by %s after waiting %s", e.Path, e.holderText(), e.Waited)
}

func (e *LockHeldError) holderText() string {
	switch len(e.Holders) {
	case 0:
		return "another cfyauth run (PID unknown)"
	case 1:
		return fmt.Sprintf("another cfyauth run (PID %d)", e.Holders[0])
	}
	pids := make([]string, len(e.Holders))
	for i, p := range e.Holders {
		pids[i] = strconv.Itoa(p)
	}
	return "other cfyauth runs (PIDs " + strings.Join(pids, ", ") + ")"
}

// fileLock is a held flock(2) lock on the state folder's lock file. The
// kernel releases it when the process dies, so a killed run never leaves a
// stale lock behind.
type fileLock struct {
	f    *os.File
	mode LockMode
}

// acquireLock takes the lock on path in the given mode, polling until the
// timeout ends or ctx is cancelled. A timeout of zero tries once.
func acquireLock(ctx context.Context, path string, mode LockMode, timeout time.Duration) (*fileLock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o640)
	if errors.Is(err, os.ErrPermission) && mode == LockShared {
		// A reader may lack write access; flock works on a read-only file.
		var rerr error
		f, rerr = os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
		if rerr == nil {
			err = nil
		}
	}
	if err != nil {
		return nil, err
	}
	how := unix.LOCK_SH
	if mode == LockExclusive {
		how = unix.LOCK_EX
	}
	start := time.Now()
	delay := 5 * time.Millisecond
	for {
		err := unix.Flock(int(f.Fd()), how|unix.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		waited := time.Since(start)
		if waited >= timeout {
			holders := lockHolders(f)
			f.Close()
			return nil, &LockHeldError{Path: path, Mode: mode, Waited: waited.Round(time.Millisecond), Holders: holders}
		}
		sleep := delay
		if rest := timeout - waited; rest < sleep {
			sleep = rest
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(sleep):
		}
		if delay < 100*time.Millisecond {
			delay *= 2
		}
	}
	l := &fileLock{f: f, mode: mode}
	if mode == LockExclusive {
		// The PID in the file names the writer when /proc/locks is not
		// readable. Readers do not write it, because they share the lock.
		if err := f.Truncate(0); err == nil {
			_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
		}
	}
	return l, nil
}

// release drops the lock.
func (l *fileLock) release() {
	if l == nil || l.f == nil {
		return
	}
	_ = unix.Flock(int(l.f.Fd()), unix.LOCK_UN)
	l.f.Close()
	l.f = nil
}

// lockHolders returns the PIDs that hold a flock on the open file, read from
// /proc/locks, or else the PID the last writer recorded in the file.
func lockHolders(f *os.File) []int {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return nil
	}
	if pids := procLockHolders(st); len(pids) > 0 {
		return pids
	}
	buf := make([]byte, 32)
	n, _ := f.ReadAt(buf, 0)
	if pid, err := strconv.Atoi(strings.TrimSpace(string(buf[:n]))); err == nil && pid > 0 {
		return []int{pid}
	}
	return nil
}

// procLockHolders parses /proc/locks lines such as
// "3: FLOCK  ADVISORY  WRITE 4242 fd:01:1234567 0 EOF", where the device is
// major:minor in hex and the inode is decimal. Lines marked "->" are
// waiters, not holders.
func procLockHolders(st unix.Stat_t) []int {
	f, err := os.Open("/proc/locks")
	if err != nil {
		return nil
	}
	defer f.Close()
	want := fmt.Sprintf("%02x:%02x:%d", unix.Major(st.Dev), unix.Minor(st.Dev), st.Ino)
	seen := map[int]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || fields[1] == "->" || fields[1] != "FLOCK" {
			continue
		}
		if fields[5] != want {
			continue
		}
		if pid, err := strconv.Atoi(fields[4]); err == nil && pid > 0 {
			seen[pid] = true
		}
	}
	pids := make([]int, 0, len(seen))
	for p := range seen {
		pids = append(pids, p)
	}
	sort.Ints(pids)
	return pids
}
