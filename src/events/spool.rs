//! The outbox's files: a folder of append-only segment files, each a run of records framed as
//! `length (u32 LE) | CRC-32 of the payload (u32 LE) | payload` (the payload is the event as
//! JSON), plus a `cursor` file naming the first record not yet acknowledged by the publisher.
//!
//! Recovery after a crash reads every unacknowledged record and checks its length and checksum.
//! The first record that fails (a torn write: `SIGKILL` or power loss mid-append, or a damaged
//! disk) ends the good part of its segment: every byte from it on is copied to a
//! `segment-N.log.corrupt-<ms>` file beside it, the segment is cut there and the problem is
//! reported; the good records before it are published as usual. A new process never appends to
//! an old segment, so a cut tail is never written over.
//!
//! The cursor is written (temp file + rename) after each acknowledged batch but not fsync'ed: if a
//! crash loses it, the records since the previous one are published again — a duplicate, which
//! consumers drop by `event_id`, never a loss.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Bytes before each payload: its length and its checksum.
pub(crate) const HEADER: u64 = 8;

/// A segment is closed and a new one started past this many bytes.
pub(crate) const SEGMENT_BYTES: u64 = 8 << 20;

/// CRC-32 (IEEE 802.3, reflected, the polynomial of zlib and Ethernet).
pub(crate) fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc = TABLE[((crc ^ u32::from(byte)) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

/// The byte-at-a-time table of the reflected polynomial 0xEDB88320.
const TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 {
                0xEDB8_8320 ^ (crc >> 1)
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

/// Appends one framed record holding `payload` to `out`.
pub(crate) fn frame(payload: &[u8], out: &mut Vec<u8>) {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc32(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// What the bytes at an offset hold.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Framed<'a> {
    /// A whole record whose checksum matches; the next one starts `len` bytes on.
    Record {
        /// The payload.
        payload: &'a [u8],
        /// Header and payload bytes.
        len: u64,
    },
    /// Nothing more.
    End,
    /// A cut or damaged record.
    Bad(&'static str),
}

/// Reads the record at the start of `bytes`; `complete` says no byte follows `bytes` (so a
/// short record is torn rather than still to be read).
pub(crate) fn read_frame(bytes: &[u8], complete: bool) -> Framed<'_> {
    if bytes.is_empty() {
        return Framed::End;
    }
    if bytes.len() < HEADER as usize {
        return if complete {
            Framed::Bad("torn record header")
        } else {
            Framed::End
        };
    }
    let word =
        |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    let (len, crc) = (word(0) as usize, word(4));
    let Some(payload) = bytes.get(HEADER as usize..HEADER as usize + len) else {
        return if complete {
            Framed::Bad("torn record")
        } else {
            Framed::End
        };
    };
    if crc32(payload) != crc {
        return Framed::Bad("checksum mismatch");
    }
    Framed::Record {
        payload,
        len: HEADER + len as u64,
    }
}

/// The file name of segment `seq`.
pub(crate) fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("segment-{seq:020}.log"))
}

/// The segments in `dir`, oldest first.
pub(crate) fn segments(dir: &Path) -> io::Result<Vec<u64>> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name();
        let seq = name
            .to_str()
            .and_then(|n| n.strip_prefix("segment-")?.strip_suffix(".log"))
            .and_then(|n| n.parse::<u64>().ok());
        found.extend(seq);
    }
    found.sort_unstable();
    Ok(found)
}

/// A place in the spool: a segment and a byte offset in it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Position {
    /// The segment.
    pub(crate) seq: u64,
    /// Bytes into it.
    pub(crate) offset: u64,
}

/// Reads the cursor; `None` when absent or damaged (everything left is then published again).
pub(crate) fn read_cursor(dir: &Path) -> Option<Position> {
    let text = fs::read_to_string(dir.join("cursor")).ok()?;
    let mut words = text.split_whitespace().map(|w| w.parse::<u64>().ok());
    let (seq, offset, check) = (words.next()??, words.next()??, words.next()??);
    (check == u64::from(crc32(format!("{seq} {offset}").as_bytes())))
        .then_some(Position { seq, offset })
}

/// Writes the cursor (temp file, then rename: a reader sees the old or the new one).
pub(crate) fn write_cursor(dir: &Path, at: Position) -> io::Result<()> {
    let body = format!("{} {}", at.seq, at.offset);
    let text = format!("{body} {}\n", crc32(body.as_bytes()));
    let temp = dir.join("cursor.tmp");
    fs::write(&temp, text)?;
    fs::rename(temp, dir.join("cursor"))
}

/// A damaged tail found by recovery and moved aside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorruptTail {
    /// The segment it was cut from.
    pub segment: PathBuf,
    /// Where the good records end.
    pub offset: u64,
    /// Bytes moved aside.
    pub bytes: u64,
    /// Where they are now.
    pub moved_to: PathBuf,
    /// What was wrong with the first bad record.
    pub reason: &'static str,
}

/// One segment after recovery: where reading starts, where its good records end, how many.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Recovered {
    pub(crate) seq: u64,
    pub(crate) start: u64,
    pub(crate) end: u64,
    pub(crate) entries: u64,
}

