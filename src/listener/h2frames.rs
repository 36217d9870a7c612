//! Just enough of HTTP/2's framing (RFC 9113 §3.4, §4.1) to see, in the bytes a client sends,
//! whether a request head is half-received: the connection preface or a frame that has not fully
//! arrived, or a header block (HEADERS without END_HEADERS) still waiting for its CONTINUATION
//! frames. hyper keeps no clock on either, so a client trickling one byte a second would hold the
//! connection forever; the transport watchdog bounds it with `limits.header_read_timeout`.
//!
//! Only frame headers are read; payloads are skipped by length.

/// The client connection preface every HTTP/2 connection starts with.
pub(crate) const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

const FRAME_HEADER: usize = 9;
const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const CONTINUATION: u8 = 0x9;
const END_HEADERS: u8 = 0x4;

/// Where the client's byte stream stands.
#[derive(Debug)]
pub(crate) struct FrameReader {
    /// Preface bytes still to come.
    preface_left: usize,
    /// The frame header being read, and how much of it has arrived.
    header: [u8; FRAME_HEADER],
    header_len: usize,
    /// Payload bytes of the current frame still to come.
    payload_left: usize,
    /// Type of the frame whose payload is arriving.
    kind: u8,
    /// A header block was opened and its END_HEADERS has not come yet.
    block_open: bool,
}

impl Default for FrameReader {
    fn default() -> Self {
        FrameReader {
            preface_left: PREFACE.len(),
            header: [0; FRAME_HEADER],
            header_len: 0,
            payload_left: 0,
            kind: DATA,
            block_open: false,
        }
    }
}

impl FrameReader {
    /// Follows `bytes`, the next bytes the client sent (the preface included).
    pub(crate) fn feed(&mut self, mut bytes: &[u8]) {
        let preface = self.preface_left.min(bytes.len());
        self.preface_left -= preface;
        bytes = &bytes[preface..];
        while !bytes.is_empty() {
            if self.payload_left > 0 {
                let skip = self.payload_left.min(bytes.len());
                self.payload_left -= skip;
                bytes = &bytes[skip..];
                continue;
            }
            let take = (FRAME_HEADER - self.header_len).min(bytes.len());
            self.header[self.header_len..self.header_len + take].copy_from_slice(&bytes[..take]);
            self.header_len += take;
            bytes = &bytes[take..];
            if self.header_len == FRAME_HEADER {
                self.start_frame();
            }
        }
    }

    /// A complete frame header: note what the frame does to the header block.
    fn start_frame(&mut self) {
        let [a, b, c, kind, flags, ..] = self.header;
        self.payload_left = usize::from(a) << 16 | usize::from(b) << 8 | usize::from(c);
        self.header_len = 0;
        self.kind = kind;
        if kind == HEADERS || kind == CONTINUATION {
            self.block_open = flags & END_HEADERS == 0;
        }
    }

    /// True while a request head is half-received: the preface, a frame header, a frame other
    /// than DATA (whose pace the body timeout governs), or a header block not yet ended.
    pub(crate) fn head_pending(&self) -> bool {
        let started = self.preface_left < PREFACE.len();
        (started && self.preface_left > 0)
            || self.header_len > 0
            || (self.payload_left > 0 && self.kind != DATA)
            || self.block_open
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, flags: u8, payload: &[u8]) -> Vec<u8> {
        let len = payload.len();
        let mut out = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
        out.extend_from_slice(&[0, 0, 0, 1]);
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn whole_frames_leave_nothing_pending() {
        let mut reader = FrameReader::default();
        assert!(!reader.head_pending());
        reader.feed(PREFACE);
        reader.feed(&frame(0x4, 0, &[0; 6]));
        reader.feed(&frame(HEADERS, END_HEADERS, b"abc"));
        reader.feed(&frame(DATA, 0, &[7; 100]));
        assert!(!reader.head_pending());
    }

    #[test]
    fn a_trickled_headers_frame_is_pending_until_its_last_byte() {
        let mut reader = FrameReader::default();
        reader.feed(PREFACE);
        let headers = frame(HEADERS, END_HEADERS, b"abcdef");
        for byte in &headers[..headers.len() - 1] {
            reader.feed(std::slice::from_ref(byte));
            assert!(reader.head_pending());
        }
        reader.feed(&headers[headers.len() - 1..]);
        assert!(!reader.head_pending());
    }

    #[test]
    fn a_header_block_stays_open_until_end_headers() {
        let mut reader = FrameReader::default();
        reader.feed(PREFACE);
        reader.feed(&frame(HEADERS, 0, b"ab"));
        assert!(reader.head_pending());
        reader.feed(&frame(CONTINUATION, 0, b"cd"));
        assert!(reader.head_pending());
        reader.feed(&frame(CONTINUATION, END_HEADERS, b"ef"));
        assert!(!reader.head_pending());
    }

    #[test]
    fn a_half_sent_preface_is_pending_and_a_data_frame_in_progress_is_not() {
        let mut reader = FrameReader::default();
        reader.feed(&PREFACE[..5]);
        assert!(reader.head_pending());
        reader.feed(&PREFACE[5..]);
        let data = frame(DATA, 0, &[1; 50]);
        reader.feed(&data[..20]);
        assert!(!reader.head_pending());
    }
}
