package modules

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"unicode/utf8"
)

// MaxSourceSize is the largest module source cfyauth accepts.
const MaxSourceSize = 1 << 20

// Source is the bytes of one module, read and checked once so that what is
// validated is exactly what is installed.
type Source struct {
	// Origin is the place the bytes came from: a path, "stdin", or a URL.
	Origin string `json:"source"`
	// Name is the module name: from --name, or derived from the file name.
	Name   string `json:"name"`
	Data   []byte `json:"-"`
	SHA256 string `json:"sha256,omitempty"`
}

// SourceError explains why a module's bytes cannot be used.
type SourceError struct {
	Origin string
	Reason string
	Hint   string
}

// Error joins origin and reason as a sentence when the reason is a
// predicate ("x.py is empty"), else with a colon ("x.py: no such file").
func (e *SourceError) Error() string {
	for _, verb := range []string{"is ", "contains ", "has "} {
		if strings.HasPrefix(e.Reason, verb) {
			return e.Origin + " " + e.Reason
		}
	}
	return e.Origin + ": " + e.Reason
}

// ReadSourceFile reads a module file, following symlinks, and checks it.
func ReadSourceFile(path string) (Source, error) {
	src := Source{Origin: path, Name: NameFromFile(path)}
	st, err := os.Stat(path)
	if err != nil {
		return src, statError(path, err)
	}
	if st.IsDir() {
		return src, &SourceError{Origin: path, Reason: "is a folder, not a module file", Hint: "pass the module's .py file"}
	}
	if !st.Mode().IsRegular() {
		return src, &SourceError{Origin: path, Reason: "is not a regular file", Hint: "pass the module's .py file"}
	}
	if st.Size() > MaxSourceSize {
		return src, tooLarge(path, st.Size())
	}
	f, err := os.Open(path)
	if err != nil {
		return src, statError(path, err)
	}
	defer f.Close()
	data, err := readBounded(f)
	if err != nil {
		return src, &SourceError{Origin: path, Reason: err.Error(), Hint: "pass a module file of at most 1 MiB"}
	}
	src.Data = data
	return src, CheckBytes(&src)
}

// ReadSourceStream reads a module from a stream such as stdin.
func ReadSourceStream(origin, name string, r io.Reader) (Source, error) {
	src := Source{Origin: origin, Name: name}
	data, err := readBounded(r)
	if err != nil {
		return src, &SourceError{Origin: origin, Reason: err.Error(), Hint: "send a module of at most 1 MiB"}
	}
	src.Data = data
	return src, CheckBytes(&src)
}

func readBounded(r io.Reader) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxSourceSize+1))
	if err != nil {
		return nil, fmt.Errorf("read failed: %v", err)
	}
	if len(data) > MaxSourceSize {
		return nil, fmt.Errorf("is larger than the 1 MiB limit")
	}
	return data, nil
}

// CheckBytes checks that a module's bytes are plausible Python source:
// not empty, not binary, valid UTF-8, at most 1 MiB. It sets SHA256.
func CheckBytes(src *Source) error {
	data := src.Data
	sum := sha256.Sum256(data)
	src.SHA256 = hex.EncodeToString(sum[:])
	switch {
	case len(data) > MaxSourceSize:
		return tooLarge(src.Origin, int64(len(data)))
	case len(bytes.TrimSpace(data)) == 0:
		return &SourceError{Origin: src.Origin, Reason: "is empty", Hint: "pass the module's Python source"}
	case bytes.IndexByte(data, 0) >= 0:
		return &SourceError{Origin: src.Origin, Reason: "contains NUL bytes, so it is binary, not Python source",
			Hint: "pass the module's .py source, not a compiled .pyc or an archive"}
	case !utf8.Valid(data):
		line := 1 + bytes.Count(data[:firstInvalidUTF8(data)], []byte("\n"))
		return &SourceError{Origin: src.Origin, Reason: fmt.Sprintf("is not valid UTF-8 (first invalid byte on line %d)", line),
			Hint: "save the module as UTF-8"}
	}
	return nil
}

func firstInvalidUTF8(data []byte) int {
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && size <= 1 {
			return i
		}
		i += size
	}
	return len(data)
}

func tooLarge(origin string, size int64) error {
	return &SourceError{Origin: origin, Reason: fmt.Sprintf("is %d bytes, larger than the 1 MiB limit", size),
		Hint: "an authenticator module is a single small .py file; check that this is the right file"}
}

func statError(path string, err error) error {
	switch {
	case errors.Is(err, os.ErrNotExist):
		return &SourceError{Origin: path, Reason: "no such file", Hint: "check the path"}
	case errors.Is(err, syscall.ELOOP):
		return &SourceError{Origin: path, Reason: "is a symlink loop", Hint: "point the symlink at the module file"}
	case errors.Is(err, os.ErrPermission):
		return &SourceError{Origin: path, Reason: "permission denied", Hint: "run as a user that can read the file, or as root"}
	}
	return &SourceError{Origin: path, Reason: err.Error(), Hint: "check the path"}
}
