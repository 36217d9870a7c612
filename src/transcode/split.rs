//! Splits a streamed request body into JSON elements as its bytes arrive: NDJSON (one value per
//! line) or one JSON array of objects (`[{…},{…}]`). PURE: no I/O; the caller feeds chunks and
//! takes out complete elements, so a client-streaming call sends each message as soon as it has
//! been read, never buffering more than one element.

use bytes::{Buf, Bytes, BytesMut};

/// How the elements are delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// One JSON value per line; blank lines are skipped.
    Ndjson,
    /// One JSON array whose elements are objects.
    JsonArray,
}

/// Why a body cannot be split.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    /// The body is not framed as announced.
    #[error("request stream: {0}")]
    Malformed(String),
    /// One element is larger than the limit.
    #[error("request stream element exceeds the limit of {0} bytes")]
    TooLarge(usize),
}

/// An incremental splitter; see the module docs.
#[derive(Debug)]
pub struct Splitter {
    framing: Framing,
    buffer: BytesMut,
    /// Largest element accepted.
    limit: usize,
    /// JsonArray: `[` seen / `]` seen.
    opened: bool,
    closed: bool,
    /// JsonArray, inside an element: bytes of `buffer` already scanned and the scan state.
    scanned: usize,
    depth: usize,
    in_string: bool,
    escaped: bool,
    /// JsonArray: an element has been taken since the last comma.
    after_element: bool,
}

impl Splitter {
    /// A splitter for `framing` whose elements may be at most `limit` bytes.
    pub fn new(framing: Framing, limit: usize) -> Splitter {
        Splitter {
            framing,
            buffer: BytesMut::new(),
            limit,
            opened: false,
            closed: false,
            scanned: 0,
            depth: 0,
            in_string: false,
            escaped: false,
            after_element: false,
        }
    }

    /// Adds the next bytes of the body.
    pub fn push(&mut self, chunk: &[u8]) {
        self.buffer.extend_from_slice(chunk);
    }

    /// The next complete element, if the bytes so far hold one. `last` says the body has ended.
    pub fn next_element(&mut self, last: bool) -> Result<Option<Bytes>, SplitError> {
        let element = match self.framing {
            Framing::Ndjson => self.next_line(last)?,
            Framing::JsonArray => self.next_array_element(last)?,
        };
        if element.is_none() && self.buffer.len() > self.limit {
            return Err(SplitError::TooLarge(self.limit));
        }
        Ok(element)
    }

    fn next_line(&mut self, last: bool) -> Result<Option<Bytes>, SplitError> {
        loop {
            let end = match self.buffer.iter().position(|&b| b == b'\n') {
                Some(at) => at,
                None if last && !self.buffer.is_empty() => self.buffer.len(),
                None => return Ok(None),
            };
            let line = self.buffer.split_to(end).freeze();
            if !self.buffer.is_empty() {
                self.buffer.advance(1);
            }
            if line.len() > self.limit {
                return Err(SplitError::TooLarge(self.limit));
            }
            if !line.trim_ascii().is_empty() {
                return Ok(Some(line));
            }
        }
    }

    fn skip_whitespace(&mut self) {
        let blank = self
            .buffer
            .iter()
            .take_while(|b| b.is_ascii_whitespace())
            .count();
        self.buffer.advance(blank);
    }

    fn next_array_element(&mut self, last: bool) -> Result<Option<Bytes>, SplitError> {
        let malformed = |m: &str| Err(SplitError::Malformed(m.to_owned()));
        loop {
            if self.scanned == 0 {
                self.skip_whitespace();
                let Some(&first) = self.buffer.first() else {
                    return match (last, self.opened, self.closed) {
                        (false, _, _) | (true, false, _) | (true, true, true) => Ok(None),
                        (true, true, false) => malformed("the JSON array is not closed"),
                    };
                };
                match (self.opened, self.closed, first) {
                    (_, true, _) => return malformed("data after the end of the JSON array"),
                    (false, _, b'[') => self.opened = true,
                    (false, _, _) => return malformed("the body must be a JSON array (or NDJSON)"),
                    (true, _, b']') => self.closed = true,
                    (true, _, b',') if self.after_element => self.after_element = false,
                    (true, _, b'{') if !self.after_element => {
                        self.scanned = 0;
                        return self.scan_element(last);
                    }
                    _ => {
                        return malformed(
                            "array elements must be JSON objects separated by commas",
                        );
                    }
                }
                self.buffer.advance(1);
            } else {
                return self.scan_element(last);
            }
        }
    }

