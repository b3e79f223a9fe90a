package executor

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
)

// ErrPrivateAddress is the cause of a dial the guard refused: the recovery URL resolved to
// an address the tenant did not allow (loopback, private, link-local, CGNAT, unspecified,
// multicast or reserved).
var ErrPrivateAddress = errors.New("recovery URL resolves to a private/loopback/link-local address (allow_private_network is false)")

// refused reports why a dial to a may not be made, or "" when it may.
func refused(a netip.Addr) string {
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

// AddressError is ErrPrivateAddress naming the address that was refused.
type AddressError struct {
	Addr netip.Addr
	Kind string // loopback, private, link-local, …
}

func (e *AddressError) Error() string {
	return fmt.Sprintf("%v: %s is %s", ErrPrivateAddress, e.Addr, e.Kind)
}

func (e *AddressError) Unwrap() error { return ErrPrivateAddress }

// Guard returns a net.Dialer Control function that refuses connections to the addresses
// ErrPrivateAddress describes. Control runs after name resolution and before connect, on
// the address actually dialled, so a name that resolves (or re-resolves, DNS rebinding) to
// such an address is refused before any packet is sent to it.
func Guard() func(network, address string, c syscall.RawConn) error {
	return func(network, address string, _ syscall.RawConn) error {
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			return fmt.Errorf("%w: cannot parse dialled address %q", ErrPrivateAddress, address)
		}
		a, err := netip.ParseAddr(host)
		if err != nil {
			return fmt.Errorf("%w: dialled address %q is not an IP", ErrPrivateAddress, host)
		}
		if kind := refused(a); kind != "" {
			return &AddressError{Addr: a.Unmap(), Kind: kind}
		}
		return nil
	}
}