/// Checks segment `seq` from `start` on: counts its good records and moves a bad tail aside.
pub(crate) fn recover_segment(
    dir: &Path,
    seq: u64,
    start: u64,
) -> io::Result<(Recovered, Option<CorruptTail>)> {
    let path = segment_path(dir, seq);
    let mut bytes = Vec::new();
    File::open(&path)?.read_to_end(&mut bytes)?;
    let start = start.min(bytes.len() as u64);
    let (mut at, mut entries) = (start, 0);
    let reason = loop {
        match read_frame(&bytes[at as usize..], true) {
            Framed::Record { len, .. } => {
                at += len;
                entries += 1;
            }
            Framed::End => break None,
            Framed::Bad(reason) => break Some(reason),
        }
    };
    let recovered = Recovered {
        seq,
        start,
        end: at,
        entries,
    };
    let Some(reason) = reason else {
        return Ok((recovered, None));
    };
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    let moved_to = path.with_extension(format!("log.corrupt-{millis}"));
    let mut aside = File::create(&moved_to)?;
    aside.write_all(&bytes[at as usize..])?;
    aside.sync_all()?;
    let segment = OpenOptions::new().write(true).open(&path)?;
    segment.set_len(at)?;
    segment.sync_all()?;
    let tail = CorruptTail {
        segment: path,
        offset: at,
        bytes: bytes.len() as u64 - at,
        moved_to,
        reason,
    };
    Ok((recovered, Some(tail)))
}

/// Reads whole records of segment `seq` from `from` up to `end` (at most `max_bytes` of them,
/// but always at least one): their payloads and the offset after the last.
pub(crate) fn read_records(
    dir: &Path,
    seq: u64,
    (from, end): (u64, u64),
    max_bytes: u64,
) -> io::Result<(Vec<Vec<u8>>, u64)> {
    let mut file = File::open(segment_path(dir, seq))?;
    file.seek(SeekFrom::Start(from))?;
    let mut bytes = Vec::new();
    file.take(end.saturating_sub(from))
        .read_to_end(&mut bytes)?;
    let (mut at, mut payloads) = (0u64, Vec::new());
    while let Framed::Record { payload, len } = read_frame(&bytes[at as usize..], true) {
        payloads.push(payload.to_vec());
        at += len;
        if at >= max_bytes {
            break;
        }
    }
    if payloads.is_empty() && !bytes.is_empty() {
        // Durable bytes that do not frame: the file changed under the spool.
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("segment {seq} at {from}: unreadable record"),
        ));
    }
    Ok((payloads, from + at))
}

/// Syncs a folder, so a file created or renamed in it survives a crash.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("tai-spool-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("dir");
        dir
    }

    #[test]
    fn crc32_matches_the_check_value_of_the_ieee_polynomial() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn frames_read_back_and_damage_is_told_apart_from_a_short_read() {
        let mut bytes = Vec::new();
        frame(b"{\"a\":1}", &mut bytes);
        frame(b"{\"b\":2}", &mut bytes);
        let Framed::Record { payload, len } = read_frame(&bytes, true) else {
            panic!("a record");
        };
        assert_eq!((payload, len), (&b"{\"a\":1}"[..], 15));
        let second = &bytes[15..];
        assert_eq!(read_frame(&second[..10], true), Framed::Bad("torn record"));
        assert_eq!(read_frame(&second[..10], false), Framed::End);
        let torn = read_frame(&second[..3], true);
        assert_eq!(torn, Framed::Bad("torn record header"));
        let mut flipped = bytes.clone();
        flipped[10] ^= 1;
        assert_eq!(read_frame(&flipped, true), Framed::Bad("checksum mismatch"));
    }

    #[test]
    fn a_torn_last_record_is_moved_aside_and_the_good_ones_kept() {
        let dir = temp_dir("torn");
        let mut bytes = Vec::new();
        for i in 0..3 {
            frame(format!("{{\"n\":{i}}}").as_bytes(), &mut bytes);
        }
        let good = bytes.len() as u64;
        let mut last = Vec::new();
        frame(b"{\"n\":3,\"cut\":true}", &mut last);
        bytes.extend_from_slice(&last[..last.len() - 5]);
        fs::write(segment_path(&dir, 7), &bytes).expect("write");
        let (recovered, tail) = recover_segment(&dir, 7, 0).expect("recover");
        assert_eq!((recovered.entries, recovered.end), (3, good));
        let tail = tail.expect("a corrupt tail");
        assert_eq!(tail.reason, "torn record");
        assert_eq!(tail.offset, good);
        assert_eq!(
            fs::read(&tail.moved_to).expect("aside"),
            &last[..last.len() - 5]
        );
        assert_eq!(
            fs::metadata(segment_path(&dir, 7)).expect("meta").len(),
            good
        );
        let (payloads, next) = read_records(&dir, 7, (0, good), u64::MAX).expect("read");
        assert_eq!(payloads.len(), 3);
        assert_eq!(next, good);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_cursor_round_trips_and_a_damaged_one_is_ignored() {
        let dir = temp_dir("cursor");
        assert_eq!(read_cursor(&dir), None);
        let at = Position {
            seq: 3,
            offset: 120,
        };
        write_cursor(&dir, at).expect("write");
        assert_eq!(read_cursor(&dir), Some(at));
        fs::write(dir.join("cursor"), "3 121 0\n").expect("damage");
        assert_eq!(read_cursor(&dir), None);
        let _ = fs::remove_dir_all(&dir);
    }
}
