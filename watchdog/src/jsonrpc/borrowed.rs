//! An optional JSON string borrowed from the input, copied only when it holds escapes.
//!
//! serde borrows a `Cow<'a, str>` field marked `#[serde(borrow)]`, but not one inside an
//! `Option`: that one is always copied. Method and tool names are read from every request, so
//! `#[serde(borrow, default, deserialize_with = "...::optional_str")]` keeps them allocation-free.

use serde::de::{Deserializer, Error, Visitor};
use std::borrow::Cow;
use std::fmt;

/// As `Option<Cow<str>>` reads: `null` is `None`, a string `Some`, anything else an error.
pub fn optional_str<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Cow<'de, str>>, D::Error> {
    d.deserialize_option(OptionVisitor)
}

struct OptionVisitor;

impl<'de> Visitor<'de> for OptionVisitor {
    type Value = Option<Cow<'de, str>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string or null")
    }

    fn visit_none<E: Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(StrVisitor).map(Some)
    }
}

struct StrVisitor;

impl<'de> Visitor<'de> for StrVisitor {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }

    fn visit_string<E: Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    struct Named<'a> {
        #[serde(borrow, default, deserialize_with = "optional_str")]
        name: Option<Cow<'a, str>>,
    }

    fn name(json: &str) -> Result<Option<Cow<'_, str>>, serde_json::Error> {
        serde_json::from_str::<Named<'_>>(json).map(|n| n.name)
    }

    #[test]
    fn plain_strings_are_borrowed_escaped_ones_copied_null_none_others_refused() {
        assert!(matches!(
            name(r#"{"name":"echo"}"#),
            Ok(Some(Cow::Borrowed("echo")))
        ));
        assert!(
            matches!(name(r#"{"name":"tools\/call"}"#), Ok(Some(Cow::Owned(ref s))) if s == "tools/call")
        );
        assert!(matches!(name("{}"), Ok(None)));
        assert!(matches!(name(r#"{"name":null}"#), Ok(None)));
        assert!(name(r#"{"name":7}"#).is_err());
        assert!(name(r#"{"name":["echo"]}"#).is_err());
    }
}
