package modules

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/cfyauth/cfyauth/internal/apperr"
)

// Tx is one locked session on the store, handed to the function given to
// Store.View or Store.Update. It is not safe for concurrent use.
type Tx struct {
	s    *Store
	ctx  context.Context
	mode LockMode

	state    *stateDoc
	loaded   map[string]*loadedEntry
	warnings []string
	// cacheDirty is set when validation results were added to the state.
	cacheDirty bool
	// newBlobs are the stored versions this session created; a session
	// that fails deletes them, so a failed change leaves the store as it was.
	newBlobs []string
}

// loadedEntry is one *.py entry of the loaded folder.
type loadedEntry struct {
	Name    string
	Path    string
	Regular bool
	// TooLarge files are hashed but not kept in the store or snapshots.
	TooLarge bool
	File     LoadedFile
	Changed  time.Time // status change time (ctime)
}

// Warnings returns what the session noticed and the caller should show,
// such as a state rebuilt from the journal.
func (tx *Tx) Warnings() []string { return tx.warnings }

// Store returns the store the session runs on.
func (tx *Tx) Store() *Store { return tx.s }

func (tx *Tx) warnf(format string, args ...any) {
	tx.warnings = append(tx.warnings, fmt.Sprintf(format, args...))
}

// load reads state.json and scans the loaded folder. A missing state.json
// with a journal is rebuilt from the newest completed entry, with a warning.
func (tx *Tx) load() error {
	s := tx.s
	data, err := os.ReadFile(s.statePath())
	switch {
	case errors.Is(err, os.ErrNotExist):
		tx.state = newStateDoc()
		if err := tx.rebuildFromJournal(); err != nil {
			return err
		}
	case err != nil:
		return fsError("read", s.statePath(), err)
	default:
		doc, err := parseState(s.statePath(), data)
		if err != nil {
			var se *StateError
			errors.As(err, &se)
			return stateError(se, s.command("adopt --all"))
		}
		tx.state = doc
	}
	return tx.scanLoaded()
}

func (tx *Tx) rebuildFromJournal() error {
	j := tx.s.journal()
	ids, err := j.ids()
	if err != nil {
		return journalError(j.dir, err)
	}
	for i := len(ids) - 1; i >= 0; i-- {
		e, err := j.read(ids[i])
		if err != nil {
			return journalError(j.dir, err)
		}
		if e.Status != EntryDone {
			continue
		}
		for name, r := range e.After.Receipts {
			r := r
			tx.state.Modules[name] = &r
		}
		tx.warnf("%s was missing; rebuilt %d receipt(s) from journal entry %d", tx.s.statePath(), len(e.After.Receipts), e.ID)
		if tx.mode == LockExclusive {
			return tx.writeState()
		}
		return nil
	}
	return nil
}

// scanLoaded reads every *.py entry of the loaded folder. Hidden files and
// __pycache__ are ignored.
func (tx *Tx) scanLoaded() error {
	tx.loaded = map[string]*loadedEntry{}
	entries, err := os.ReadDir(tx.s.LoadedDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fsError("read", tx.s.LoadedDir, err)
	}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") || !strings.HasSuffix(name, ".py") || name == ".py" {
			continue
		}
		entry, err := tx.s.statLoaded(strings.TrimSuffix(name, ".py"))
		if err != nil {
			return err
		}
		if entry != nil {
			tx.loaded[entry.Name] = entry
		}
	}
	return nil
}

// statLoaded reads one module file of the loaded folder, or returns nil when
// there is none.
func (s *Store) statLoaded(name string) (*loadedEntry, error) {
	path := filepath.Join(s.LoadedDir, name+".py")
	st, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fsError("read", path, err)
	}
	entry := &loadedEntry{Name: name, Path: path, Regular: st.Mode().IsRegular()}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		entry.File.UID, entry.File.GID = int(sys.Uid), int(sys.Gid)
		entry.Changed = time.Unix(sys.Ctim.Sec, sys.Ctim.Nsec)
	}
	entry.File.Mode = Mode(st.Mode().Perm())
	if !entry.Regular {
		return entry, nil
	}
	sum, size, err := hashFile(path)
	if err != nil {
		return nil, fsError("read", path, err)
	}
	entry.File.SHA256 = sum
	entry.TooLarge = size > MaxSourceSize
	return entry, nil
}

