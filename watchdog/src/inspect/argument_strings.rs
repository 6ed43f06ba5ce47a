//! Whether a small tools/call or prompts/get request carries any string in its arguments: the
//! request-side families read argument strings only, so a call whose arguments are numbers, flags
//! or nothing gives them nothing to read, and the message need not be built as a `Value` for them.
//!
//! Read with a syntax walk that allocates nothing, done once per message together with the
//! request's `params.name` and `params.uri` ([`crate::inspect::Subject`]) when the message is at
//! hand. Anything it cannot settle (invalid JSON, a duplicated field, another method, nesting past
//! serde_json's limit) counts as carrying strings.

use crate::inspect::Subject;
use crate::jsonrpc::borrowed;
use crate::mcp::methods::{PROMPTS_GET, TOOLS_CALL};
use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use std::borrow::Cow;

/// Messages above this size are not walked: they hold strings in practice, and a second walk of a
/// large message would cost more than it could save.
const WALKED_BYTES: usize = 4096;

/// False only when `raw` is a tools/call or prompts/get request, at most [`WALKED_BYTES`] long,
/// whose `params.arguments` is absent or holds no string at any depth (object keys aside). Walks
/// the bytes itself; for a message under inspection, [`message_may_carry_argument_strings`]
/// shares the subject's read.
pub fn may_carry_argument_strings(raw: &[u8]) -> bool {
    if raw.len() > WALKED_BYTES {
        return true;
    }
    match serde_json::from_slice::<Call<'_>>(raw) {
        Ok(call) if matches!(call.method.as_deref(), Some(TOOLS_CALL | PROMPTS_GET)) => {
            call.params.and_then(|p| p.arguments).is_some_and(|a| a.0)
        }
        _ => true,
    }
}

/// [`may_carry_argument_strings`] for a message being inspected, from the walk its subject does
/// once for every inspector that asks.
pub fn message_may_carry_argument_strings(message: &Subject<'_>) -> bool {
    if message.raw().len() > WALKED_BYTES
        || !matches!(message.meta.method, Some(TOOLS_CALL | PROMPTS_GET))
    {
        return true;
    }
    message.arguments_hold_strings().unwrap_or(true)
}

#[derive(Deserialize)]
struct Call<'a> {
    #[serde(borrow, default, deserialize_with = "borrowed::optional_str")]
    method: Option<Cow<'a, str>>,
    #[serde(default)]
    params: Option<Params>,
}

#[derive(Deserialize)]
struct Params {
    #[serde(default)]
    arguments: Option<HoldsString>,
}

/// Whether a JSON value holds a string value anywhere in it.
pub(crate) struct HoldsString(pub bool);

impl<'de> Deserialize<'de> for HoldsString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(HoldsStringVisitor)
    }
}

struct HoldsStringVisitor;

impl<'de> Visitor<'de> for HoldsStringVisitor {
    type Value = HoldsString;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_str<E>(self, _: &str) -> Result<HoldsString, E> {
        Ok(HoldsString(true))
    }

    fn visit_bool<E>(self, _: bool) -> Result<HoldsString, E> {
        Ok(HoldsString(false))
    }

    fn visit_i64<E>(self, _: i64) -> Result<HoldsString, E> {
        Ok(HoldsString(false))
    }

    fn visit_u64<E>(self, _: u64) -> Result<HoldsString, E> {
        Ok(HoldsString(false))
    }

    fn visit_f64<E>(self, _: f64) -> Result<HoldsString, E> {
        Ok(HoldsString(false))
    }

    fn visit_unit<E>(self) -> Result<HoldsString, E> {
        Ok(HoldsString(false))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<HoldsString, A::Error> {
        let mut any = false;
        while let Some(HoldsString(holds)) = items.next_element()? {
            any |= holds;
        }
        Ok(HoldsString(any))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut entries: A) -> Result<HoldsString, A::Error> {
        let mut any = false;
        while let Some((IgnoredAny, HoldsString(holds))) = entries.next_entry()? {
            any |= holds;
        }
        Ok(HoldsString(any))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(method: &str, arguments: &str) -> String {
        format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"{method}","params":{{"name":"t","arguments":{arguments}}}}}"#
        )
    }

    #[test]
    fn arguments_without_strings_carry_none() {
        for arguments in [
            "{}",
            "null",
            r#"{"size":1024}"#,
            r#"{"a":[1,-3,0],"b":{"c":true,"d":null}}"#,
            r#"{"only keys are strings here":{"nested key":[[],{}]}}"#,
        ] {
            for method in ["tools/call", "prompts/get"] {
                assert!(
                    !may_carry_argument_strings(call(method, arguments).as_bytes()),
                    "{arguments}"
                );
            }
        }
        let no_arguments =
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t"}}"#;
        assert!(!may_carry_argument_strings(no_arguments.as_bytes()));
    }

    #[test]
    fn a_string_anywhere_in_the_arguments_counts() {
        for arguments in [
            r#"{"url":"http://127.1/"}"#,
            r#"{"a":[1,"x"]}"#,
            r#"{"a":{"b":{"c":[{"d":"deep"}]}}}"#,
            r#"{"n":1,"s":"\u0041"}"#,
            r#""a bare string""#,
            r#"["list"]"#,
            // With serde_json's arbitrary precision on, a number with a fraction or an exponent
            // reaches the walk as text: counted, which only costs the families a look.
            r#"{"ratio":2.5}"#,
        ] {
            assert!(
                may_carry_argument_strings(call("tools/call", arguments).as_bytes()),
                "{arguments}"
            );
        }
    }

    #[test]
    fn whatever_cannot_be_settled_counts_as_carrying_strings() {
        let duplicate = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"arguments":{},"arguments":{"u":"x"}}}"#;
        let cut = &call("tools/call", r#"{"size":1}"#)[..40];
        let deep = call(
            "tools/call",
            &format!("{}1{}", "[".repeat(300), "]".repeat(300)),
        );
        let large = call(
            "tools/call",
            &format!(r#"{{"n":[{}0]}}"#, "0,".repeat(WALKED_BYTES)),
        );
        for raw in [
            duplicate,
            cut,
            &deep,
            &large,
            &call("resources/read", "{}"),
            r#"{"jsonrpc":"2.0","id":1,"result":{"content":[]}}"#,
            "not json",
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":[1,2]}"#,
        ] {
            assert!(may_carry_argument_strings(raw.as_bytes()), "{raw}");
        }
    }
}
