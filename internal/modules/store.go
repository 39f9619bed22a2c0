package modules

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"time"

	"github.com/cfyauth/cfyauth/internal/apperr"
	"github.com/cfyauth/cfyauth/internal/manager"
)

// Files and folders under the state folder (<root>/var/lib/cfyauth).
const (
	stateFileName  = "state.json"
	lockFileName   = "lock"
	journalDirName = "journal"
	blobsDirName   = "modules"
)

// Modes of what cfyauth writes: module files are readable by the REST
// service's group only, folders traversable by it.
const (
	moduleFileMode os.FileMode = 0o640
	moduleDirMode  os.FileMode = 0o750
	stateFileMode  os.FileMode = 0o640
	stateDirMode   os.FileMode = 0o750
)

// Owner is the account that module files in the loaded folder belong to.
type Owner struct {
	Name string `json:"name"`
	UID  int    `json:"uid"`
	GID  int    `json:"gid"`
	// Warning is set when cfyuser is missing under the root and the current
	// user owns the files instead.
	Warning string `json:"warning,omitempty"`
}

// Store is the module store of one manager layout: the loaded folder, the
// premium package's built-in modules, and cfyauth's state folder with its
// receipts, stored versions, journal and lock.
type Store struct {
	Layout      *manager.Layout
	LoadedDir   string
	StateDir    string
	PremiumDirs []string
	Owner       Owner
	LockTimeout time.Duration
	// Now returns the current time; tests replace it.
	Now func() time.Time
	// User names who makes changes, for receipts and the journal.
	User string
}

// StoreOptions configure OpenStore.
type StoreOptions struct {
	LockTimeout time.Duration
	Now         func() time.Time
	User        string
}

