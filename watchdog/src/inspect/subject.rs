//! The message under inspection, parsed lazily, and what inspectors found in it.

use crate::alert::{Alert, Direction};
use crate::inspect::argument_strings::HoldsString;
use crate::jsonrpc::{borrowed, Id, Kind};
use serde_json::Value;
use std::borrow::Cow;

/// Where a message is and what it is, without its contents.
#[derive(Debug, Clone, Copy)]
pub struct SubjectMeta<'a> {
    pub direction: Direction,
    /// The configured name of the upstream server on the other end.
    pub server: &'a str,
    pub kind: Kind,
    /// The method; for a response, the method of the request it answers.
    pub method: Option<&'a str>,
    pub id: Option<&'a Id>,
}

#[cfg(test)]
impl<'a> SubjectMeta<'a> {
    /// A message to or from the server `s`.
    pub(crate) fn for_test(direction: Direction, kind: Kind, method: &'a str, id: &'a Id) -> Self {
        SubjectMeta {
            direction,
            server: "s",
            kind,
            method: Some(method),
            id: Some(id),
        }
    }

    /// A tools/call result from the server `s`.
    pub(crate) fn tool_result_for_test(id: &'a Id) -> Self {
        SubjectMeta::for_test(Direction::ServerToClient, Kind::Result, "tools/call", id)
    }
}

pub struct Subject<'a> {
    pub meta: SubjectMeta<'a>,
    raw: &'a [u8],
    value: Option<Value>,
    unparsable: bool,
    changed: bool,
    /// `params.name`, `params.uri` and whether `params.arguments` holds strings, as read from
    /// `raw` once (several inspectors ask).
    quick_params: std::cell::OnceCell<Option<QuickParams<'a>>>,
}

impl<'a> Subject<'a> {
    pub fn new(meta: SubjectMeta<'a>, raw: &'a [u8]) -> Self {
        Subject {
            meta,
            raw,
            value: None,
            unparsable: false,
            changed: false,
            quick_params: std::cell::OnceCell::new(),
        }
    }

    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// The message as JSON, parsed on first use.
    pub fn json(&mut self) -> Option<&Value> {
        self.parse();
        self.value.as_ref()
    }

    /// The message as mutable JSON; the message counts as changed from now on.
    pub fn json_mut(&mut self) -> Option<&mut Value> {
        self.parse();
        if self.value.is_some() {
            self.changed = true;
        }
        self.value.as_mut()
    }

    pub fn changed(&self) -> bool {
        self.changed
    }

    /// `params.<field>` of a request when it is a string, as the server will read it. `name`
    /// and `uri` are read from the raw bytes without building the message as a `Value` (the
    /// arguments beside them may be large); the parsed message decides for other fields, when
    /// the message was rewritten, or when the quick read cannot settle it (a duplicated key:
    /// the last one wins, as in the `Value` a server builds).
    pub fn request_param(&mut self, field: &str) -> Option<Cow<'a, str>> {
        if !self.changed {
            if let Some(q) = self.quick_params() {
                // Settled: absent here is absent in the parsed message too.
                match field {
                    "name" => return q.name.clone(),
                    "uri" => return q.uri.clone(),
                    _ => {}
                }
            }
        }
        self.json()
            .and_then(|v| v.get("params"))
            .and_then(|p| p.get(field))
            .and_then(Value::as_str)
            .map(|v| Cow::Owned(v.to_owned()))
    }

    /// Whether `params.arguments` holds a string at any depth (absent: no); None when the quick
    /// read cannot settle it, or the message was rewritten.
    pub fn arguments_hold_strings(&self) -> Option<bool> {
        if self.changed {
            return None;
        }
        self.quick_params()
            .filter(|q| !q.arguments_repeated)
            .map(|q| q.arguments.as_ref().is_some_and(|a| a.0))
    }

    fn quick_params(&self) -> Option<&QuickParams<'a>> {
        self.quick_params
            .get_or_init(|| QuickParams::read(self.raw))
            .as_ref()
    }

    pub(crate) fn into_value(self) -> Option<Value> {
        self.value
    }

    fn parse(&mut self) {
        if self.value.is_none() && !self.unparsable {
            match serde_json::from_slice(self.raw) {
                Ok(v) => self.value = Some(v),
                Err(_) => self.unparsable = true,
            }
        }
    }
}

/// What the inspectors of one message found, and whether one of them stops it.
#[derive(Debug, Default)]
pub struct Findings {
    pub alerts: Vec<Alert>,
    /// Why the message is stopped (kept internal; the requester sees a generic message).
    pub block: Option<String>,
    /// What the requester is told instead of the generic message, when telling helps the user
    /// act (e.g. which command approves a changed tool).
    pub block_message: Option<String>,
    /// For a stopped request: the result to answer the requester with instead of an error (a
    /// server→client request declined on the user's behalf, e.g. `{"action":"decline"}`).
    pub answer: Option<Value>,
}

impl Findings {
    pub fn alert(&mut self, alert: Alert) {
        self.alerts.push(alert);
    }

