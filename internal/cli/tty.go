package cli

import (
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// readSecretNoEcho turns terminal echo off, then writes the prompt, then
// reads one line. Turning echo off before the prompt appears means that
// characters typed as soon as the prompt shows are never echoed, which
// term.ReadPassword cannot promise when the prompt is written before it.
func readSecretNoEcho(tty *os.File, promptOut io.Writer, prompt string) ([]byte, error) {
	fd := int(tty.Fd())
	saved, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, fmt.Errorf("read terminal settings: %w", err)
	}
	quiet := *saved
	quiet.Lflag &^= unix.ECHO
	quiet.Lflag |= unix.ICANON | unix.ISIG
	quiet.Iflag |= unix.ICRNL
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &quiet); err != nil {
		return nil, fmt.Errorf("turn terminal echo off: %w", err)
	}
	defer func() { _ = unix.IoctlSetTermios(fd, unix.TCSETS, saved) }()

	fmt.Fprint(promptOut, prompt)
	defer fmt.Fprintln(promptOut)
	var line []byte
	buf := make([]byte, 1)
	for {
		n, err := tty.Read(buf)
		if n == 1 {
			if buf[0] == '\n' {
				return line, nil
			}
			if buf[0] != '\r' {
				line = append(line, buf[0])
			}
			continue
		}
		if err == io.EOF {
			if len(line) == 0 {
				return nil, io.EOF
			}
			return line, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read from terminal: %w", err)
		}
	}
}
