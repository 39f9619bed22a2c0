package report

import (
	"fmt"
	"io"
	"strings"

	"github.com/olekukonko/tablewriter"
)

// RenderTable writes checks as a table: subject, check, status, summary, and
// the hint of every check that did not pass. With verbose set, evidence is
// listed under each check.
func RenderTable(w io.Writer, checks []Check, verbose bool) error {
	table := tablewriter.NewWriter(w)
	hasSubject := false
	for _, c := range checks {
		if c.Subject != "" {
			hasSubject = true
			break
		}
	}
	if hasSubject {
		table.Header("SUBJECT", "CHECK", "STATUS", "SUMMARY")
	} else {
		table.Header("CHECK", "STATUS", "SUMMARY")
	}
	for _, c := range checks {
		row := []string{c.ID, strings.ToUpper(string(c.Status)), c.Summary}
		if hasSubject {
			row = append([]string{c.Subject}, row...)
		}
		if err := table.Append(row); err != nil {
			return fmt.Errorf("render table row: %w", err)
		}
	}
	if err := table.Render(); err != nil {
		return fmt.Errorf("render table: %w", err)
	}
	for _, c := range checks {
		if verbose && len(c.Evidence) > 0 {
			fmt.Fprintf(w, "%s%s:\n", subjectPrefix(c), c.ID)
			for _, e := range c.Evidence {
				fmt.Fprintf(w, "  %s: %s\n", e.Key, e.Value)
			}
		}
		if c.Hint != "" && c.Status != Pass {
			fmt.Fprintf(w, "%s%s: hint: %s\n", subjectPrefix(c), c.ID, c.Hint)
		}
	}
	return nil
}

func subjectPrefix(c Check) string {
	if c.Subject == "" {
		return ""
	}
	return c.Subject + " "
}