    pub fn block(&mut self, reason: impl Into<String>) {
        self.block.get_or_insert_with(|| reason.into());
    }

    /// Answers the request with `result` in the recipient's name; the recipient never sees it
    /// (the first answer stands).
    pub fn answer(&mut self, result: Value) {
        self.answer.get_or_insert(result);
    }

    /// Stops the message and tells the requester `message` (unless another inspector stopped it
    /// first: the first reason stands).
    pub fn refuse(&mut self, reason: impl Into<String>, message: impl Into<String>) {
        if self.block.is_none() {
            self.block = Some(reason.into());
            self.block_message = Some(message.into());
        }
    }

    /// Stops a request and answers the requester with `result` as if its peer had (unless another
    /// inspector stopped it first).
    pub fn answer_instead(&mut self, reason: impl Into<String>, result: Value) {
        if self.block.is_none() {
            self.block = Some(reason.into());
            self.answer = Some(result);
        }
    }
}

/// `params.name` and `params.uri` of a request, where they are strings: borrowed from the
/// message unless they hold escapes; and whether its arguments hold strings.
struct QuickParams<'a> {
    name: Option<Cow<'a, str>>,
    uri: Option<Cow<'a, str>>,
    arguments: Option<HoldsString>,
    /// `arguments` given twice: a server reading the first would see what the last hides, so
    /// nothing is settled about them.
    arguments_repeated: bool,
}

impl QuickParams<'_> {
    const NONE: QuickParams<'static> = QuickParams {
        name: None,
        uri: None,
        arguments: None,
        arguments_repeated: false,
    };
}

impl<'a> QuickParams<'a> {
    /// None when the quick read cannot settle them (not an object, `params` not an object, a
    /// name or uri that is not a string). A duplicated key counts once, the last one, as in the
    /// `Value` a server builds.
    fn read(raw: &'a [u8]) -> Option<QuickParams<'a>> {
        #[derive(serde::Deserialize)]
        struct Request<'a> {
            #[serde(borrow, default)]
            params: Option<QuickParams<'a>>,
        }
        let params = serde_json::from_slice::<Request<'a>>(raw).ok()?.params;
        Some(params.unwrap_or(QuickParams::NONE))
    }
}

impl<'de: 'a, 'a> serde::Deserialize<'de> for QuickParams<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Read as a map only: a derived struct would also take an array, by position.
        d.deserialize_map(ParamsVisitor(std::marker::PhantomData))
    }
}

struct ParamsVisitor<'a>(std::marker::PhantomData<&'a ()>);