    /// Scans an object element starting at `buffer[0]`, resuming where the last call stopped.
    fn scan_element(&mut self, last: bool) -> Result<Option<Bytes>, SplitError> {
        let mut at = self.scanned;
        while at < self.buffer.len() {
            let byte = self.buffer[at];
            at += 1;
            if self.in_string {
                match (self.escaped, byte) {
                    (true, _) => self.escaped = false,
                    (false, b'\\') => self.escaped = true,
                    (false, b'"') => self.in_string = false,
                    _ => {}
                }
                continue;
            }
            match byte {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' => {
                    self.depth = self.depth.saturating_sub(1);
                    if self.depth == 0 {
                        self.scanned = 0;
                        self.after_element = true;
                        return Ok(Some(self.buffer.split_to(at).freeze()));
                    }
                }
                _ => {}
            }
        }
        // Mark progress with at least 1 so the next call resumes inside the element.
        self.scanned = at.max(1);
        if last {
            return Err(SplitError::Malformed(
                "the body ends inside an element".to_owned(),
            ));
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `body` in chunks of `size` and returns every element (or the first error).
    fn split(framing: Framing, body: &str, size: usize) -> Result<Vec<String>, SplitError> {
        let mut splitter = Splitter::new(framing, 64);
        let mut out = Vec::new();
        let bytes = body.as_bytes();
        let mut chunks = bytes.chunks(size.max(1)).peekable();
        if bytes.is_empty() {
            while let Some(e) = splitter.next_element(true)? {
                out.push(String::from_utf8_lossy(&e).into_owned());
            }
        }
        while let Some(chunk) = chunks.next() {
            splitter.push(chunk);
            let last = chunks.peek().is_none();
            while let Some(e) = splitter.next_element(last)? {
                out.push(String::from_utf8_lossy(&e).into_owned());
            }
        }
        Ok(out)
    }

    #[test]
    fn splits_json_arrays_across_any_chunking() {
        let body = r#" [ {"a":"}{,]"} , {"b":[1,{"c":2}]},{} ] "#;
        for size in 1..body.len() {
            assert_eq!(
                split(Framing::JsonArray, body, size).expect("valid"),
                [r#"{"a":"}{,]"}"#, r#"{"b":[1,{"c":2}]}"#, "{}"],
                "chunk size {size}"
            );
        }
        assert_eq!(split(Framing::JsonArray, "[]", 1), Ok(vec![]));
        assert_eq!(split(Framing::JsonArray, "", 1), Ok(vec![]));
    }

    #[test]
    fn splits_ndjson_lines() {
        let body = "{\"a\":1}\n\n{\"b\":2}\r\n{\"c\":3}";
        for size in 1..body.len() {
            let got = split(Framing::Ndjson, body, size).expect("valid");
            assert_eq!(got.len(), 3, "chunk size {size}: {got:?}");
            assert_eq!(got[2], "{\"c\":3}");
        }
    }

    #[test]
    fn rejects_malformed_and_oversized_bodies() {
        for body in ["{}", "[{} {}]", "[1]", "[{}", "[{}] x", "[{\"a\":1"] {
            assert!(
                matches!(
                    split(Framing::JsonArray, body, 3),
                    Err(SplitError::Malformed(_))
                ),
                "{body}"
            );
        }
        let big = format!("[{{\"a\":\"{}\"}}]", "x".repeat(100));
        assert_eq!(
            split(Framing::JsonArray, &big, 7),
            Err(SplitError::TooLarge(64))
        );
    }
}
