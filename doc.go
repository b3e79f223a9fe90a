// Package alertengine is the root of AlertEngine, a self-hosted, chat-first incident bot
// with accountable remediation. The code lives in the sub-packages; this package only
// holds the tests that keep the shape of the tree (package docs, import directions).
package alertengine
