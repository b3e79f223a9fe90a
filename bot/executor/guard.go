package executor

import (
	"errors"
	"syscall"

	"github.com/alertengine/alertengine/detector/netguard"
)

// ErrPrivateAddress is the cause of a dial the guard refused: the recovery URL resolved to
// an address the tenant did not allow (loopback, private, link-local, CGNAT, unspecified,
// multicast or reserved). It also matches netguard.ErrRefused.
var ErrPrivateAddress = errors.New("recovery URL resolves to a private/loopback/link-local address (allow_private_network is false)")

// AddressError is ErrPrivateAddress naming the address that was refused. The guard is the
// one the health poller uses too (detector/netguard).
type AddressError = netguard.AddressError

// Guard returns a net.Dialer Control function that refuses connections to the addresses
// ErrPrivateAddress describes. Control runs after name resolution and before connect, on
// the address actually dialled, so a name that resolves (or re-resolves, DNS rebinding) to
// such an address is refused before any packet is sent to it.
func Guard() func(network, address string, c syscall.RawConn) error {
	return netguard.Control(ErrPrivateAddress)
}
