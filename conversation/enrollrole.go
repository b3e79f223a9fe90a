package conversation

import "fmt"

// EnrollRole is the role an enrollment grants: given (`bot enroll --role`), else the
// person's role in the tenants file (configured, "" when the person is not there), else
// viewer. Only approver and viewer can be granted.
func EnrollRole(given, configured string) (string, error) {
	r := given
	if r == "" {
		r = configured
	}
	if r == "" {
		r = "viewer"
	}
	if r != "approver" && r != "viewer" {
		return "", fmt.Errorf("--role: want approver or viewer, got %q", r)
	}
	return r, nil
}
