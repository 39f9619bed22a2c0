// Package pythontest finds the Python 3 interpreter that tests of the
// embedded programs run with.
package pythontest

import (
	"os"
	"os/exec"
	"testing"
)

// InstallHint names the command that installs what the tests need.
const InstallHint = "bash scripts/testenv/install.sh"

// Require returns a Python 3 interpreter: /usr/bin/python3, else python3
// from PATH. Without one the test is skipped, or fails when
// CFYAUTH_REQUIRE_SERVERS=1.
func Require(t testing.TB) string {
	t.Helper()
	for _, candidate := range []string{"/usr/bin/python3", "python3"} {
		if path, err := exec.LookPath(candidate); err == nil {
			return path
		}
	}
	SkipOrFail(t, "python3 is missing; install it with: "+InstallHint)
	return ""
}

// SkipOrFail skips a test that lacks what it needs, or fails it when
// CFYAUTH_REQUIRE_SERVERS=1 requires everything to be present.
func SkipOrFail(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv("CFYAUTH_REQUIRE_SERVERS") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}
