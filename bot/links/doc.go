// Package links serves the link-approval pages, the fallback for a chat without buttons:
// GET /action/recover?ref=R previews what will run (and changes nothing, however often
// chat apps' link previews open it), and POST /action/recover/confirm approves it, once.
package links
