package conversation

import (
	"fmt"
	"strings"
)

// changeText says what a recorded change is, by its kind, without a time:
//
//	a1b2c3d "Fix checkout query isolation level" by john, +12/−3     (a commit)
//	deploy of f95f852 (main) to production by rudo: success            (a deployment)
//	tag v1.4.0 by Codertocat                                           (a tag)
//
// Parts GitHub did not send are left out, never shown as "".
func changeText(c Commit, msgLen int) string {
	var b strings.Builder
	switch c.Kind {
	case "deploy":
		b.WriteString("deploy")
		if c.SHA != "" {
			b.WriteString(" of " + short(c.SHA))
		}
		if c.Ref != "" && !strings.HasPrefix(c.SHA, c.Ref) {
			b.WriteString(" (" + c.Ref + ")")
		}
		if c.Where != "" {
			b.WriteString(" to " + c.Where)
		}
		if by := firstNonBlank(c.By, c.Author); by != "" {
			b.WriteString(" by " + by)
		}
		if c.State != "" {
			b.WriteString(": " + c.State)
		}
		if m := firstLine(c.Message, msgLen); m != "" {
			fmt.Fprintf(&b, " — %q", m)
		}
	case "tag":
		b.WriteString("tag " + c.Where)
		if by := firstNonBlank(c.By, c.Author); by != "" {
			b.WriteString(" by " + by)
		}
		if c.SHA != "" {
			b.WriteString(" at " + short(c.SHA))
		}
		if m := firstLine(c.Message, msgLen); m != "" {
			fmt.Fprintf(&b, " %q", m)
		}
	default:
		b.WriteString(short(c.SHA))
		if m := firstLine(c.Message, msgLen); m != "" {
			fmt.Fprintf(&b, " %q", m)
		}
		if who := commitWho(c); who != "" {
			b.WriteString(" by " + who)
		}
	}
	return b.String()
}

func firstNonBlank(xs ...string) string {
	for _, x := range xs {
		if strings.TrimSpace(x) != "" {
			return x
		}
	}
	return ""
}
