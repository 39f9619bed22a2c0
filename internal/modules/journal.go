package modules

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// maxJournalEntries is how many journal entries are kept; older ones are
// deleted after each change, and rollback cannot reach past them.
const maxJournalEntries = 500

// Journal entry statuses.
const (
	// EntryPending is written before a change touches anything. An entry
	// still pending when the next run takes the lock was interrupted.
	EntryPending = "pending"
	// EntryDone marks a change that completed.
	EntryDone = "done"
)

// LoadedFile is one module file in the loaded folder, as a snapshot records
// it: its content hash, permission bits and owner.
type LoadedFile struct {
	SHA256 string `json:"sha256"`
	Mode   Mode   `json:"mode"`
	UID    int    `json:"uid"`
	GID    int    `json:"gid"`
}

// Mode is a file's permission bits, written in JSON as an octal string such
// as "0640".
type Mode os.FileMode

// MarshalJSON writes the mode as an octal string.
func (m Mode) MarshalJSON() ([]byte, error) {
	return json.Marshal(fmt.Sprintf("%04o", uint32(m)&0o7777))
}

// UnmarshalJSON reads an octal string such as "0640".
func (m *Mode) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("mode must be an octal string such as \"0640\": %w", err)
	}
	v, err := strconv.ParseUint(s, 8, 32)
	if err != nil || v > 0o7777 {
		return fmt.Errorf("mode %q is not an octal permission such as \"0640\"", s)
	}
	*m = Mode(v)
	return nil
}

// Snapshot is a module set: the receipts, and every module file in the loaded
// folder with its exact bytes (by hash, kept in the store), mode and owner.
// Restoring a snapshot makes the loaded folder match it byte for byte.
type Snapshot struct {
	Receipts map[string]Receipt    `json:"receipts"`
	Loaded   map[string]LoadedFile `json:"loaded"`
}

func (s Snapshot) clone() Snapshot {
	c := Snapshot{Receipts: map[string]Receipt{}, Loaded: map[string]LoadedFile{}}
	for k, r := range s.Receipts {
		c.Receipts[k] = r.clone()
	}
	for k, f := range s.Loaded {
		c.Loaded[k] = f
	}
	return c
}

// EntrySummary is a journal entry without its snapshots.
type EntrySummary struct {
	ID         int        `json:"id"`
	Op         string     `json:"op"`
	Names      []string   `json:"names"`
	Status     string     `json:"status"`
	StartedAt  time.Time  `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	User       string     `json:"user"`
	PID        int        `json:"pid"`
	// RestoredFrom is the entry whose "before" set a rollback restored.
	RestoredFrom int `json:"restored_from,omitempty"`
	// Recovered is set when a later run completed this interrupted change.
	Recovered bool `json:"recovered,omitempty"`
	// Conflicts lists files that recovery found changed by someone else and
	// left alone.
	Conflicts []string `json:"conflicts,omitempty"`
	// Restarts are the restarts of the REST service made right after the
	// change, with their outcomes.
	Restarts []RestartOutcome `json:"restarts,omitempty"`
}

// RestartOutcome is one restart of the REST service that cfyauth made, and
// what its health gate found.
type RestartOutcome struct {
	// At is when the restart was requested.
	At time.Time `json:"at"`
	// Via is the service manager: systemd or supervisord.
	Via     string `json:"via"`
	Healthy bool   `json:"healthy"`
	// FailedPhase and Failure describe the failure when Healthy is false.
	FailedPhase string `json:"failed_phase,omitempty"`
	Failure     string `json:"failure,omitempty"`
}

// JournalEntry records one change to the module set. It is written with
// status pending before the change touches anything, and marked done after.
type JournalEntry struct {
	EntrySummary
	Before Snapshot `json:"before"`
	After  Snapshot `json:"after"`
}

// journal is the folder of entries, one file per entry named by its ID.
type journal struct {
	dir  string
	meta fileMeta
}

func entryFileName(id int) string { return fmt.Sprintf("%08d.json", id) }

// ids lists the entry IDs in ascending order.
func (j *journal) ids() ([]int, error) {
	entries, err := os.ReadDir(j.dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var ids []int
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || !strings.HasSuffix(name, ".json") || strings.HasPrefix(name, ".") {
			continue
		}
		id, err := strconv.Atoi(strings.TrimSuffix(name, ".json"))
		if err != nil || id <= 0 {
			continue
		}
		ids = append(ids, id)
	}
	sort.Ints(ids)
	return ids, nil
}

// read loads one entry and checks that every name and hash in it is usable.
func (j *journal) read(id int) (*JournalEntry, error) {
	path := filepath.Join(j.dir, entryFileName(id))
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseEntry(path, data)
}

func parseEntry(path string, data []byte) (*JournalEntry, error) {
	var e JournalEntry
	if err := json.Unmarshal(data, &e); err != nil {
		return nil, &StateError{Path: path, Reason: jsonErrorReason(data, err)}
	}
	if e.Status != EntryPending && e.Status != EntryDone {
		return nil, &StateError{Path: path, Reason: fmt.Sprintf("has an unknown status %q", e.Status)}
	}
	for _, snap := range []Snapshot{e.Before, e.After} {
		for key, r := range snap.Receipts {
			r := r
			if err := checkReceipt(key, &r); err != nil {
				return nil, &StateError{Path: path, Reason: err.Error()}
			}
		}
		for name, f := range snap.Loaded {
			if !isSafeFileStem(name) || !isSHA256(f.SHA256) {
				return nil, &StateError{Path: path, Reason: fmt.Sprintf("loaded file %q has an invalid name or sha256", name)}
			}
		}
	}
	return &e, nil
}

// last returns the newest entry, or nil when the journal is empty.
func (j *journal) last() (*JournalEntry, error) {
	ids, err := j.ids()
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	return j.read(ids[len(ids)-1])
}

// write stores an entry atomically.
func (j *journal) write(e *JournalEntry) error {
	data, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return fmt.Errorf("encode journal entry: %w", err)
	}
	return writeFileAtomic(j.dir, entryFileName(e.ID), append(data, '\n'), j.meta)
}

// prune deletes the oldest entries beyond maxJournalEntries.
func (j *journal) prune() error {
	ids, err := j.ids()
	if err != nil {
		return err
	}
	if len(ids) <= maxJournalEntries {
		return nil
	}
	for _, id := range ids[:len(ids)-maxJournalEntries] {
		if err := os.Remove(filepath.Join(j.dir, entryFileName(id))); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return syncDir(j.dir)
}
