// Package conversation is the chat-agnostic core: inbound events become outbound
// messages in a neutral model that the chat adapters render and transport.
package conversation