func hashFile(path string) (string, int64, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

func sha256Hex(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// writeState saves state.json atomically.
func (tx *Tx) writeState() error {
	data, err := tx.state.encode()
	if err != nil {
		return err
	}
	if err := writeFileAtomic(tx.s.StateDir, stateFileName, data, tx.s.stateMeta()); err != nil {
		return fsError("write", tx.s.statePath(), err)
	}
	tx.cacheDirty = false
	return nil
}

// Snapshot returns the current module set: the receipts and every regular
// module file of the loaded folder. Restore brings it back; the bytes of
// every file in it are kept in the store as soon as a change is made.
func (tx *Tx) Snapshot() Snapshot {
	snap := Snapshot{Receipts: tx.state.receipts(), Loaded: map[string]LoadedFile{}}
	for name, e := range tx.loaded {
		if e.Regular && !e.TooLarge && isSafeFileStem(name) {
			snap.Loaded[name] = e.File
		}
	}
	return snap
}

// readBlob returns a stored version and checks that its bytes still match
// their hash.
func (s *Store) readBlob(name, sha string) ([]byte, error) {
	path := s.BlobPath(name, sha)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, apperr.Failed("store_missing", "the stored copy of %s (%s) is missing: %s", name, shortSHA(sha), path).
			WithHint("install the module again from its source with '%s'", s.command("install SOURCE --name %s", name))
	}
	if err != nil {
		return nil, fsError("read", path, err)
	}
	if got := sha256Hex(data); got != sha {
		return nil, apperr.Failed("store_corrupt", "the stored copy %s does not match its sha256: want %s, got %s", path, sha, got).
			WithHint("install the module again from its source with '%s'", s.command("install SOURCE --name %s", name))
	}
	return data, nil
}

// hasBlob reports whether a version is in the store.
func (s *Store) hasBlob(name, sha string) bool {
	st, err := os.Stat(s.BlobPath(name, sha))
	return err == nil && st.Mode().IsRegular()
}

// putBlob stores a version for the session's change and remembers that the
// session created it.
func (tx *Tx) putBlob(name string, data []byte) error {
	sha := sha256Hex(data)
	if tx.s.hasBlob(name, sha) {
		return nil
	}
	if err := tx.s.putBlob(name, data); err != nil {
		return err
	}
	tx.newBlobs = append(tx.newBlobs, tx.s.BlobPath(name, sha))
	return nil
}

// discardNewBlobs deletes the stored versions that a failed session
// created, and their module folders when they are left empty. A pending
// journal entry may need them to complete its change, so they stay then.
func (tx *Tx) discardNewBlobs() {
	if len(tx.newBlobs) == 0 {
		return
	}
	if pending, err := tx.s.pendingEntry(); err != nil || pending != nil {
		return
	}
	for _, path := range tx.newBlobs {
		dir := filepath.Dir(path)
		if removeFileDurable(dir, filepath.Base(path)) != nil {
			continue
		}
		// Each Remove fails, as it should, when the folder holds anything else.
		if os.Remove(dir) == nil && os.Remove(filepath.Dir(dir)) == nil {
			_ = syncDir(filepath.Dir(filepath.Dir(dir)))
		}
	}
	tx.newBlobs = nil
}

// putBlob stores a version once; stored versions never change.
func (s *Store) putBlob(name string, data []byte) error {
	sha := sha256Hex(data)
	if s.hasBlob(name, sha) {
		return nil
	}
	dir := s.blobDir(name)
	if err := ensureDir(filepath.Join(s.StateDir, blobsDirName), fileMeta{Mode: stateDirMode}); err != nil {
		return fsError("create", filepath.Join(s.StateDir, blobsDirName), err)
	}
	if err := ensureDir(dir, fileMeta{Mode: stateDirMode}); err != nil {
		return fsError("create", dir, err)
	}
	if err := writeFileAtomic(dir, sha+".py", data, s.stateMeta()); err != nil {
		return fsError("write", filepath.Join(dir, sha+".py"), err)
	}
	return nil
}

// storeLoadedFiles copies every file of the snapshot that the store lacks
// (files placed by hand) into the store, so a rollback can restore them.
func (tx *Tx) storeLoadedFiles(snap Snapshot) error {
	for name, f := range snap.Loaded {
		if tx.s.hasBlob(name, f.SHA256) {
			continue
		}
		path := filepath.Join(tx.s.LoadedDir, name+".py")
		data, err := readRegular(path)
		if err != nil {
			return fsError("read", path, err)
		}
		if sha256Hex(data) != f.SHA256 {
			return apperr.Failed("file_changed", "%s changed while cfyauth was reading it", path).
				WithHint("make sure nothing else writes to %s, and run the command again", tx.s.LoadedDir)
		}
		if err := tx.putBlob(name, data); err != nil {
			return err
		}
	}
	return nil
}

func readRegular(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, MaxSourceSize+1))
}

// fileChange is one step that turns the loaded folder from one snapshot into
// another: write, delete, or only change mode and owner.
type fileChange struct {
	Name string
	From *LoadedFile
	To   *LoadedFile
}

