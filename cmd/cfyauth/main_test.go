package main

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/cfyauth/cfyauth/internal/cli"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"cfyauth": func() { os.Exit(cli.Main()) },
	})
}

// repoRoot returns the repository root, for scripts that use the examples.
func repoRoot(t *testing.T) string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the test file")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// TestScripts runs the end-to-end CLI scripts in testdata/script. Each script
// starts with a comment saying which user-visible behaviour it guards.
func TestScripts(t *testing.T) {
	root := repoRoot(t)
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			env.Setenv("EXAMPLES", filepath.Join(root, "examples", "authenticators"))
			// Scripts run as a user would, with PATH for python3.
			env.Setenv("PATH", os.Getenv("PATH"))
			env.Setenv("NO_COLOR", "1")
			return setupSystemd(env)
		},
		Cmds:                scriptCommands(),
		RequireExplicitExec: false,
	})
}
