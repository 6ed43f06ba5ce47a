//! A JSON reader that remembers where every value sits in the text.
//!
//! Client configs are edited in place, span by span, instead of being parsed and re-serialized:
//! that is what keeps a user's indentation, inline arrays, escapes, key order and trailing newline,
//! and what makes `uninstall` able to give back the original bytes. With `comments` on it also
//! accepts what VS Code accepts in its own files (`//` and `/* */` comments, trailing commas).

use std::fmt;
use std::ops::Range;

/// Deeper than any real config; the limit keeps a hostile file from exhausting the stack.
const MAX_DEPTH: usize = 128;

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Byte range of the value in the source text.
    pub span: Range<usize>,
    pub kind: NodeKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    Object(Vec<Member>),
    Array(Vec<Node>),
    /// The decoded string.
    String(String),
    Number,
    Bool(bool),
    Null,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    /// The decoded key.
    pub key: String,
    /// Byte range of the key, quotes included.
    pub key_span: Range<usize>,
    pub value: Node,
}

impl Node {
    /// The value of `key` (the last one, as JavaScript's `JSON.parse` does with duplicates).
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.member(key).map(|m| &m.value)
    }

    pub fn member(&self, key: &str) -> Option<&Member> {
        match &self.kind {
            NodeKind::Object(members) => members.iter().rev().find(|m| m.key == key),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::String(s) => Some(s),
            _ => None,
        }
    }

    /// What kind of value this is, in words for error messages.
    pub fn describe(&self) -> &'static str {
        match self.kind {
            NodeKind::Object(_) => "an object",
            NodeKind::Array(_) => "an array",
            NodeKind::String(_) => "a string",
            NodeKind::Number => "a number",
            NodeKind::Bool(_) => "a boolean",
            NodeKind::Null => "null",
        }
    }
}

/// Where a text went wrong, in the terms an editor shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.message
        )
    }
}

impl std::error::Error for ParseError {}

/// 1-based line and column (in characters) of byte `offset` in `text`.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// Parses `text` as one JSON value (with `comments`, as JSONC). A leading UTF-8 byte order mark
/// is allowed and left in place.
pub fn parse(text: &str, comments: bool) -> Result<Node, ParseError> {
    let mut p = Parser {
        text,
        bytes: text.as_bytes(),
        pos: 0,
        comments,
    };
    if text.starts_with('\u{feff}') {
        p.pos = 3;
    }
    p.skip_trivia()?;
    let node = p.value(0)?;
    p.skip_trivia()?;
    if p.pos < p.bytes.len() {
        return Err(p.error_here("expected the end of the file after the top-level value"));
    }
    Ok(node)
}

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    comments: bool,
}

