// Package agent is the host agent: it samples the machine it runs on, tails log files, and pushes
// both to the infrawatch ingest API through an on-disk spool so that nothing is lost while the server
// is unreachable or the agent restarts.
//
// The agent must never log or print the API key, never delete a spooled batch before the server has
// answered it with 2xx (or with 400, which retrying cannot fix), and never block collection on delivery.
package agent
