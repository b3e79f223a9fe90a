package netguard

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
)

// ErrRefused is the cause of every dial the guard refused.
var ErrRefused = errors.New("address is not public (loopback, private, link-local, CGNAT, unspecified, multicast or reserved)")

// Classify reports why a dial to a may not be made ("loopback", "private", "link-local",
// "shared (CGNAT)", "unspecified", "multicast", "reserved", "site-local"), or "" when a is
// a public address. IPv4 addresses embedded in IPv6 (mapped, NAT64, IPv4-compatible, 6to4)
// are judged by the IPv4 address they carry.
func Classify(a netip.Addr) string {
	// Ranges netip does not classify.
	var (
		cgnat       = netip.PrefixFrom(netip.AddrFrom4([4]byte{100, 64}), 10)                     // RFC 6598 shared address space
		thisNetwork = netip.PrefixFrom(netip.AddrFrom4([4]byte{0}), 8)                            // RFC 791 "this network"
		reserved4   = netip.PrefixFrom(netip.AddrFrom4([4]byte{240}), 4)                          // RFC 1112 reserved, incl. broadcast
		nat64       = netip.PrefixFrom(netip.AddrFrom16([16]byte{0, 0x64, 0xff, 0x9b}), 96)       // RFC 6052: embeds an IPv4 address
		nat64Local  = netip.PrefixFrom(netip.AddrFrom16([16]byte{0, 0x64, 0xff, 0x9b, 0, 1}), 48) // RFC 8215 local-use NAT64
		compat4     = netip.PrefixFrom(netip.AddrFrom16([16]byte{}), 96)                          // deprecated IPv4-compatible ::a.b.c.d
		sixToFour   = netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x02}), 16)                // RFC 3056 6to4: 2002:a.b.c.d::/48
		siteLocal   = netip.PrefixFrom(netip.AddrFrom16([16]byte{0xfe, 0xc0}), 10)                // deprecated site-local fec0::/10
		benchmark   = netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18}), 15)                     // RFC 2544 benchmarking
		ietf        = netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 0, 0}), 24)                   // RFC 6890 IETF protocol assignments
	)
	a = a.Unmap()
	switch b := a.As16(); {
	case !a.Is6():
	case nat64.Contains(a), nat64Local.Contains(a), compat4.Contains(a) && !a.IsUnspecified() && !a.IsLoopback():
		a = netip.AddrFrom4([4]byte(b[12:16])) // judge the IPv4 address it carries
	case sixToFour.Contains(a):
		a = netip.AddrFrom4([4]byte(b[2:6]))
	case siteLocal.Contains(a):
		return "site-local"
	}
	switch {
	case a.IsLoopback():
		return "loopback"
	case a.IsUnspecified(), thisNetwork.Contains(a):
		return "unspecified"
	case a.IsPrivate():
		return "private"
	case a.IsLinkLocalUnicast():
		return "link-local"
	case a.IsMulticast(), a.IsLinkLocalMulticast(), a.IsInterfaceLocalMulticast():
		return "multicast"
	case cgnat.Contains(a):
		return "shared (CGNAT)"
	case reserved4.Contains(a), benchmark.Contains(a), ietf.Contains(a):
		return "reserved"
	}
	return ""
}

// AddressError is a refused dial naming the address and why. It matches ErrRefused and,
// when set, Cause (errors.Is), so each caller can keep its own sentinel and wording.
type AddressError struct {
	Addr netip.Addr
	Kind string // loopback, private, link-local, …
	// Cause is the caller's sentinel (Control's argument); nil: ErrRefused.
	Cause error
}

func (e *AddressError) Error() string {
	return fmt.Sprintf("%v: %s is %s", e.cause(), e.Addr, e.Kind)
}

// Unwrap returns ErrRefused and Cause.
func (e *AddressError) Unwrap() []error {
	if e.Cause == nil || e.Cause == ErrRefused {
		return []error{ErrRefused}
	}
	return []error{e.Cause, ErrRefused}
}

func (e *AddressError) cause() error {
	if e.Cause == nil {
		return ErrRefused
	}
	return e.Cause
}

// Control returns a net.Dialer Control function that refuses connections to the addresses
// Classify names. Control runs after name resolution and before connect, on the address
// actually dialled, so a name that resolves (or re-resolves: DNS rebinding) to such an
// address is refused before any packet is sent to it. Every refusal matches ErrRefused and
// cause (nil: ErrRefused only); an address that is not an IP is refused too.
func Control(cause error) func(network, address string, c syscall.RawConn) error {
	if cause == nil {
		cause = ErrRefused
	}
	wrap := func(format string, args ...any) error {
		if cause == ErrRefused {
			return fmt.Errorf("%w: "+format, append([]any{cause}, args...)...)
		}
		return fmt.Errorf("%w: "+format+" (%w)", append(append([]any{cause}, args...), ErrRefused)...)
	}
	return func(network, address string, _ syscall.RawConn) error {
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			return wrap("cannot parse dialled address %q", address)
		}
		a, err := netip.ParseAddr(host)
		if err != nil {
			return wrap("dialled address %q is not an IP", host)
		}
		if kind := Classify(a); kind != "" {
			return &AddressError{Addr: a.Unmap(), Kind: kind, Cause: cause}
		}
		return nil
	}
}
