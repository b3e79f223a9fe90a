// Package console is the web chat adapter of the demo: a conversation.Transport that
// keeps the bot's messages in memory and streams them to browsers over server-sent
// events, and the HTTP surface a visitor uses — a server-rendered page (html/template, a
// small inline script, no build step), an identity picker among the tenant's people, a
// text box for commands and questions, the buttons, a live health panel and p95 chart,
// the audit view of an incident, and, when the demo gives it controls, "Simulate spike"
// and "Recover".
//
// Every POST is CSRF-safe: it must come from the page's own origin (Origin, else
// Sec-Fetch-Site) and carry the per-session token the page was rendered with. Output is
// escaped by html/template, also in the fragments streamed to the page. The console is
// built only by `bot demo`; `bot serve` never mounts it.
package console
