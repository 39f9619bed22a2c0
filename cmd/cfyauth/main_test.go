package main

import (
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/cfyauth/cfyauth/internal/cli"
)

func TestMain(m *testing.M) {
	testscript.Main(withLDAPServer{m}, map[string]func(){
		"cfyauth": func() {
			code := cli.Main()
			// Scripts check the exact exit code with the exitcode command.
			if path := os.Getenv("CFYAUTH_TEST_EXIT_FILE"); path != "" {
				_ = os.WriteFile(path, []byte(strconv.Itoa(code)), 0o644)
			}
			os.Exit(code)
		},
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
			env.Setenv("CFYAUTH_TEST_EXIT_FILE", filepath.Join(env.WorkDir, ".exitcode"))
			setupStandins(env)
			setupLDAPScript(env)
			if err := setupSupervisord(env); err != nil {
				return err
			}
			return setupSystemd(env)
		},
		Cmds:                withLDAPCommands(scriptCommands()),
		RequireExplicitExec: false,
	})
}
