package conversation

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/alertengine/alertengine/conversation/approval"
)

// fit adapts a message to what a transport can do: no image where there is no media, and
// a typed alternative for every button the platform cannot carry (all of them without
// Buttons, the too long ones with a MaxButtonData). Buttons stay on the message for an
// adapter that can offer some of them natively; without Buttons those it cannot offer
// are still reachable by typing.
func (e *Engine) fit(ctx context.Context, c Capabilities, m Message) Message {
	if !c.Media {
		m.Image = nil
	}
	var lines []Block
	var keep [][]Button
	for _, row := range m.Buttons {
		var kept []Button
		for _, b := range row {
			tooLong := c.MaxButtonData > 0 && len(b.Data) > c.MaxButtonData
			if c.Buttons && !tooLong {
				kept = append(kept, b)
				continue
			}
			if line, ok := e.typedAlternative(ctx, b); ok {
				lines = append(lines, Block{Code, line})
			}
			if !tooLong {
				kept = append(kept, b)
			}
		}
		if len(kept) > 0 {
			keep = append(keep, kept)
		}
	}
	if len(lines) == 0 && len(keep) == len(m.Buttons) {
		return m
	}
	out := m
	out.Blocks = append(append([]Block(nil), m.Blocks...), lines...)
	out.Buttons = keep
	return out
}

// typedAlternative is what a person types instead of pressing b: the command a command
// button sends, as a word ("REPLAY INC-7F3"), or for an approval its one-time reply code.
func (e *Engine) typedAlternative(ctx context.Context, b Button) (string, bool) {
	if strings.HasPrefix(b.Data, "/") {
		name, args, _ := strings.Cut(b.Data[1:], " ")
		return strings.TrimSpace("Reply "+strings.ToUpper(name)+" "+args) + " — " + b.Label, true
	}
	if !approval.ValidRef(b.Data) {
		return "", false
	}
	code, err := e.o.Approvals.Code(ctx, b.Data)
	if err != nil {
		e.o.Logger.Warn("reply code for an approval", "err", err)
		return "", false
	}
	return "Reply APPROVE " + code + " — " + b.Label, true
}

// MaxCodeFailures bounds the unknown reply codes one chat identity may type in an hour:
// a code is short, so guessing is cut off long before it could succeed.
const MaxCodeFailures = 10

// approveByCode redeems the approval a reply code names ("/approve 7F3-K9"), as if its
// button had been pressed, and answers in the chat.
func (e *Engine) approveByCode(ctx context.Context, in Inbound, t *Tenant, code string) (Reply, error) {
	key := e.o.KeyPrefix + "conv:codefail:" + string(in.User.Channel) + ":" + in.User.ID
	if n, _ := e.o.Redis.Get(ctx, key).Int(); n >= MaxCodeFailures {
		return e.say(ctx, in, t.ID, "", text1("Too many unknown codes. Try again in an hour, or use the incident's buttons or link."))
	}
	ref, err := e.o.Approvals.RefOfCode(ctx, code)
	if errors.Is(err, approval.ErrUnknown) {
		if n, ierr := e.o.Redis.Incr(ctx, key).Result(); ierr == nil && n == 1 {
			e.o.Redis.Expire(ctx, key, time.Hour)
		}
		e.o.Logger.Warn("unknown reply code", "tenant", t.ID, "channel", in.User.Channel)
		return e.say(ctx, in, t.ID, "", text1("I don't know that code. Copy it from the incident message, e.g. APPROVE 7F3-K9."))
	}
	if err != nil {
		return Reply{Toast: "Something went wrong; nothing was run."}, err
	}
	r, err := e.redeem(ctx, t, in.User, ref)
	if err != nil {
		return r, err
	}
	return e.say(ctx, in, t.ID, "", text1(r.Toast))
}

// incidentOfCode is the incident a reply code's approval is for, in tenant t.
func (e *Engine) incidentOfCode(ctx context.Context, t *Tenant, code string) (string, bool) {
	ref, err := e.o.Approvals.RefOfCode(ctx, code)
	if err != nil {
		return "", false
	}
	p, err := e.o.Approvals.About(ctx, ref)
	if err != nil || p.Tenant != t.ID {
		return "", false
	}
	return p.Incident, true
}
