package conversation

import "testing"

func TestEnrollRole(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ given, configured, want, err string }{
		{"", "", "viewer", ""},
		{"", "approver", "approver", ""},
		{"viewer", "approver", "viewer", ""},
		{"approver", "", "approver", ""},
		{"admin", "", "", `--role: want approver or viewer, got "admin"`},
		{"", "owner", "", `--role: want approver or viewer, got "owner"`},
	} {
		got, err := EnrollRole(c.given, c.configured)
		if got != c.want || (err == nil) != (c.err == "") || (err != nil && err.Error() != c.err) {
			t.Errorf("EnrollRole(%q, %q) = %q, %v; want %q, %q", c.given, c.configured, got, err, c.want, c.err)
		}
	}
}