// diffLoaded lists the steps from one loaded set to another, by name.
func diffLoaded(from, to map[string]LoadedFile) []fileChange {
	names := map[string]bool{}
	for n := range from {
		names[n] = true
	}
	for n := range to {
		names[n] = true
	}
	var changes []fileChange
	for _, n := range sortedKeys(names) {
		f, inFrom := from[n]
		t, inTo := to[n]
		if inFrom && inTo && f == t {
			continue
		}
		c := fileChange{Name: n}
		if inFrom {
			f := f
			c.From = &f
		}
		if inTo {
			t := t
			c.To = &t
		}
		changes = append(changes, c)
	}
	return changes
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func sameReceipts(a, b map[string]Receipt) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// commit journals and applies the change from the current module set to
// after. It returns nil when after equals the current set. In a dry run it
// only returns the entry it would write.
func (tx *Tx) commit(op string, names []string, after Snapshot, restoredFrom int, dryRun bool) (*JournalEntry, error) {
	before := tx.Snapshot()
	changes := diffLoaded(before.Loaded, after.Loaded)
	if len(changes) == 0 && sameReceipts(before.Receipts, after.Receipts) {
		return nil, nil
	}
	now := tx.s.Now().UTC()
	entry := &JournalEntry{
		EntrySummary: EntrySummary{Op: op, Names: names, Status: EntryPending, StartedAt: now,
			User: tx.s.User, PID: os.Getpid(), RestoredFrom: restoredFrom},
		Before: before, After: after,
	}
	if dryRun {
		return entry, nil
	}
	if tx.mode != LockExclusive {
		return nil, fmt.Errorf("commit %s: the store is open read-only", op)
	}
	for _, c := range changes {
		if c.To != nil && !tx.s.hasBlob(c.Name, c.To.SHA256) {
			return nil, fmt.Errorf("commit %s: no stored copy of %s %s", op, c.Name, c.To.SHA256)
		}
	}
	if err := tx.storeLoadedFiles(before); err != nil {
		return nil, err
	}
	if len(changes) > 0 {
		if err := ensureDir(tx.s.LoadedDir, fileMeta{Mode: moduleDirMode, UID: tx.s.Owner.UID, GID: tx.s.Owner.GID, Chown: true}); err != nil {
			return nil, fsError("prepare", tx.s.LoadedDir, err)
		}
	}

	j := tx.s.journal()
	if err := ensureDir(j.dir, fileMeta{Mode: stateDirMode}); err != nil {
		return nil, fsError("create", j.dir, err)
	}
	ids, err := j.ids()
	if err != nil {
		return nil, journalError(j.dir, err)
	}
	entry.ID = 1
	if len(ids) > 0 {
		entry.ID = ids[len(ids)-1] + 1
	}
	// The intent record goes first: from here on, a crash is completed by
	// the next run that takes the lock.
	if err := j.write(entry); err != nil {
		return nil, fsError("write the journal in", j.dir, err)
	}
	if err := tx.finish(entry, changes, false); err != nil {
		return nil, err
	}
	return entry, nil
}

// finish applies an entry's file changes, saves the receipts and marks the
// entry done. With recovering set, a file that matches neither side of a
// change was changed by someone else: it is left alone and listed in the
// entry's conflicts.
func (tx *Tx) finish(entry *JournalEntry, changes []fileChange, recovering bool) error {
	now := tx.s.Now().UTC()
	for _, c := range changes {
		if recovering {
			ok, err := tx.recoverable(c)
			if c.To != nil && !tx.s.hasBlob(c.Name, c.To.SHA256) {
				ok = false
			}
			if err != nil {
				return err
			}
			if !ok {
				entry.Conflicts = append(entry.Conflicts, filepath.Join(tx.s.LoadedDir, c.Name+".py"))
				continue
			}
		}
		if err := tx.applyChange(c); err != nil {
			if recovering {
				return err
			}
			return tx.abandon(entry, changes, err)
		}
		tx.state.LoadedChanges[c.Name] = now
	}

	tx.state.Modules = map[string]*Receipt{}
	for name, r := range entry.After.Receipts {
		r := r
		tx.state.Modules[name] = &r
	}
	// A change from before the last restart no longer makes a restart
	// pending, so its time can go.
	if last := tx.state.LastRestart; last != nil {
		for name, t := range tx.state.LoadedChanges {
			if !t.After(*last) {
				delete(tx.state.LoadedChanges, name)
			}
		}
	}
	if err := tx.writeState(); err != nil {
		return err
	}

	entry.Status = EntryDone
	entry.FinishedAt = &now
	entry.Recovered = recovering
	j := tx.s.journal()
	if err := j.write(entry); err != nil {
		return fsError("write the journal in", j.dir, err)
	}
	if err := j.prune(); err != nil {
		return fsError("prune the journal in", j.dir, err)
	}
	return tx.scanLoaded()
}

// abandon undoes the file changes of a change that failed part way, before
// its receipts were saved, and deletes its journal entry, so that nothing
// changed. When the undo fails too, the entry stays pending and the next
// run completes the change.
func (tx *Tx) abandon(entry *JournalEntry, changes []fileChange, cause error) error {
	var undoErr error
	for i := len(changes) - 1; i >= 0; i-- {
		c := changes[i]
		back := fileChange{Name: c.Name, From: c.To, To: c.From}
		cur, err := tx.s.statLoaded(c.Name)
		if err != nil {
			undoErr = err
			break
		}
		switch {
		case cur == nil && c.From == nil:
			continue
		case cur != nil && cur.Regular && c.From != nil && cur.File == *c.From:
			continue
		}
		if err := tx.applyChange(back); err != nil {
			undoErr = err
			break
		}
	}
	j := tx.s.journal()
	if undoErr == nil {
		undoErr = removeFileDurable(j.dir, entryFileName(entry.ID))
	}
	e := apperr.As(cause)
	if undoErr != nil {
		return e.WithHint("the change is recorded as pending journal entry %d, and the next cfyauth run completes it", entry.ID)
	}
	return e
}

// recoverable reports whether an interrupted change may still be applied to
// a file: the file is absent, or holds the bytes the change started from or
// ends with.
func (tx *Tx) recoverable(c fileChange) (bool, error) {
	cur, err := tx.s.statLoaded(c.Name)
	if err != nil {
		return false, err
	}
	switch {
	case cur == nil:
		return true, nil
	case !cur.Regular:
		return false, nil
	case c.To != nil && cur.File.SHA256 == c.To.SHA256:
		return true, nil
	case c.From != nil && cur.File.SHA256 == c.From.SHA256:
		return true, nil
	}
	return false, nil
}

// applyChange performs one file change in the loaded folder.
func (tx *Tx) applyChange(c fileChange) error {
	dir := tx.s.LoadedDir
	file := c.Name + ".py"
	path := filepath.Join(dir, file)
	if c.To == nil {
		if err := removeFileDurable(dir, file); err != nil {
			return fsError("delete", path, err)
		}
		return tx.s.removeBytecode(c.Name)
	}

	meta := fileMeta{Mode: os.FileMode(c.To.Mode), UID: c.To.UID, GID: c.To.GID, Chown: true}
	cur, err := tx.s.statLoaded(c.Name)
	if err != nil {
		return err
	}
	if cur != nil && cur.Regular && cur.File.SHA256 == c.To.SHA256 {
		if cur.File != *c.To {
			if err := setMeta(path, meta); err != nil {
				return fsError("set the owner and mode of", path, err)
			}
		}
		return nil
	}

	data, err := tx.s.readBlob(c.Name, c.To.SHA256)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(dir, file, data, meta); err != nil {
		return fsError("write", path, err)
	}
	return tx.s.removeBytecode(c.Name)
}

// removeBytecode deletes a module's compiled files: __pycache__/<name>.*.pyc
// and a Python 2 style <name>.pyc beside the source.
func (s *Store) removeBytecode(name string) error {
	cache := filepath.Join(s.LoadedDir, "__pycache__")
	entries, err := os.ReadDir(cache)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fsError("read", cache, err)
	}
	for _, e := range entries {
		n := e.Name()
		if e.Type().IsRegular() && strings.HasPrefix(n, name+".") && strings.HasSuffix(n, ".pyc") {
			if err := removeFileDurable(cache, n); err != nil {
				return fsError("delete", filepath.Join(cache, n), err)
			}
		}
	}
	if err := removeFileDurable(s.LoadedDir, name+".pyc"); err != nil {
		return fsError("delete", filepath.Join(s.LoadedDir, name+".pyc"), err)
	}
	return nil
}

// recover completes a change that an interrupted run journaled but did not
// finish. Every stored copy it needs was written before the intent record.
func (tx *Tx) recover(entry *JournalEntry) error {
	changes := diffLoaded(entry.Before.Loaded, entry.After.Loaded)
	if err := tx.finish(entry, changes, true); err != nil {
		return err
	}
	tx.warnf("completed change %d (%s %s) that run %d did not finish", entry.ID, entry.Op, strings.Join(entry.Names, " "), entry.PID)
	for _, c := range entry.Conflicts {
		tx.warnf("left %s alone while completing change %d: someone else changed it", c, entry.ID)
	}
	return nil
}