impl<'de: 'a, 'a> serde::de::Visitor<'de> for ParamsVisitor<'a> {
    type Value = QuickParams<'a>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("request params as an object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        #[derive(serde::Deserialize)]
        #[serde(transparent)]
        struct Text<'a>(
            #[serde(borrow, deserialize_with = "borrowed::optional_str")] Option<Cow<'a, str>>,
        );
        let mut params = QuickParams::NONE;
        /// The keys read; serde's derive matches an escaped key's decoded text too.
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "lowercase")]
        enum Key {
            Name,
            Uri,
            Arguments,
            #[serde(other)]
            Other,
        }
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Name => params.name = map.next_value::<Text<'a>>()?.0,
                Key::Uri => params.uri = map.next_value::<Text<'a>>()?.0,
                Key::Arguments => {
                    params.arguments_repeated |= params.arguments.is_some();
                    params.arguments = map.next_value()?;
                }
                Key::Other => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok(params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(raw: &[u8]) -> Subject<'_> {
        let meta = SubjectMeta {
            direction: Direction::ClientToServer,
            server: "s",
            kind: Kind::Request,
            method: Some("tools/call"),
            id: None,
        };
        Subject::new(meta, raw)
    }

    #[test]
    fn a_request_param_is_read_as_the_server_will_read_it() {
        let plain = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"size":1}}}"#;
        let mut s = request(plain);
        assert_eq!(s.request_param("name").as_deref(), Some("echo"));
        assert_eq!(
            s.request_param("name").as_deref(),
            Some("echo"),
            "asked again"
        );
        assert_eq!(s.request_param("uri"), None);
        assert!(s.value.is_none(), "read without parsing the whole message");

        let escaped = br#"{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:\/\/\/a\u0020b"}}"#;
        assert_eq!(
            request(escaped).request_param("uri").as_deref(),
            Some("file:///a b")
        );

        // A duplicated key: a server's JSON object keeps the last one.
        let twice = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","name":"delete_all"}}"#;
        assert_eq!(
            request(twice).request_param("name").as_deref(),
            Some("delete_all")
        );

        // An escaped key is the key it decodes to.
        let escaped_key = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"n\u0061me":"delete_all"}}"#;
        assert_eq!(
            request(escaped_key).request_param("name").as_deref(),
            Some("delete_all")
        );

        let not_a_string = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":7}}"#;
        assert_eq!(request(not_a_string).request_param("name"), None);
        let absent = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}"#;
        assert_eq!(request(absent).request_param("name"), None);
    }

    #[test]
    fn whether_the_arguments_hold_strings_is_read_with_the_name() {
        let numbers = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"size":1}}}"#;
        let s = request(numbers);
        assert_eq!(s.arguments_hold_strings(), Some(false));
        let strings = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"a":[1,"x"]}}}"#;
        assert_eq!(request(strings).arguments_hold_strings(), Some(true));
        let absent = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}"#;
        assert_eq!(request(absent).arguments_hold_strings(), Some(false));
        let no_params = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call"}"#;
        assert_eq!(request(no_params).arguments_hold_strings(), Some(false));
        assert_eq!(request(no_params).request_param("name"), None);
        // Arguments given twice settle nothing (a server may read either).
        let twice = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"arguments":{"u":"x"},"arguments":{}}}"#;
        assert_eq!(request(twice).arguments_hold_strings(), None);
        let twice = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"arguments":{},"arguments":{"u":"x"}}}"#;
        assert_eq!(request(twice).arguments_hold_strings(), None);
        // Not settled: params that are not an object (a derived struct would read an array by
        // position, `name` first).
        assert_eq!(
            request(br#"{"method":"tools/call","params":["x"]}"#).request_param("name"),
            None
        );
        let listed = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":["x"]}"#;
        assert_eq!(request(listed).arguments_hold_strings(), None);
        // A rewritten message is no longer what the quick read saw.
        let mut rewritten = request(numbers);
        rewritten.json_mut().unwrap()["params"]["arguments"]["size"] = "big".into();
        assert_eq!(rewritten.arguments_hold_strings(), None);
    }

    /// JSON text for a value of `params`, as generated below: duplicated keys kept.
    fn json_of(value: &Generated) -> String {
        match value {
            Generated::Text(t) => t.clone(),
            Generated::Object(entries) => {
                let fields: Vec<String> = entries
                    .iter()
                    .map(|(k, v)| format!("{k}:{}", json_of(v)))
                    .collect();
                format!("{{{}}}", fields.join(","))
            }
            Generated::Array(items) => {
                let items: Vec<String> = items.iter().map(json_of).collect();
                format!("[{}]", items.join(","))
            }
        }
    }

    #[derive(Debug, Clone)]
    enum Generated {
        /// A scalar, as JSON text.
        Text(String),
        /// Keys as JSON text (possibly escaped, possibly repeated).
        Object(Vec<(String, Generated)>),
        Array(Vec<Generated>),
    }

    fn generated() -> impl proptest::strategy::Strategy<Value = Generated> {
        use proptest::prelude::*;
        let scalar = prop_oneof![
            Just(r#""echo""#.to_string()),
            Just(r#""a\u0062c""#.to_string()),
            Just(r#""""#.to_string()),
            Just("7".to_string()),
            Just("-1".to_string()),
            Just("true".to_string()),
            Just("null".to_string()),
        ]
        .prop_map(Generated::Text);
        let key = prop_oneof![
            Just(r#""name""#),
            Just(r#""uri""#),
            Just(r#""arguments""#),
            Just(r#""n\u0061me""#),
            Just(r#""other""#),
        ]
        .prop_map(String::from);
        scalar.prop_recursive(3, 24, 4, move |inner| {
            prop_oneof![
                proptest::collection::vec((key.clone(), inner.clone()), 0..4)
                    .prop_map(Generated::Object),
                proptest::collection::vec(inner, 0..3).prop_map(Generated::Array),
            ]
        })
    }

    fn holds_a_string(v: &Value) -> bool {
        match v {
            Value::String(_) => true,
            Value::Array(items) => items.iter().any(holds_a_string),
            Value::Object(map) => map.values().any(holds_a_string),
            _ => false,
        }
    }

    proptest::proptest! {
        /// The quick read answers as the `Value` a server builds: the same name and uri, and
        /// never "no strings" for arguments that hold one.
        #[test]
        fn the_quick_read_agrees_with_the_parsed_message(params in generated()) {
            let raw = format!(
                r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}}"#,
                json_of(&params)
            );
            let parsed: Value = serde_json::from_str(&raw).unwrap();
            let field = |f: &str| parsed["params"].get(f).and_then(Value::as_str).map(str::to_owned);
            let mut s = request(raw.as_bytes());
            proptest::prop_assert_eq!(s.request_param("name").map(Cow::into_owned), field("name"));
            proptest::prop_assert_eq!(s.request_param("uri").map(Cow::into_owned), field("uri"));
            let strings = parsed["params"].get("arguments").is_some_and(holds_a_string);
            // A string under a key repeated in the arguments counts even when the last
            // occurrence wins: a look too many, never one too few.
            proptest::prop_assert!(!strings || s.arguments_hold_strings() != Some(false));
        }
    }

    #[test]
    fn a_rewritten_request_is_read_from_its_rewrite() {
        let raw = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}"#;
        let mut s = request(raw);
        s.json_mut().unwrap()["params"]["name"] = "renamed".into();
        assert_eq!(s.request_param("name").as_deref(), Some("renamed"));
    }
}
