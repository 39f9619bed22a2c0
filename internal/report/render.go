package report

import (
	"fmt"
	"io"
	"strings"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/pkg/twwidth"
)

// RenderTable writes checks as a table: subject, check, status, summary, and
// the hint of every check that did not pass. With verbose set, evidence is
// listed under each check.
func RenderTable(w io.Writer, checks []Check, verbose bool) error {
	return RenderTableWidth(w, checks, verbose, 0)
}

// minSummaryWidth is the narrowest the summary column is wrapped to, however
// wide the other columns are.
const minSummaryWidth = 30

// RenderTableWidth is RenderTable with the summary column wrapped at word
// boundaries so that the table is at most maxWidth columns wide; words
// longer than the column, such as URLs, are split. maxWidth 0 means no
// limit. The table may still be wider when the other columns alone leave
// less than minSummaryWidth.
func RenderTableWidth(w io.Writer, checks []Check, verbose bool, maxWidth int) error {
	table := tablewriter.NewWriter(w)
	hasSubject := false
	for _, c := range checks {
		if c.Subject != "" {
			hasSubject = true
			break
		}
	}
	header := []string{"CHECK", "STATUS", "SUMMARY"}
	if hasSubject {
		header = append([]string{"SUBJECT"}, header...)
	}
	table.Header(header)
	rows := make([][]string, 0, len(checks))
	for _, c := range checks {
		row := []string{c.ID, strings.ToUpper(string(c.Status)), c.Summary}
		if hasSubject {
			row = append([]string{c.Subject}, row...)
		}
		rows = append(rows, row)
	}
	if maxWidth > 0 {
		wrapLastColumn(header, rows, maxWidth)
	}
	for _, row := range rows {
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

// wrapLastColumn wraps the last cell of every row so that a table of these
// rows, with tablewriter's default borders and one space of padding on
// each side of a cell, is at most maxWidth columns wide.
func wrapLastColumn(header []string, rows [][]string, maxWidth int) {
	last := len(header) - 1
	widths := make([]int, last)
	for i := range widths {
		widths[i] = twwidth.Width(header[i])
		for _, row := range rows {
			widths[i] = max(widths[i], twwidth.Width(row[i]))
		}
	}
	// Each column takes its width plus two spaces of padding, and the
	// borders take one column more than there are columns.
	used := len(header) + 1 + 2*len(header)
	for _, w := range widths {
		used += w
	}
	limit := max(maxWidth-used, minSummaryWidth)
	for _, row := range rows {
		row[last] = strings.Join(wrapText(row[last], limit), "\n")
	}
}

// wrapText breaks s into lines of at most limit display columns, at spaces
// where it can and inside words longer than limit where it must.
func wrapText(s string, limit int) []string {
	var lines []string
	line, lineWidth := "", 0
	for _, word := range strings.Fields(s) {
		for twwidth.Width(word) > limit {
			if line != "" {
				lines = append(lines, line)
				line, lineWidth = "", 0
			}
			head, tail := splitAtWidth(word, limit)
			lines = append(lines, head)
			word = tail
		}
		w := twwidth.Width(word)
		switch {
		case line == "":
			line, lineWidth = word, w
		case lineWidth+1+w <= limit:
			line += " " + word
			lineWidth += 1 + w
		default:
			lines = append(lines, line)
			line, lineWidth = word, w
		}
	}
	if line != "" || len(lines) == 0 {
		lines = append(lines, line)
	}
	return lines
}

// splitAtWidth returns the longest prefix of word that fits in limit
// display columns (at least one rune), and the rest.
func splitAtWidth(word string, limit int) (string, string) {
	width := 0
	for i, r := range word {
		rw := twwidth.Width(string(r))
		if width+rw > limit && i > 0 {
			return word[:i], word[i:]
		}
		width += rw
	}
	return word, ""
}
