// Package bot is the running service: HTTP routes, the pipeline that ties detection,
// diagnosis, conversation and execution together, and the chat adapters below it.
package bot
