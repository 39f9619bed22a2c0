// Package apperr defines the typed errors that every cfyauth package returns
// and the exit code each kind maps to. The CLI maps them in one place.
package apperr

import (
	"context"
	"errors"
	"fmt"
)

// Kind classifies an error by what the caller can do about it.
type Kind int

const (
	// KindFailed is an operation that failed, a rejected login or a failed check.
	KindFailed Kind = iota + 1
	// KindUsage is a bad flag, argument or input value.
	KindUsage
	// KindEnvironment means the command could not reach what it needs: permission
	// denied, no manager layout, a held lock, no bus, an unreachable service.
	KindEnvironment
	// KindPending means --check or --dry-run found changes to make.
	KindPending
	// KindInterrupted is a run cancelled by a signal.
	KindInterrupted
)

// Exit codes, as documented in docs/exit-codes.md.
const (
	ExitOK          = 0
	ExitFailed      = 1
	ExitUsage       = 2
	ExitEnvironment = 3
	ExitPending     = 4
	ExitInterrupted = 130
)

// ExitCode returns the process exit code for a kind.
func (k Kind) ExitCode() int {
	switch k {
	case KindUsage:
		return ExitUsage
	case KindEnvironment:
		return ExitEnvironment
	case KindPending:
		return ExitPending
	case KindInterrupted:
		return ExitInterrupted
	default:
		return ExitFailed
	}
}

// Error is an error with a kind, a stable machine-readable code, a message for
// people and hints that name the next command or flag to use.
type Error struct {
	Kind    Kind
	Code    string
	Message string
	Hints   []string
	Err     error
}

func (e *Error) Error() string {
	if e.Err != nil && e.Message == "" {
		return e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// WithHint returns e with one more hint line.
func (e *Error) WithHint(format string, args ...any) *Error {
	e.Hints = append(e.Hints, fmt.Sprintf(format, args...))
	return e
}

// Wrap attaches the underlying cause, kept for errors.Is/As.
func (e *Error) Wrap(err error) *Error {
	e.Err = err
	return e
}

func newError(kind Kind, code, format string, args ...any) *Error {
	return &Error{Kind: kind, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Failed returns an error of KindFailed.
func Failed(code, format string, args ...any) *Error {
	return newError(KindFailed, code, format, args...)
}

// Usage returns an error of KindUsage.
func Usage(code, format string, args ...any) *Error {
	return newError(KindUsage, code, format, args...)
}

// Environment returns an error of KindEnvironment.
func Environment(code, format string, args ...any) *Error {
	return newError(KindEnvironment, code, format, args...)
}

// Pending returns an error of KindPending.
func Pending(code, format string, args ...any) *Error {
	return newError(KindPending, code, format, args...)
}

// Silent is returned by a command that has already reported its outcome (for
// example a check report with failures) and only needs the exit code set.
type Silent struct {
	Code int
}

func (s *Silent) Error() string { return fmt.Sprintf("exit status %d", s.Code) }

// ExitCodeOf maps any error to the process exit code. nil maps to 0.
func ExitCodeOf(err error) int {
	if err == nil {
		return ExitOK
	}
	var silent *Silent
	if errors.As(err, &silent) {
		return silent.Code
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Kind.ExitCode()
	}
	if errors.Is(err, context.Canceled) {
		return ExitInterrupted
	}
	return ExitFailed
}

// As returns the *Error in err's chain, or a KindFailed error that wraps err.
func As(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	if errors.Is(err, context.Canceled) {
		return &Error{Kind: KindInterrupted, Code: "interrupted", Message: "interrupted", Err: err}
	}
	return &Error{Kind: KindFailed, Code: "failed", Message: err.Error(), Err: err}
}
