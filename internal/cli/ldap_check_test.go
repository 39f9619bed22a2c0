package cli

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
)

// TestLDAPCheckStreamsOnTerminal checks that on a terminal each layer is
// printed as a line when it completes, in place of the final table.
func TestLDAPCheckStreamsOnTerminal(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now, so the tcp layer fails

	var out, errOut bytes.Buffer
	app := NewApp(&IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut, StdoutTTY: true},
		func(string) string { return "" })
	code := app.Run(context.Background(), []string{"ldap", "check", "-s", "ldap://" + addr, "-d", "example.org"})
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr:\n%s", code, errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if strings.Contains(out.String(), "┌") {
		t.Errorf("a table was printed on a terminal:\n%s", out.String())
	}
	if !strings.Contains(lines[0], "tcp") || !strings.Contains(lines[0], "FAIL") || !strings.Contains(lines[0], "connection refused") {
		t.Errorf("first line %q, want the failed tcp layer", lines[0])
	}
	if !strings.Contains(out.String(), "hint: check the port") {
		t.Errorf("no hint line under the failed layer:\n%s", out.String())
	}
	if !strings.Contains(errOut.String(), "LDAP check failed: ldap://"+addr+" at tcp") {
		t.Errorf("stderr does not name the failed layer:\n%s", errOut.String())
	}
}

// TestLDAPCheckTableWhenPiped checks that without a terminal the result is
// one table.
func TestLDAPCheckTableWhenPiped(t *testing.T) {
	var out, errOut bytes.Buffer
	app := NewApp(&IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut},
		func(string) string { return "" })
	code := app.Run(context.Background(), []string{"ldap", "check", "-s", "ldap://127.0.0.1:9", "-d", "example.org"})
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr:\n%s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "┌") || !strings.Contains(out.String(), "SUBJECT") {
		t.Errorf("no table when piped:\n%s", out.String())
	}
}
