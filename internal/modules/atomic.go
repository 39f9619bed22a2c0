package modules

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// Temporary files are named ".cfyauth-<final name>-<random>.tmp": the leading
// dot and the .tmp suffix mean the REST service never imports one, and a
// later run recognises a leftover by the prefix and suffix.
const (
	tempPrefix = ".cfyauth-"
	tempSuffix = ".tmp"
)

// fileMeta is the permission bits and owner a written file gets.
type fileMeta struct {
	Mode os.FileMode
	UID  int
	GID  int
	// Chown is false when the owner is left as the writing process's own.
	Chown bool
}

// writeFileAtomic replaces dir/name with data: it writes a temporary file in
// the same folder, sets its mode and owner, fsyncs it, renames it over the
// final name and fsyncs the folder. A crash at any instant leaves either the
// old complete file or the new one. An existing dir/name that is not a
// regular file is never replaced.
func writeFileAtomic(dir, name string, data []byte, meta fileMeta) error {
	final := filepath.Join(dir, name)
	if st, err := os.Lstat(final); err == nil && !st.Mode().IsRegular() {
		return fmt.Errorf("replace %s: it is not a regular file", final)
	}

	f, err := os.CreateTemp(dir, tempPrefix+name+"-*"+tempSuffix)
	if err != nil {
		return err
	}
	tmp := f.Name()
	committed := false
	defer func() {
		if !committed {
			f.Close()
			os.Remove(tmp)
		}
	}()

	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Chmod(meta.Mode); err != nil {
		return err
	}
	if meta.Chown {
		if err := f.Chown(meta.UID, meta.GID); err != nil {
			return err
		}
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}

	if err := os.Rename(tmp, final); err != nil {
		return err
	}
	committed = true
	return syncDir(dir)
}

// setMeta changes the mode and owner of an existing file and fsyncs it, so
// the change survives a crash.
func setMeta(path string, meta fileMeta) error {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Chmod(meta.Mode); err != nil {
		return err
	}
	if meta.Chown {
		if err := f.Chown(meta.UID, meta.GID); err != nil {
			return err
		}
	}
	return f.Sync()
}

// removeFileDurable deletes dir/name, when it exists, and fsyncs the folder.
func removeFileDurable(dir, name string) error {
	err := os.Remove(filepath.Join(dir, name))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return syncDir(dir)
}

// syncDir fsyncs a folder so that renames and deletions in it are durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return err
	}
	return nil
}

// ensureDir creates dir (and its parents) when missing and gives dir itself
// the mode and owner in meta. The parents get mode 0755.
func ensureDir(dir string, meta fileMeta) error {
	st, err := os.Stat(dir)
	if errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
			return err
		}
		if err := os.Mkdir(dir, meta.Mode); err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
		st, err = os.Stat(dir)
		if err != nil {
			return err
		}
		if err := syncDir(filepath.Dir(dir)); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	if !st.IsDir() {
		return fmt.Errorf("use folder %s: it is not a folder", dir)
	}
	if st.Mode().Perm() != meta.Mode {
		if err := os.Chmod(dir, meta.Mode); err != nil {
			return err
		}
	}
	if meta.Chown {
		if sys, ok := st.Sys().(*syscall.Stat_t); ok && (int(sys.Uid) != meta.UID || int(sys.Gid) != meta.GID) {
			if err := os.Chown(dir, meta.UID, meta.GID); err != nil {
				return err
			}
		}
	}
	return nil
}

// isTempName reports whether a file name is one of cfyauth's temporary files.
func isTempName(name string) bool {
	return strings.HasPrefix(name, tempPrefix) && strings.HasSuffix(name, tempSuffix)
}

// removeStaleTemps deletes temporary files that a run killed mid-write left
// in dir. Only a run holding the exclusive lock calls it, so no live writer
// owns them.
func removeStaleTemps(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	removed := false
	for _, e := range entries {
		if e.Type().IsRegular() && isTempName(e.Name()) {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
			removed = true
		}
	}
	if removed {
		return syncDir(dir)
	}
	return nil
}
