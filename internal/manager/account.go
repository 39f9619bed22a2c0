package manager

import (
	"bufio"
	"os"
	"strconv"
	"strings"
)

// ServiceUser is the account the REST workers run as.
const ServiceUser = "cfyuser"

// Account is a user and group looked up in the root's own /etc/passwd and
// /etc/group, never in the host's.
type Account struct {
	Name  string
	UID   int
	GID   int
	Found bool
}

// ServiceAccount looks up cfyuser:cfyuser under the root. Found is false when
// either the user or the group is missing.
func (l *Layout) ServiceAccount() Account {
	acct := Account{Name: ServiceUser}
	uid, userGID, okUser := lookupColonFile(l.mustPath(PasswdFile), ServiceUser, 2, 3)
	gid, _, okGroup := lookupColonFile(l.mustPath(GroupFile), ServiceUser, 2, -1)
	if !okUser {
		return acct
	}
	acct.UID = uid
	acct.GID = userGID
	if okGroup {
		acct.GID = gid
	}
	acct.Found = okGroup
	return acct
}

// lookupColonFile finds name in a passwd-style file and returns the numeric
// fields at the given indexes (-1 to skip one).
func lookupColonFile(path, name string, first, second int) (int, int, bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) <= first || fields[0] != name {
			continue
		}
		a, err := strconv.Atoi(fields[first])
		if err != nil {
			return 0, 0, false
		}
		b := 0
		if second >= 0 && len(fields) > second {
			b, err = strconv.Atoi(fields[second])
			if err != nil {
				return 0, 0, false
			}
		}
		return a, b, true
	}
	return 0, 0, false
}
