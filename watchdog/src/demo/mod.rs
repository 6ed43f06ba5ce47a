//! `mcp-watchdog demo`: an embedded scripted MCP server behind the proxy, driven by a short session.