// OpenStore resolves the store's folders under the layout. It writes nothing.
func OpenStore(layout *manager.Layout, opts StoreOptions) (*Store, error) {
	loaded, err := layout.Authenticators()
	if err != nil {
		return nil, err
	}
	state, err := layout.State()
	if err != nil {
		return nil, err
	}
	s := &Store{
		Layout:      layout,
		LoadedDir:   loaded,
		StateDir:    state,
		PremiumDirs: layout.PremiumAuthDirs(),
		LockTimeout: opts.LockTimeout,
		Now:         opts.Now,
		User:        opts.User,
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	if s.User == "" {
		s.User = currentUser()
	}
	acct := layout.ServiceAccount()
	if acct.Found {
		s.Owner = Owner{Name: acct.Name, UID: acct.UID, GID: acct.GID}
	} else {
		name := strconv.Itoa(os.Getuid())
		if u, err := user.Current(); err == nil {
			name = u.Username
		}
		s.Owner = Owner{Name: name, UID: os.Getuid(), GID: os.Getgid(),
			Warning: fmt.Sprintf("no %s user and group in %s and %s; module files will belong to %s",
				manager.ServiceUser, layout.Display(manager.PasswdFile), layout.Display(manager.GroupFile), name)}
	}
	return s, nil
}

// currentUser describes the user running cfyauth, with the sudo caller when
// there is one.
func currentUser() string {
	name := strconv.Itoa(os.Getuid())
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	if sudo := os.Getenv("SUDO_USER"); sudo != "" && os.Getuid() == 0 {
		return fmt.Sprintf("%s (sudo from %s)", name, sudo)
	}
	return name
}

func (s *Store) statePath() string { return filepath.Join(s.StateDir, stateFileName) }
func (s *Store) blobDir(name string) string {
	return filepath.Join(s.StateDir, blobsDirName, name)
}

// BlobPath returns the path of one stored version of a module.
func (s *Store) BlobPath(name, sha string) string {
	return filepath.Join(s.blobDir(name), sha+".py")
}

func (s *Store) journal() *journal {
	return &journal{dir: filepath.Join(s.StateDir, journalDirName), meta: s.stateMeta()}
}

func (s *Store) stateMeta() fileMeta { return fileMeta{Mode: stateFileMode} }

func (s *Store) moduleMeta() fileMeta {
	return fileMeta{Mode: moduleFileMode, UID: s.Owner.UID, GID: s.Owner.GID, Chown: true}
}

// View runs fn with the shared lock held: other readers may run at once,
// writers wait. An interrupted change found on the way is completed first,
// which needs the exclusive lock for a moment.
func (s *Store) View(ctx context.Context, fn func(*Tx) error) error {
	return s.run(ctx, LockShared, fn)
}

// Update runs fn with the exclusive lock held. fn's changes are journaled;
// whatever validation results fn gathered are saved when it succeeds.
func (s *Store) Update(ctx context.Context, fn func(*Tx) error) error {
	return s.run(ctx, LockExclusive, fn)
}

func (s *Store) run(ctx context.Context, mode LockMode, fn func(*Tx) error) error {
	lock, err := s.lock(ctx, mode)
	if err != nil {
		return err
	}
	defer lock.release()

	pending, err := s.pendingEntry()
	if err != nil {
		return err
	}
	var carried []string
	if pending != nil && mode == LockShared {
		// Completing the change needs the exclusive lock; take it, recover,
		// and come back as a reader.
		lock.release()
		err := s.run(ctx, LockExclusive, func(tx *Tx) error {
			carried = tx.warnings
			return nil
		})
		if err != nil {
			return err
		}
		lock, err = s.lock(ctx, mode)
		if err != nil {
			return err
		}
		defer lock.release()
	}

	tx := &Tx{s: s, ctx: ctx, mode: mode, warnings: carried}
	if mode == LockExclusive {
		if err := s.cleanTemps(); err != nil {
			return err
		}
	}
	if err := tx.load(); err != nil {
		return err
	}
	if mode == LockExclusive {
		if pending, err = s.pendingEntry(); err != nil {
			return err
		}
		if pending != nil {
			if err := tx.recover(pending); err != nil {
				return err
			}
		}
	}
	if err := fn(tx); err != nil {
		tx.discardNewBlobs()
		return err
	}
	if tx.cacheDirty && mode == LockExclusive {
		return tx.writeState()
	}
	return nil
}

// lock creates the state folder when needed and takes the lock.
func (s *Store) lock(ctx context.Context, mode LockMode) (*fileLock, error) {
	if err := os.MkdirAll(s.StateDir, stateDirMode); err != nil {
		return nil, fsError("create", s.StateDir, err)
	}
	path := filepath.Join(s.StateDir, lockFileName)
	l, err := acquireLock(ctx, path, mode, s.LockTimeout)
	if err == nil {
		return l, nil
	}
	var held *LockHeldError
	if errors.As(err, &held) {
		return nil, apperr.Environment("lock_held", "%s holds the lock %s; gave up after waiting %s",
			held.holderText(), held.Path, held.Waited).Wrap(err).
			WithHint("wait for that run to finish, or wait longer with --lock-timeout 1m")
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return nil, err
	}
	return nil, fsError("lock", path, err)
}

// pendingEntry returns the newest journal entry when it is still pending.
func (s *Store) pendingEntry() (*JournalEntry, error) {
	j := s.journal()
	last, err := j.last()
	if err != nil {
		return nil, journalError(j.dir, err)
	}
	if last != nil && last.Status == EntryPending {
		return last, nil
	}
	return nil, nil
}

// cleanTemps removes temporary files that killed runs left behind.
func (s *Store) cleanTemps() error {
	dirs := []string{s.LoadedDir, s.StateDir, s.journal().dir}
	blobs := filepath.Join(s.StateDir, blobsDirName)
	if entries, err := os.ReadDir(blobs); err == nil {
		dirs = append(dirs, blobs)
		for _, e := range entries {
			if e.IsDir() {
				dirs = append(dirs, filepath.Join(blobs, e.Name()))
			}
		}
	}
	for _, d := range dirs {
		if err := removeStaleTemps(d); err != nil {
			return fsError("clean up", d, err)
		}
	}
	return nil
}

// fsError turns a file-system error into an environment error whose hint
// names the next step.
func fsError(action, path string, err error) error {
	if errors.Is(err, os.ErrPermission) {
		return apperr.Environment("permission_denied", "cannot %s %s: permission denied", action, path).Wrap(err).
			WithHint("run cfyauth as root (sudo cfyauth …); the manager's folders belong to root and cfyuser")
	}
	var se *StateError
	if errors.As(err, &se) {
		return stateError(se, "")
	}
	var ae *apperr.Error
	if errors.As(err, &ae) {
		return ae
	}
	return apperr.Environment("io_failed", "cannot %s %s: %v", action, path, err).Wrap(err).
		WithHint("check the file system (free space, read-only mounts) and run the command again")
}

// stateError is the error for a state file that cannot be used. adoptAll
// is the adopt --all command that the hint names, or "" for the one
// without --root.
func stateError(se *StateError, adoptAll string) error {
	if adoptAll == "" {
		adoptAll = CommandLine("/", "adopt --all")
	}
	return apperr.Environment("state_corrupt", "cannot use %s: %s", se.Path, se.Reason).Wrap(se).
		WithHint("cfyauth never resets its state on its own; restore the file from a backup, or move it aside (mv %s %s.broken)", se.Path, se.Path).
		WithHint("without state.json the next cfyauth run rebuilds the receipts from the journal, and '%s' takes files left in the loaded folder under management", adoptAll)
}

func journalError(dir string, err error) error {
	var se *StateError
	if errors.As(err, &se) {
		return apperr.Environment("journal_corrupt", "cannot use journal entry %s: %s", se.Path, se.Reason).Wrap(se).
			WithHint("restore the entry from a backup, or move it out of %s (the newest entry is the one a run would complete)", filepath.Dir(se.Path))
	}
	return fsError("read the journal in", dir, err)
}
