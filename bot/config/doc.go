// Package config turns the bot's environment and its tenants file (both described in
// docs/configuration.md) into typed, validated values.
//
// Only cmd/bot reads the process environment; it passes os.LookupEnv to [LoadEnv] and [Load].
// Every problem found is collected and returned at once as a [*Problems] whose lines name the
// variable, or the file, line and key path, and what is wrong. Secrets are held in [Secret],
// which prints, marshals and logs as "[redacted]"; no error, log line or status view built from
// this package contains a secret value.
//
// The tenants file is read through package yamldoc (bot/config/yamldoc), the reader the
// simulation scenarios share.
// Chat ids are channel-neutral: a tenant's chats and a person's ids are keyed by channel
// name, and each id is checked by the [ChatChannel] the caller registers for that channel
// (the assembly registers one per chat platform, with the platform's own id rules).
package config
