package restart

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	godbus "github.com/godbus/dbus/v5"

	"github.com/cfyauth/cfyauth/internal/apperr"
)

const logWithTracebacks = `2026-12-01 10:00:00,001 [77] INFO: starting
2026-12-01 10:00:00,120 [77] ERROR: failed to load authenticator module token_auth from /opt/manager/resources/authenticators/token_auth.py
Traceback (most recent call last):
  File "/srv/standin.py", line 120, in load_authenticators
    spec.loader.exec_module(module)
  File "/opt/manager/resources/authenticators/token_auth.py", line 3, in <module>
    raise RuntimeError("cannot reach the token service")
RuntimeError: cannot reach the token service
2026-12-01 10:00:00,130 [77] INFO: listening
2026-12-01 10:00:05,000 [78] ERROR: request failed
Traceback (most recent call last):
  File "/opt/manager/env/lib/python3.6/site-packages/manager_rest/app.py", line 9, in dispatch
    handler()
KeyError: 'tenant'
`

func TestFindTracebacks(t *testing.T) {
	tbs := findTracebacks("rest.log", []byte(logWithTracebacks))
	if len(tbs) != 2 {
		t.Fatalf("found %d tracebacks, want 2: %+v", len(tbs), tbs)
	}
	if tbs[0].Line != 3 || tbs[0].Exception != "RuntimeError: cannot reach the token service" {
		t.Errorf("first traceback at line %d with %q", tbs[0].Line, tbs[0].Exception)
	}
	if tbs[1].Line != 11 || tbs[1].Exception != "KeyError: 'tenant'" {
		t.Errorf("second traceback at line %d with %q", tbs[1].Line, tbs[1].Exception)
	}
	if !strings.Contains(tbs[0].Text, "failed to load authenticator module token_auth") {
		t.Errorf("the log line before the traceback is not kept: %q", tbs[0].Text)
	}
}

func TestNamedModules(t *testing.T) {
	tbs := findTracebacks("rest.log", []byte(logWithTracebacks))
	modules := []string{"token_auth", "auth", "tenant", "header_auth"}
	if got := strings.Join(namedModules(tbs[0], modules), ","); got != "token_auth" {
		t.Errorf("first traceback names %q, want token_auth alone", got)
	}
	// 'tenant' appears as a whole word in the exception line.
	if got := strings.Join(namedModules(tbs[1], modules), ","); got != "tenant" {
		t.Errorf("second traceback names %q, want tenant", got)
	}
}

func TestReadSinceOffsetAndRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rest.log")
	if err := os.WriteFile(path, []byte("before\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	offset := logOffsets([]string{path})[path]
	appendFile(t, path, "after\n")
	data, truncated, err := readSince(path, offset)
	if err != nil || truncated || string(data) != "after\n" {
		t.Errorf("readSince = %q, %v, %v; want only the appended line", data, truncated, err)
	}

	// A rotated file is shorter than the offset: all of it is new.
	if err := os.WriteFile(path, []byte("new\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	data, _, err = readSince(path, offset+100)
	if err != nil || string(data) != "new\n" {
		t.Errorf("readSince after rotation = %q, %v; want the whole file", data, err)
	}

	data, _, err = readSince(filepath.Join(t.TempDir(), "missing.log"), 0)
	if err != nil || data != nil {
		t.Errorf("readSince of a missing file = %q, %v; want nothing and no error", data, err)
	}
}

func TestConnectErrors(t *testing.T) {
	cases := []struct {
		name string
		err  error
		code string
	}{
		{"socket mode", os.NewSyscallError("connect", syscall.EACCES), "permission_denied"},
		{"auth rejected", errors.New("dbus: authentication failed"), "permission_denied"},
		{"no socket", os.NewSyscallError("connect", syscall.ENOENT), "no_bus"},
		{"refused", os.NewSyscallError("connect", syscall.ECONNREFUSED), "no_bus"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := connectError("unix:path=/run/dbus/system_bus_socket", tc.err)
			e := apperr.As(err)
			if e.Code != tc.code || apperr.ExitCodeOf(err) != apperr.ExitEnvironment {
				t.Errorf("code %q exit %d, want %s with exit 3", e.Code, apperr.ExitCodeOf(err), tc.code)
			}
			if !strings.Contains(e.Message, "unix:path=/run/dbus/system_bus_socket") {
				t.Errorf("message %q does not name the address", e.Message)
			}
		})
	}
}

func TestCallErrors(t *testing.T) {
	s := NewSystemd(nil, nil, "")
	cases := []struct {
		name string
		err  error
		code string
		exit int
	}{
		{"polkit", godbus.Error{Name: dbusAccessDenied, Body: []any{"Access denied"}}, "permission_denied", apperr.ExitEnvironment},
		{"interactive", &godbus.Error{Name: dbusInteractiveAuth}, "permission_denied", apperr.ExitEnvironment},
		{"no unit", godbus.Error{Name: systemdNoSuchUnit, Body: []any{"Unit x.service not found."}}, "unit_not_found", apperr.ExitEnvironment},
		{"masked", godbus.Error{Name: systemdUnitMasked}, "unit_masked", apperr.ExitEnvironment},
		{"bad unit file", godbus.Error{Name: systemdLoadFailed}, "unit_load_failed", apperr.ExitEnvironment},
		{"no systemd", godbus.Error{Name: dbusServiceUnknown}, "no_systemd", apperr.ExitEnvironment},
		{"closed", godbus.ErrClosed, "bus_closed", apperr.ExitEnvironment},
		{"other", errors.New("strange"), "systemd_call_failed", apperr.ExitFailed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := s.callError("x.service", "restart", tc.err)
			e := apperr.As(err)
			if e.Code != tc.code || apperr.ExitCodeOf(err) != tc.exit {
				t.Errorf("code %q exit %d, want %s with exit %d", e.Code, apperr.ExitCodeOf(err), tc.code, tc.exit)
			}
		})
	}
	if err := s.callError("x.service", "restart", context.Canceled); !errors.Is(err, context.Canceled) {
		t.Errorf("a cancelled call became %v", err)
	}
}

func TestUnitName(t *testing.T) {
	good := map[string]string{
		"cloudify-restservice":         "cloudify-restservice.service",
		"cloudify-api.service":         "cloudify-api.service",
		"getty@tty1.service":           "getty@tty1.service",
		"cloudify-restservice.service": "cloudify-restservice.service",
	}
	for in, want := range good {
		if got, err := UnitName(in); err != nil || got != want {
			t.Errorf("UnitName(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "nginx.socket", "a b", "../x"} {
		_, err := UnitName(bad)
		if apperr.ExitCodeOf(err) != apperr.ExitUsage {
			t.Errorf("UnitName(%q) error %v, want a usage error", bad, err)
		}
	}
}

// restLogLoadAndRequest is what the REST stand-in (reststandin.py, on
// Python 3.11) logged at start for modules that raise in configure, fail to
// import and have a syntax error. Then a loaded module raised while
// handling one login. The paths were moved to /opt/manager.
const restLogLoadAndRequest = `[2026-12-04 21:38:46,659: ERROR/manager_rest] configure() of authenticator module conf_auth (/opt/manager/resources/authenticators/conf_auth.py) raised
Traceback (most recent call last):
  File "/opt/reststandin/reststandin.py", line 323, in load_authenticators
    authenticator = configure(logging.getLogger("manager_rest.authenticators." + name))
                    ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "/opt/manager/resources/authenticators/conf_auth.py", line 5, in configure
    raise ValueError("ldap_server is not set")
ValueError: ldap_server is not set
[2026-12-04 21:38:46,660: INFO/manager_rest] loaded authenticator module flaky_auth from /opt/manager/resources/authenticators/flaky_auth.py
[2026-12-04 21:38:46,660: ERROR/manager_rest] failed to import authenticator module import_auth from /opt/manager/resources/authenticators/import_auth.py
Traceback (most recent call last):
  File "/opt/reststandin/reststandin.py", line 313, in load_authenticators
    spec.loader.exec_module(module)
  File "<frozen importlib._bootstrap_external>", line 940, in exec_module
  File "<frozen importlib._bootstrap>", line 241, in _call_with_frames_removed
  File "/opt/manager/resources/authenticators/import_auth.py", line 2, in <module>
    import token_client_missing
ModuleNotFoundError: No module named 'token_client_missing'
[2026-12-04 21:38:46,660: ERROR/manager_rest] failed to import authenticator module syntax_auth from /opt/manager/resources/authenticators/syntax_auth.py
Traceback (most recent call last):
  File "/opt/reststandin/reststandin.py", line 313, in load_authenticators
    spec.loader.exec_module(module)
  File "<frozen importlib._bootstrap_external>", line 936, in exec_module
  File "<frozen importlib._bootstrap_external>", line 1074, in get_code
  File "<frozen importlib._bootstrap_external>", line 1004, in source_to_code
  File "<frozen importlib._bootstrap>", line 241, in _call_with_frames_removed
  File "/opt/manager/resources/authenticators/syntax_auth.py", line 1
    def broken(:
               ^
SyntaxError: invalid syntax
[2026-12-04 21:38:46,661: INFO/manager_rest] external authenticators: flaky_auth
[2026-12-04 21:38:48,033: ERROR/manager_rest] authenticator flaky_auth raised while handling GET /api/v3.1/user
Traceback (most recent call last):
  File "/opt/reststandin/reststandin.py", line 698, in authenticate
    result = authenticator.handle_auth_request(request)
             ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "/opt/manager/env/lib/python3.11/site-packages/cloudify_premium/authentication/auth_base.py", line 592, in handle_auth_request
    return self._authenticate_request(request)
           ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "/opt/manager/resources/authenticators/flaky_auth.py", line 10, in _authenticate_request
    raise RuntimeError("backend refused bob with password %s" % auth.password)
RuntimeError: backend refused bob with password bob-pw
[2026-12-04 21:38:49,100: ERROR/manager_rest] Exception on /api/v3.1/tokens [POST]
Traceback (most recent call last):
  File "/opt/manager/env/lib/python3.11/site-packages/flask/app.py", line 1823, in full_dispatch_request
    rv = self.dispatch_request()
KeyError: 'token_auth'
[2026-12-04 21:38:49,200: ERROR/manager_rest] cannot set up authenticator ldap_token
Traceback (most recent call last):
  File "/opt/manager/env/lib/python3.11/site-packages/cloudify_premium/authentication/extended_auth_handler.py", line 40, in configure_auth
    self._load(name)
ImportError: cannot import name 'Client'
`

func TestClassifyTraceback(t *testing.T) {
	tbs := findTracebacks("rest.log", []byte(restLogLoadAndRequest))
	modules := []string{"conf_auth", "flaky_auth", "import_auth", "syntax_auth", "token_auth", "ldap_token"}
	want := []struct {
		module, origin, reason string
	}{
		{"conf_auth", OriginLoad, "raised in configure of conf_auth.py"},
		{"import_auth", OriginLoad, "raised while importing import_auth.py"},
		{"syntax_auth", OriginLoad, "a syntax error in syntax_auth.py"},
		{"flaky_auth", OriginRequest, "raised in _authenticate_request of flaky_auth.py"},
		{"token_auth", OriginRequest, "logged while handling a request"},
		{"ldap_token", OriginUnknown, "no frame in the authenticators folder"},
	}
	if len(tbs) != len(want) {
		t.Fatalf("found %d tracebacks, want %d", len(tbs), len(want))
	}
	for i, w := range want {
		named := namedModules(tbs[i], modules)
		if len(named) != 1 || named[0] != w.module {
			t.Errorf("traceback %d names %v, want %s", i, named, w.module)
		}
		origin, reason := classifyTraceback(tbs[i])
		if origin != w.origin || reason != w.reason {
			t.Errorf("traceback of %s: origin %q (%s), want %q (%s)", w.module, origin, reason, w.origin, w.reason)
		}
	}
}