impl Parser<'_> {
    fn error_at(&self, offset: usize, message: impl Into<String>) -> ParseError {
        let (line, column) = line_column(self.text, offset);
        ParseError {
            line,
            column,
            message: message.into(),
        }
    }

    fn error_here(&self, expected: &str) -> ParseError {
        let found = match self.text[self.pos..].chars().next() {
            None => "the end of the file".to_owned(),
            Some(c) if c.is_control() => format!("`{}`", c.escape_debug()),
            Some(c) => format!("`{c}`"),
        };
        self.error_at(self.pos, format!("{expected}, found {found}"))
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    /// Whitespace and, in JSONC, comments.
    fn skip_trivia(&mut self) -> Result<(), ParseError> {
        loop {
            match self.peek() {
                Some(b' ' | b'\t' | b'\n' | b'\r') => self.pos += 1,
                Some(b'/') if self.comments => match self.bytes.get(self.pos + 1) {
                    Some(b'/') => {
                        self.pos = memchr::memchr(b'\n', &self.bytes[self.pos..])
                            .map_or(self.bytes.len(), |i| self.pos + i);
                    }
                    Some(b'*') => {
                        let start = self.pos;
                        let body = &self.text[self.pos + 2..];
                        match body.find("*/") {
                            Some(end) => self.pos += 2 + end + 2,
                            None => return Err(self.error_at(start, "unterminated comment")),
                        }
                    }
                    _ => return Ok(()),
                },
                _ => return Ok(()),
            }
        }
    }

    fn value(&mut self, depth: usize) -> Result<Node, ParseError> {
        if depth > MAX_DEPTH {
            return Err(self.error_at(self.pos, "nested too deeply"));
        }
        let start = self.pos;
        let kind = match self.peek() {
            Some(b'{') => self.object(depth)?,
            Some(b'[') => self.array(depth)?,
            Some(b'"') => NodeKind::String(self.string()?),
            Some(b'-' | b'0'..=b'9') => self.number()?,
            Some(b't') => self.literal("true", NodeKind::Bool(true))?,
            Some(b'f') => self.literal("false", NodeKind::Bool(false))?,
            Some(b'n') => self.literal("null", NodeKind::Null)?,
            _ => return Err(self.error_here("expected a value")),
        };
        Ok(Node {
            span: start..self.pos,
            kind,
        })
    }

    fn literal(&mut self, word: &str, kind: NodeKind) -> Result<NodeKind, ParseError> {
        if self.text[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(kind)
        } else {
            Err(self.error_here("expected a value"))
        }
    }

    fn number(&mut self) -> Result<NodeKind, ParseError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.error_here("expected a digit")),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.error_here("expected a digit after the decimal point"));
            }
            self.digits();
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.error_here("expected a digit in the exponent"));
            }
            self.digits();
        }
        debug_assert!(self.pos > start);
        Ok(NodeKind::Number)
    }

    fn digits(&mut self) {
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
    }

    fn string(&mut self) -> Result<String, ParseError> {
        let start = self.pos;
        self.pos += 1; // the opening quote
        let mut out = String::new();
        loop {
            let run_end = self.bytes[self.pos..]
                .iter()
                .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
                .map(|i| self.pos + i);
            let Some(end) = run_end else {
                return Err(self.error_at(start, "unterminated string"));
            };
            out.push_str(&self.text[self.pos..end]);
            self.pos = end;
            match self.bytes[end] {
                b'"' => {
                    self.pos += 1;
                    return Ok(out);
                }
                b'\\' => self.escape(&mut out)?,
                _ => {
                    return Err(self.error_at(
                        end,
                        "control character in a string (write it as an escape such as \\n)",
                    ))
                }
            }
        }
    }

    fn escape(&mut self, out: &mut String) -> Result<(), ParseError> {
        let at = self.pos;
        self.pos += 1; // the backslash
        let c = match self.peek() {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => {
                self.pos += 1;
                let high = self.hex4()?;
                let c = if (0xD800..0xDC00).contains(&high) {
                    if !self.text[self.pos..].starts_with("\\u") {
                        return Err(self.error_at(at, "unpaired surrogate in a \\u escape"));
                    }
                    self.pos += 2;
                    let low = self.hex4()?;
                    if !(0xDC00..0xE000).contains(&low) {
                        return Err(self.error_at(at, "unpaired surrogate in a \\u escape"));
                    }
                    char::from_u32(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))
                } else {
                    char::from_u32(high)
                };
                let c = c.ok_or_else(|| self.error_at(at, "invalid \\u escape"))?;
                out.push(c);
                return Ok(());
            }
            _ => {
                return Err(self.error_here("expected an escape such as \\n or \\u0041 after `\\`"))
            }
        };
        self.pos += 1;
        out.push(c);
        Ok(())
    }

    fn hex4(&mut self) -> Result<u32, ParseError> {
        let digits = self.text.get(self.pos..self.pos + 4).unwrap_or("");
        match u32::from_str_radix(digits, 16) {
            Ok(v) if digits.len() == 4 && digits.bytes().all(|b| b.is_ascii_hexdigit()) => {
                self.pos += 4;
                Ok(v)
            }
            _ => Err(self.error_here("expected four hex digits after \\u")),
        }
    }

    fn object(&mut self, depth: usize) -> Result<NodeKind, ParseError> {
        self.pos += 1; // {
        let mut members = Vec::new();
        self.skip_trivia()?;
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(NodeKind::Object(members));
        }
        loop {
            if self.peek() != Some(b'"') {
                return Err(self.error_here("expected a key in double quotes"));
            }
            let key_start = self.pos;
            let key = self.string()?;
            let key_span = key_start..self.pos;
            self.skip_trivia()?;
            if self.peek() != Some(b':') {
                return Err(self.error_here("expected `:` after the key"));
            }
            self.pos += 1;
            self.skip_trivia()?;
            let value = self.value(depth + 1)?;
            members.push(Member {
                key,
                key_span,
                value,
            });
            self.skip_trivia()?;
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    self.skip_trivia()?;
                    if self.comments && self.peek() == Some(b'}') {
                        self.pos += 1;
                        return Ok(NodeKind::Object(members));
                    }
                }
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(NodeKind::Object(members));
                }
                _ => return Err(self.error_here("expected `,` or `}` after an object member")),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<NodeKind, ParseError> {
        self.pos += 1; // [
        let mut items = Vec::new();
        self.skip_trivia()?;
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(NodeKind::Array(items));
        }
        loop {
            items.push(self.value(depth + 1)?);
            self.skip_trivia()?;
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    self.skip_trivia()?;
                    if self.comments && self.peek() == Some(b']') {
                        self.pos += 1;
                        return Ok(NodeKind::Array(items));
                    }
                }
                Some(b']') => {
                    self.pos += 1;
                    return Ok(NodeKind::Array(items));
                }
                _ => return Err(self.error_here("expected `,` or `]` after an array element")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> Node {
        parse(text, false).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn spans_point_at_the_values() {
        let text = "{\n  \"a\": [1, \"x\\u00e9\"],\n  \"b\": {\"c\": null}\n}\n";
        let root = ok(text);
        let a = root.get("a").unwrap();
        assert_eq!(&text[a.span.clone()], "[1, \"x\\u00e9\"]");
        let NodeKind::Array(items) = &a.kind else {
            panic!()
        };
        assert_eq!(items[1].as_str(), Some("xé"));
        assert_eq!(&text[items[1].span.clone()], "\"x\\u00e9\"");
        let b = root.member("b").unwrap();
        assert_eq!(&text[b.key_span.clone()], "\"b\"");
        assert_eq!(b.value.get("c").unwrap().kind, NodeKind::Null);
    }

    #[test]
    fn agrees_with_serde_json_on_valid_documents() {
        for text in [
            "{}",
            "[]",
            " 0 ",
            "-1.5e+10",
            "\"\\ud83d\\ude00 \\\" \\\\ \\/ \\b\\f\\n\\r\\t\"",
            "{\"k\": [true, false, null, {\"x\": []}], \"日本\": \"語\"}",
        ] {
            let node = ok(text);
            let reference: serde_json::Value = serde_json::from_str(text).unwrap();
            if let serde_json::Value::String(s) = reference {
                assert_eq!(node.as_str(), Some(s.as_str()));
            }
        }
    }

    #[test]
    fn errors_name_line_column_and_expectation() {
        let err = parse("{\n  \"a\": 1\n  \"b\": 2\n}", false).unwrap_err();
        assert_eq!((err.line, err.column), (3, 3));
        assert!(err.message.contains("expected `,` or `}`"), "{err}");
        let err = parse("{\"a\": [1,]}", false).unwrap_err();
        assert!(err.message.contains("expected a value, found `]`"), "{err}");
        let err = parse("{\"a\": \"é", false).unwrap_err();
        assert_eq!(err.message, "unterminated string");
        let err = parse("", false).unwrap_err();
        assert!(err.message.contains("the end of the file"), "{err}");
        let err = parse("{} {}", false).unwrap_err();
        assert_eq!((err.line, err.column), (1, 4));
        let err = parse("{\"a\": 01}", false).unwrap_err();
        assert!(err.message.contains("expected `,` or `}`"), "{err}");
    }

    #[test]
    fn comments_and_trailing_commas_only_in_jsonc() {
        let text = "// settings\n{\n  /* block */ \"a\": [1, 2,], // tail\n  \"b\": 3,\n}\n";
        assert!(parse(text, false).is_err());
        let root = parse(text, true).unwrap();
        assert_eq!(&text[root.get("a").unwrap().span.clone()], "[1, 2,]");
        assert!(parse("{/* open", true)
            .unwrap_err()
            .message
            .contains("unterminated comment"));
    }

    #[test]
    fn depth_is_bounded() {
        let deep = "[".repeat(MAX_DEPTH + 2);
        assert!(parse(&deep, false)
            .unwrap_err()
            .message
            .contains("nested too deeply"));
    }

    #[test]
    fn byte_order_mark_is_skipped() {
        let root = ok("\u{feff}{\"a\": 1}");
        assert!(root.get("a").is_some());
    }

    #[test]
    fn last_duplicate_key_wins() {
        let root = ok("{\"a\": 1, \"a\": \"two\"}");
        assert_eq!(root.get("a").unwrap().as_str(), Some("two"));
    }
}
