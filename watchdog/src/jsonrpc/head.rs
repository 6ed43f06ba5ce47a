//! Recovers the top-level `id` and `method` from the beginning of a frame that was too large to keep.

/// What could be read from a truncated JSON-RPC object.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Head {
    /// Raw JSON text of a top-level `id` (number or string).
    pub id: Option<String>,
    pub method: Option<String>,
}

/// Walks the top level of a (possibly truncated) JSON object, skipping nested values, and picks up
/// `id` and `method` when their whole value is inside `bytes`.
pub fn read_head(bytes: &[u8]) -> Head {
    let mut head = Head::default();
    let mut p = Scanner { b: bytes, i: 0 };
    p.ws();
    if !p.eat(b'{') {
        return head;
    }
    loop {
        p.ws();
        let Some(key) = p.string() else { return head };
        p.ws();
        if !p.eat(b':') {
            return head;
        }
        p.ws();
        let start = p.i;
        if !p.skip_value() {
            return head;
        }
        let raw = &bytes[start..p.i];
        match key {
            b"id" if matches!(raw.first(), Some(b'"' | b'-' | b'0'..=b'9')) => {
                head.id = std::str::from_utf8(raw).ok().map(str::to_owned);
            }
            b"method" if raw.first() == Some(&b'"') => {
                head.method = serde_json::from_slice::<String>(raw).ok();
            }
            _ => {}
        }
        p.ws();
        if !p.eat(b',') {
            return head;
        }
    }
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Scanner<'a> {
    fn ws(&mut self) {
        while self.i < self.b.len() && self.b[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.b.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    /// A string's raw contents (escapes left as they are), or None if it is cut off.
    fn string(&mut self) -> Option<&'a [u8]> {
        if !self.eat(b'"') {
            return None;
        }
        let start = self.i;
        while self.i < self.b.len() {
            match self.b[self.i] {
                b'\\' => self.i += 2,
                b'"' => {
                    self.i += 1;
                    return Some(&self.b[start..self.i - 1]);
                }
                _ => self.i += 1,
            }
        }
        None
    }

    /// Skips one value; false if the input ends inside it.
    fn skip_value(&mut self) -> bool {
        match self.b.get(self.i) {
            None => false,
            Some(b'"') => self.string().is_some(),
            Some(b'{' | b'[') => {
                let mut depth = 0usize;
                while self.i < self.b.len() {
                    match self.b[self.i] {
                        b'"' => {
                            if self.string().is_none() {
                                return false;
                            }
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                self.i += 1;
                                return true;
                            }
                        }
                        _ => {}
                    }
                    self.i += 1;
                }
                false
            }
            Some(_) => {
                let start = self.i;
                while self.i < self.b.len()
                    && !matches!(self.b[self.i], b',' | b'}' | b']')
                    && !self.b[self.i].is_ascii_whitespace()
                {
                    self.i += 1;
                }
                // A scalar running to the end of the head may itself be cut off.
                self.i < self.b.len() && self.i > start
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_top_level_id_and_method_before_the_cut() {
        let h = read_head(
            br#"{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"id":"inner","x":"aaaa"#,
        );
        assert_eq!(h.id.as_deref(), Some("42"));
        assert_eq!(h.method.as_deref(), Some("tools/call"));
    }

    #[test]
    fn ignores_nested_ids_and_cut_values() {
        let h = read_head(br#"{"params":{"id":9,"s":"a\"}"},"method":"x","id":"ab"#);
        assert_eq!(h.id, None);
        assert_eq!(h.method.as_deref(), Some("x"));
        let h = read_head(br#"{"method":"m","id":12"#);
        assert_eq!(h.id, None, "a number cut at the end may be incomplete");
    }

    #[test]
    fn string_ids_keep_their_raw_text() {
        let h = read_head(br#"{"id":"req-\"1\"","method":"ping"}"#);
        assert_eq!(h.id.as_deref(), Some(r#""req-\"1\"""#));
    }

    #[test]
    fn non_objects_give_nothing() {
        assert_eq!(read_head(b"[1,2"), Head::default());
        assert_eq!(read_head(b""), Head::default());
    }
}
