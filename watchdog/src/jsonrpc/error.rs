//! JSON-RPC error responses the watchdog itself sends.

use super::Id;
use bytes::Bytes;

/// JSON-RPC error codes the watchdog uses.
pub mod code {
    pub const PARSE_ERROR: i64 = -32700;
    pub const INVALID_REQUEST: i64 = -32600;
    pub const METHOD_NOT_FOUND: i64 = -32601;
    pub const INVALID_PARAMS: i64 = -32602;
    pub const INTERNAL_ERROR: i64 = -32603;
    /// A request the policy stopped; the message stays generic on purpose.
    pub const BLOCKED: i64 = -32001;
    /// The upstream server exited or is unavailable.
    pub const UPSTREAM_UNAVAILABLE: i64 = -32002;
    /// The request could not be delivered (too large, malformed).
    pub const REJECTED: i64 = -32003;
}

/// `{"jsonrpc":"2.0","id":ID,"error":{"code":CODE,"message":MESSAGE}}`
pub fn error_response(id: Option<&Id>, code: i64, message: &str) -> Bytes {
    let id = id.map(Id::as_str).unwrap_or("null");
    let message = serde_json::to_string(message).expect("strings serialize");
    Bytes::from(format!(
        r#"{{"jsonrpc":"2.0","id":{id},"error":{{"code":{code},"message":{message}}}}}"#
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_valid_json_with_the_raw_id() {
        let b = error_response(
            Some(&Id("\"a\\\"b\"".into())),
            code::BLOCKED,
            "Request \"blocked\"",
        );
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["id"], "a\"b");
        assert_eq!(v["error"]["code"], -32001);
        assert_eq!(v["error"]["message"], "Request \"blocked\"");
        let v: serde_json::Value = serde_json::from_slice(&error_response(None, -1, "x")).unwrap();
        assert!(v["id"].is_null());
    }
}
