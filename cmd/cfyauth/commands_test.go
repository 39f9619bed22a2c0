package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/rogpeppe/go-internal/testscript"
)

// scriptCommands are extra testscript commands shared by all scripts.
func scriptCommands() map[string]func(ts *testscript.TestScript, neg bool, args []string) {
	return map[string]func(ts *testscript.TestScript, neg bool, args []string){
		// jsonpath FILE PATH VALUE: the JSON value at a dotted path (numbers
		// index arrays) in FILE, printed compactly, equals VALUE.
		"jsonpath": cmdJSONPath,
		// mode FILE PERM: the file's permission bits, in octal, equal PERM.
		"mode": cmdMode,
		// writebytes FILE HEX: write raw bytes (for binary and non-UTF-8 input).
		"writebytes": cmdWriteBytes,
		// exitcode N: the last cfyauth run exited with code N.
		"exitcode": cmdExitCode,
		// standin start|restart|stop NAME ...: the REST stand-in (standin_test.go).
		"standin": cmdStandin,
		// sdunit: units of the test systemd (see systemd_test.go).
		"sdunit": cmdSDUnit,
		// supprog: programs of the test supervisord (see supervisord_test.go).
		"supprog": cmdSupProg,
	}
}

func cmdJSONPath(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 3 {
		ts.Fatalf("usage: jsonpath FILE PATH VALUE")
	}
	data := ts.ReadFile(args[0])
	var doc any
	if err := json.Unmarshal([]byte(data), &doc); err != nil {
		ts.Fatalf("%s is not one JSON document: %v", args[0], err)
	}
	cur := doc
	if args[1] != "." {
		for _, part := range strings.Split(args[1], ".") {
			switch v := cur.(type) {
			case map[string]any:
				cur = v[part]
			case []any:
				var i int
				if _, err := fmt.Sscan(part, &i); err != nil || i < 0 || i >= len(v) {
					ts.Fatalf("index %q out of range in %s", part, args[1])
				}
				cur = v[i]
			default:
				ts.Fatalf("cannot descend into %T at %q of %s", cur, part, args[1])
			}
		}
	}
	got, _ := json.Marshal(cur)
	equal := string(got) == args[2]
	if equal == neg {
		ts.Fatalf("jsonpath %s: got %s, want %s%s", args[1], got, map[bool]string{true: "anything but ", false: ""}[neg], args[2])
	}
}

func cmdMode(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: mode FILE PERM")
	}
	st, err := os.Stat(ts.MkAbs(args[0]))
	ts.Check(err)
	got := fmt.Sprintf("%04o", st.Mode().Perm())
	want := args[1]
	if len(want) < 4 {
		want = strings.Repeat("0", 4-len(want)) + want
	}
	if (got == want) == neg {
		ts.Fatalf("mode of %s: got %s, want %s", args[0], got, want)
	}
}

func cmdWriteBytes(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 2 || neg {
		ts.Fatalf("usage: writebytes FILE HEX...")
	}
	var data []byte
	hex := strings.ReplaceAll(strings.Join(args[1:], ""), " ", "")
	for i := 0; i+1 < len(hex); i += 2 {
		var b byte
		if _, err := fmt.Sscanf(hex[i:i+2], "%02x", &b); err != nil {
			ts.Fatalf("bad hex %q", hex[i:i+2])
		}
		data = append(data, b)
	}
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), data, 0o644))
}

func cmdExitCode(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 || neg {
		ts.Fatalf("usage: exitcode N")
	}
	got := strings.TrimSpace(ts.ReadFile(filepath.Join(ts.Getenv("WORK"), ".exitcode")))
	if got != args[0] {
		ts.Fatalf("last cfyauth exit code: got %s, want %s", got, args[0])
	}
}
