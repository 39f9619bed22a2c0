// Package cli holds the cobra commands of cfyauth: flag parsing, prompts and
// rendering. Domain logic lives in the packages each command calls.
package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/cfyauth/cfyauth/internal/apperr"
)

// SchemaVersion is the version of every JSON document cfyauth prints. It
// changes only when a field is removed or changes meaning.
const SchemaVersion = 1

// App is the state shared by every command of one run.
type App struct {
	IO     *IOStreams
	Global *GlobalOptions
	// Getenv reads the environment; tests replace it.
	Getenv func(string) string

	command     string
	jsonWritten bool
	runStarted  bool
}

// NewApp returns an App on the given streams and environment.
func NewApp(io *IOStreams, getenv func(string) string) *App {
	if getenv == nil {
		getenv = os.Getenv
	}
	return &App{IO: io, Global: &GlobalOptions{}, Getenv: getenv}
}

// Main runs cfyauth with the process's arguments and returns the exit code.
func Main() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	app := NewApp(SystemStreams(), os.Getenv)
	return app.Run(ctx, os.Args[1:])
}

// Run executes one command line and returns its exit code. Errors are printed
// here, in one place, as "cfyauth: error:" and "cfyauth: hint:" lines, and as
// a JSON document when -o json is in effect.
func (a *App) Run(ctx context.Context, args []string) int {
	root := newRootCmd(a)
	root.SetArgs(args)
	root.SetIn(a.IO.In)
	root.SetOut(a.IO.Out)
	root.SetErr(a.IO.ErrOut)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return apperr.ExitOK
	}
	if ctx.Err() != nil && !errors.Is(err, context.Canceled) {
		err = apperr.As(context.Canceled)
	}
	var silent *apperr.Silent
	if errors.As(err, &silent) {
		return silent.Code
	}
	e := apperr.As(err)
	if !a.runStarted {
		// Cobra reports unknown commands and flag errors before any command
		// runs, so the output format and command name are read here.
		if e.Code == "failed" {
			e = apperr.Usage("invalid_usage", "%s", err.Error()).WithHint("run 'cfyauth --help' to see the commands and flags")
		}
		if found, _, findErr := root.Find(args); findErr == nil && found != root {
			a.command = commandName(found)
		}
		if outputFromArgs(args, a.Getenv("CFYAUTH_OUTPUT")) == "json" {
			a.Global.Output = "json"
		}
	}
	a.printError(e)
	return e.Kind.ExitCode()
}

func (a *App) printError(e *apperr.Error) {
	fmt.Fprintf(a.IO.ErrOut, "cfyauth: error: %s\n", e.Message)
	for _, h := range e.Hints {
		fmt.Fprintf(a.IO.ErrOut, "cfyauth: hint: %s\n", h)
	}
	if a.JSON() && !a.jsonWritten {
		_ = a.writeDocument(false, nil, e)
	}
}

// outputFromArgs finds the output format in a command line that failed to
// parse, so that a usage error is still reported as JSON when asked for.
func outputFromArgs(args []string, env string) string {
	format := env
	for i, arg := range args {
		if arg == "--" {
			break
		}
		switch {
		case (arg == "-o" || arg == "--output") && i+1 < len(args):
			format = args[i+1]
		case strings.HasPrefix(arg, "--output="):
			format = strings.TrimPrefix(arg, "--output=")
		case strings.HasPrefix(arg, "-o") && len(arg) > 2 && !strings.HasPrefix(arg, "--"):
			format = strings.TrimPrefix(strings.TrimPrefix(arg, "-o"), "=")
		}
	}
	return format
}

// JSON reports whether the run prints JSON documents.
func (a *App) JSON() bool { return a.Global.Output == "json" }

// Printf writes to stdout.
func (a *App) Printf(format string, args ...any) {
	fmt.Fprintf(a.IO.Out, format, args...)
}

// Infof writes a progress or outcome line to stderr unless -q is set.
func (a *App) Infof(format string, args ...any) {
	if a.Global.Quiet {
		return
	}
	fmt.Fprintf(a.IO.ErrOut, "cfyauth: "+format+"\n", args...)
}

// Warnf writes a warning line to stderr; warnings are shown even with -q.
func (a *App) Warnf(format string, args ...any) {
	fmt.Fprintf(a.IO.ErrOut, "cfyauth: warning: "+format+"\n", args...)
}

// Debugf writes a line to stderr when -v is set.
func (a *App) Debugf(format string, args ...any) {
	if a.Global.Verbose == 0 {
		return
	}
	fmt.Fprintf(a.IO.ErrOut, "cfyauth: debug: "+format+"\n", args...)
}

// WriteJSON prints the success document for the current command: the fields
// of payload plus schema_version, command and "ok": true.
func (a *App) WriteJSON(payload any) error {
	return a.writeDocument(true, payload, nil)
}

// WriteJSONFailed prints a document with "ok": false, the payload's fields
// and an error object, for commands whose result is a failure but still has
// data to show (a failed check report, a rejected login).
func (a *App) WriteJSONFailed(payload any, e *apperr.Error) error {
	return a.writeDocument(false, payload, e)
}

type jsonError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Hint    string `json:"hint,omitempty"`
}

func (a *App) writeDocument(ok bool, payload any, e *apperr.Error) error {
	doc := map[string]any{}
	if payload != nil {
		raw, err := json.Marshal(payload)
		if err != nil {
			return fmt.Errorf("encode result: %w", err)
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&doc); err != nil {
			return fmt.Errorf("encode result: payload is not a JSON object: %w", err)
		}
	}
	doc["schema_version"] = SchemaVersion
	doc["command"] = a.command
	doc["ok"] = ok
	if e != nil {
		doc["error"] = jsonError{Code: e.Code, Message: e.Message, Hint: strings.Join(e.Hints, "\n")}
	}
	enc := json.NewEncoder(a.IO.Out)
	enc.SetEscapeHTML(false)
	if a.IO.StdoutTTY {
		enc.SetIndent("", "  ")
	}
	a.jsonWritten = true
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("write JSON document: %w", err)
	}
	return nil
}

// commandName returns the command path without the program name, such as
// "ldap check".
func commandName(cmd *cobra.Command) string {
	path := cmd.CommandPath()
	return strings.TrimSpace(strings.TrimPrefix(path, cmd.Root().Name()))
}
