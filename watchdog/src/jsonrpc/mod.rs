//! JSON-RPC framing and envelopes, read without a full parse.
