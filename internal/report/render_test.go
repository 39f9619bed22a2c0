package report

import (
	"bytes"
	"strings"
	"testing"

	"github.com/olekukonko/tablewriter/pkg/twwidth"
)

func TestWrapText(t *testing.T) {
	cases := []struct {
		text  string
		limit int
		want  []string
	}{
		{"short", 20, []string{"short"}},
		{"", 20, []string{""}},
		{"one two three four", 9, []string{"one two", "three", "four"}},
		{"GET http://127.0.0.1:8100/api/v3.1/ok failed", 12, []string{"GET", "http://127.0", ".0.1:8100/ap", "i/v3.1/ok", "failed"}},
		{"Jürgen Müller logged in", 13, []string{"Jürgen Müller", "logged in"}},
	}
	for _, c := range cases {
		got := wrapText(c.text, c.limit)
		if strings.Join(got, "|") != strings.Join(c.want, "|") {
			t.Errorf("wrapText(%q, %d) = %q, want %q", c.text, c.limit, got, c.want)
		}
	}
}

func TestRenderTableWidthFits(t *testing.T) {
	checks := []Check{
		{ID: "job", Subject: "cloudify-restservice", Status: Pass,
			Summary: "supervisord stopped cloudify-restservice and started it again; it stayed up for its startsecs"},
		{ID: "log", Status: Fail, Summary: "module flaky_auth failed to load: RuntimeError: " + strings.Repeat("cannot reach the token service ", 6) +
			"at https://tokens.example.com/a/very/long/path/that/does/not/break/at/spaces/anywhere/in/it/at/all/really"},
	}
	var out bytes.Buffer
	if err := RenderTableWidth(&out, checks, false, 100); err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimRight(out.String(), "\n"), "\n") {
		if w := twwidth.Width(line); w > 100 {
			t.Errorf("line is %d columns wide, want at most 100:\n%s", w, line)
		}
	}
	flat := strings.Join(strings.Fields(strings.NewReplacer("│", " ").Replace(out.String())), " ")
	if !strings.Contains(flat, "stayed up for its startsecs") {
		t.Errorf("wrapped table lost words of the summary:\n%s", out.String())
	}
}

func TestRenderTableUnlimited(t *testing.T) {
	long := strings.Repeat("word ", 40)
	var out bytes.Buffer
	if err := RenderTable(&out, []Check{{ID: "x", Status: Pass, Summary: long}}, false); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), strings.TrimSpace(long)) {
		t.Errorf("RenderTable wrapped a summary; it must keep each on one line:\n%s", out.String())
	}
}
