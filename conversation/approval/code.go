package approval

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/redis/go-redis/v9"
)

// A reply code is for chats without buttons: "Reply APPROVE 7F3-K9". It is a second
// short name of one approval reference, so typing it redeems that approval through the
// same rules and the same atomic consume as pressing its button: one winner across
// channels and replicas, and once used (or voided by a sibling) the code is refused with
// the same answer as the button.

// codeAlphabet leaves out the symbols people confuse when they read a code aloud or off
// a phone screen (0/O, 1/I/L).
const codeAlphabet = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"

var codeRe = regexp.MustCompile(`^[2-9A-HJKMNP-Z]{3}-[2-9A-HJKMNP-Z]{2}$`)

// ValidCode reports whether s has the shape of a reply code ("7F3-K9"), ignoring case.
func ValidCode(s string) bool { return codeRe.MatchString(strings.ToUpper(s)) }

func (s *Service) codeKey(code string) string { return s.o.KeyPrefix + "apcode:" + code }

// codeAttempts bounds the tries to find a free code before giving up.
const codeAttempts = 8

// Code returns the reply code of approval ref, creating it on first use; every caller
// (every replica, every chat) gets the same code for one reference. The code lives as
// long as the approval is remembered.
func (s *Service) Code(ctx context.Context, ref string) (string, error) {
	if !ValidRef(ref) {
		return "", ErrUnknown
	}
	k := s.keys(ref)
	ofRef := k.base + "code:" + ref
	if c, err := s.o.Redis.Get(ctx, ofRef).Result(); err == nil {
		return c, nil
	} else if !errors.Is(err, redis.Nil) {
		return "", fmt.Errorf("read reply code: %w", err)
	}
	ttl, err := s.o.Redis.PTTL(ctx, k.tok).Result()
	if err != nil {
		return "", fmt.Errorf("read approval: %w", err)
	}
	if ttl <= 0 {
		return "", ErrExpired
	}
	ttl += keepAfter
	for range codeAttempts {
		code, err := s.randomCode()
		if err != nil {
			return "", err
		}
		ok, err := s.o.Redis.SetNX(ctx, s.codeKey(code), ref, ttl).Result()
		if err != nil {
			return "", fmt.Errorf("store reply code: %w", err)
		}
		if !ok {
			continue // taken by another approval
		}
		won, err := s.o.Redis.SetNX(ctx, ofRef, code, ttl).Result()
		if err != nil {
			s.o.Redis.Del(context.WithoutCancel(ctx), s.codeKey(code))
			return "", fmt.Errorf("store reply code: %w", err)
		}
		if won {
			return code, nil
		}
		// Another replica named this reference first: use its code.
		s.o.Redis.Del(ctx, s.codeKey(code))
		c, err := s.o.Redis.Get(ctx, ofRef).Result()
		if err != nil {
			return "", fmt.Errorf("read reply code: %w", err)
		}
		return c, nil
	}
	return "", errors.New("approval: no free reply code")
}

// RefOfCode returns the approval reference a reply code names, ErrUnknown when it names
// none (never issued, or forgotten).
func (s *Service) RefOfCode(ctx context.Context, code string) (string, error) {
	code = strings.ToUpper(strings.TrimSpace(code))
	if !ValidCode(code) {
		return "", ErrUnknown
	}
	ref, err := s.o.Redis.Get(ctx, s.codeKey(code)).Result()
	if errors.Is(err, redis.Nil) {
		return "", ErrUnknown
	}
	if err != nil {
		return "", fmt.Errorf("read reply code: %w", err)
	}
	if !ValidRef(ref) {
		return "", ErrUnknown
	}
	return ref, nil
}

func (s *Service) randomCode() (string, error) {
	out := make([]byte, 0, 6)
	var b [1]byte
	for len(out) < 6 {
		if len(out) == 3 {
			out = append(out, '-')
			continue
		}
		if _, err := io.ReadFull(s.o.Random, b[:]); err != nil {
			return "", fmt.Errorf("random reply code: %w", err)
		}
		// Bytes of 248 and above are dropped, so every symbol is equally likely.
		if int(b[0]) < 256/len(codeAlphabet)*len(codeAlphabet) {
			out = append(out, codeAlphabet[int(b[0])%len(codeAlphabet)])
		}
	}
	return string(out), nil
}

// Subject is what an approval is for.
type Subject struct {
	Tenant, Incident, Action string
}

// About reads what approval ref is for, without side effects; ErrUnknown when it is not
// known (or forgotten).
func (s *Service) About(ctx context.Context, ref string) (Subject, error) {
	if !ValidRef(ref) {
		return Subject{}, ErrUnknown
	}
	v, err := s.o.Redis.Get(ctx, s.keys(ref).meta).Result()
	if errors.Is(err, redis.Nil) {
		return Subject{}, ErrUnknown
	}
	if err != nil {
		return Subject{}, fmt.Errorf("read approval: %w", err)
	}
	var m meta
	if err := json.Unmarshal([]byte(v), &m); err != nil {
		return Subject{}, ErrUnknown
	}
	return Subject{Tenant: m.Tenant, Incident: m.Incident, Action: m.Action}, nil
}
